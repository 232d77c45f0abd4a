"""Edit a spec file in place (``nestnet vm add|rm|move``), keeping the user's comments and order.

The whole read-edit-check-write runs under the spec's writer lock (``store.edit``), so
concurrent edits serialize. The edited text is checked in full (spec + lock) before anything is
written; on any problem the spec and the lock stay exactly as they were.
"""

from __future__ import annotations

import io
from ipaddress import IPv4Address
from pathlib import Path

from .errors import UsageError
from .names import unknown
from .spec import NODE_NAME_RE, SpecSource
from .store import Loaded, edit, load_source


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


def vm_add(spec_path: str | Path, name: str, host: str, ip: str | None = None) -> Loaded:
    _check_args(name, ip)

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
    def make_text(source: SpecSource) -> str:
        plan = load_source(source, write=False).plan
        y = _rt()
        data = y.load(source.text)
        if to not in plan.hosts:
            raise UsageError(f"--to: no host named {to!r} in {source.display}{unknown(to, plan.hosts)}")
        vms = data.get("vms") or []
        entry = next((v for v in vms if isinstance(v, dict) and v.get("name") == name), None)
        if entry is None or name not in plan.vms:
            raise UsageError(f"{source.display}: no VM named {name!r}")
        vm = plan.vms[name]
        if vm.host == to and not (renumber and vm.ip not in plan.hosts[to].block):
            raise UsageError(f"{source.display}: VM {name!r} already lives on {to}")
        entry["host"] = to
        if renumber:
            entry.pop("ip", None)
        else:
            entry["ip"] = str(vm.ip)
        return _dump(y, data)

    return edit(spec_path, make_text, forget_vms=(name,) if renumber else ())
