"""The Plan: desired state of the whole fabric, pure data, the one source every consumer uses.

``build_plan(fabric, allocation)`` is a pure function; ``store.load_plan(path)`` is the usual
entry point (read spec, check it, read/write the lock, build; re-exported here). Nothing downstream re-reads the YAML or
derives an address on its own: renderers, the host and cloud reconcilers, ``check``, the lab and
the doctor all take a ``Plan``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, collapse_addresses
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Literal, Mapping, NamedTuple

from . import clouds, sysctl as sysctls
from .clouds import CloudPlan
from .errors import Problem, SpecError
from .ipam import Allocation
from .mobility import SHARED_GATEWAY, Move, local_prefixes, moves
from .spec import HostSpec, SpecSource
from .validate import ResolvedSpec, HostInfo, rules_of, vm_mac

if TYPE_CHECKING:
    from .store import Loaded

Mode = Literal["routed", "nat", "secondary-ip", "nic-prefix", "prefix"]
GuestStyle = Literal["onlink", "subnet", "shared"]

# The kernel route protocol number nestnet's routes carry (see docs/decisions/0001).
ROUTE_PROTO = 201
ROUTE_PROTO_NAME = "nestnet"

class Route(NamedTuple):
    """A kernel route on a host: ``dst`` [via ``via``] dev ``dev``."""

    dst: IPv4Network
    dev: str
    via: IPv4Address | None = None


@dataclass(frozen=True, slots=True)
class Subnet:
    name: str
    prefix: IPv4Network
    gateway: IPv4Address  # the cloud's gateway: first address + 1
    route_table: bool  # associated with nestnet's route table (routed mode)
    reserved: tuple[IPv4Address, ...] = ()  # addresses the cloud never delivers here


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    ip: IPv4Address
    subnet: str
    prefix_len: int  # of its subnet: the uplink address is ip/prefix_len
    gateway: IPv4Address  # its subnet's gateway (the cloud's)
    nic: str
    uplink: str
    bridge: str
    bridge_type: Literal["linux", "ovs"]
    bridge_has_uplink: bool
    block: IPv4Network
    firewall: Literal["nftables", "ufw"]
    ssh_port: int
    _routes: "HostRoutes" = field(repr=False, compare=False)
    sysctl: Mapping[str, str]
    bridge_address: IPv4Address | None  # host IP on the nested bridge (/32): DHCP answers there
    masquerade: Literal["none", "outside-vnet", "all"]
    vms: tuple[str, ...]  # names of its nested VMs
    migration_hook: bool = False  # install the libvirt qemu hook (docs/decisions/0013)
    # the cloud's public IP of its NIC's primary ip configuration, when its VMs expose ports: the
    # spec's name (the user's) or None with ``exposes`` (nestnet's own, docs/decisions/0024)
    public_ip: str | None = None
    away: tuple[IPv4Address, ...] = ()  # addresses of its block whose VMs live on another host
    here: tuple[IPv4Address, ...] = ()  # addresses from other blocks whose VMs live here

    @property
    def local_prefixes(self) -> tuple[IPv4Network, ...]:
        """What lives here: the block without what moved away, plus what moved in."""
        if not self.away and not self.here:
            return (self.block,)
        return local_prefixes(self.block, self.away, self.here)
    # DHCP on the nested bridge (host/dhcp.py): address runs leased to unknown MACs, if any
    dhcp_ranges: tuple[tuple[IPv4Address, IPv4Address], ...] = ()

    @property
    def l3_dev(self) -> str:
        """The device that carries the host's VNet address (the bridge when it holds the uplink)."""
        return self.bridge if self.bridge_has_uplink else self.uplink

    @property
    def routes(self) -> tuple[Route, ...]:
        """Every kernel route nestnet owns on this host (other hosts' blocks, then its own)."""
        return self._routes.of(self.name)

    @property
    def routes_to_peers(self) -> bool:
        """Whether ``routes`` holds one route per other host's block (routed mode), out of
        ``l3_dev``: via that host's IP when both share a subnet, via the subnet's gateway
        otherwise; its own block's route (out of the bridge) comes last either way. The model
        reads this rule instead of a million routes (``nestnet.model.state.PlannedRoutes``)."""
        return self._routes.routed

    @property
    def exception_routes(self) -> bool:
        """Whether ``routes`` also holds /32s for VMs outside their block (after its own block)."""
        return bool(self._routes.moves)

    def _head(self) -> dict[str, Any]:
        return {
            "ip": str(self.ip),
            "subnet": self.subnet,
            "prefix_len": self.prefix_len,
            "gateway": str(self.gateway),
            "nic": self.nic,
            "uplink": self.uplink,
            "bridge": self.bridge,
            "bridge_type": self.bridge_type,
            "bridge_has_uplink": self.bridge_has_uplink,
            "block": str(self.block),
            "firewall": self.firewall,
            "ssh_port": self.ssh_port,
        }

    def _tail(self) -> dict[str, Any]:
        return {
            "sysctl": dict(self.sysctl),
            "bridge_address": str(self.bridge_address) if self.bridge_address else None,
            "masquerade": self.masquerade,
            "vms": list(self.vms),
            "migration_hook": self.migration_hook,
            "dhcp_ranges": [[str(a), str(z)] for a, z in self.dhcp_ranges],
            **({"public_ip": self.public_ip} if self.public_ip else {}),
        }

    def to_dict(self, text: Any = str) -> dict[str, Any]:
        routes = [
            {"dst": text(r.dst), "via": text(r.via), "dev": r.dev} if r.via is not None
            else {"dst": text(r.dst), "dev": r.dev}
            for r in self.routes
        ]
        return {**self._head(), "routes": routes, **self._tail()}

    def json_chunks(self, routes: Iterable[str]) -> Iterator[str]:
        """The text of ``json.dumps(self.to_dict())`` in pieces, given the routes' JSON pieces."""
        yield json.dumps(self._head())[:-1] + ', "routes": '
        yield from routes
        yield ", " + json.dumps(self._tail())[1:]


class Forward(NamedTuple):
    """An inbound port forward (nat mode): ``host_port`` on the host's address -> ``port`` on the VM."""

    port: int
    host_port: int
    proto: str = "tcp"

    def to_dict(self) -> dict[str, Any]:
        return {"port": self.port, "host_port": self.host_port, "proto": self.proto}


class Expose(NamedTuple):
    """A port reachable from the internet (any mode): ``public_port`` on the host's public IP ->
    ``port`` on the VM. The cloud's public IP is 1:1 NAT to the NIC's primary private address, so the
    host DNATs that address's ``public_port`` (docs/decisions/0027)."""

    port: int
    public_port: int
    proto: str = "tcp"

    def to_dict(self) -> dict[str, Any]:
        return {"port": self.port, "public_port": self.public_port, "proto": self.proto}


@dataclass(frozen=True, slots=True)
class VM:
    name: str
    host: str
    ip: IPv4Address
    prefix_len: int  # 32 for onlink, the subnet's for subnet style
    gateway: IPv4Address  # its host's IP
    guest_style: GuestStyle
    mac: str
    nameservers: tuple[IPv4Address, ...] = ()  # its host's forwarder
    search: tuple[str, ...] = ()
    forwards: tuple[Forward, ...] = ()
    exposes: tuple[Expose, ...] = ()

    def to_dict(self, text: Any = str) -> dict[str, Any]:
        out = self._to_dict(text)
        if self.exposes:
            out["expose"] = [e.to_dict() for e in self.exposes]
        return out

    def json_text(self, text: Any = str, parts: dict | None = None) -> str:
        """``json.dumps(self.to_dict(text))``, written directly for a VM without forwards or
        exposes (every VM of a large fabric, as a rule: 61,440 dicts and their encoding were a
        third of ``plan --json`` at 4,096 x 15). ``parts``: a memo of the text around the address
        and the MAC, which a host's VMs share."""
        if self.forwards or self.exposes:
            return json.dumps(self.to_dict(text))
        key = (self.host, self.prefix_len, self.gateway, self.guest_style, self.nameservers, self.search)
        got = parts.get(key) if parts is not None else None
        if got is None:
            ns = ", ".join(_q(text(a)) for a in self.nameservers)
            search = ", ".join(_q(s) for s in self.search)
            got = (f'{{"host": {_q(self.host)}, "ip": ',
                   f', "prefix_len": {int(self.prefix_len)!r}, "gateway": {_q(text(self.gateway))}, '
                   f'"guest_style": {_q(self.guest_style)}, "mac": ',
                   f', "nameservers": [{ns}], "search": [{search}], "forwards": []}}')
            if parts is not None:
                parts[key] = got
        return f"{got[0]}{_q(str(self.ip))}{got[1]}{_q(self.mac)}{got[2]}"

    def _to_dict(self, text: Any = str) -> dict[str, Any]:
        return {
            "host": self.host,
            "ip": str(self.ip),
            "prefix_len": self.prefix_len,
            "gateway": text(self.gateway),
            "guest_style": self.guest_style,
            "mac": self.mac,
            "nameservers": [text(a) for a in self.nameservers],
            "search": list(self.search),
            "forwards": [f.to_dict() for f in self.forwards],
        }


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    ip: IPv4Address
    subnet: str
    prefix_len: int
    gateway: IPv4Address

    def to_dict(self) -> dict[str, Any]:
        return {
            "ip": str(self.ip),
            "subnet": self.subnet,
            "prefix_len": self.prefix_len,
            "gateway": str(self.gateway),
        }


# The string encoder json.dumps uses (ensure_ascii): the same text for every str.
_q = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _memo_text() -> Callable[[Any], str]:
    """``str`` memoised by identity. A fabric of N hosts has N*N routes over only N distinct
    blocks and IPs (the Route tuples share those objects), and a host's VMs share its gateway:
    str() of an ipaddress object is the cost that dominates the JSON otherwise."""
    memo: dict[int, str] = {}

    def text(obj: Any) -> str:
        t = memo.get(id(obj))
        if t is None:
            t = memo[id(obj)] = str(obj)
        return t

    return text


@dataclass(frozen=True, slots=True)
class Plan:
    version: int
    name: str
    mode: Mode
    guest_style: GuestStyle
    egress: Literal["masquerade-outside-vnet", "none"]
    pool: IPv4Network
    block_prefix_len: int
    address_space: tuple[IPv4Network, ...]
    subnets: Mapping[str, Subnet]
    hosts: Mapping[str, Host]
    vms: Mapping[str, VM]
    endpoints: Mapping[str, Endpoint]
    cloud: CloudPlan  # the cloud's own part (resource names, what its API must hold): nestnet.clouds
    warnings: tuple[Problem, ...]
    source: str = ""  # the spec file this plan came from (for messages)
    moves: tuple[Move, ...] = ()  # VMs living outside their block (/32 exceptions)
    dns_search: tuple[str, ...] = ()  # search domains handed to nested VMs

    def __getattr__(self, name: str) -> CloudPlan:
        # ``plan.<cloud>`` (e.g. in the cloud's package) is the cloud's part, when it is that cloud's.
        try:
            cloud = object.__getattribute__(self, "cloud")
        except AttributeError:  # not initialised yet (unpickling, copy)
            raise AttributeError(name) from None
        if name == cloud.cloud_name:
            return cloud
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def node_names(self) -> tuple[str, ...]:
        return (*self.hosts, *self.vms, *self.endpoints)

    @property
    def blocks(self) -> tuple[IPv4Network, ...]:
        return tuple(h.block for h in self.hosts.values())

    @property
    def routed_prefixes(self) -> tuple[IPv4Network, ...]:
        """Where nested traffic goes without NAT: the VNet, the nested pool and every block
        (the host firewall forwards to these; masquerade applies beyond them)."""
        base = list(collapse_addresses([*self.address_space, self.pool]))
        spans = [(int(n.network_address), int(n.broadcast_address)) for n in base]
        # Blocks normally lie in the pool; plain ints keep this cheap on 1,000-host plans.
        extra = [
            b for b in self.blocks
            if not any(a <= int(b.network_address) and int(b.broadcast_address) <= z for a, z in spans)
        ]
        return tuple(collapse_addresses([*base, *extra])) if extra else tuple(base)

    def _hosts_dict(self) -> dict[str, Any]:
        text = _memo_text()
        return {h.name: h.to_dict(text) for h in self.hosts.values()}

    def _head(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "name": self.name,
            "mode": self.mode,
            "guest_style": self.guest_style,
            "egress": self.egress,
            "pool": str(self.pool),
            "block_prefix_len": self.block_prefix_len,
            "address_space": [str(n) for n in self.address_space],
            "subnets": {
                s.name: {"prefix": str(s.prefix), "gateway": str(s.gateway), "route_table": s.route_table}
                for s in self.subnets.values()
            },
            self.cloud.cloud_name: self.cloud.to_dict(),
        }

    def _tail(self, vms: bool = True) -> dict[str, Any]:
        text = _memo_text()  # a host's VMs share its gateway and nameserver objects
        return {
            **({"vms": {v.name: v.to_dict(text) for v in self.vms.values()}} if vms else {}),
            "endpoints": {e.name: e.to_dict() for e in self.endpoints.values()},
            "exceptions": [m.to_dict() for m in self.moves],
            "warnings": [w.to_dict() for w in self.warnings],
            "dns_search": list(self.dns_search),
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self._head(), "hosts": self._hosts_dict(), **self._tail()}

    def json_chunks(self) -> Iterator[str]:
        """The text of ``json.dumps(self.to_dict())`` in pieces, without a dict per route:
        N hosts own N*N routes, written from shared fragments (``HostRoutes.json_chunks``)."""
        yield json.dumps(self._head())[:-1] + ', "hosts": {'
        for k, h in enumerate(self.hosts.values()):
            yield (", " if k else "") + json.dumps(h.name) + ": "
            yield from h.json_chunks(h._routes.json_chunks(h.name))
        text = _memo_text()
        parts: dict = {}
        vms = ", ".join(f"{_q(v.name)}: {v.json_text(text, parts)}" for v in self.vms.values())
        tail = self._tail(vms=False)
        yield f'}}, "vms": {{{vms}}}, ' + json.dumps(tail)[1:]

    def to_json(self) -> str:
        return "".join(self.json_chunks())


class HostRoutes:
    """Each host's routes, computed on first use.

    N hosts own N*N routes in routed mode (a million for 1,000 hosts), while most consumers need
    one host's: the host reconciler programs itself, the lab one namespace at a time.
    """

    __slots__ = ("_routed", "_hosts", "_index", "_cache", "_json", "_moves")

    def __init__(
        self,
        routed: bool,
        hosts: list[tuple[str, IPv4Network, IPv4Address, str, str, str, IPv4Address]],
        moves: tuple[Move, ...] = (),
    ):
        # (name, block, ip, subnet, l3 device, bridge, subnet gateway) per host, in plan order
        self._routed = routed
        self._hosts = hosts
        self._index = {h[0]: i for i, h in enumerate(hosts)}
        self._cache: dict[str, tuple[Route, ...]] = {}
        self._moves = moves
        self._json: dict[tuple[str, str, IPv4Address], tuple[str, list[tuple[int, int]]]] = {}

    @property
    def routed(self) -> bool:
        return self._routed

    @property
    def moves(self) -> tuple[Move, ...]:
        return self._moves

    def of(self, name: str) -> tuple[Route, ...]:
        routes = self._cache.get(name)
        if routes is None:
            routes = self._cache[name] = self._build(name)
        return routes

    def json_chunks(self, name: str) -> Iterator[str]:
        """The JSON text of ``name``'s routes (as in ``Host.to_dict()``), in pieces.

        In routed mode host i's list is every other host's block via (its IP or its subnet's
        gateway) on i's L3 device: one text for all hosts sharing (subnet, device, gateway),
        rendered once; each host's list is that text with its own entry cut out.
        """
        if self._moves:  # rare: the plain rendering, with the /32s after the host's own block
            yield json.dumps([{"dst": str(r.dst), **({"via": str(r.via)} if r.via else {}), "dev": r.dev}
                              for r in self.of(name)])
            return
        i = self._index[name]
        _, block, _, subnet, l3, bridge, gateway = self._hosts[i]
        own = f'{{"dst": {json.dumps(str(block))}, "dev": {json.dumps(bridge)}}}'
        if not self._routed or len(self._hosts) == 1:
            yield f"[{own}]"
            return
        text, spans = self._group_text(subnet, l3, gateway)
        start, end = spans[i]
        yield "["
        if i + 1 < len(spans):  # cut "frag_i, "
            yield text[:start]
            yield text[spans[i + 1][0]:]
        else:  # the last one: cut ", frag_i"
            yield text[:start - 2]
        yield f", {own}]"

    def _group_text(self, subnet: str, l3: str, gateway: IPv4Address) -> tuple[str, list[tuple[int, int]]]:
        key = (subnet, l3, gateway)
        got = self._json.get(key)
        if got is None:
            dev, gw = json.dumps(l3), json.dumps(str(gateway))
            frags = [
                f'{{"dst": {json.dumps(str(oblock))}, "via": {json.dumps(str(oip)) if osubnet == subnet else gw}, "dev": {dev}}}'
                for _, oblock, oip, osubnet, *_rest in self._hosts
            ]
            spans, pos = [], 0
            for f in frags:
                spans.append((pos, pos + len(f)))
                pos += len(f) + 2
            got = self._json[key] = (", ".join(frags), spans)
        return got

    def _build(self, name: str) -> tuple[Route, ...]:
        _, block, _, subnet, l3, bridge, gateway = self._hosts[self._index[name]]
        out: list[Route] = []
        if self._routed:
            for other, oblock, oip, osubnet, *_ in self._hosts:
                if other != name:
                    # on-link only within one subnet; else the cloud's gateway (and user route) delivers
                    out.append(Route(oblock, l3, oip if osubnet == subnet else gateway))
        out.append(Route(block, bridge))
        for m in self._moves:  # a /32 per exception: delivered here, or sent where the VM lives
            if m.host == name:
                out.append(Route(IPv4Network(m.ip), bridge))
            else:
                _, _, oip, osubnet, *_ = self._hosts[self._index[m.host]]
                out.append(Route(IPv4Network(m.ip), l3, oip if osubnet == subnet else gateway))
        return tuple(out)


def build_plan(fabric: ResolvedSpec, alloc: Allocation, source: str = "", warnings: list[Problem] | None = None) -> Plan:
    """The Plan for a checked fabric and its allocation. ``warnings``: from
    ``validate.check_allocation`` (all the spec's warnings); the fabric's own when omitted."""
    spec = fabric.spec
    mode: Mode = spec.nested.mode
    rules = rules_of(spec)
    subnets = {
        s.name: Subnet(s.name, s.prefix, s.prefix.network_address + 1, s.route_table and mode == "routed",
                       rules.reserved(s.prefix))
        for s in fabric.subnets.values()
    }
    moved = plan_moves(fabric, alloc)
    hosts = _hosts(fabric, alloc, subnets, moved)
    vms = _vms(fabric, alloc, hosts)
    search = _search(fabric)
    endpoints = {
        e.name: Endpoint(e.name, e.ip, e.subnet, subnets[e.subnet].prefix.prefixlen, subnets[e.subnet].gateway)
        for e in fabric.endpoints.values()
    }
    return Plan(
        version=spec.version,
        name=spec.name,
        mode=mode,
        guest_style=spec.nested.guest_style,
        egress=spec.nested.egress,
        pool=fabric.pool,
        block_prefix_len=spec.nested.block_prefix_len,
        address_space=fabric.address_space,
        subnets=MappingProxyType(subnets),
        hosts=MappingProxyType(hosts),
        vms=MappingProxyType(vms),
        endpoints=MappingProxyType(endpoints),
        cloud=clouds.get(clouds.cloud_of(spec)).plan(fabric, subnets, hosts, vms, moved),
        warnings=tuple(fabric.warnings if warnings is None else warnings),
        source=source,
        moves=moved,
        dns_search=search,
    )


def plan_moves(fabric: ResolvedSpec, alloc: Allocation) -> tuple[Move, ...]:
    """VMs living outside their host's block (validate.check_allocation refuses them outside
    routed mode and over the cloud's route limit)."""
    return moves(((v.name, alloc.vm_ips[v.name], v.host) for v in fabric.vms.values()), alloc.blocks)


def _hosts(fabric: ResolvedSpec, alloc: Allocation, subnets: dict[str, Subnet], moved: tuple[Move, ...]) -> dict[str, Host]:
    host_specs = {h.name: h for h in fabric.spec.hosts}
    vms_by_host: dict[str, list[str]] = {h: [] for h in fabric.hosts}
    for v in fabric.vms.values():
        vms_by_host[v.host].append(v.name)
    blocks = alloc.blocks
    host_routes = HostRoutes(
        fabric.spec.nested.mode == "routed",
        [
            (hi.name, blocks[hi.name], hi.ip, hi.subnet, _l3_dev(host_specs[hi.name]),
             host_specs[hi.name].bridge, subnets[hi.subnet].gateway)
            for hi in fabric.hosts.values()
        ],
        moved,
    )
    masq = _masquerade(fabric)
    # Never leased dynamically: planned VMs, NICs, endpoints, the cloud's reserved addresses.
    taken = {int(a) for a in alloc.vm_ips.values()} | {int(h.ip) for h in fabric.hosts.values()}
    taken |= {int(e.ip) for e in fabric.endpoints.values()}
    taken |= {int(a) for s in subnets.values() for a in s.reserved}
    hosts: dict[str, Host] = {}
    for hi in fabric.hosts.values():
        hs, sub = host_specs[hi.name], subnets[hi.subnet]
        sysctl, bridge_address = _sysctl(fabric, hi, hs)
        hosts[hi.name] = Host(
            name=hi.name,
            ip=hi.ip,
            subnet=hi.subnet,
            prefix_len=sub.prefix.prefixlen,
            gateway=sub.gateway,
            nic=hi.nic,
            uplink=hs.uplink,
            bridge=hs.bridge,
            bridge_type=hs.bridge_type,
            bridge_has_uplink=hs.bridge_has_uplink,
            block=blocks[hi.name],
            firewall=hs.firewall,
            ssh_port=hs.ssh_port,
            _routes=host_routes,
            sysctl=MappingProxyType(sysctl),
            bridge_address=bridge_address,
            masquerade=masq,
            vms=tuple(vms_by_host[hi.name]),
            migration_hook=hs.migration_hook,
            public_ip=hs.public_ip,
            away=tuple(m.ip for m in moved if m.owner == hi.name),
            here=tuple(m.ip for m in moved if m.host == hi.name),
            dhcp_ranges=free_runs(blocks[hi.name], taken) if _dynamic(fabric, hs) else (),
        )
    return hosts


def free_runs(block: IPv4Network, taken: set[int]) -> tuple[tuple[IPv4Address, IPv4Address], ...]:
    """The runs of addresses in ``block`` (bar its first and last) that nothing is planned on."""
    runs: list[tuple[IPv4Address, IPv4Address]] = []
    start = None
    lo, hi = int(block.network_address) + 1, int(block.broadcast_address) - 1
    for a in range(lo, hi + 2):
        free = a <= hi and a not in taken
        if free and start is None:
            start = a
        elif not free and start is not None:
            runs.append((IPv4Address(start), IPv4Address(a - 1)))
            start = None
    return tuple(runs)


def _dynamic(fabric: ResolvedSpec, hs: HostSpec) -> bool:
    return hs.dhcp_dynamic if hs.dhcp_dynamic is not None else fabric.spec.nested.dhcp.dynamic


def _search(fabric: ResolvedSpec) -> tuple[str, ...]:
    zone = clouds.section(fabric.spec).private_dns_zone
    given = fabric.spec.nested.dns_search
    return tuple(given if given is not None else ([zone] if zone else []))


def _l3_dev(hs: HostSpec) -> str:
    return hs.bridge if hs.bridge_has_uplink else hs.uplink


def _masquerade(fabric: ResolvedSpec) -> Literal["none", "outside-vnet", "all"]:
    if fabric.spec.nested.mode == "nat":
        return "all"
    return "outside-vnet" if fabric.spec.nested.egress == "masquerade-outside-vnet" else "none"


def _sysctl(fabric: ResolvedSpec, hi: HostInfo, hs: HostSpec) -> tuple[dict[str, str], IPv4Address | None]:
    sysctl = {
        sysctls.IP_FORWARD: "1",
        sysctls.rp_filter(): "2",
        # No ICMP redirects to guests: an onlink guest told "talk to your sibling directly"
        # would bypass the host's forward chain (the kernel sends them if all OR the device
        # says so, hence both).
        "net.ipv4.conf.all.send_redirects": "0",
        f"net.ipv4.conf.{hs.bridge}.send_redirects": "0",
    }
    # The host's address on a bridge it owns, in both styles: its DHCP server answers there (a
    # DHCP server needs an address on the interface; docs/decisions/0011).
    if fabric.spec.nested.guest_style == "shared":
        return sysctl, SHARED_GATEWAY  # every host answers for it: a guest can move unchanged
    if fabric.spec.nested.guest_style != "subnet":
        return sysctl, None if hs.bridge_has_uplink else hi.ip
    sysctl[sysctls.proxy_arp(hs.bridge)] = "1"
    sysctl[f"net.ipv4.neigh.{hs.bridge}.proxy_delay"] = "0"
    if hs.bridge_has_uplink:
        # the subnet is routed out of the bridge itself: plain proxy ARP answers only for other devices
        sysctl[sysctls.proxy_arp_pvlan(hs.bridge)] = "1"
    return sysctl, hi.ip


def _vms(fabric: ResolvedSpec, alloc: Allocation, hosts: dict[str, Host]) -> dict[str, VM]:
    style: GuestStyle = fabric.spec.nested.guest_style
    macs = {s.name: s.mac for s in fabric.spec.vms if s.mac}
    search = _search(fabric)
    forwards_of = _forwards(fabric, hosts)
    exposes_of = _exposes(fabric, hosts)
    vms: dict[str, VM] = {}
    for v in fabric.vms.values():
        h = hosts[v.host]
        ip = alloc.vm_ips[v.name]
        prefix_len, gw = vm_link(style, h)
        vms[v.name] = VM(
            name=v.name,
            host=v.host,
            ip=ip,
            prefix_len=prefix_len,
            gateway=gw,
            guest_style=style,
            mac=macs.get(v.name) or vm_mac(ip),
            nameservers=(gw,),  # the host's forwarder answers on the gateway address (host/dhcp.py)
            search=search,
            forwards=forwards_of.get(v.name, ()),
            exposes=exposes_of.get(v.name, ()),
        )
    return vms


def vm_link(style: GuestStyle, h: Host) -> tuple[int, IPv4Address]:
    """A VM's prefix length and gateway on host ``h``."""
    return (h.prefix_len if style == "subnet" else 32), (SHARED_GATEWAY if style == "shared" else h.ip)


def _forwards(fabric: ResolvedSpec, hosts: Mapping[str, Host]) -> dict[str, tuple[Forward, ...]]:
    """Each VM's port forwards, checked: nat mode only, one owner per host port, never SSH."""
    spec = fabric.spec
    out: dict[str, tuple[Forward, ...]] = {}
    problems: list[Problem] = []
    taken: dict[tuple[str, str, int], str] = {}
    for i, v in enumerate(spec.vms):
        fws = []
        for j, f in enumerate(v.forwards):
            path = f"vms[{i}].forwards[{j}]"
            fw = Forward(f.port, f.host_port or f.port, f.proto)
            if spec.nested.mode != "nat":
                problems.append(Problem(path, f"port forwards are for nested.mode nat; in {spec.nested.mode} mode "
                                              f"the VM's own address {v.name!r} is reachable: remove the forward"))
                continue
            host = hosts.get(v.host)
            if host is not None and fw.proto == "tcp" and fw.host_port == host.ssh_port:
                problems.append(Problem(f"{path}.host_port", f"{fw.host_port} is the SSH port of host {v.host!r}; "
                                                             "forwarding it would cut SSH to the host: pick another"))
                continue
            key = (v.host, fw.proto, fw.host_port)
            if key in taken:
                problems.append(Problem(f"{path}.host_port", f"{fw.proto} {fw.host_port} on host {v.host!r} is "
                                                             f"already forwarded to VM {taken[key]!r}: pick another"))
                continue
            taken[key] = v.name
            fws.append(fw)
        if fws:
            out[v.name] = tuple(fws)
    if problems:
        raise SpecError(problems)
    return out


def _exposes(fabric: ResolvedSpec, hosts: Mapping[str, Host]) -> dict[str, tuple[Expose, ...]]:
    """Each VM's exposed ports, checked: one owner per host public port (forwards share the host's
    address in nat mode), never the host's SSH port."""
    spec = fabric.spec
    out: dict[str, tuple[Expose, ...]] = {}
    problems: list[Problem] = []
    taken: dict[tuple[str, str, int], str] = {}
    for v in spec.vms:
        for f in v.forwards:
            taken[(v.host, f.proto, f.host_port or f.port)] = f"VM {v.name!r} (a forward)"
    for i, v in enumerate(spec.vms):
        exs = []
        for j, e in enumerate(v.expose):
            path = f"vms[{i}].expose[{j}]"
            ex = Expose(e.port, e.public_port or e.port, e.proto)
            host = hosts.get(v.host)
            if host is not None and ex.proto == "tcp" and ex.public_port == host.ssh_port:
                problems.append(Problem(f"{path}.public_port", f"{ex.public_port} is the SSH port of host {v.host!r}; "
                                                               "exposing a VM on it would cut SSH to the host: pick another"))
                continue
            key = (v.host, ex.proto, ex.public_port)
            if key in taken:
                problems.append(Problem(f"{path}.public_port", f"{ex.proto} {ex.public_port} on host {v.host!r} is "
                                                               f"already taken by {taken[key]}: pick another"))
                continue
            taken[key] = f"VM {v.name!r}"
            exs.append(ex)
        if exs:
            out[v.name] = tuple(exs)
    if problems:
        raise SpecError(problems)
    return out


# Loading reads files, so it lives at the edge (store.py); these keep the old entry points.


def load(spec_path: str | Path, *, write: bool = True, frozen: bool = False) -> "Loaded":
    from .store import load as _load

    return _load(spec_path, write=write, frozen=frozen)


def load_plan(spec_path: str | Path, *, write: bool = True, frozen: bool = False) -> Plan:
    return load(spec_path, write=write, frozen=frozen).plan


def load_source(source: SpecSource, *, write: bool = True, frozen: bool = False) -> "Loaded":
    from .store import load_source as _load_source

    return _load_source(source, write=write, frozen=frozen)
