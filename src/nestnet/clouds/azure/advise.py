"""``nestnet advise`` on Azure: which mode - ``routed``, ``nat``, ``secondary-ip`` or ``nic-prefix`` - fits.

Every claim is one rule below (a function of the needs, tested in tests/azure/test_azure_advise.py) and
names its source: the seed document's trade-offs ("Alternative Solutions" and "Recommendation")
or Azure's published limits (docs/decisions/0014-diagram-report-advise-demo.md cites them). The choice
follows the seed's recommendation: NAT for simplicity when nothing outside a host must reach a
nested VM or see its address; routes when something must; secondary IPs when routes cannot serve
(more hosts than a route table holds) and the NICs can hold every VM; Azure's NIC prefixes (one /28
ip configuration per host, docs/decisions/0028) when not even those fit - last, since no source
confirms that "Prefix on NIC" is generally available for ordinary VMs.

The module is the seam's ``Advisor`` for Azure (``nestnet.clouds.advisor("azure")``); the needs,
findings, the seed's NAT rules and the choice are the core's (``nestnet.advise``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from ipaddress import IPv4Network
from typing import Callable, Mapping

from ...advise import (BLOCK_MIN_LEN, NAT_WHY, SEED, Advice, Finding, Needs, block_prefix_len, choose,
                       nat_hides_source, nat_no_inbound, none_fits, ruled_out)
from .. import AdviseOption

MODES = ("routed", "nat", "secondary-ip", "nic-prefix")

# Azure's limits (Microsoft Learn, "Azure subscription and service limits": networking limits).
ROUTES_PER_TABLE = 400  # "User-defined routes per route table"
ROUTES_PER_TABLE_MAX = 1000  # what nestnet's azure.max_routes accepts; see decision 0014
IP_CONFIGS_PER_NIC = 256  # "Private IP addresses per network interface"
PRIVATE_IPS_PER_VNET = 65536  # "Private IP addresses per virtual network"
AZURE_RESERVED_PER_SUBNET = 5  # the first four and the last address of every subnet

NIC_PREFIX_LEN = 28  # Azure takes only /28 prefixes on a NIC (clouds/azure/facts.py)

PREFIX_SRC = "Azure REST API NetworkInterfaceCreate example, azure-cli #30837"
LIMITS = "Azure limits (networking)"

# The seam's Advisor: what `nestnet advise` says of Azure in its help, and its route limits.
ROUTES_DEFAULT, ROUTES_MAX = ROUTES_PER_TABLE, ROUTES_PER_TABLE_MAX
ROUTES_HELP = "Azure: 400; 1,000 where allowed"  # --max-routes's help, for the default cloud
SUMMARY = ("a mode - routed, nat or secondary-ip - from the seed document's trade-offs and Azure's limits (routes "
           "per route table, IP configurations per NIC)")
OPTIONS: tuple[AdviseOption, ...] = ()


# ---------------------------------------------------------------- the rules

Rule = Callable[[Needs], list[Finding]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


rule(nat_no_inbound)  # the seed's trade-offs, the same in every cloud
rule(nat_hides_source)


@rule
def nat_no_azure(n: Needs) -> list[Finding]:
    return [Finding("nat", True, "nat-no-azure",
                    "NAT needs no Azure change (no route table, no IP forwarding, no IP configurations) and "
                    "puts no Azure limit on the number of nested VMs", SEED)]


@rule
def routed_route_limit(n: Needs) -> list[Finding]:
    limit = n.max_routes or ROUTES_PER_TABLE
    if n.hosts > limit:
        more = (f"; regions that allow {ROUTES_PER_TABLE_MAX:,} routes fit it (--max-routes {ROUTES_PER_TABLE_MAX})"
                if n.hosts <= ROUTES_PER_TABLE_MAX and limit < ROUTES_PER_TABLE_MAX else "")
        return [Finding("routed", False, "routed-route-limit",
                        f"routed needs one user route per host: {n.hosts:,} routes, over the route table's limit "
                        f"of {limit:,}{more}", LIMITS)]
    return [Finding("routed", True, "routed-route-limit",
                    f"one user route per host: {n.hosts:,} of the route table's {limit:,}", LIMITS)]


@rule
def routed_inbound(n: Needs) -> list[Finding]:
    return [Finding("routed", True, "routed-inbound",
                    "routes make every nested VM reachable by its own address from the whole VNet, with source "
                    "IPs preserved", SEED)]


@rule
def routed_forwarding(n: Needs) -> list[Finding]:
    return [Finding("routed", True, "routed-forwarding",
                    "each host NIC needs IP forwarding on (Azure then skips its source/destination check) and "
                    "each host a fixed block of addresses, which nestnet plans", SEED)]


@rule
def secondary_ip_per_nic(n: Needs) -> list[Finding]:
    used = n.vms_per_host + 1  # the primary IP configuration counts
    if used > IP_CONFIGS_PER_NIC:
        return [Finding("secondary-ip", False, "secondary-ip-per-nic",
                        f"each nested VM is an IP configuration of its host's NIC: {n.vms_per_host:,} VMs plus the "
                        f"primary is {used:,}, over Azure's {IP_CONFIGS_PER_NIC} per NIC", LIMITS)]
    return [Finding("secondary-ip", True, "secondary-ip-per-nic",
                    f"{used:,} of a NIC's {IP_CONFIGS_PER_NIC} IP configurations per host", LIMITS)]


@rule
def secondary_ip_per_vnet(n: Needs) -> list[Finding]:
    total = n.hosts * (n.vms_per_host + 1)
    if total > PRIVATE_IPS_PER_VNET:
        return [Finding("secondary-ip", False, "secondary-ip-per-vnet",
                        f"{total:,} private IP addresses (hosts and nested VMs), over Azure's "
                        f"{PRIVATE_IPS_PER_VNET:,} per virtual network", LIMITS)]
    return []


@rule
def secondary_ip_azure_per_vm(n: Needs) -> list[Finding]:
    return [Finding("secondary-ip", True, "secondary-ip-azure-per-vm",
                    "Azure knows every nested address and no special routing is needed, but every nested VM "
                    "added or removed is an Azure change (IPs allocated up front, `nestnet azure apply`)", SEED)]


@rule
def nic_prefix_per_host(n: Needs) -> list[Finding]:
    size = 2 ** (32 - NIC_PREFIX_LEN)
    if n.vms_per_host > size:
        return [Finding("nic-prefix", False, "nic-prefix-per-host",
                        f"each host gets one /{NIC_PREFIX_LEN} prefix on its NIC ({size} addresses): "
                        f"{n.vms_per_host:,} VMs per host do not fit", PREFIX_SRC)]
    return [Finding("nic-prefix", True, "nic-prefix-per-host",
                    f"one /{NIC_PREFIX_LEN} prefix ip configuration per host NIC ({n.vms_per_host:,} of its {size} "
                    f"addresses; 2 of a NIC's {IP_CONFIGS_PER_NIC} IP configurations): no route table, so no "
                    f"limit of {ROUTES_PER_TABLE:,}/{ROUTES_PER_TABLE_MAX:,} routes, and no IP forwarding", PREFIX_SRC)]


@rule
def nic_prefix_per_vnet(n: Needs) -> list[Finding]:
    # A prefix counts as one private IP against the VNet's limit (Microsoft Learn, AKS
    # PodIPAllocationMode.StaticBlock: "The block, rather than a single IP, counts against the Azure
    # Vnet Private IP limit of 65K"); what remains is the address space the blocks fill.
    count = n.hosts * 2  # the primary and the prefix
    if count > PRIVATE_IPS_PER_VNET:
        return [Finding("nic-prefix", False, "nic-prefix-per-vnet",
                        f"{n.hosts:,} hosts are {count:,} private IP configurations (a primary and a prefix each), "
                        f"over Azure's {PRIVATE_IPS_PER_VNET:,} per virtual network: split the fabric", LIMITS)]
    need = n.hosts * (1 + 2 ** (32 - NIC_PREFIX_LEN)) + AZURE_RESERVED_PER_SUBNET
    return [Finding("nic-prefix", True, "nic-prefix-per-vnet",
                    f"{count:,} of the virtual network's {PRIVATE_IPS_PER_VNET:,} private IPs (a prefix counts as "
                    f"one); the hosts' subnet needs {need:,} addresses, a /{32 - math.ceil(math.log2(need))} or "
                    "larger", LIMITS)]


@rule
def nic_prefix_unconfirmed(n: Needs) -> list[Finding]:
    return [Finding("nic-prefix", True, "nic-prefix-unconfirmed",
                    "Azure writes one NIC per host added, never per VM; but no Microsoft page found says \"Prefix "
                    "on NIC\" is generally available for ordinary VMs (AKS's static block allocation that uses it "
                    "is preview): try it in your region first (ASSUMPTION)", PREFIX_SRC)]


@rule
def block_limit(n: Needs) -> list[Finding]:
    if block_prefix_len(n.vms_per_host) is None:
        return [Finding(m, False, "block-limit",
                        f"{n.vms_per_host:,} VMs per host do not fit one block (at most a /{BLOCK_MIN_LEN})", "nestnet")
                for m in MODES]
    return []


# ---------------------------------------------------------------- the choice


def advise(n: Needs, options: Mapping[str, str | None] | None = None) -> Advice:
    n = replace(n, max_routes=n.max_routes or ROUTES_PER_TABLE)
    findings = tuple(f for r in RULES for f in r(n))
    out = ruled_out(findings)
    # The seed's recommendation: NAT for simplicity when it serves; routes when inbound or the
    # source address matters; secondary IPs when the route table cannot hold every host; NIC
    # prefixes last (their general availability is not confirmed).
    mode = choose(("nat", "routed", "secondary-ip", "nic-prefix"), out)
    if mode is None:
        why = none_fits(MODES, out)
    elif mode == "nat":
        why = NAT_WHY
    elif mode == "routed":
        why = "nested VMs must be reachable by their own addresses" + (
            "" if n.inbound or n.keep_source_ip else " (NAT cannot serve your numbers)")
    elif mode == "secondary-ip":
        why = "routed cannot hold every host in one route table; secondary IP configurations can hold every VM"
    else:
        why = ("neither one route table nor the NICs' IP configurations hold this fabric; one /28 prefix per host "
               "NIC does (no route limit), if Azure offers NIC prefixes in your region")
    return Advice(n, mode, findings, why, fragment(mode, n) if mode else "", out, MODES)


def fragment(mode: str, n: Needs) -> str:
    """The spec keys for ``mode`` sized for ``n`` (YAML, with the reasoning in comments)."""
    bpl = block_prefix_len(n.vms_per_host) or BLOCK_MIN_LEN
    pool_len = max(0, bpl - math.ceil(math.log2(max(n.hosts, 1))))
    lines: list[str] = []
    if mode == "routed":
        lines += [
            "azure:",
            "  route_table: nested-vm-routes",
            f"  max_routes: {n.max_routes}            # one route per host: {n.hosts:,} needed",
        ]
    if mode == "nat":
        pool = IPv4Network(f"192.168.0.0/{max(pool_len, 16)}", strict=False) if pool_len >= 16 else IPv4Network(
            f"172.16.0.0/{max(pool_len, 12)}", strict=False)
        pool_note = "private, outside the VNet: only the host sees these"
    elif mode == "secondary-ip":
        need = n.hosts * (n.vms_per_host + 1) + AZURE_RESERVED_PER_SUBNET
        sub_len = 32 - math.ceil(math.log2(need))
        pool = IPv4Network(f"10.0.128.0/{max(pool_len, 1)}", strict=False)
        pool_note = f"inside the hosts' subnet, which needs a /{sub_len} or larger"
    elif mode == "nic-prefix":
        bpl = NIC_PREFIX_LEN
        pool_len = max(0, bpl - math.ceil(math.log2(max(n.hosts, 1))))
        pool = IPv4Network(f"10.0.128.0/{max(pool_len, 1)}", strict=False)
        pool_note = "inside the hosts' subnet: each block becomes a prefix of its host's NIC"
    else:
        pool = IPv4Network(f"10.0.128.0/{max(pool_len, 1)}", strict=False)
        pool_note = "a free range of the VNet, high in the hosts' subnet or beside it"
    lines += [
        "nested:",
        f"  mode: {mode}",
        f"  pool: {pool}          # {n.hosts:,} hosts x /{bpl} blocks; {pool_note}",
        f"  block_prefix_len: {bpl}          # {2 ** (32 - bpl):,} addresses per host, for {n.vms_per_host:,} VMs",
        "  guest_style: onlink",
        "  egress: masquerade-outside-vnet",
    ]
    return "\n".join(lines) + "\n"
