"""The model's input: what the fabric *is*, desired (from a Plan) or observed (from live data).

A ``State`` holds only facts the forwarding rules read, in one shape for both sources:

- the cloud side (``CloudState``, any cloud's through ``nestnet.clouds``): subnets and their
  route-table association, the user routes of
  nestnet's route table, and every NIC (subnet, addresses incl. secondary IPs, IP forwarding);
- per KVM host (``HostState``): local addresses, kernel routes (nestnet-owned and others, so the
  ``no-host-routes`` what-if just empties one tuple), ``ip_forward``, ``rp_filter``, proxy ARP on
  the nested bridge, the forward verdict of its firewall, masquerade, the bridge topology;
- guests (``GuestState``: address/prefix, gateway, onlink) and endpoints (``EndpointState``).

``State.from_plan(plan)`` builds the desired state; a doctor builds the same objects from what a
live host or the lab reports. Everything here is immutable: what-ifs are ``State -> State``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Iterator, Literal, Mapping, Protocol, Sequence

from .. import sysctl as sysctls
from ..clouds import DEFAULT
from ..firewall import FORWARD_CHAIN, FwdPacket, FwRule, MasqRule, Policy, policy_for
from ..plan import Host, Plan, Route

# nestnet.host installs the L2 guards of DESIGN §3.4 on a bridge holding the uplink (nft bridge
# table on Linux bridges, flows on OVS): VM ports and the uplink never meet at L2.
HOST_L2_GUARDS = True

# The internet node behind the fabric, as in the lab (DESIGN §5, reference up.sh).
INTERNET = "internet"
INTERNET_IP = IPv4Address("203.0.113.10")
# The address the cloud's default outbound access translates NIC addresses to (lab: fab's pinet).
OUTBOUND_IP = IPv4Address("198.51.100.1")
# The link between the cloud's edge and the internet: the only network the internet node reaches.
OUTBOUND_NET = IPv4Network("198.51.100.0/24")
# Stand-ins for the public IPs of hosts with exposed VMs when the state comes from a plan (the
# cloud picks the real address; the doctor's cloud option reads it): RFC 2544's benchmarking range, never routed on the
# internet, which the lab's internet routes to the fabric (docs/decisions/0027).
PUBLIC_STANDIN = IPv4Network("198.18.0.0/15")

# nestnet's forward chain, as the model names it (in findings and fixes).
NESTNET_CHAIN = FORWARD_CHAIN
Verdict = Literal["accept", "drop"]


class SecurityGroup(Protocol):
    """A cloud's security group as its rules judge it (the cloud's own type; the core only keys it)."""

    @property
    def name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Tags:
    """What the service tags stand for in one fabric."""

    virtual_network: tuple[IPv4Network, ...]  # the network's space + peered spaces + user-defined route prefixes

    def in_vnet(self, a: IPv4Address) -> bool:
        return any(a in n for n in self.virtual_network)


@dataclass(frozen=True, slots=True)
class Chain:
    """A base chain on the forward hook: the first matching rule decides, else the policy."""

    policy: Verdict
    rules: tuple[FwRule, ...] = ()
    name: str = ""

    def decide(self, pkt: FwdPacket) -> tuple[Verdict, FwRule | None]:
        for r in self.rules:
            if r.matches(pkt):
                return r.verdict, r
        return self.policy, None


@dataclass(frozen=True, slots=True)
class Firewall:
    """Every base chain on the forward hook: a drop in any of them is final (nftables)."""

    chains: tuple[Chain, ...] = ()

    def drop_reason(self, pkt: FwdPacket) -> tuple[str, str] | None:
        """None when every chain accepts ``pkt``; else (what dropped it in words, the chain)."""
        for c in self.chains:
            verdict, rule = c.decide(pkt)
            if verdict == "drop":
                return (rule.why if rule is not None and rule.why else f"policy drop in {c.name}"), c.name
        return None


@dataclass(frozen=True, slots=True)
class NicState:
    name: str
    subnet: str
    owner: str  # the node (host or endpoint) behind the NIC
    addresses: frozenset[IPv4Address]  # primary and secondary IP configurations, each prefix's addresses
    ip_forwarding: bool
    nsg: str | None = None  # the network security group on the NIC (a key of CloudState.nsgs)
    prefixes: tuple[IPv4Network, ...] = ()  # prefix ip configurations (nic-prefix mode; decision 0028)


@dataclass(frozen=True, slots=True)
class SubnetState:
    name: str
    prefix: IPv4Network
    gateway: IPv4Address
    route_table: bool  # associated with nestnet's route table
    reserved: tuple[IPv4Address, ...] = ()  # addresses the cloud never delivers (e.g. the first four and the last)
    nsg: str | None = None  # the network security group on the subnet (a key of CloudState.nsgs)
    # how its traffic reaches the internet, in the cloud's words ("" the cloud's default; its rules read it)
    internet: str = ""


@dataclass(frozen=True, slots=True)
class UserRoute:
    name: str
    prefix: IPv4Network
    next_hop_ip: IPv4Address  # VirtualAppliance


@dataclass(frozen=True, slots=True)
class PublicIp:
    """A public IP on a NIC's primary ip configuration: the cloud delivers what arrives for ``address``
    to the NIC's primary private address (1:1, ports unchanged) and its replies leave as ``address``.
    ``standard``: closed to inbound unless an NSG on the way allows it (Standard SKU); a Basic one
    is open (docs/decisions/0027)."""

    name: str
    address: IPv4Address
    nic: str
    standard: bool = False


@dataclass(frozen=True, slots=True)
class CloudState:
    address_space: tuple[IPv4Network, ...]
    route_table: str | None
    subnets: Mapping[str, SubnetState]
    user_routes: tuple[UserRoute, ...]
    nics: Mapping[str, NicState]
    resource_group: str = ""
    nsgs: Mapping[str, SecurityGroup] = field(default_factory=dict)  # by name; attached through subnets and NICs
    peered_space: tuple[IPv4Network, ...] = ()  # address spaces of peered VNets (VirtualNetwork tag)
    none_routes: tuple[IPv4Network, ...] = ()  # system routes that drop (e.g. private ranges outside the network)
    public_ips: tuple[PublicIp, ...] = ()  # on NICs' primary ip configurations
    # nested addresses are the NICs' own ip configurations (secondary-ip, nic-prefix), not routed:
    # a missing one is a missing ip configuration, and the fix says so
    owned_by_nic: bool = False
    cloud: str = DEFAULT  # whose data plane this is: the model applies that cloud's rules

    @property
    def tags(self) -> Tags:
        """The service tags' addresses: ``VirtualNetwork`` is the VNet's space, peered spaces and the
        prefixes of user-defined routes (so nested blocks count)."""
        return Tags((*self.address_space, *self.peered_space, *(r.prefix for r in self.user_routes)))

    @classmethod
    def from_plan(cls, plan: Plan, cloud: str | None = None) -> "CloudState":
        """The planned data plane of ``plan`` in ``cloud`` (the cloud seam's ``planned_state``;
        by default the plan's own cloud)."""
        from ..clouds import get

        return get(cloud or plan.cloud.cloud_name).planned_state(plan)

    def unconfigured(self) -> "CloudState":
        """The cloud before nestnet wrote anything: no user routes, no associations, no forwarding."""
        return replace(
            self,
            user_routes=(),
            subnets={k: replace(v, route_table=False) for k, v in self.subnets.items()},
            nics={k: replace(v, ip_forwarding=False) for k, v in self.nics.items()},
        )


class PlannedRoutes(Sequence[Route]):
    """A host's planned routes (``Host.routes``), built on first use. N hosts own N*N routes (a
    million for 1,000) while ``check`` walks only the hosts its traces pass through; its classes
    read the plan's rule (``Host.routes_to_peers``) instead of the routes."""

    __slots__ = ("host", "_routes")

    def __init__(self, host: Host):
        self.host = host
        self._routes: tuple[Route, ...] | None = None

    def _all(self) -> tuple[Route, ...]:
        if self._routes is None:
            self._routes = self.host.routes
        return self._routes

    def __len__(self) -> int:
        return len(self._all())

    def __getitem__(self, i):  # type: ignore[override]
        return self._all()[i]

    def __iter__(self) -> Iterator[Route]:
        return iter(self._all())

    def __contains__(self, r: object) -> bool:
        return r in self._all()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (tuple, PlannedRoutes)):
            return self._all() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._all())

    def __add__(self, other: Sequence[Route]) -> tuple[Route, ...]:
        return self._all() + tuple(other)

    def __radd__(self, other: Sequence[Route]) -> tuple[Route, ...]:
        return tuple(other) + self._all()

    def __repr__(self) -> str:
        return f"PlannedRoutes({self.host.name!r})"


@dataclass(frozen=True, slots=True)
class HostState:
    name: str
    ip: IPv4Address  # its VNet address, on ``l3_dev``
    prefix_len: int
    subnet: str
    gateway: IPv4Address
    nic: str
    uplink: str
    bridge: str
    bridge_has_uplink: bool
    l2_guards: bool  # bridge_has_uplink only: VM ports cannot reach the uplink at L2
    bridge_address: IPv4Address | None  # /32 on the bridge (subnet style)
    block: IPv4Network
    owned_routes: Sequence[Route]  # routes with nestnet's protocol (planned: PlannedRoutes)
    other_routes: tuple[Route, ...]  # connected, default and any foreign routes
    ip_forward: bool
    rp_filter: int  # effective for every device: max(conf.all, conf.<dev>)
    proxy_arp: bool  # on the nested bridge
    proxy_arp_pvlan: bool  # also answer for addresses routed back out the bridge itself
    firewall: Firewall
    masquerade: tuple[MasqRule, ...]
    away: frozenset[IPv4Address] = frozenset()  # addresses of its block whose VMs moved elsewhere
    # exposed ports: (proto, public port, VM address, VM port), DNAT of ``ip`` arriving on ``l3_dev``
    dnat: tuple[tuple[str, int, IPv4Address, int], ...] = ()

    @property
    def l3_dev(self) -> str:
        return self.bridge if self.bridge_has_uplink else self.uplink

    @property
    def local_addresses(self) -> frozenset[IPv4Address]:
        return frozenset(a for a in (self.ip, self.bridge_address) if a is not None)

    @property
    def routes(self) -> tuple[Route, ...]:
        return tuple(self.owned_routes) + self.other_routes


@dataclass(frozen=True, slots=True)
class GuestState:
    name: str
    host: str
    ip: IPv4Address
    prefix_len: int
    gateway: IPv4Address
    onlink: bool  # gateway/32 scope link + default via gateway onlink
    mac: str = ""


@dataclass(frozen=True, slots=True)
class EndpointState:
    name: str
    ip: IPv4Address
    prefix_len: int
    subnet: str
    gateway: IPv4Address
    nic: str


@dataclass(frozen=True, slots=True)
class State:
    name: str
    cloud: CloudState  # the cloud's data plane (``state.<cloud name>`` reads it too)
    hosts: Mapping[str, HostState]
    guests: Mapping[str, GuestState]
    endpoints: Mapping[str, EndpointState]
    pool: IPv4Network | None = None
    internet: bool = True  # the internet node exists (destination only: it has no route to 10/8)
    source: str = ""

    def __getattr__(self, name: str) -> CloudState:
        # ``state.<cloud>`` (e.g. in the cloud's package) is the cloud's data plane, when it is that cloud's.
        try:
            cloud = object.__getattribute__(self, "cloud")
        except AttributeError:  # not initialised yet (unpickling, copy)
            raise AttributeError(name) from None
        if name == cloud.cloud:
            return cloud
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def node_names(self) -> tuple[str, ...]:
        return (*self.hosts, *self.guests, *self.endpoints)

    def address_of(self, node: str) -> IPv4Address:
        if node in self.hosts:
            return self.hosts[node].ip
        if node in self.guests:
            return self.guests[node].ip
        if node in self.endpoints:
            return self.endpoints[node].ip
        if node == INTERNET and self.internet:
            return INTERNET_IP
        raise KeyError(node)

    @classmethod
    def from_plan(cls, plan: Plan) -> "State":
        return from_plan(plan)


def firewall_of(p: Policy) -> Firewall:
    """nestnet's forward chain (policy accept: it judges only its own block's traffic)."""
    return Firewall((Chain("accept", p.flat(), NESTNET_CHAIN),))


def endpoint_nic(endpoint: str) -> str:
    """Endpoints are plain VMs of the cloud; their NIC name is not in the spec."""
    return f"{endpoint}-nic"


def from_plan(plan: Plan, cloud: str | None = None) -> State:
    """The desired state: what the cloud and every host look like once nestnet has applied
    ``plan``; the cloud's part through the cloud seam (``nestnet.clouds``)."""
    cloud_state = CloudState.from_plan(plan, cloud)
    endpoints = {
        e.name: EndpointState(e.name, e.ip, e.prefix_len, e.subnet, e.gateway, endpoint_nic(e.name))
        for e in plan.endpoints.values()
    }
    routed = plan.routed_prefixes  # where nested traffic goes without NAT
    hosts: dict[str, HostState] = {}
    for h in plan.hosts.values():
        subnet = plan.subnets[h.subnet].prefix
        other = (Route(subnet, h.l3_dev), Route(IPv4Network("0.0.0.0/0"), h.l3_dev, h.gateway))
        rp = int(h.sysctl.get(sysctls.rp_filter(), "0"))
        exposes = tuple((e.proto, e.public_port, plan.vms[v].ip, e.port) for v in h.vms for e in plan.vms[v].exposes)
        fw = policy_for(h, routed, tuple(plan.vms[v].ip for v in h.vms), exposes=exposes)
        hosts[h.name] = HostState(
            name=h.name,
            ip=h.ip,
            prefix_len=h.prefix_len,
            subnet=h.subnet,
            gateway=h.gateway,
            nic=h.nic,
            uplink=h.uplink,
            bridge=h.bridge,
            bridge_has_uplink=h.bridge_has_uplink,
            l2_guards=h.bridge_has_uplink and HOST_L2_GUARDS,
            bridge_address=h.bridge_address,
            block=h.block,
            owned_routes=PlannedRoutes(h),
            other_routes=other,
            ip_forward=h.sysctl.get(sysctls.IP_FORWARD) == "1",
            rp_filter=rp,
            proxy_arp=h.sysctl.get(sysctls.proxy_arp(h.bridge)) == "1",
            proxy_arp_pvlan=h.sysctl.get(sysctls.proxy_arp_pvlan(h.bridge)) == "1",
            firewall=firewall_of(fw),
            masquerade=fw.masquerade_rules(),
            away=frozenset(h.away),
            dnat=exposes,
        )
    guests = {
        v.name: GuestState(v.name, v.host, v.ip, v.prefix_len, v.gateway, v.guest_style != "subnet", v.mac)
        for v in plan.vms.values()
    }
    return State(
        name=plan.name,
        cloud=cloud_state,
        hosts=hosts,
        guests=guests,
        endpoints=endpoints,
        pool=plan.pool,
        source=plan.source,
    )
