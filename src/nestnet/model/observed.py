"""An observed host in the model's shape: what a live host (or a lab host) reports, parsed purely.

The doctor collects three raw texts on a host - ``ip -j route show table main``, the sysctls
below, ``nft -j list ruleset`` - and hands them to ``observe_host``; ``from_observation`` puts the
observed hosts into the planned State, so ``check`` diagnoses reality with the same rules.
Parsers only: no I/O here (the caller runs the commands, e.g. ``nestnet lab exec``).

What is read from nftables: whether nestnet's ``table inet nestnet`` has its forward chain
(then its rules are the planned ones: ``nestnet host diff`` verifies the content) and its
masquerade rule, and every *other* forward base chain with policy drop (a drop there is final).
Other tables' accept-policy chains are assumed to pass nested traffic. Chains count by address
family: the model's pairs are IPv4 and routed, so only ``ip`` and ``inet`` chains can drop them;
``ip6`` chains see only IPv6, ``bridge`` chains only bridged frames, ``arp`` only ARP, and
``netdev`` has no forward hook (UFW's ``ip6 filter FORWARD`` drop is not an IPv4 fault).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Mapping

from .. import sysctl
from ..firewall import FAMILY, TABLE
from ..plan import ROUTE_PROTO, ROUTE_PROTO_NAME, Plan, Route
from .state import Chain, Firewall, HostState, State, from_plan

NESTNET_TABLE = (FAMILY, TABLE)


def sysctl_keys(host: HostState) -> list[str]:
    """The sysctls ``observe_host`` reads (ask the host for exactly these)."""
    keys = [sysctl.IP_FORWARD, sysctl.rp_filter(), sysctl.proxy_arp("all")]
    for dev in dict.fromkeys((host.l3_dev, host.bridge)):
        keys.append(sysctl.rp_filter(dev))
    keys += [sysctl.proxy_arp(host.bridge), sysctl.proxy_arp_pvlan(host.bridge)]
    return keys


@dataclass(frozen=True, slots=True)
class HostObservation:
    owned_routes: tuple[Route, ...]
    other_routes: tuple[Route, ...]
    sysctl: Mapping[str, str]
    nestnet_forward: bool  # nestnet's forward chain is loaded
    nestnet_masquerade: bool  # nestnet's masquerade rule is loaded
    foreign_drops: tuple[str, ...]  # other forward base chains with policy drop (ip, inet: IPv4)


def parse_routes(text: str) -> tuple[tuple[Route, ...], tuple[Route, ...]]:
    """``ip -j route show table main`` -> (nestnet's routes, the others); unicast IPv4 only."""
    owned: list[Route] = []
    other: list[Route] = []
    for r in json.loads(text or "[]"):
        if r.get("type", "unicast") != "unicast" or "dev" not in r:
            continue
        dst = IPv4Network("0.0.0.0/0" if r["dst"] == "default" else r["dst"], strict=False)
        route = Route(dst, r["dev"], IPv4Address(r["gateway"]) if "gateway" in r else None)
        (owned if str(r.get("protocol")) in (str(ROUTE_PROTO), ROUTE_PROTO_NAME) else other).append(route)
    return tuple(owned), tuple(other)


# The families whose forward hook sees routed IPv4 packets (nft(8) "ADDRESS FAMILIES").
IPV4_FAMILIES = ("ip", "inet")


def parse_nft(text: str) -> tuple[bool, bool, tuple[str, ...]]:
    """``nft -j list ruleset`` -> (nestnet forward chain, nestnet masquerade, foreign drop chains
    that routed IPv4 traffic meets)."""
    items: list[dict[str, Any]] = json.loads(text or '{"nftables": []}')["nftables"]
    forward = masq = False
    drops: list[str] = []
    for item in items:
        chain = item.get("chain")
        if chain and chain.get("hook") == "forward" and chain.get("type") == "filter":
            if (chain["family"], chain["table"]) == NESTNET_TABLE:
                forward = True
            elif chain.get("policy") == "drop" and chain["family"] in IPV4_FAMILIES:
                drops.append(f"{chain['family']} {chain['table']} {chain['name']}")
        rule = item.get("rule")
        if rule and (rule["family"], rule["table"]) == NESTNET_TABLE:
            masq = masq or any("masquerade" in e for e in rule.get("expr", []))
    return forward, masq, tuple(drops)


def observe_host(routes_json: str, sysctl: Mapping[str, str], nft_json: str) -> HostObservation:
    owned, other = parse_routes(routes_json)
    forward, masq, drops = parse_nft(nft_json)
    return HostObservation(owned, other, dict(sysctl), forward, masq, drops)


def observed_host(planned: HostState, obs: HostObservation) -> HostState:
    """The planned host with everything the observation says about it."""
    s = obs.sysctl

    def on(key: str) -> bool:
        return s.get(key, "0").strip() == "1"

    # The kernel uses max(all, <dev>) per incoming device; one number per host: the strictest.
    rp = max(int(s.get(k, "0")) for k in s if k.endswith(".rp_filter")) if any(
        k.endswith(".rp_filter") for k in s) else 0
    chains = list(planned.firewall.chains) if obs.nestnet_forward else []
    chains += [Chain("drop", (), f"chain {name}") for name in obs.foreign_drops]
    return replace(
        planned,
        owned_routes=obs.owned_routes,
        other_routes=obs.other_routes,
        ip_forward=on(sysctl.IP_FORWARD),
        rp_filter=rp,
        proxy_arp=on(sysctl.proxy_arp(planned.bridge)) or on(sysctl.proxy_arp("all")),
        proxy_arp_pvlan=on(sysctl.proxy_arp_pvlan(planned.bridge)),
        firewall=Firewall(tuple(chains)),
        masquerade=planned.masquerade if obs.nestnet_masquerade else (),
    )


def from_observation(plan: Plan, hosts: Mapping[str, HostObservation], base: State | None = None) -> State:
    """``base`` (default: the planned State) with the observed hosts in place of the planned ones."""
    state = base or from_plan(plan)
    merged = dict(state.hosts)
    for name, obs in hosts.items():
        merged[name] = observed_host(state.hosts[name], obs)
    return replace(state, hosts=merged)
