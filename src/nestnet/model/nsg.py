"""Network security groups as Azure evaluates them (docs/decisions/0022-nsgs-and-default-routes.md).

Pure: an ``Nsg`` is its user rules; Azure's six default rules (65000, 65001, 65500 each way) are
added by ``rules()``. ``decide(direction, src, dst, tags)`` walks the rules of that direction by
ascending priority and returns the first match (every NSG has a match: DenyAll*Bound).

What the model sends is a ping (ICMP echo). A rule matches it when its protocol is ``*`` or
``Icmp`` and its ports are ``*`` (ICMP has no ports: a rule for port 22 does not match it; an
assumption, marked as such in the decision). Prefixes are CIDRs, addresses, ``*``/``Any`` or the
service tags ``VirtualNetwork``, ``Internet`` and ``AzureLoadBalancer``; any other tag or an
application security group matches nothing here (assumption: those stand for addresses this fabric
does not have).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Literal

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


@dataclass(frozen=True, slots=True)
class Tags:
    """What the service tags stand for in one fabric."""

    virtual_network: tuple[IPv4Network, ...]  # VNet space + peered spaces + user-defined route prefixes

    def in_vnet(self, a: IPv4Address) -> bool:
        return any(a in n for n in self.virtual_network)


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


def matches(r: NsgRule, src: IPv4Address, dst: IPv4Address, tags: Tags) -> bool:
    if r.protocol.lower() not in ("*", "icmp"):
        return False
    if any(p.strip() != "*" for p in (*r.source_ports, *r.destination_ports)):
        return False  # ICMP carries no ports (assumption: a port-specific rule does not match a ping)
    return (any(_prefix_matches(p, src, tags) for p in r.sources)
            and any(_prefix_matches(p, dst, tags) for p in r.destinations))


def decide(nsg: Nsg, direction: Direction, src: IPv4Address, dst: IPv4Address, tags: Tags) -> NsgRule:
    """The rule that decides a new flow ``src -> dst`` in ``direction`` (lowest priority number first)."""
    for r in nsg.ordered(direction):
        if matches(r, src, dst, tags):
            return r
    raise AssertionError("DenyAll*Bound matches everything")  # pragma: no cover
