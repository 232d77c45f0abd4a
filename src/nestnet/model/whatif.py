"""What-ifs: each fault of the shared vocabulary (``nestnet.faults``) as a pure ``State -> State``.

The host kinds are here; a cloud's own kinds come with their what-ifs through the cloud seam
(``Cloud.fault_kinds``), most of them built from the cloud-side building blocks below (a NIC's
forwarding off, a subnet without the route table, a host's routes or prefixes gone). The lab breaks
the emulated fabric the same way for real, so ``check --fault X`` and ``lab fault X`` can be
compared pair by pair.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address
from typing import Callable, Iterable

from ..faults import Fault
from .state import Chain, Firewall, State


def _host(state: State, name: str, **changes) -> State:
    hosts = dict(state.hosts)
    hosts[name] = replace(hosts[name], **changes)
    return replace(state, hosts=hosts)


# --- building blocks for the clouds' kinds -------------------------------------------------------

def nic_forwarding_off(state: State, host: str) -> State:
    """The host NIC's source/destination check is back on (forwarding off)."""
    nic = state.hosts[host].nic
    nics = dict(state.cloud.nics)
    nics[nic] = replace(nics[nic], ip_forwarding=False)
    return replace(state, cloud=replace(state.cloud, nics=nics))


def no_route_table(state: State, subnet: str) -> State:
    """The subnet's traffic no longer meets nestnet's routes (its route table is another one)."""
    subnets = dict(state.cloud.subnets)
    subnets[subnet] = replace(subnets[subnet], route_table=False)
    return replace(state, cloud=replace(state.cloud, subnets=subnets))


def no_user_route(state: State, host: str) -> State:
    """The route for the host's block is gone."""
    block = state.hosts[host].block
    routes = tuple(r for r in state.cloud.user_routes if r.prefix != block)
    return replace(state, cloud=replace(state.cloud, user_routes=routes))


def dead_user_route(state: State, host: str, hop: IPv4Address) -> State:
    """The route for the host's block stays but points to ``hop``, which no NIC owns (its target
    is gone): it still wins the longest prefix match, and drops."""
    block = state.hosts[host].block
    routes = tuple(replace(r, next_hop_ip=hop) if r.prefix == block else r for r in state.cloud.user_routes)
    return replace(state, cloud=replace(state.cloud, user_routes=routes))


def no_nic_prefix(state: State, host: str) -> State:
    """The host NIC's prefixes are gone: the cloud no longer owns those addresses for it."""
    nic = state.hosts[host].nic
    nics = dict(state.cloud.nics)
    n = nics[nic]
    gone = {a for p in n.prefixes for a in p}
    nics[nic] = replace(n, prefixes=(), addresses=n.addresses - gone)
    return replace(state, cloud=replace(state.cloud, nics=nics))


# --- the host kinds ------------------------------------------------------------------------------

WHATIFS: dict[str, Callable[[State, str], State]] = {
    "ip-forward-off": lambda s, h: _host(s, h, ip_forward=False),
    "no-host-routes": lambda s, h: _host(s, h, owned_routes=()),
    # The lab adds its own base chain with policy drop; nestnet's table stays.
    "firewall-deny-routed": lambda s, h: _host(
        s, h, firewall=Firewall((*s.hosts[h].firewall.chains, Chain("drop", (), "a forward chain that is not nestnet's")))
    ),
    "rp-filter-strict": lambda s, h: _host(s, h, rp_filter=1),
    "no-proxy-arp": lambda s, h: _host(s, h, proxy_arp=False, proxy_arp_pvlan=False),
    "no-masquerade": lambda s, h: _host(s, h, masquerade=()),
}
HOST_FAULTS = tuple(WHATIFS)


def is_cloud_fault(f: Fault) -> bool:
    """A fault on the cloud's side (its route table, its NICs), not on a host."""
    return f.kind not in WHATIFS


def apply_fault(state: State, fault: Fault) -> State:
    host = WHATIFS.get(fault.kind)
    if host is not None:
        return host(state, fault.target)
    from ..clouds import get

    return get(state.cloud.cloud).fault_kinds()[fault.kind].whatif(state, fault.target)


def apply_faults(state: State, faults: Iterable[Fault]) -> State:
    for f in faults:
        state = apply_fault(state, f)
    return state
