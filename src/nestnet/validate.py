"""What a spec means: addresses parsed, references resolved, every problem found at once.

``check(spec)`` returns a ``ResolvedSpec`` (the spec with parsed addresses and resolved subnets) plus the
problems, one small checker per spec section. Allocation of blocks and VM addresses is
``ipam.py``'s; ``check_allocation`` then makes the checks and warnings that need the allocation.
Every warning nestnet makes about a spec is made in this module.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from . import clouds
from .errors import Problem, SpecError
from .spec import FABRIC_NAME_RE, IFNAME_RE, MAC_RE, NODE_NAME_RE, HostSpec, Spec

# Interface names Linux gives a meaning of its own: /proc/sys/net/ipv4/conf/{all,default} and
# the loopback device; a bridge or uplink called so breaks sysctls and routes.
RESERVED_IFNAMES = frozenset({"all", "default", "lo"})


def reserved_addresses(prefix: IPv4Network) -> tuple[IPv4Address, ...]:
    """The addresses of a subnet the default cloud never delivers."""
    return clouds.get().reserved(prefix)


def rules_of(spec: Spec) -> "clouds.SpecRules":
    """What the checks need to know of the spec's cloud."""
    return clouds.spec_rules(clouds.cloud_of(spec))


_HEX = tuple(f"{i:02x}" for i in range(256))


def vm_mac(ip: IPv4Address) -> str:
    """A stable, locally administered MAC for a nested VM (libvirt's 52:54:00 prefix)."""
    # Twice per VM on every load: the int and a table, not .packed and format specs (4x faster).
    i = int(ip)
    return f"52:54:00:{_HEX[i >> 16 & 255]}:{_HEX[i >> 8 & 255]}:{_HEX[i & 255]}"


def parse_address(value: str, path: str, problems: list[Problem]) -> IPv4Address | None:
    try:
        return IPv4Address(str(value))
    except (ipaddress.AddressValueError, ValueError):
        hint = ""
        if "/" in str(value):
            hint = "; give the address without a prefix length"
        problems.append(Problem(path, f"{value!r} is not an IPv4 address{hint}"))
        return None


def parse_network(value: str, path: str, problems: list[Problem]) -> IPv4Network | None:
    text = str(value)
    if "/" not in text:
        problems.append(Problem(path, f"{text!r} is not a CIDR prefix; write it as a.b.c.d/len"))
        return None
    try:
        return IPv4Network(text, strict=True)
    except ValueError as exc:
        try:
            loose = IPv4Network(text, strict=False)
        except ValueError:
            problems.append(Problem(path, f"{text!r} is not a valid IPv4 CIDR prefix ({exc})"))
            return None
        problems.append(
            Problem(path, f"{text!r} is not a network address; did you mean {loose}?")
        )
        return None


@dataclass
class SubnetInfo:
    name: str
    prefix: IPv4Network
    route_table: bool


@dataclass
class HostInfo:
    index: int
    name: str
    ip: IPv4Address
    subnet: str
    nic: str
    pinned_block: IPv4Network | None


@dataclass
class VMInfo:
    index: int
    name: str
    host: str
    pinned_ip: IPv4Address | None


@dataclass
class EndpointInfo:
    index: int
    name: str
    ip: IPv4Address
    subnet: str


@dataclass
class ResolvedSpec:
    """The spec with its addresses parsed; produced only when there are no errors."""

    spec: Spec
    address_space: tuple[IPv4Network, ...]
    pool: IPv4Network
    subnets: dict[str, SubnetInfo]
    hosts: dict[str, HostInfo]
    vms: dict[str, VMInfo]
    endpoints: dict[str, EndpointInfo]
    warnings: list[Problem] = field(default_factory=list)

    def reserved(self) -> set[IPv4Address]:
        rules = rules_of(self.spec)
        out: set[IPv4Address] = set()
        for s in self.subnets.values():
            out.update(rules.reserved(s.prefix))
        return out


def _name_check(value: str, regex: re.Pattern[str], path: str, what: str, problems: list[Problem]) -> None:
    if not regex.match(value):
        problems.append(Problem(path, f"{value!r} is not a valid {what}"))


def _overlaps(a: IPv4Network, b: IPv4Network) -> bool:
    return a.network_address <= b.broadcast_address and b.network_address <= a.broadcast_address


@dataclass
class _Ctx:
    """What the section checkers share: the problems so far and the names/addresses claimed."""

    spec: Spec
    rules: "clouds.SpecRules"
    p: list[Problem] = field(default_factory=list)
    warn: list[Problem] = field(default_factory=list)
    space: list[IPv4Network] = field(default_factory=list)
    subnets: dict[str, SubnetInfo] = field(default_factory=dict)
    pool: IPv4Network | None = None
    reserved: dict[IPv4Address, str] = field(default_factory=dict)
    # name_key(node name) -> (name, path), hosts, VMs and endpoints: one namespace, without case
    names: dict[str, tuple[str, str]] = field(default_factory=dict)
    ips: dict[IPv4Address, str] = field(default_factory=dict)
    hosts: dict[str, HostInfo] = field(default_factory=dict)
    vms: dict[str, VMInfo] = field(default_factory=dict)
    endpoints: dict[str, EndpointInfo] = field(default_factory=dict)

    def claim_name(self, name: str, path: str) -> bool:
        # Host and VM names become the cloud's route, ip configuration and NIC names and DNS records:
        # names that differ only by case would be one of each (one host or VM silently lost).
        return claim(self.names, name, path, self.p, "route, NIC, ip configuration or DNS record name", self.rules)

    def claim_ip(self, ip: IPv4Address, path: str) -> None:
        if ip in self.ips:
            self.p.append(Problem(path, f"{ip} is already used by {self.ips[ip]}"))
        else:
            self.ips[ip] = path
        if ip in self.reserved:
            self.p.append(Problem(
                path, f"{ip} is reserved by {self.rules.title} in subnet {self.reserved[ip]!r} ({self.rules.reserved_why})"
            ))

    def resolve_subnet(self, ip: IPv4Address, given: str | None, path: str) -> str | None:
        if given is not None:
            sub = self.subnets.get(given)
            if sub is None:
                if not any(sp.name == given for sp in self.spec.subnets):  # else reported already
                    self.p.append(Problem(f"{path}.subnet", f"{given!r} is not a subnet of this spec"))
                return None
            if ip not in sub.prefix:
                self.p.append(Problem(f"{path}.ip", f"{ip} is not inside its subnet {given!r} ({sub.prefix})"))
                return None
            return given
        found = [s.name for s in self.subnets.values() if ip in s.prefix]
        if not found:
            self.p.append(Problem(f"{path}.ip", f"{ip} is in no subnet of this spec; add its subnet or fix the address"))
            return None
        return found[0]


def check(spec: Spec) -> tuple[ResolvedSpec | None, list[Problem]]:
    ctx = _Ctx(spec, rules_of(spec))
    for section in (_check_names, _check_space, _check_subnets, _check_pool, _check_hosts,
                    _check_endpoints, _check_vms, _check_limits, _spec_warnings):
        section(ctx)
    if ctx.p or ctx.pool is None:
        return None, ctx.p
    fabric = ResolvedSpec(spec, tuple(ctx.space), ctx.pool, ctx.subnets, ctx.hosts, ctx.vms, ctx.endpoints, ctx.warn)
    return fabric, ctx.p


def claim(seen: dict[str, tuple[str, str]], name: str, path: str, p: list[Problem], what: str,
          rules: "clouds.SpecRules") -> bool:
    """Claim ``name`` for ``path`` in a namespace where case does not count (the cloud's
    ``name_key``, shared with its diff); a clash is one problem naming both entries."""
    k = rules.name_key(name)
    if k not in seen:
        seen[k] = (name, path)
        return True
    first, where = seen[k]
    if first == name:
        p.append(Problem(path, f"{name!r} is already used by {where}", other=where))
    else:
        t = rules.title
        p.append(Problem(path, f"{name!r} and {first!r} ({where}) differ only by case: {t} and DNS names ignore "
                               f"case, so both would be one {what} in {t}; rename one", other=where))
    return False


def _check_names(ctx: _Ctx) -> None:
    """The fabric's name and the cloud section's names."""
    spec, p = ctx.spec, ctx.p
    _name_check(
        spec.name, FABRIC_NAME_RE, "name",
        "fabric name: use a-z, 0-9 and '-', at most 24 characters, no leading/trailing '-'", p,
    )
    ctx.rules.check_section(spec, p)


def _check_space(ctx: _Ctx) -> None:
    for path, text in ctx.rules.address_space(ctx.spec):
        net = parse_network(text, path, ctx.p)
        if net is None:
            continue
        bad = next((r for r in ctx.rules.forbidden_space if _overlaps(net, r)), None)
        if bad is not None:
            ctx.p.append(Problem(path, f"{net} overlaps {bad}, {ctx.rules.forbidden_why}"))
            continue
        for other in ctx.space:
            if _overlaps(net, other):
                ctx.p.append(Problem(path, f"{net} overlaps {other}"))
        ctx.space.append(net)


def _in_space(ctx: _Ctx, net: IPv4Network) -> bool:
    return any(net.subnet_of(s) for s in ctx.space)


def _check_subnets(ctx: _Ctx) -> None:
    p, subnets, rules = ctx.p, ctx.subnets, ctx.rules
    seen: dict[str, tuple[str, str]] = {}
    for i, s in enumerate(ctx.spec.subnets):
        path = f"subnets[{i}]"
        _name_check(s.name, rules.name_re, f"{path}.name", f"{rules.title} subnet name", p)
        if not claim(seen, s.name, f"{path}.name", p, "subnet", rules):
            continue
        net = parse_network(s.prefix, f"{path}.prefix", p)
        if net is None:
            continue
        if net.prefixlen > rules.smallest_subnet:
            p.append(Problem(f"{path}.prefix", f"{net}: {rules.title}'s smallest IPv4 subnet is /{rules.smallest_subnet}"))
        if ctx.space and not _in_space(ctx, net):
            p.append(Problem(
                f"{path}.prefix", f"{net} is outside the VNet address space ({', '.join(map(str, ctx.space))})"
            ))
        for other in subnets.values():
            if _overlaps(net, other.prefix):
                p.append(Problem(f"{path}.prefix", f"{net} overlaps subnet {other.name!r} ({other.prefix})"))
        subnets[s.name] = SubnetInfo(s.name, net, s.route_table)
    for s in subnets.values():
        if s.prefix.prefixlen > rules.smallest_subnet:
            continue  # refused above; its "first four" may not even be addresses (255.255.255.253/32)
        for a in rules.reserved(s.prefix):
            ctx.reserved[a] = s.name


def _check_pool(ctx: _Ctx) -> None:
    nested = ctx.spec.nested
    pool = ctx.pool = parse_network(nested.pool, "nested.pool", ctx.p)
    if pool is None:
        return
    if nested.block_prefix_len < pool.prefixlen:
        ctx.p.append(Problem(
            "nested.block_prefix_len", f"{nested.block_prefix_len}: blocks cannot be larger than the pool {pool}"
        ))
    ctx.rules.check_blocks(ctx.spec, ctx.p)
    bad = next((r for r in ctx.rules.forbidden_space if _overlaps(pool, r)), None)
    if bad is not None:
        ctx.p.append(Problem("nested.pool", f"{pool} overlaps {bad}, which cannot carry nested VM addresses"))
    elif nested.mode != "nat" and ctx.space and not _in_space(ctx, pool):
        # NATed guests hide behind their host; routed and secondary-ip ones are VNet addresses
        ctx.p.append(Problem("nested.pool", f"{pool} is outside the VNet address space "
                                            f"({', '.join(map(str, ctx.space))}); nested addresses in "
                                            f"{nested.mode} mode must be VNet addresses"))


def _check_hosts(ctx: _Ctx) -> None:
    nics: dict[str, tuple[str, str]] = {}
    for i, h in enumerate(ctx.spec.hosts):
        _check_host(ctx, i, h, nics)


def _check_host(ctx: _Ctx, i: int, h: HostSpec, nics: dict[str, tuple[str, str]]) -> None:
    p, path = ctx.p, f"hosts[{i}]"
    _name_check(h.name, NODE_NAME_RE, f"{path}.name", "host name (a hostname label: letters, digits, '-')", p)
    ok = ctx.claim_name(h.name, f"{path}.name")
    nic = h.nic or f"{h.name}-nic"
    t = ctx.rules.title
    _name_check(nic, ctx.rules.name_re, f"{path}.nic", f"{t} NIC name", p)
    if h.public_ip is not None:
        _name_check(h.public_ip, ctx.rules.name_re, f"{path}.public_ip", f"{t} public IP name", p)
    # A NIC named after its host (<host>-nic) is claimed at the host's name, where it comes from.
    nic_path = f"{path}.nic" if h.nic else f"{path}.name"
    k = ctx.rules.name_key(nic)
    if k in nics:
        first, where = nics[k]
        same = "is already the NIC of" if first == nic else f"and {first!r} differ only by case ({t} NIC names ignore case); {first!r} is the NIC of"
        p.append(Problem(nic_path, f"NIC {nic!r} {same} {where}", other=where))
    else:
        nics[k] = (nic, nic_path)
    for key in ("uplink", "bridge"):
        _check_ifname(getattr(h, key), f"{path}.{key}", p)
    if h.uplink == h.bridge:
        p.append(Problem(f"{path}.bridge", f"{h.bridge!r} is also the uplink; give the nested bridge its own name"))
    ip = parse_address(h.ip, f"{path}.ip", p)
    if ip is None:
        return
    ctx.claim_ip(ip, f"{path}.ip")
    sub = ctx.resolve_subnet(ip, h.subnet, path)
    block = parse_network(h.block, f"{path}.block", p) if h.block is not None else None
    if block is not None and ctx.pool is not None and not block.subnet_of(ctx.pool):
        p.append(Problem(f"{path}.block", f"{block} is outside the pool {ctx.pool}; move the block or widen nested.pool"))
    if sub is not None and ok:
        ctx.hosts[h.name] = HostInfo(i, h.name, ip, sub, nic, block)


def _check_ifname(value: str, path: str, p: list[Problem]) -> None:
    if not IFNAME_RE.match(value) or value in (".", ".."):
        p.append(Problem(path, f"{value!r} is not a valid Linux interface name (<= 15 characters, no '/' or spaces)"))
    elif value in RESERVED_IFNAMES:
        p.append(Problem(path, f"{value!r} is a name Linux reserves ({', '.join(sorted(RESERVED_IFNAMES))}); "
                               "pick another interface name"))


def _check_endpoints(ctx: _Ctx) -> None:
    p = ctx.p
    for i, e in enumerate(ctx.spec.endpoints):
        path = f"endpoints[{i}]"
        _name_check(e.name, NODE_NAME_RE, f"{path}.name", "endpoint name (letters, digits, '-')", p)
        ok = ctx.claim_name(e.name, f"{path}.name")
        ip = parse_address(e.ip, f"{path}.ip", p)
        if ip is None:
            continue
        ctx.claim_ip(ip, f"{path}.ip")
        sub = ctx.resolve_subnet(ip, e.subnet, path)
        if sub is not None and ok:
            ctx.endpoints[e.name] = EndpointInfo(i, e.name, ip, sub)


def _check_vms(ctx: _Ctx) -> None:
    p = ctx.p
    host_names = {h.name for h in ctx.spec.hosts}
    for i, v in enumerate(ctx.spec.vms):
        path = f"vms[{i}]"
        _name_check(v.name, NODE_NAME_RE, f"{path}.name", "VM name (letters, digits, '-')", p)
        ok = ctx.claim_name(v.name, f"{path}.name")
        if v.host not in ctx.hosts:
            if v.host not in host_names:
                p.append(Problem(f"{path}.host", f"{v.host!r} is not a host of this spec"))
            ok = False
        if v.mac is not None:
            if not MAC_RE.match(v.mac):
                p.append(Problem(f"{path}.mac", f"{v.mac!r} is not a MAC address (aa:bb:cc:dd:ee:ff)"))
            elif int(v.mac[:2], 16) & 1:
                p.append(Problem(f"{path}.mac", f"{v.mac!r} is a multicast MAC; use a unicast one"))
        ip = None
        if v.ip is not None:
            ip = parse_address(v.ip, f"{path}.ip", p)
            if ip is None:
                ok = False
            else:
                ctx.claim_ip(ip, f"{path}.ip")
        if ok:
            ctx.vms[v.name] = VMInfo(i, v.name, v.host, ip)


def _check_limits(ctx: _Ctx) -> None:
    ctx.rules.check_limits(ctx.spec, ctx.p)


def _spec_warnings(ctx: _Ctx) -> None:
    for i, h in enumerate(ctx.spec.hosts):
        if h.bridge_has_uplink:
            ctx.warn.append(Problem(
                f"hosts[{i}].bridge_has_uplink",
                f"{h.bridge!r} holds the uplink {h.uplink!r}: nested VMs must not reach {ctx.rules.title} at layer 2; "
                f"nestnet adds L2 guards ({ctx.rules.title} drops frames with a foreign source MAC)",
                severity="warning",
            ))
    if ctx.spec.nested.guest_style == "subnet":
        ctx.warn.append(Problem(
            "nested.guest_style",
            "'subnet': guests think the whole subnet is on-link, so each host answers ARP for it "
            "(proxy_arp on the nested bridge; nestnet sets it). 'onlink' needs no proxy ARP",
            severity="warning",
        ))


# --------------------------------------------------------------------------------------------
# Checks that need the allocation


def check_allocation(fabric: ResolvedSpec, alloc: Any) -> list[Problem]:
    """Every warning about the spec (those of ``check`` and those that need the allocation);
    raises SpecError for two VMs with one MAC. ``alloc``: an ``ipam.Allocation``."""
    warnings = list(fabric.warnings)
    _check_macs(fabric, alloc.vm_ips)
    mode = fabric.spec.nested.mode
    nic_subnets = {h.subnet for h in fabric.hosts.values()} | {e.subnet for e in fabric.endpoints.values()}
    if mode != "nat":
        warnings += _low_block_warnings(fabric, alloc.blocks, nic_subnets)
    warnings += _move_problems(fabric, alloc)
    if mode == "routed":
        for i, s in enumerate(fabric.spec.subnets):
            if not s.route_table and s.name in nic_subnets:
                warnings.append(Problem(
                    f"subnets[{i}].route_table",
                    f"subnet {s.name!r} has machines but not the route table: {rules_of(fabric.spec).title} routes its traffic "
                    "to nested blocks by system routes only, so they cannot reach nested VMs",
                    severity="warning",
                ))
    return warnings


def _move_problems(fabric: ResolvedSpec, alloc: Any) -> list[Problem]:
    """VMs living outside their host's block (docs/decisions/0013): a warning each; refused
    (SpecError) outside routed mode or when their /32 routes exceed the cloud's route limit."""
    from .mobility import moves

    moved = moves(((v.name, alloc.vm_ips[v.name], v.host) for v in fabric.vms.values()), alloc.blocks)
    if not moved:
        return []
    spec, first = fabric.spec, fabric.vms[moved[0].vm]
    where = f"vms[{first.index}].host"
    if spec.nested.mode != "routed":
        raise SpecError([Problem(where, f"{first.name!r} ({moved[0].ip}) lives outside the block of host "
                                        f"{first.host!r}: only routed mode can carry it (a /32 route), not "
                                        f"{spec.nested.mode!r}; use vm move --renumber", name=first.name)])
    need = len(fabric.hosts) + len(moved)
    limit, key = rules_of(spec).route_limit(spec)
    if need > limit:
        raise SpecError([Problem(where, f"{len(fabric.hosts)} host blocks + {len(moved)} VMs outside their block "
                                        f"need {need} routes, more than {key}={limit}; "
                                        "renumber moved VMs into their host's block (vm move --renumber)",
                                 name=first.name)])
    return [
        Problem(f"vms[{fabric.vms[m.vm].index}].ip",
                f"{m.ip} lives on host {m.host!r}, outside its block {alloc.blocks[m.host]}: carried by a /32 "
                f"exception (an {rules_of(spec).title} route and a route on every host); `nestnet vm move --renumber` gives it "
                "an address in the block", severity="warning", name=m.vm)
        for m in moved
    ]


def _low_block_warnings(fabric: ResolvedSpec, blocks: dict[str, IPv4Network], nic_subnets: set[str]) -> list[Problem]:
    out: list[Problem] = []
    why = rules_of(fabric.spec).low_block_why(fabric.spec.nested.mode)  # the cloud's way of handing out addresses
    if why is None:
        return out
    subnets = [s for s in fabric.subnets.values() if s.name in nic_subnets]
    for hi in fabric.hosts.values():
        block = blocks[hi.name]
        for s in subnets:
            mid = int(s.prefix.network_address) + s.prefix.num_addresses // 2
            if block.subnet_of(s.prefix) and int(block.network_address) < mid:
                out.append(Problem(
                    f"hosts[{hi.index}].block",
                    f"{block} sits in the lower half of NIC subnet {s.name!r} ({s.prefix}); {why}",
                    severity="warning",
                ))
    return out


def _check_macs(fabric: ResolvedSpec, vm_ips: dict[str, IPv4Address]) -> None:
    macs = {s.name: s.mac for s in fabric.spec.vms if s.mac}
    seen: dict[str, str] = {}
    for name in fabric.vms:
        mac = macs.get(name) or vm_mac(vm_ips[name])
        if mac in seen:
            idx = fabric.vms[name].index
            raise SpecError(
                [Problem(f"vms[{idx}].mac", f"{mac} is also the MAC of VM {seen[mac]!r}; give one a unique mac")]
            )
        seen[mac] = name
