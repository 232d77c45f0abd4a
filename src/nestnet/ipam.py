"""Address allocation: host blocks from the pool, VM addresses from their host's block.

Pure: takes the checked fabric and the previous lock, returns the allocation (and whether it
differs from the lock). Rules:
- a pin in the spec wins; else the lock's entry is kept; else first fit;
- blocks are aligned ``block_prefix_len`` networks inside the pool that overlap no other block,
  no host or endpoint address and no Azure-reserved address;
- VM addresses lie inside their host's block, never on a host, endpoint, reserved or other VM
  address; lock entries keep every VM where it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import yaml

from .errors import Problem, SpecError
from .validate import Fabric

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


def lock_path(spec_path: str | Path) -> Path:
    p = Path(spec_path)
    return p.with_suffix(".lock") if p.suffix in (".yaml", ".yml") else p.with_name(p.name + ".lock")


def read_lock(path: Path) -> Lock:
    if not path.exists():
        return Lock()
    display = str(path)
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}  # noqa: S506
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SpecError([Problem("", f"lock file is not valid YAML ({exc}); delete it to re-allocate", display)]) from None
    problems: list[Problem] = []
    if not isinstance(data, dict) or data.get("version") != LOCK_VERSION:
        raise SpecError([Problem("version", "not a nestnet lock file of version 1; delete it to re-allocate", display)])
    blocks: dict[str, IPv4Network] = {}
    vms: dict[str, IPv4Address] = {}
    for key, target, parse in (("blocks", blocks, IPv4Network), ("vms", vms, IPv4Address)):
        section = data.get(key) or {}
        if not isinstance(section, dict):
            problems.append(Problem(key, "must be a mapping of name: address", display))
            continue
        for name, value in section.items():
            try:
                target[str(name)] = parse(str(value))
            except ValueError:
                problems.append(Problem(f"{key}.{name}", f"{value!r} is not valid; delete the entry to re-allocate", display))
    if problems:
        raise SpecError(problems)
    return Lock(blocks, vms)


def write_lock(path: Path, lock: Lock, spec_name: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(lock.render(spec_name), encoding="utf-8")
    tmp.replace(path)


@dataclass(frozen=True)
class Allocation:
    blocks: dict[str, IPv4Network]  # host -> block
    vm_ips: dict[str, IPv4Address]  # vm -> address
    new: tuple[str, ...]  # what was allocated now: "block hostname", "vm name"

    def lock(self) -> Lock:
        return Lock(dict(self.blocks), dict(self.vm_ips))


def allocate(fabric: Fabric, lock: Lock, *, frozen: bool = False, lock_display: str = "") -> Allocation:
    spec = fabric.spec
    pool = fabric.pool
    plen = spec.nested.block_prefix_len
    size = 1 << (32 - plen)
    base = int(pool.network_address)
    ncand = pool.num_addresses // size
    problems: list[Problem] = []

    taken_addr: set[int] = {int(h.ip) for h in fabric.hosts.values()}
    taken_addr |= {int(e.ip) for e in fabric.endpoints.values()}
    taken_addr |= {int(a) for a in fabric.reserved()}

    # candidate indices that cannot be used (contain a taken address or overlap a used block)
    blocked: set[int] = set()

    def mark(net: IPv4Network) -> None:
        lo, hi = int(net.network_address), int(net.broadcast_address)
        first = max(0, (lo - base) // size)
        last = min(ncand - 1, (hi - base) // size)
        blocked.update(range(first, last + 1))

    for a in taken_addr:
        if base <= a < base + pool.num_addresses:
            blocked.add((a - base) // size)

    blocks: dict[str, IPv4Network] = {}
    used: list[tuple[str, IPv4Network]] = []

    def conflicts(name: str, net: IPv4Network) -> str | None:
        lo, hi = int(net.network_address), int(net.broadcast_address)
        for other, onet in used:
            if other != name and lo <= int(onet.broadcast_address) and int(onet.network_address) <= hi:
                return f"overlaps the block of host {other!r} ({onet})"
        hits = [a for a in taken_addr if lo <= a <= hi]
        if hits:
            a = IPv4Address(min(hits))
            what = _who(fabric, a)
            return f"contains {a} ({what})"
        return None

    # 1. pins
    for h in fabric.hosts.values():
        if h.pinned_block is not None:
            why = conflicts(h.name, h.pinned_block)
            if why:
                problems.append(Problem(f"hosts[{h.index}].block", f"{h.pinned_block} {why}"))
            blocks[h.name] = h.pinned_block
            used.append((h.name, h.pinned_block))
            mark(h.pinned_block)
    # 2. lock entries for unpinned hosts
    for h in fabric.hosts.values():
        if h.name in blocks or h.name not in lock.blocks:
            continue
        net = lock.blocks[h.name]
        why = None
        if not net.subnet_of(pool):
            why = f"is outside the pool {pool}"
        elif net.prefixlen != plen:
            why = f"is not a /{plen} (nested.block_prefix_len)"
        elif (int(net.network_address) - base) // size in blocked:
            # an aligned block of the pool's size is free iff its candidate index is unmarked;
            # the slow scan only runs to say what it collides with
            why = conflicts(h.name, net)
        if why:
            problems.append(
                Problem(
                    f"blocks.{h.name}",
                    f"locked block {net} {why}; delete this entry from the lock to re-allocate",
                    lock_display,
                )
            )
            continue
        blocks[h.name] = net
        used.append((h.name, net))
        mark(net)
    # 3. first fit for the rest, in spec order
    new: list[str] = []
    cursor = 0
    for h in fabric.hosts.values():
        if h.name in blocks:
            continue
        while cursor < ncand and cursor in blocked:
            cursor += 1
        if cursor >= ncand:
            problems.append(
                Problem(
                    f"hosts[{h.index}]",
                    f"the pool {pool} has no free /{plen} left for host {h.name!r}; widen nested.pool or raise block_prefix_len",
                )
            )
            continue
        net = IPv4Network((base + cursor * size, plen))
        blocked.add(cursor)
        blocks[h.name] = net
        used.append((h.name, net))
        new.append(f"block {h.name}")

    problems += _block_placement(fabric, blocks)
    if problems:
        raise SpecError(problems)

    # VM addresses
    vm_ips: dict[str, IPv4Address] = {}
    taken_vm: set[int] = set()
    by_host: dict[str, list] = {}
    for v in fabric.vms.values():
        by_host.setdefault(v.host, []).append(v)
    for hname, vlist in by_host.items():
        block = blocks[hname]
        lo, hi = int(block.network_address), int(block.broadcast_address)
        for v in vlist:  # pins first
            if v.pinned_ip is not None:
                a = int(v.pinned_ip)
                if not lo <= a <= hi:
                    problems.append(
                        Problem(
                            f"vms[{v.index}].ip",
                            f"{v.pinned_ip} is outside host {hname!r}'s block {block}; pick an address in it or leave ip out",
                        )
                    )
                vm_ips[v.name] = v.pinned_ip
                taken_vm.add(a)
        for v in vlist:  # then lock entries still valid
            if v.name in vm_ips or v.name not in lock.vms:
                continue
            a = int(lock.vms[v.name])
            if lo <= a <= hi and a not in taken_vm and a not in taken_addr:
                vm_ips[v.name] = lock.vms[v.name]
                taken_vm.add(a)
        nxt = lo
        for v in vlist:  # then lowest free address
            if v.name in vm_ips:
                continue
            while nxt <= hi and (nxt in taken_vm or nxt in taken_addr):
                nxt += 1
            if nxt > hi:
                problems.append(
                    Problem(
                        f"vms[{v.index}]",
                        f"host {hname!r}'s block {block} has no free address left for VM {v.name!r}; "
                        "raise nested.block_prefix_len's block size or move the VM",
                    )
                )
                continue
            vm_ips[v.name] = IPv4Address(nxt)
            taken_vm.add(nxt)
            new.append(f"vm {v.name}")
    if problems:
        raise SpecError(problems)

    if frozen:
        locked = lock.blocks
        missing = [n for n in new]
        missing += [f"block {h}" for h, b in blocks.items() if locked.get(h) != b and f"block {h}" not in new]
        missing += [f"vm {v}" for v, a in vm_ips.items() if lock.vms.get(v) != a and f"vm {v}" not in new]
        if missing:
            raise SpecError(
                [
                    Problem(
                        "",
                        f"--frozen: the lock lacks {', '.join(sorted(missing))}; run without --frozen to allocate",
                        lock_display,
                    )
                ]
            )
    # Keep VMs ordered as in the spec
    vm_ips = {v: vm_ips[v] for v in fabric.vms if v in vm_ips}
    blocks = {h: blocks[h] for h in fabric.hosts}
    return Allocation(blocks, vm_ips, tuple(new))


def _block_placement(fabric: Fabric, blocks: dict[str, IPv4Network]) -> list[Problem]:
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
            out.append(
                Problem(
                    f"hosts[{h.index}].block",
                    f"{block} is outside the host's subnet {sub}: guest_style 'subnet' gives guests the "
                    "subnet's prefix, so blocks must lie in it; use guest_style 'onlink' or move the pool",
                )
            )
        elif nested.mode == "secondary-ip":
            out.append(
                Problem(
                    f"hosts[{h.index}].block",
                    f"{block} is outside the host's subnet {sub}: secondary IP configurations must be "
                    "addresses of the NIC's subnet; move nested.pool into the subnet",
                )
            )
    return out


def _who(fabric: Fabric, a: IPv4Address) -> str:
    for h in fabric.hosts.values():
        if h.ip == a:
            return f"host {h.name}"
    for e in fabric.endpoints.values():
        if e.ip == a:
            return f"endpoint {e.name}"
    for s in fabric.subnets.values():
        if a in s.prefix:
            return f"reserved by Azure in subnet {s.name}"
    return "taken"
