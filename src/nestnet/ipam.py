"""Address allocation: host blocks from the pool, VM addresses from their host's block.

Pure: takes the checked fabric and the previous lock, returns the allocation (and whether it
differs from the lock). Reading and writing the lock file is ``store.py``'s. Rules:
- a pin in the spec wins; else the lock's entry is kept; else first fit;
- blocks are aligned ``block_prefix_len`` networks inside the pool that overlap no other block,
  no host or endpoint address and no address the cloud reserves;
- VM addresses lie inside their host's block, never on a host, endpoint, reserved or other VM
  address; lock entries keep every VM where it was. A locked VM address inside another host's
  block, or on a taken address, is an error (like a bad locked block); one outside every block
  (its host's block was moved) is allocated again.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from .errors import Problem, SpecError
from .validate import ResolvedSpec, VMInfo, rules_of, vm_mac  # noqa: F401 - vm_mac re-exported

LOCK_VERSION = 1


@dataclass(frozen=True)
class Lock:
    blocks: dict[str, IPv4Network] = field(default_factory=dict)
    vms: dict[str, IPv4Address] = field(default_factory=dict)

    def render(self, spec_name: str) -> str:
        lines = [
            f"# nestnet lock for {spec_name}: addresses nestnet allocated. Commit it beside the spec.",
            "# Edit only to move something deliberately; delete an entry to let nestnet allocate it again.",
            f"version: {LOCK_VERSION}",
        ]
        lines.append("blocks:" + ("" if self.blocks else " {}"))
        lines += [f"  {k}: {v}" for k, v in sorted(self.blocks.items())]
        lines.append("vms:" + ("" if self.vms else " {}"))
        lines += [f"  {k}: {v}" for k, v in sorted(self.vms.items())]
        return "\n".join(lines) + "\n"

    def union(self, other: "Lock") -> "Lock":
        """Every entry of both (``other`` wins): what a lock may hold while a spec edit is half done."""
        return Lock({**self.blocks, **other.blocks}, {**self.vms, **other.vms})


def lock_path(spec_path: str | Path) -> Path:
    p = Path(spec_path)
    return p.with_suffix(".lock") if p.suffix in (".yaml", ".yml") else p.with_name(p.name + ".lock")


# Never "delete the lock": it holds the addresses running VMs use (deleting it renumbers them).
KEEP_LOCK = "never delete the lock: it holds the addresses running VMs use"


def parse_lock(text: str, display: str) -> Lock:
    """A lock file's text as a Lock; SpecError (one line per problem) when it is not one."""
    from .lockmerge import conflict_line, spec_name
    from .spec import parse_yaml

    line = conflict_line(text)
    if line is not None:
        spec = str(Path(display).with_name(spec_name(text, Path(display).with_suffix(".yaml").name)))
        raise SpecError([Problem("", (
            f"git conflict markers in the lock: merge both sides with `nestnet lock merge {spec}` "
            f"(or let git do it: the merge driver in the README); {KEEP_LOCK}"), display, line)])
    fast = _fast_lock(text)
    if fast is not None:
        return fast
    try:
        data = parse_yaml(text, display) or {}
    except SpecError as exc:
        raise SpecError(
            [Problem("", f"lock file: {p.message}; fix that line or restore the lock from version control ({KEEP_LOCK})",
                     display, p.line) for p in exc.problems]
        ) from None
    if not isinstance(data, dict) or data.get("version") != LOCK_VERSION:
        raise SpecError([Problem(
            "version", f"not a nestnet lock file of version 1; restore it from version control ({KEEP_LOCK})", display)])
    problems: list[Problem] = []
    blocks = _lock_section(data, "blocks", IPv4Network, display, problems)
    vms = _lock_section(data, "vms", IPv4Address, display, problems)
    if problems:
        raise SpecError(problems)
    return Lock(blocks, vms)


_OCTET = r"(?:0|[1-9][0-9]{0,2})"  # no leading zeros: ipaddress refuses them
_LOCK_LINE = re.compile(rf"  ([A-Za-z][A-Za-z0-9-]*): ({_OCTET}(?:\.{_OCTET}){{3}})(?:/([0-9]{{1,2}}))?\n")
# Plain words YAML 1.1 reads as booleans or null: such a key is left to the YAML reader.
_YAML_WORDS = frozenset("y n yes no true false on off null".split())


def _fast_lock(text: str) -> Lock | None:
    """The lock as ``Lock.render`` writes it, read line by line (1,000 hosts x 16 VMs: 17,000
    lines, a tenth of what the YAML reader takes); None for anything else - another shape, a
    comment after an entry, a duplicate, a bad address - which ``parse_lock`` reads as YAML
    and reports its own way."""
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and lines[i].startswith("#"):
        i += 1
    if lines[i:i + 1] != [f"version: {LOCK_VERSION}\n"]:
        return None
    i += 1
    sections: dict[str, dict[str, Any]] = {}
    for key, net in (("blocks", True), ("vms", False)):
        if i >= len(lines):
            return None
        if lines[i] == f"{key}: {{}}\n":
            sections[key] = {}
            i += 1
            continue
        if lines[i] != f"{key}:\n":
            return None
        i += 1
        out: dict[str, Any] = {}
        while i < len(lines) and lines[i].startswith("  "):
            m = _LOCK_LINE.fullmatch(lines[i])
            if m is None or (m.group(3) is not None) != net or m.group(1) in out or m.group(1).lower() in _YAML_WORDS:
                return None
            try:  # from the 4 bytes: parsing the text is most of the cost here
                packed = socket.inet_aton(m.group(2))
                out[m.group(1)] = IPv4Network((packed, int(m.group(3)))) if net else IPv4Address(packed)
            except (OSError, ValueError):  # an octet over 255, a prefix over 32, host bits set
                return None
            i += 1
        sections[key] = out
    if i != len(lines):
        return None
    return Lock(sections["blocks"], sections["vms"])


def _lock_section(data: dict, key: str, parse: Any, display: str, problems: list[Problem]) -> dict:
    section = data.get(key) or {}
    out: dict[str, Any] = {}
    if not isinstance(section, dict):
        problems.append(Problem(key, "must be a mapping of name: address", display))
        return out
    for name, value in section.items():
        try:
            out[str(name)] = parse(str(value))
        except ValueError:
            problems.append(Problem(f"{key}.{name}", f"{value!r} is not valid; delete the entry to re-allocate", display))
    return out


@dataclass(frozen=True)
class Allocation:
    blocks: dict[str, IPv4Network]  # host -> block
    vm_ips: dict[str, IPv4Address]  # vm -> address
    new: tuple[str, ...]  # what was allocated now: "block hostname", "vm name"

    def lock(self) -> Lock:
        return Lock(dict(self.blocks), dict(self.vm_ips))


class _Pool:
    """The pool as aligned candidate blocks (indices), with what is taken already."""

    def __init__(self, fabric: ResolvedSpec):
        self.fabric = fabric
        self.net = fabric.pool
        self.plen = fabric.spec.nested.block_prefix_len
        self.size = 1 << (32 - self.plen)
        self.base = int(self.net.network_address)
        self.ncand = self.net.num_addresses // self.size
        taken = {int(h.ip) for h in fabric.hosts.values()}
        taken |= {int(e.ip) for e in fabric.endpoints.values()}
        self.taken_addr: set[int] = taken | {int(a) for a in fabric.reserved()}
        # candidate indices that cannot be used (contain a taken address or overlap a used block)
        self.blocked = {(a - self.base) // self.size for a in self.taken_addr if a - self.base in range(self.net.num_addresses)}
        self.blocks: dict[str, IPv4Network] = {}
        self.cursor = 0
        self.moved: set[int] = set()  # pinned addresses of VMs living outside their block

    def take(self, name: str, net: IPv4Network) -> None:
        lo, hi = int(net.network_address), int(net.broadcast_address)
        first = max(0, (lo - self.base) // self.size)
        last = min(self.ncand - 1, (hi - self.base) // self.size)
        self.blocked.update(range(first, last + 1))
        self.blocks[name] = net

    def is_free(self, net: IPv4Network) -> bool:
        # an aligned block of the pool's size is free iff its candidate index is unmarked
        return (int(net.network_address) - self.base) // self.size not in self.blocked

    def conflicts(self, name: str, net: IPv4Network) -> str | None:
        lo, hi = int(net.network_address), int(net.broadcast_address)
        for other, onet in self.blocks.items():
            if other != name and lo <= int(onet.broadcast_address) and int(onet.network_address) <= hi:
                return f"overlaps the block of host {other!r} ({onet})"
        hits = [a for a in self.taken_addr if lo <= a <= hi]
        if hits:
            a = IPv4Address(min(hits))
            return f"contains {a} ({_who(self.fabric, a)})"
        return None

    def first_free(self) -> IPv4Network | None:
        while self.cursor < self.ncand and self.cursor in self.blocked:
            self.cursor += 1
        if self.cursor >= self.ncand:
            return None
        return IPv4Network((self.base + self.cursor * self.size, self.plen))


def allocate(fabric: ResolvedSpec, lock: Lock, *, frozen: bool = False, lock_display: str = "") -> Allocation:
    pool = _Pool(fabric)
    new: list[str] = []
    problems = _pin_blocks(pool)
    problems += _locked_blocks(pool, lock, lock_display)
    problems += _fit_blocks(pool, new)
    problems += _block_placement(fabric, pool.blocks)
    if problems:
        raise SpecError(problems)
    vm_ips: dict[str, IPv4Address] = {}
    # a VM may live outside its block, pinned (docs/decisions/0013): no other VM gets its address
    pool.moved = {int(v.pinned_ip) for v in fabric.vms.values()
                  if v.pinned_ip is not None and v.pinned_ip not in pool.blocks[v.host]}
    by_host: dict[str, list[VMInfo]] = {}
    for v in fabric.vms.values():
        by_host.setdefault(v.host, []).append(v)
    for hname, vlist in by_host.items():
        problems += _host_vm_ips(pool, hname, vlist, lock, vm_ips, new, lock_display)
    if problems:
        raise SpecError(problems)
    blocks = {h: pool.blocks[h] for h in fabric.hosts}
    vm_ips = {v: vm_ips[v] for v in fabric.vms if v in vm_ips}  # in spec order
    if frozen:
        _check_frozen(lock, blocks, vm_ips, new, lock_display)
    return Allocation(blocks, vm_ips, tuple(new))


def _pin_blocks(pool: _Pool) -> list[Problem]:
    problems = []
    for h in pool.fabric.hosts.values():
        if h.pinned_block is not None:
            why = pool.conflicts(h.name, h.pinned_block)
            if why:
                problems.append(Problem(f"hosts[{h.index}].block", f"{h.pinned_block} {why}", name=h.name))
            pool.take(h.name, h.pinned_block)
    return problems


def _locked_blocks(pool: _Pool, lock: Lock, lock_display: str) -> list[Problem]:
    """Lock entries for unpinned hosts, kept where they are if still valid."""
    problems = []
    for h in pool.fabric.hosts.values():
        if h.name in pool.blocks or h.name not in lock.blocks:
            continue
        net = lock.blocks[h.name]
        why = None
        if not net.subnet_of(pool.net):
            why = f"is outside the pool {pool.net}"
        elif net.prefixlen != pool.plen:
            why = f"is not a /{pool.plen} (nested.block_prefix_len)"
        elif not pool.is_free(net):
            why = pool.conflicts(h.name, net)  # the slow scan only runs to say what it hits
        if why:
            problems.append(
                Problem(f"blocks.{h.name}", f"locked block {net} {why}; delete this entry from the lock to re-allocate", lock_display)
            )
            continue
        pool.take(h.name, net)
    return problems


def _fit_blocks(pool: _Pool, new: list[str]) -> list[Problem]:
    """First fit for the hosts left, in spec order."""
    problems = []
    for h in pool.fabric.hosts.values():
        if h.name in pool.blocks:
            continue
        net = pool.first_free()
        if net is None:
            problems.append(
                Problem(
                    f"hosts[{h.index}]",
                    f"the pool {pool.net} has no free /{pool.plen} left for host {h.name!r}; "
                    "widen nested.pool or raise block_prefix_len",
                    name=h.name,
                )
            )
            continue
        pool.take(h.name, net)
        new.append(f"block {h.name}")
    return problems


def _host_vm_ips(
    pool: _Pool, hname: str, vlist: list[VMInfo], lock: Lock,
    vm_ips: dict[str, IPv4Address], new: list[str], lock_display: str,
) -> list[Problem]:
    """One host's VMs: pins first, then lock entries still valid, then the lowest free address."""
    block = pool.blocks[hname]
    lo, hi = int(block.network_address), int(block.broadcast_address)
    taken = pool.taken_addr
    used: set[int] = set()
    holder: dict[int, str] = {}  # address -> who holds it already: "pin NAME" | "lock NAME"
    problems = []
    for v in vlist:
        if v.pinned_ip is not None:
            if v.pinned_ip not in pool.net:  # outside its block but in the pool: an exception
                problems.append(Problem(
                    f"vms[{v.index}].ip",
                    f"{v.pinned_ip} is outside the nested pool {pool.net} (even a VM living outside its host's "
                    f"block must be in it); pick an address in the block {block} of host {hname!r} or leave ip out",
                    name=v.name,
                ))
            vm_ips[v.name] = v.pinned_ip
            used.add(int(v.pinned_ip))
            holder[int(v.pinned_ip)] = f"pinned by VM {v.name!r} in the spec"
    for v in vlist:
        if v.name in vm_ips or v.name not in lock.vms:
            continue
        a = int(lock.vms[v.name])
        clash = holder.get(a) or ("pinned in the spec by a VM living outside its block" if a in pool.moved else None)
        why = _locked_vm_problem(pool, hname, a, lo <= a <= hi, clash)
        if why:
            problems.append(Problem(
                f"vms.{v.name}", f"locked address {lock.vms[v.name]} {why}; delete this entry from the lock to re-allocate",
                lock_display,
            ))
        elif lo <= a <= hi:
            vm_ips[v.name] = lock.vms[v.name]
            used.add(a)
            holder[a] = f"also the lock entry of VM {v.name!r} (two lock entries hold it, as a merge can leave them)"
    nxt = lo
    for v in vlist:
        if v.name in vm_ips:
            continue
        while nxt <= hi and (nxt in used or nxt in taken or nxt in pool.moved):
            nxt += 1
        if nxt > hi:
            problems.append(Problem(
                f"vms[{v.index}]",
                f"the block {block} of host {hname!r} has no free address left for VM {v.name!r}; "
                "lower nested.block_prefix_len for bigger blocks or move the VM",
                name=v.name,
            ))
            continue
        vm_ips[v.name] = IPv4Address(nxt)
        used.add(nxt)
        new.append(f"vm {v.name}")
    return problems


def _locked_vm_problem(pool: _Pool, hname: str, a: int, in_block: bool, clash: str | None) -> str | None:
    if not in_block:
        for other, onet in pool.blocks.items():
            if other != hname and int(onet.network_address) <= a <= int(onet.broadcast_address):
                return f"is in the block {onet} of host {other!r}, not of its host {hname!r}"
        return None  # its host's block moved: allocate again
    if clash:
        return f"is {clash}"
    if a in pool.taken_addr:
        return f"is taken ({_who(pool.fabric, IPv4Address(a))})"
    return None


def _check_frozen(
    lock: Lock, blocks: dict[str, IPv4Network], vm_ips: dict[str, IPv4Address], new: list[str], lock_display: str
) -> None:
    missing = list(new)
    missing += [f"block {h}" for h, b in blocks.items() if lock.blocks.get(h) != b and f"block {h}" not in new]
    missing += [f"vm {v}" for v, a in vm_ips.items() if lock.vms.get(v) != a and f"vm {v}" not in new]
    if missing:
        raise SpecError([Problem(
            "", f"--frozen: the lock lacks {', '.join(sorted(missing))}; run without --frozen to allocate", lock_display
        )])


def _block_placement(fabric: ResolvedSpec, blocks: dict[str, IPv4Network]) -> list[Problem]:
    """Modes and guest styles that need each block inside its host's subnet."""
    out: list[Problem] = []
    nested = fabric.spec.nested
    for h in fabric.hosts.values():
        if h.name not in blocks:
            continue
        block, sub = blocks[h.name], fabric.subnets[h.subnet].prefix
        if block.subnet_of(sub):
            continue
        if nested.guest_style == "subnet":
            why = ("guest_style 'subnet' gives guests the subnet's prefix, so blocks must lie in it; "
                   "use guest_style 'onlink' or move the pool")
        elif nested.mode == "secondary-ip":
            why = "secondary IP configurations must be addresses of the NIC's subnet; move nested.pool into the subnet"
        elif nested.mode == "nic-prefix":
            why = "a prefix ip configuration takes addresses of the NIC's subnet; move nested.pool into the subnet"
        elif nested.mode == "prefix":
            why = "a NIC's IPv4 prefix takes addresses of its subnet; move nested.pool into the subnet"
        else:
            continue
        out.append(Problem(f"hosts[{h.index}].block", f"{block} is outside the host's subnet {sub}: {why}", name=h.name))
    return out


def _who(fabric: ResolvedSpec, a: IPv4Address) -> str:
    for h in fabric.hosts.values():
        if h.ip == a:
            return f"host {h.name}"
    for e in fabric.endpoints.values():
        if e.ip == a:
            return f"endpoint {e.name}"
    for s in fabric.subnets.values():
        if a in s.prefix:
            return f"reserved by {rules_of(fabric.spec).title} in subnet {s.name}"
    return "taken"

