"""``nestnet advise``: which mode - ``routed``, ``nat``, ``secondary-ip`` or ``nic-prefix`` - fits what you need.

Every claim is one rule below (a function of the needs, tested in tests/viz/test_advise.py) and
names its source: the seed document's trade-offs ("Alternative Solutions" and "Recommendation")
or Azure's published limits (docs/decisions/0014-diagram-report-advise-demo.md cites them). The choice
follows the seed's recommendation: NAT for simplicity when nothing outside a host must reach a
nested VM or see its address; routes when something must; secondary IPs when routes cannot serve
(more hosts than a route table holds) and the NICs can hold every VM; Azure's NIC prefixes (one /28
ip configuration per host, docs/decisions/0028) when not even those fit - last, since no source
confirms that "Prefix on NIC" is generally available for ordinary VMs.

``not_served(plan, src, dst)`` is the same knowledge applied to one pair of a plan: the pairs a
mode cannot serve by design (``nestnet lab demo`` expects exactly those to fail).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Callable

MODES = ("routed", "nat", "secondary-ip", "nic-prefix")

# Azure's limits (Microsoft Learn, "Azure subscription and service limits": networking limits).
ROUTES_PER_TABLE = 400  # "User-defined routes per route table"
ROUTES_PER_TABLE_MAX = 1000  # what nestnet's azure.max_routes accepts; see decision 0014
IP_CONFIGS_PER_NIC = 256  # "Private IP addresses per network interface"
PRIVATE_IPS_PER_VNET = 65536  # "Private IP addresses per virtual network"
AZURE_RESERVED_PER_SUBNET = 5  # the first four and the last address of every subnet
BLOCK_MIN_LEN, BLOCK_MAX_LEN = 16, 30  # nested.block_prefix_len's range in the spec

NIC_PREFIX_LEN = 28  # Azure takes only /28 prefixes on a NIC (clouds/azure/facts.py)

SEED = "seed, Alternative Solutions"
PREFIX_SRC = "Azure REST API NetworkInterfaceCreate example, azure-cli #30837"
LIMITS = "Azure limits (networking)"


@dataclass(frozen=True)
class Needs:
    inbound: bool = True  # something outside a host opens connections to its nested VMs
    keep_source_ip: bool = True  # other machines see a nested VM's own address
    vms_per_host: int = 16
    hosts: int = 2
    max_routes: int = ROUTES_PER_TABLE  # the region's route-table limit (400, or 1,000 where allowed)


@dataclass(frozen=True)
class Finding:
    mode: str
    fits: bool  # False: this rule rules the mode out
    rule: str
    text: str
    source: str

    def to_dict(self) -> dict:
        return {"mode": self.mode, "fits": self.fits, "rule": self.rule, "text": self.text, "source": self.source}


# ---------------------------------------------------------------- the rules

Rule = Callable[[Needs], list[Finding]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


def block_prefix_len(vms_per_host: int) -> int | None:
    """The longest block prefix holding ``vms_per_host`` addresses; None when no allowed block does."""
    need = max(vms_per_host, 1)
    length = 32 - math.ceil(math.log2(need)) if need > 1 else BLOCK_MAX_LEN
    length = min(length, BLOCK_MAX_LEN)
    return length if length >= BLOCK_MIN_LEN else None


@rule
def nat_no_inbound(n: Needs) -> list[Finding]:
    if n.inbound:
        return [Finding("nat", False, "nat-no-inbound",
                        "NAT hides nested VMs behind their host's address: nothing outside the host can open a "
                        "connection to them, and you need inbound", SEED)]
    return [Finding("nat", True, "nat-no-inbound",
                    "nested VMs open every connection themselves, which NAT serves", SEED)]


@rule
def nat_hides_source(n: Needs) -> list[Finding]:
    if n.keep_source_ip:
        return [Finding("nat", False, "nat-hides-source",
                        "with NAT all nested traffic appears to come from the host's IP (source IP visibility "
                        "is lost), and you need the VM's own address seen", SEED)]
    return []


@rule
def nat_no_azure(n: Needs) -> list[Finding]:
    return [Finding("nat", True, "nat-no-azure",
                    "NAT needs no Azure change (no route table, no IP forwarding, no IP configurations) and "
                    "puts no Azure limit on the number of nested VMs", SEED)]


@rule
def routed_route_limit(n: Needs) -> list[Finding]:
    if n.hosts > n.max_routes:
        more = (f"; regions that allow {ROUTES_PER_TABLE_MAX:,} routes fit it (--max-routes {ROUTES_PER_TABLE_MAX})"
                if n.hosts <= ROUTES_PER_TABLE_MAX and n.max_routes < ROUTES_PER_TABLE_MAX else "")
        return [Finding("routed", False, "routed-route-limit",
                        f"routed needs one user route per host: {n.hosts:,} routes, over the route table's limit "
                        f"of {n.max_routes:,}{more}", LIMITS)]
    return [Finding("routed", True, "routed-route-limit",
                    f"one user route per host: {n.hosts:,} of the route table's {n.max_routes:,}", LIMITS)]


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


@dataclass(frozen=True)
class Advice:
    needs: Needs
    mode: str | None  # None: no mode fits
    findings: tuple[Finding, ...]
    why: str
    fragment: str = ""
    ruled_out: dict[str, list[str]] = field(default_factory=dict)
    modes: tuple[str, ...] = MODES  # the cloud's modes, in the order they are shown

    def to_dict(self) -> dict:
        return {
            "needs": self.needs.__dict__,
            "mode": self.mode,
            "why": self.why,
            "modes": {
                m: {
                    "fits": m not in self.ruled_out,
                    "findings": [f.to_dict() for f in self.findings if f.mode == m],
                }
                for m in self.modes
            },
            "fragment": self.fragment,
        }


def advise(n: Needs) -> Advice:
    findings = tuple(f for r in RULES for f in r(n))
    out: dict[str, list[str]] = {}
    for f in findings:
        if not f.fits:
            out.setdefault(f.mode, []).append(f.rule)
    fits = [m for m in MODES if m not in out]
    # The seed's recommendation: NAT for simplicity when it serves; routes when inbound or the
    # source address matters; secondary IPs when the route table cannot hold every host; NIC
    # prefixes last (their general availability is not confirmed).
    order = ("nat", "routed", "secondary-ip", "nic-prefix")
    mode = next((m for m in order if m in fits), None)
    if mode is None:
        why = "; ".join(f"{m}: {', '.join(out[m])}" for m in MODES)
    elif mode == "nat":
        why = "nothing outside a host must reach its nested VMs or see their addresses: NAT is the simplest"
    elif mode == "routed":
        why = "nested VMs must be reachable by their own addresses" + (
            "" if n.inbound or n.keep_source_ip else " (NAT cannot serve your numbers)")
    elif mode == "secondary-ip":
        why = "routed cannot hold every host in one route table; secondary IP configurations can hold every VM"
    else:
        why = ("neither one route table nor the NICs' IP configurations hold this fabric; one /28 prefix per host "
               "NIC does (no route limit), if Azure offers NIC prefixes in your region")
    return Advice(n, mode, findings, why, fragment(mode, n) if mode else "", out)


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


# ---------------------------------------------------------------- one pair of a plan


def design_rule(plan, src: str, dst: str) -> str:
    """``not_served``'s rule in words that hold for every pair it covers ("" when the pair
    should work): what ``check`` and the report print once for a whole group."""
    if not not_served(plan, src, dst):
        return ""
    if plan.mode == "nat":
        return ("NAT: a nested VM is reachable only from its own host and that host's VMs; inbound from elsewhere "
                "needs a port forward (vms[].forwards) or mode routed")
    return "egress: none: nested VMs' addresses are not translated for the internet (egress: masquerade-outside-vnet)"


def not_served(plan, src: str, dst: str) -> str:
    """Why ``plan``'s mode cannot serve ``src`` -> ``dst`` by design; "" when it should work.

    - nat: a nested VM is reachable only from its own host and that host's other VMs (the
      seed: "can't receive inbound connections from outside their KVM host");
    - routed with ``egress: none``: a nested VM's address is not translated for the internet
      (Azure's default outbound access serves NIC addresses only; DESIGN §3.9).
    """
    vm = plan.vms.get(dst)
    if plan.mode == "nat" and vm is not None:
        own = src == vm.host or (src in plan.vms and plan.vms[src].host == vm.host)
        if not own:
            return f"nat: {dst} sits behind {vm.host}'s NAT; only {vm.host} and its VMs can reach it"
    if plan.mode == "routed" and plan.egress == "none" and src in plan.vms and dst == "internet":
        return f"egress: none: {src}'s address is not translated for the internet"
    return ""
