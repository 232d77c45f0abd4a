"""Azure's control-plane state as the lab sees it, and what it means for the fabric (pure).

``AzureState`` is the seam between "what Azure is configured to do" and the fabric namespace
that does it. ``AzureState.from_plan(plan)`` is the planned state; faults remove things from it;
an emulated ARM endpoint can build its own ``AzureState`` from the route table, subnet and NIC
resources it holds and hand it to ``nestnet.lab.fabric.program(topology, state)``, which makes the
fabric match it idempotently.

``desired(topology, state)`` turns a state into the fabric's dynamic configuration, and
``diff(desired, observed)`` into the only changes needed. Both are pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Mapping

from ..plan import Plan
from .topology import INET_LINK_PEER, INET_PORT, SINK, Topology

DEFAULT = IPv4Network("0.0.0.0/0")


@dataclass(frozen=True)
class AzureState:
    """The Azure resources that decide the data plane: nestnet's route table and the NICs."""

    user_routes: Mapping[IPv4Network, IPv4Address] = field(default_factory=dict)  # prefix -> next hop
    associated_subnets: frozenset[str] = frozenset()  # subnets using the route table
    ip_forwarding_nics: frozenset[str] = frozenset()  # NICs whose src/dst check is lifted

    @classmethod
    def from_plan(cls, plan: Plan) -> AzureState:
        return cls(
            user_routes={r.address_prefix: r.next_hop_ip for r in plan.azure.routes},
            associated_subnets=frozenset(plan.azure.subnet_associations),
            ip_forwarding_nics=frozenset(plan.azure.nic_ip_forwarding),
        )

    def without_forwarding(self, nic: str) -> AzureState:
        return replace(self, ip_forwarding_nics=self.ip_forwarding_nics - {nic})

    def without_association(self, subnet: str) -> AzureState:
        return replace(self, associated_subnets=self.associated_subnets - {subnet})

    def without_route(self, prefix: IPv4Network) -> AzureState:
        return replace(self, user_routes={p: nh for p, nh in self.user_routes.items() if p != prefix})

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_routes": {str(p): str(nh) for p, nh in sorted(self.user_routes.items())},
            "associated_subnets": sorted(self.associated_subnets),
            "ip_forwarding_nics": sorted(self.ip_forwarding_nics),
        }


# A route in the fabric's route-table table, compared on these fields only:
# (dst, type, via, dev) with type "unicast" or "blackhole".
RouteKey = tuple[str, str, str | None, str | None]


@dataclass(frozen=True)
class FabricConfig:
    """The fabric's state that depends on Azure's configuration."""

    table: frozenset[RouteKey]  # the route table's routes: system routes overlaid by user routes
    rule_ports: frozenset[str]  # ports whose traffic is routed by the route table
    ipfwd_ports: frozenset[str]  # ports whose src/dst check is lifted


@dataclass(frozen=True)
class FabricChanges:
    del_routes: tuple[RouteKey, ...] = ()
    add_routes: tuple[RouteKey, ...] = ()
    del_rules: tuple[str, ...] = ()
    add_rules: tuple[str, ...] = ()
    del_ipfwd: tuple[str, ...] = ()
    add_ipfwd: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return any((self.del_routes, self.add_routes, self.del_rules, self.add_rules, self.del_ipfwd, self.add_ipfwd))


def system_routes(topo: Topology) -> dict[IPv4Network, RouteKey]:
    """Azure's system routes plus delivery by NIC ownership, as Linux routes."""
    out: dict[IPv4Network, RouteKey] = {}
    for space in topo.address_space:
        out[space] = (str(space), "unicast", None, SINK)  # VnetLocal; unowned addresses vanish
    for n in topo.nics:
        out[IPv4Network(n.ip)] = (f"{n.ip}/32", "unicast", None, n.port)
        for s in n.secondary:  # delivered to the NIC that owns the IP configuration
            out[IPv4Network(s)] = (f"{s}/32", "unicast", str(n.ip), n.port)
    out[DEFAULT] = ("0.0.0.0/0", "unicast", INET_LINK_PEER, INET_PORT)
    return out


def desired(topo: Topology, state: AzureState) -> FabricConfig:
    table = system_routes(topo)
    for prefix, hop in state.user_routes.items():
        nic = topo.nic_of_ip(hop)
        # On an exact tie a user route beats a system route; a next hop no NIC owns drops.
        table[prefix] = (
            (str(prefix), "unicast", str(hop), nic.port) if nic else (str(prefix), "blackhole", None, None)
        )
    return FabricConfig(
        table=frozenset(table.values()),
        rule_ports=frozenset(n.port for n in topo.nics if n.subnet in state.associated_subnets),
        ipfwd_ports=frozenset(n.port for n in topo.nics if n.nic in state.ip_forwarding_nics),
    )


def diff(want: FabricConfig, have: FabricConfig) -> FabricChanges:
    return FabricChanges(
        del_routes=tuple(sorted(have.table - want.table, key=str)),
        add_routes=tuple(sorted(want.table - have.table, key=str)),
        del_rules=tuple(sorted(have.rule_ports - want.rule_ports)),
        add_rules=tuple(sorted(want.rule_ports - have.rule_ports)),
        del_ipfwd=tuple(sorted(have.ipfwd_ports - want.ipfwd_ports)),
        add_ipfwd=tuple(sorted(want.ipfwd_ports - have.ipfwd_ports)),
    )
