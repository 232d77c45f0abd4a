"""What a spec means: addresses parsed, references resolved, every problem found at once.

``check(spec)`` returns a ``Fabric`` (the spec with parsed addresses and resolved subnets) plus the
problems. Allocation of blocks and VM addresses is ``ipam.py``'s; checks that need the allocation
(a VM inside its host's block, ...) run there and in ``plan.py``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from .errors import Problem
from .spec import (
    AZURE_NAME_RE,
    FABRIC_NAME_RE,
    IFNAME_RE,
    MAC_RE,
    NODE_NAME_RE,
    Spec,
)

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def reserved_addresses(prefix: IPv4Network) -> tuple[IPv4Address, ...]:
    """Azure keeps the first four addresses and the last one of every subnet."""
    base = int(prefix.network_address)
    return tuple(IPv4Address(base + i) for i in range(4)) + (prefix.broadcast_address,)


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
class Fabric:
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
        out: set[IPv4Address] = set()
        for s in self.subnets.values():
            out.update(reserved_addresses(s.prefix))
        return out


def _name_check(value: str, regex: re.Pattern[str], path: str, what: str, problems: list[Problem]) -> None:
    if not regex.match(value):
        problems.append(Problem(path, f"{value!r} is not a valid {what}"))


def _overlaps(a: IPv4Network, b: IPv4Network) -> bool:
    return a.network_address <= b.broadcast_address and b.network_address <= a.broadcast_address


def check(spec: Spec) -> tuple[Fabric | None, list[Problem]]:
    p: list[Problem] = []
    warn: list[Problem] = []

    _name_check(
        spec.name, FABRIC_NAME_RE, "name",
        "fabric name: use a-z, 0-9 and '-', at most 24 characters, no leading/trailing '-'", p,
    )
    az = spec.azure
    for key in ("resource_group", "vnet", "route_table"):
        v = getattr(az, key)
        if v is not None:
            _name_check(v, AZURE_NAME_RE, f"azure.{key}", "Azure name (letters, digits, '_', '.', '-')", p)
    if az.subscription_id is not None and not GUID_RE.match(az.subscription_id):
        p.append(Problem("azure.subscription_id", f"{az.subscription_id!r} is not a subscription GUID"))
    mode = spec.nested.mode
    if mode == "routed" and not az.route_table:
        p.append(Problem("azure.route_table", "required key 'route_table' is missing (needed in routed mode)"))
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$", az.route_prefix):
        p.append(Problem("azure.route_prefix", f"{az.route_prefix!r} is not a valid route name prefix"))

    space: list[IPv4Network] = []
    for i, text in enumerate(az.address_space):
        net = parse_network(text, f"azure.address_space[{i}]", p)
        if net is None:
            continue
        for other in space:
            if _overlaps(net, other):
                p.append(Problem(f"azure.address_space[{i}]", f"{net} overlaps {other}"))
        space.append(net)

    def in_space(net: IPv4Network) -> bool:
        return any(net.subnet_of(s) for s in space)

    subnets: dict[str, SubnetInfo] = {}
    for i, s in enumerate(spec.subnets):
        path = f"subnets[{i}]"
        _name_check(s.name, AZURE_NAME_RE, f"{path}.name", "Azure subnet name", p)
        if s.name in subnets:
            p.append(Problem(f"{path}.name", f"{s.name!r} is a duplicate subnet name"))
            continue
        net = parse_network(s.prefix, f"{path}.prefix", p)
        if net is None:
            continue
        if net.prefixlen > 29:
            p.append(Problem(f"{path}.prefix", f"{net}: Azure's smallest IPv4 subnet is /29"))
        if space and not in_space(net):
            p.append(
                Problem(f"{path}.prefix", f"{net} is outside the VNet address space ({', '.join(map(str, space))})")
            )
        for other in subnets.values():
            if _overlaps(net, other.prefix):
                p.append(Problem(f"{path}.prefix", f"{net} overlaps subnet {other.name!r} ({other.prefix})"))
        subnets[s.name] = SubnetInfo(s.name, net, s.route_table)

    pool = parse_network(spec.nested.pool, "nested.pool", p)
    if pool is not None and spec.nested.block_prefix_len < pool.prefixlen:
        p.append(
            Problem(
                "nested.block_prefix_len",
                f"{spec.nested.block_prefix_len}: blocks cannot be larger than the pool {pool}",
            )
        )

    reserved: dict[IPv4Address, str] = {}
    for s in subnets.values():
        for a in reserved_addresses(s.prefix):
            reserved[a] = s.name

    def resolve_subnet(ip: IPv4Address, given: str | None, path: str) -> str | None:
        if given is not None:
            sub = subnets.get(given)
            if sub is None:
                if any(sp.name == given for sp in spec.subnets):
                    return None  # already reported
                p.append(Problem(f"{path}.subnet", f"{given!r} is not a subnet of this spec"))
                return None
            if ip not in sub.prefix:
                p.append(Problem(f"{path}.ip", f"{ip} is not inside its subnet {given!r} ({sub.prefix})"))
                return None
            return given
        found = [s.name for s in subnets.values() if ip in s.prefix]
        if not found:
            p.append(Problem(f"{path}.ip", f"{ip} is in no subnet of this spec; add its subnet or fix the address"))
            return None
        return found[0]

    names: dict[str, str] = {}  # node name -> path, shared by hosts, VMs and endpoints
    ips: dict[IPv4Address, str] = {}

    def claim_name(name: str, path: str) -> bool:
        if name in names:
            p.append(Problem(path, f"{name!r} is already used by {names[name]}"))
            return False
        names[name] = path
        return True

    def claim_ip(ip: IPv4Address, path: str) -> None:
        if ip in ips:
            p.append(Problem(path, f"{ip} is already used by {ips[ip]}"))
        else:
            ips[ip] = path
        if ip in reserved:
            p.append(
                Problem(
                    path,
                    f"{ip} is reserved by Azure in subnet {reserved[ip]!r} (first four and last address)",
                )
            )

    hosts: dict[str, HostInfo] = {}
    nics: dict[str, str] = {}
    for i, h in enumerate(spec.hosts):
        path = f"hosts[{i}]"
        _name_check(h.name, NODE_NAME_RE, f"{path}.name", "host name (a hostname label: letters, digits, '-')", p)
        ok = claim_name(h.name, f"{path}.name")
        nic = h.nic or f"{h.name}-nic"
        _name_check(nic, AZURE_NAME_RE, f"{path}.nic", "Azure NIC name", p)
        if nic in nics:
            p.append(Problem(f"{path}.nic", f"{nic!r} is already the NIC of {nics[nic]}"))
        nics[nic] = f"hosts[{i}]"
        for key in ("uplink", "bridge"):
            v = getattr(h, key)
            if not IFNAME_RE.match(v):
                p.append(Problem(f"{path}.{key}", f"{v!r} is not a valid Linux interface name (<= 15 characters, no '/' or spaces)"))
        if h.uplink == h.bridge:
            p.append(Problem(f"{path}.bridge", f"{h.bridge!r} is also the uplink; give the nested bridge its own name"))
        ip = parse_address(h.ip, f"{path}.ip", p)
        if ip is None:
            continue
        claim_ip(ip, f"{path}.ip")
        sub = resolve_subnet(ip, h.subnet, path)
        block = parse_network(h.block, f"{path}.block", p) if h.block is not None else None
        if block is not None and pool is not None and not block.subnet_of(pool):
            p.append(Problem(f"{path}.block", f"{block} is outside the pool {pool}; move the block or widen nested.pool"))
        if sub is not None and ok:
            hosts[h.name] = HostInfo(i, h.name, ip, sub, nic, block)
        if h.bridge_has_uplink:
            warn.append(
                Problem(
                    f"{path}.bridge_has_uplink",
                    f"{h.bridge!r} holds the uplink {h.uplink!r}: nested VMs must not reach Azure at layer 2; "
                    "nestnet adds L2 guards (Azure drops frames with a foreign source MAC)",
                    severity="warning",
                )
            )

    endpoints: dict[str, EndpointInfo] = {}
    for i, e in enumerate(spec.endpoints):
        path = f"endpoints[{i}]"
        _name_check(e.name, NODE_NAME_RE, f"{path}.name", "endpoint name (letters, digits, '-')", p)
        ok = claim_name(e.name, f"{path}.name")
        ip = parse_address(e.ip, f"{path}.ip", p)
        if ip is None:
            continue
        claim_ip(ip, f"{path}.ip")
        sub = resolve_subnet(ip, e.subnet, path)
        if sub is not None and ok:
            endpoints[e.name] = EndpointInfo(i, e.name, ip, sub)

    vms: dict[str, VMInfo] = {}
    for i, v in enumerate(spec.vms):
        path = f"vms[{i}]"
        _name_check(v.name, NODE_NAME_RE, f"{path}.name", "VM name (letters, digits, '-')", p)
        ok = claim_name(v.name, f"{path}.name")
        if v.host not in hosts:
            if not any(h.name == v.host for h in spec.hosts):
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
                claim_ip(ip, f"{path}.ip")
        if ok:
            vms[v.name] = VMInfo(i, v.name, v.host, ip)

    if mode == "routed" and len(spec.hosts) > az.max_routes:
        p.append(
            Problem(
                "hosts",
                f"{len(spec.hosts)} hosts need {len(spec.hosts)} routes, more than azure.max_routes={az.max_routes} "
                "(Azure's limit per route table); raise max_routes if your region allows 1,000, or split the fabric",
            )
        )
    if mode == "secondary-ip":
        per_host: dict[str, int] = {}
        for v in spec.vms:
            per_host[v.host] = per_host.get(v.host, 0) + 1
        for h, n in per_host.items():
            if n + 1 > az.max_ip_configs:
                p.append(
                    Problem(
                        "vms",
                        f"host {h!r} has {n} VMs: with its primary that is {n + 1} IP configurations, over "
                        f"azure.max_ip_configs={az.max_ip_configs} (Azure's limit per NIC); use routed mode",
                    )
                )

    if spec.nested.guest_style == "subnet":
        warn.append(
            Problem(
                "nested.guest_style",
                "'subnet': guests think the whole subnet is on-link, so each host answers ARP for it "
                "(proxy_arp on the nested bridge; nestnet sets it). 'onlink' needs no proxy ARP",
                severity="warning",
            )
        )

    if p or pool is None:
        return None, p
    fabric = Fabric(spec, tuple(space), pool, subnets, hosts, vms, endpoints, warn)
    return fabric, p
