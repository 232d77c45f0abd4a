"""What-ifs: each fault of the shared vocabulary (``nestnet.faults``) as a pure ``State -> State``.

The lab breaks the emulated fabric the same way for real, so ``check --fault X`` and
``lab fault X`` can be compared pair by pair.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterable

from ..faults import Fault
from .state import Chain, Firewall, State


def _host(state: State, name: str, **changes) -> State:
    hosts = dict(state.hosts)
    hosts[name] = replace(hosts[name], **changes)
    return replace(state, hosts=hosts)


def _nic_forwarding_off(state: State, host: str) -> State:
    nic = state.hosts[host].nic
    nics = dict(state.cloud.nics)
    nics[nic] = replace(nics[nic], ip_forwarding=False)
    return replace(state, cloud=replace(state.cloud, nics=nics))


def _no_route_table(state: State, subnet: str) -> State:
    subnets = dict(state.cloud.subnets)
    subnets[subnet] = replace(subnets[subnet], route_table=False)
    return replace(state, cloud=replace(state.cloud, subnets=subnets))


def _no_user_route(state: State, host: str) -> State:
    block = state.hosts[host].block
    routes = tuple(r for r in state.cloud.user_routes if r.prefix != block)
    return replace(state, cloud=replace(state.cloud, user_routes=routes))


def _no_nic_prefix(state: State, host: str) -> State:
    """The host NIC's prefix ip configurations are gone: the cloud no longer owns those addresses for it."""
    nic = state.hosts[host].nic
    nics = dict(state.cloud.nics)
    n = nics[nic]
    gone = {a for p in n.prefixes for a in p}
    nics[nic] = replace(n, prefixes=(), addresses=n.addresses - gone)
    return replace(state, cloud=replace(state.cloud, nics=nics))


# Faults on the cloud's side (the rest are on a host).
CLOUD_FAULTS = ("nic-forwarding-off", "no-route-table", "no-user-route", "no-nic-prefix")

WHATIFS: dict[str, Callable[[State, str], State]] = {
    "nic-forwarding-off": _nic_forwarding_off,
    "no-route-table": _no_route_table,
    "no-user-route": _no_user_route,
    "no-nic-prefix": _no_nic_prefix,
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


def apply_fault(state: State, fault: Fault) -> State:
    return WHATIFS[fault.kind](state, fault.target)


def apply_faults(state: State, faults: Iterable[Fault]) -> State:
    for f in faults:
        state = apply_fault(state, f)
    return state
