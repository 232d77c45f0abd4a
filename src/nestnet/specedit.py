"""Edit a spec file in place (``nestnet vm add|rm|move``), keeping the user's comments and order.

The whole read-edit-check-write runs under the spec's writer lock (``store.edit``), so
concurrent edits serialize. The edited text is checked in full (spec + lock) before anything is
written; on any problem the spec and the lock stay exactly as they were.
"""

from __future__ import annotations

import io
import re
from ipaddress import IPv4Address
from pathlib import Path

from .errors import SpecError, UsageError
from .names import unknown
from .plan import VM
from .spec import NODE_NAME_RE, SpecSource
from .store import Loaded, checked_lock, edit, load_source


def _rt():
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096
    return y


def _dump(y, data) -> str:
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


class _NoFast(Exception):
    """The line editor does not know this spec's shape: the round-trip editor takes over."""


def _no_fast() -> str:
    raise _NoFast


def _check_args(name: str, ip: str | None) -> None:
    # Checked before they reach the YAML: '::1' in a flow mapping would read as a syntax error
    # in the user's spec instead of naming the option.
    if not NODE_NAME_RE.match(name):
        raise UsageError(f"NAME: {name!r} is not a valid VM name (letters, digits, '-', at most 63)")
    if ip is not None:
        try:
            IPv4Address(ip)
        except ValueError:
            raise UsageError(f"--ip: {ip!r} is not an IPv4 address") from None


def _vms_lines(text: str) -> tuple[list[str], int, int, str] | None:
    """(lines, first item line, end line, item indent) of a top-level block sequence ``vms:``
    with ``- `` items; None for any other shape (the round-trip editor handles those)."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if re.match(r"vms:\s*(#.*)?$", ln.rstrip("\n"))), None)
    if start is None:
        return None
    end, indent, last = start + 1, None, start
    for i in range(start + 1, len(lines)):
        ln = lines[i]
        bare = ln.strip()
        if not bare or bare.startswith("#"):
            continue
        if not ln[0].isspace() and not ln.startswith("-"):
            break  # the next top-level key
        if indent is None:
            m = re.match(r"( *)- ", ln)
            if m is None:
                return None
            indent = m.group(1)
        last = i
    end = last + 1
    if indent is None:
        return None
    return lines, start + 1, end, indent


def _fast_add(text: str, entry: str) -> str | None:
    """``text`` with ``entry`` (a flow mapping) appended to ``vms:`` line by line: comments and
    every other byte stay as they are, and no YAML is re-serialised (1,000 hosts: milliseconds,
    where a round trip took seconds)."""
    found = _vms_lines(text)
    if found is None:
        return None
    lines, _, end, indent = found
    if end and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    lines.insert(end, f"{indent}- {entry}\n")
    return "".join(lines)


def _item(text: str, name: str) -> tuple[list[str], int, int, str] | None:
    """(lines, first, end, indent): VM ``name``'s item of ``vms:`` is ``lines[first:end]``;
    None when it is not plainly recognisable (then the round-trip editor decides)."""
    found = _vms_lines(text)
    if found is None:
        return None
    lines, first, end, indent = found
    # the whole name: h1-v1 is not the start of h1-v10
    item = re.compile(rf"{indent}- (\{{\s*)?name:\s*(['\"]?){re.escape(name)}\2\s*([,}}#]|$)")
    starts = [i for i in range(first, end) if lines[i].startswith(f"{indent}- ")]
    hit = [i for i in starts if item.match(lines[i]) and ("{" not in lines[i] or _bare(lines[i]).endswith("}"))]
    if len(hit) != 1:
        return None
    i = hit[0]
    j = i + 1
    if "{" not in lines[i]:  # a block mapping: its deeper-indented lines go with it
        while j < end and (lines[j].startswith(indent + "  ") and not lines[j].startswith(f"{indent}- ")):
            j += 1
    return lines, i, j, indent


def _bare(line: str) -> str:
    """The line without its comment (a flow mapping closed on its line ends with '}')."""
    return re.sub(r"\s+#.*$", "", line.rstrip())


def _fast_rm(text: str, name: str) -> str | None:
    """``text`` without VM ``name``'s item of ``vms:`` (its lines only), or None."""
    found = _item(text, name)
    if found is None:
        return None
    lines, i, j, _ = found
    return "".join(lines[:i] + lines[j:])


def _set_keys(item: list[str], indent: str, host: str, ip: str | None) -> list[str]:
    """The item's lines with ``host`` set and ``ip`` set (or dropped when None), each key on
    its own line (block mapping) or in the one flow mapping; anything unexpected is left as it
    is, for ``_fast_move``'s comparison to catch."""
    if len(item) == 1 and "{" in item[0]:  # - {name: v, host: h, ip: a}  # comment
        line = re.sub(r"(?<=[{,\s])host:\s*[^,}\s]+", f"host: {host}", item[0], count=1)
        line = re.sub(r",\s*ip:\s*[^,}\s]+(?=\s*[,}])", "", line, count=1)
        if ip is not None:
            line = re.sub(r"\s*}", f", ip: {ip}}}", line, count=1)
        return [line]
    out = []
    key = re.compile(rf"({re.escape(indent)}(?:- |  ))(host|ip):(\s+)[^\s#]+")
    for line in item:
        m = key.match(line)
        if m is None:
            out.append(line)
        elif m.group(2) == "host":
            out.append(f"{m.group(1)}host:{m.group(3)}{host}{line[m.end():]}")
            if ip is not None:
                out.append(f"{indent}  ip: {ip}\n")
        elif m.group(1).endswith("- "):
            out.append(line)  # the item starts with ip: the comparison refuses the result
    return out


def _fast_move(text: str, name: str, host: str, ip: str | None) -> str | None:
    """``text`` with VM ``name``'s item of ``vms:`` on ``host`` with address ``ip`` (None: no
    pin), its lines only; None unless the edited item reads exactly as the old one with those
    two keys changed (then the round-trip editor takes over)."""
    found = _item(text, name)
    if found is None:
        return None
    lines, i, j, indent = found
    new = _set_keys(lines[i:j], indent, host, ip)
    old_item, new_item = _read_item(lines[i:j]), _read_item(new)
    if old_item is None or new_item is None:
        return None
    want = {k: v for k, v in old_item.items() if k != "ip"}
    want["host"] = host
    if ip is not None:
        want["ip"] = ip
    if new_item != want or list(new_item)[0] != "name":
        return None
    return "".join(lines[:i] + new + lines[j:])


def _read_item(item: list[str]) -> dict | None:
    from .spec import parse_yaml

    try:
        data = parse_yaml("".join(item), "")
    except SpecError:
        return None
    if not (isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict)):
        return None
    return {k: str(v) if k in ("host", "ip") else v for k, v in data[0].items()}


def vm_add(spec_path: str | Path, name: str, host: str, ip: str | None = None) -> Loaded:
    _check_args(name, ip)
    fast = f"{{name: {name}, host: {host}{f', ip: {ip}' if ip else ''}}}"
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", host):
        try:
            return edit(spec_path, lambda source: _fast_add(source.text, fast) or _no_fast())
        except (SpecError, _NoFast):
            pass  # the slow path below names the problem as it always did

    def make_text(source: SpecSource) -> str:
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        load_source(source, write=False)  # the spec must be valid before we edit it
        y = _rt()
        data = y.load(source.text)
        hosts = [h.get("name") for h in data.get("hosts") or [] if isinstance(h, dict)]
        if host not in hosts:
            raise UsageError(f"--host: no host named {host!r} in {source.display}{unknown(host, hosts)}")
        vms = data.get("vms")
        if vms is None:
            vms = data["vms"] = CommentedSeq()
        if any(isinstance(v, dict) and v.get("name") == name for v in vms):
            raise UsageError(f"{source.display}: a VM named {name!r} already exists")
        entry = CommentedMap()
        entry["name"] = name
        entry["host"] = host
        if ip is not None:
            entry["ip"] = ip
        entry.fa.set_flow_style()
        vms.append(entry)
        return _dump(y, data)

    return edit(spec_path, make_text)


def vm_rm(spec_path: str | Path, name: str) -> Loaded:
    try:
        return edit(spec_path, lambda source: _fast_rm(source.text, name) or _no_fast())
    except (SpecError, _NoFast):
        pass  # the slow path below names the problem as it always did

    def make_text(source: SpecSource) -> str:
        load_source(source, write=False)
        y = _rt()
        data = y.load(source.text)
        vms = data.get("vms") or []
        idx = next((i for i, v in enumerate(vms) if isinstance(v, dict) and v.get("name") == name), None)
        if idx is None:
            raise UsageError(f"{source.display}: no VM named {name!r}")
        del vms[idx]
        return _dump(y, data)

    return edit(spec_path, make_text)


def vm_move(spec_path: str | Path, name: str, to: str, renumber: bool = False) -> Loaded:
    """Move VM NAME to host TO in the spec (docs/decisions/0013).

    Without ``renumber`` the VM keeps its address, pinned in the spec: when it lies outside TO's
    block the plan carries a /32 exception for it. With ``renumber`` the pin and the lock entry
    go and the VM gets the lowest free address in TO's block.
    """
    return move_vm(spec_path, name, to, renumber)[1]


def move_vm(spec_path: str | Path, name: str, to: str, renumber: bool = False) -> tuple[VM, Loaded]:
    """``vm_move``, also returning the VM as the plan had it before the move (the plan the
    edit starts from: no second load for it)."""
    before: list[VM] = []
    known: list[tuple[str, IPv4Address, bool]] = []  # (host, address, has a mac key) before, without a load

    def make_text(source: SpecSource) -> str:
        fast = _known_move(source, name, to, renumber)
        known[:] = [fast[1:]] if fast else []
        if fast is not None:
            return fast[0]
        plan = load_source(source, write=False).plan
        if to not in plan.hosts:
            raise UsageError(f"--to: no host named {to!r} in {source.display}{unknown(to, plan.hosts)}")
        vm = plan.vms.get(name)
        if vm is None:
            raise UsageError(f"{source.display}: no VM named {name!r}")
        if vm.host == to and not (renumber and vm.ip not in plan.hosts[to].block):
            raise UsageError(f"{source.display}: VM {name!r} already lives on {to}")
        before[:] = [vm]
        fast = _fast_move(source.text, name, to, None if renumber else str(vm.ip))
        if fast is not None:
            return fast
        y = _rt()
        data = y.load(source.text)
        vms = data.get("vms") or []
        entry = next((v for v in vms if isinstance(v, dict) and v.get("name") == name), None)
        if entry is None:
            raise UsageError(f"{source.display}: no VM named {name!r}")
        entry["host"] = to
        if renumber:
            entry.pop("ip", None)
        else:
            entry["ip"] = str(vm.ip)
        return _dump(y, data)

    loaded = edit(spec_path, make_text, forget_vms=(name,) if renumber else ())
    if known:
        return _before(loaded.plan.vms[name], loaded.plan, *known[0]), loaded
    return before[0], loaded


def _known_move(source: SpecSource, name: str, to: str, renumber: bool) -> tuple[str, str, IPv4Address, bool] | None:
    """(the moved text, the VM's host and address before, whether it has a ``mac`` key) with no
    load of the spec it starts from, when that spec and its lock loaded without an error before (``store.checked_lock``):
    then its lock holds every host's block and every VM's address as the plan had them, and the
    edited text is checked in full as always. None for anything else, bad input included (the
    full path then names the problem as it always did)."""
    lock = checked_lock(source)
    if lock is None or name not in lock.vms or to not in lock.blocks:
        return None
    found = _item(source.text, name)
    item = _read_item(found[0][found[1]:found[2]]) if found else None
    if item is None or item.get("name") != name or item.get("host") not in lock.blocks:
        return None
    host, ip = item["host"], lock.vms[name]
    if host == to and not (renumber and ip not in lock.blocks[to]):
        return None  # "already lives on": said by the full path
    text = _fast_move(source.text, name, to, None if renumber else str(ip))
    return None if text is None else (text, host, ip, "mac" in item)


def _before(after: VM, plan, host: str, ip: IPv4Address, own_mac: bool) -> VM:
    """The VM as the plan had it on ``host`` with ``ip``, from the plan after the move: the same
    spec bar this VM's host and address, so its host's link and the VM's other keys are as they were."""
    from dataclasses import replace

    from .plan import vm_link
    from .validate import vm_mac

    prefix_len, gateway = vm_link(after.guest_style, plan.hosts[host])
    mac = after.mac if own_mac else vm_mac(ip)
    return replace(after, host=host, ip=ip, prefix_len=prefix_len, gateway=gateway, mac=mac, nameservers=(gateway,))
