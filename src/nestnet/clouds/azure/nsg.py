"""Network security groups as Azure evaluates them (docs/decisions/0022-nsgs-and-default-routes.md).

Pure: an ``Nsg`` is its user rules; Azure's six default rules (65000, 65001, 65500 each way) are
added by ``Nsg.ordered()``. ``decide(direction, src, dst, tags, probe, reply)`` walks the rules of that
direction by ascending priority and returns the first match (every NSG has a match: DenyAll*Bound).

What the model sends is a ``Probe`` (``nestnet.model.probe``): a ping (ICMP echo, the default) or a TCP/UDP connection to one
destination port from an ephemeral source port. A rule matches a packet when its protocol is
``*`` or the probe's, its prefixes match the addresses and its port ranges the ports:

- ICMP has no ports: a rule naming ports (even with protocol ``*``) does not match a ping.
- TCP/UDP: the known port (the probe's, the request's destination or the reply's source) must
  lie in the rule's ranges. The client's ephemeral port is unknown (EPHEMERAL: any of
  32768-65535, Linux's and Windows' ranges together), so a rule naming specific ports on that
  side is judged for the worst case: an Allow matches only when its ranges cover all of
  EPHEMERAL, a Deny whenever they overlap it. The model then never passes what Azure might drop
  (an assumption, marked as such in the decision).

Prefixes are CIDRs, addresses, ``*``/``Any`` or the service tags ``VirtualNetwork``, ``Internet``
and ``AzureLoadBalancer``; any other tag or an application security group matches nothing here
(assumption: those stand for addresses this fabric does not have).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Literal

from ...model.probe import EPHEMERAL, ICMP, PROTOCOLS, Probe
from ...model.state import Tags

__all__ = ["EPHEMERAL", "ICMP", "PROTOCOLS", "Probe", "Tags", "Direction", "NsgRule", "Nsg", "DEFAULT_RULES",
           "AZURE_LOAD_BALANCER", "matches", "decide"]

Direction = Literal["Inbound", "Outbound"]

# Microsoft Learn, "Network security groups" -> "Default security rules".
AZURE_LOAD_BALANCER = IPv4Address("168.63.129.16")  # the probe source the AzureLoadBalancer tag names


@dataclass(frozen=True, slots=True)
class NsgRule:
    name: str
    priority: int
    direction: Direction
    access: Literal["Allow", "Deny"]
    protocol: str = "*"
    sources: tuple[str, ...] = ("*",)
    destinations: tuple[str, ...] = ("*",)
    source_ports: tuple[str, ...] = ("*",)
    destination_ports: tuple[str, ...] = ("*",)
    default: bool = False


DEFAULT_RULES = (
    NsgRule("AllowVnetInBound", 65000, "Inbound", "Allow", "*", ("VirtualNetwork",), ("VirtualNetwork",), default=True),
    NsgRule("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow", "*", ("AzureLoadBalancer",), ("*",), default=True),
    NsgRule("DenyAllInBound", 65500, "Inbound", "Deny", default=True),
    NsgRule("AllowVnetOutBound", 65000, "Outbound", "Allow", "*", ("VirtualNetwork",), ("VirtualNetwork",), default=True),
    NsgRule("AllowInternetOutBound", 65001, "Outbound", "Allow", "*", ("*",), ("Internet",), default=True),
    NsgRule("DenyAllOutBound", 65500, "Outbound", "Deny", default=True),
)


@dataclass(frozen=True, slots=True)
class Nsg:
    name: str
    rules: tuple[NsgRule, ...] = ()  # the user's security rules (defaults come from DEFAULT_RULES)

    def ordered(self, direction: Direction) -> tuple[NsgRule, ...]:
        return tuple(sorted((r for r in (*self.rules, *DEFAULT_RULES) if r.direction == direction),
                            key=lambda r: (r.priority, r.default)))


def _prefix_matches(p: str, a: IPv4Address, tags: Tags) -> bool:
    t = p.strip()
    low = t.lower()
    if low in ("*", "any", "0.0.0.0/0"):
        return True
    if low == "virtualnetwork":
        return tags.in_vnet(a)
    if low == "internet":
        # "the IP address space that's outside the virtual network and reachable by the public internet"
        # (the model's and the lab's internet are documentation ranges standing in for it)
        return not tags.in_vnet(a)
    if low == "azureloadbalancer":
        return a == AZURE_LOAD_BALANCER
    try:
        return a in IPv4Network(t, strict=False)
    except ValueError:
        return False  # another service tag, an ASG, IPv6: none of this fabric's addresses


def _port_bounds(ranges: tuple[str, ...]) -> list[tuple[int, int]] | None:
    """The rule's port ranges as (low, high); None for ``*`` (any port)."""
    out = []
    for r in ranges:
        t = r.strip()
        if t in ("*", "0-65535"):
            return None
        low, _, high = t.partition("-")
        try:
            out.append((int(low), int(high or low)))
        except ValueError:
            continue  # malformed: Azure refuses it at write time; here it names no port
    return out


def _ports_match(ranges: tuple[str, ...], port: int | None, allow: bool) -> bool:
    """``port`` None: the client's ephemeral port, judged for the worst case (see the module doc)."""
    bounds = _port_bounds(ranges)
    if bounds is None:
        return True
    if port is not None:
        return any(lo <= port <= hi for lo, hi in bounds)
    lo_e, hi_e = EPHEMERAL
    if allow:  # every ephemeral port covered (ranges are few: walk the covered stretch)
        at = lo_e
        for lo, hi in sorted(bounds):
            if lo <= at <= hi:
                at = hi + 1
        return at > hi_e
    return any(lo <= hi_e and hi >= lo_e for lo, hi in bounds)


def matches(r: NsgRule, src: IPv4Address, dst: IPv4Address, tags: Tags, probe: Probe = ICMP,
            reply: bool = False) -> bool:
    """Does ``r`` match a packet of ``probe``'s flow from ``src`` to ``dst`` (``reply``: the
    answer, its ports swapped: source the probe's port, destination the ephemeral one)?"""
    proto = r.protocol.lower()
    if proto != "*" and proto != probe.protocol:
        return False  # Esp, Ah and the other protocols' rules never match the probe
    if probe.port is None:
        if any(p.strip() != "*" for p in (*r.source_ports, *r.destination_ports)):
            return False  # ICMP carries no ports (assumption: a port-specific rule does not match a ping)
    else:
        allow = r.access == "Allow"
        sport, dport = (probe.port, None) if reply else (None, probe.port)
        if not (_ports_match(r.source_ports, sport, allow) and _ports_match(r.destination_ports, dport, allow)):
            return False
    return (any(_prefix_matches(p, src, tags) for p in r.sources)
            and any(_prefix_matches(p, dst, tags) for p in r.destinations))


def decide(nsg: Nsg, direction: Direction, src: IPv4Address, dst: IPv4Address, tags: Tags,
           probe: Probe = ICMP, reply: bool = False) -> NsgRule:
    """The rule that decides a new flow's packet ``src -> dst`` in ``direction`` (lowest priority
    number first)."""
    for r in nsg.ordered(direction):
        if matches(r, src, dst, tags, probe, reply):
            return r
    raise AssertionError("DenyAll*Bound matches everything")  # pragma: no cover
