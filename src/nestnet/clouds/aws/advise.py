"""``nestnet advise --cloud aws``: AWS's modes and limits, each claim one rule with its source.

The seed's trade-offs (NAT hides nested VMs and their addresses) hold on AWS as on Azure; EC2's
building blocks change the rest (DESIGN §5c):

- ``prefix`` (AWS's default and first choice when nested VMs must be reachable): one /28 IPv4
  prefix per host ENI, delivered by EC2 and passing the source/destination check; one address of
  the ENI's limit, no route, so no route-table limit;
- ``routed``: one route per host block in every source subnet's table (50 per table by default,
  up to 1,000), the pool outside the VPC, the source/destination check off on the hosts' ENIs;
- ``secondary-ip``: one secondary address per nested VM, at most the instance type's addresses
  per ENI (primary included);
- ``nat``: nothing in EC2.
"""

from __future__ import annotations

import math
from dataclasses import replace
from ipaddress import IPv4Network
from typing import Mapping

from ...advise import (NAT_WHY, SEED, Advice, Finding, Needs, block_prefix_len, choose, nat_hides_source,
                       nat_no_inbound, none_fits, ruled_out)
from .. import AdviseOption
from .validate import PREFIX_LEN, addresses_per_eni

MODES = ("prefix", "routed", "secondary-ip", "nat")
DEFAULT_TYPE = "c8i.large"  # a nested-virtualization instance type (DESIGN §5c); 20 addresses per ENI
ROUTES_DEFAULT, ROUTES_MAX = 50, 1000  # VPC quotas, "Routes per route table"
QUOTAS = "VPC quotas (routes per route table)"
PREFIXES = "EC2 user guide, Assign prefixes to network interfaces"
ENI_LIMITS = "EC2 user guide, IP addresses per network interface (DescribeInstanceTypes)"
ROUTING = "VPC user guide, Route tables (more specific routes; targets)"

# The seam's Advisor: what `nestnet advise` says of AWS in its help.
ROUTES_HELP = f"AWS: {ROUTES_DEFAULT} by default, up to {ROUTES_MAX:,} by quota"
SUMMARY = ("a mode - prefix, routed, secondary-ip or nat - from the seed document's trade-offs and EC2's limits "
           "(routes per route table, addresses per ENI by instance type)")
OPTIONS = (AdviseOption("--instance-type", "instance_type", "TYPE",
                        f"aws: the hosts' instance type, for the addresses per ENI (default {DEFAULT_TYPE})."),)


def findings(n: Needs, max_routes: int, instance_type: str, per_eni: int | None) -> list[Finding]:
    out: list[Finding] = []
    out += nat_no_inbound(n) + nat_hides_source(n)
    out.append(Finding("nat", True, "nat-no-ec2", "NAT needs no EC2 change (no prefix, route or check) and puts no "
                                                  "EC2 limit on the number of nested VMs", SEED))
    size = 2 ** (32 - PREFIX_LEN)
    if n.vms_per_host > size:
        out.append(Finding("prefix", False, "prefix-per-host", f"each host gets one /{PREFIX_LEN} prefix on its ENI "
                           f"({size} addresses): {n.vms_per_host:,} VMs per host do not fit", PREFIXES))
    else:
        out.append(Finding("prefix", True, "prefix-per-host",
                           f"one /{PREFIX_LEN} IPv4 prefix per host ENI ({n.vms_per_host:,} of its {size} addresses), "
                           "delivered by EC2 and passing the source/destination check: no route, no route limit, "
                           "the check stays on", PREFIXES))
    if per_eni is not None and per_eni < 2:
        out.append(Finding("prefix", False, "prefix-eni-limit", f"a {instance_type} ENI holds {per_eni} address: "
                           "none is left for the prefix", ENI_LIMITS))
    out.append(Finding("prefix", True, "prefix-nitro", "prefixes need Nitro instances; C8i, M8i and R8i (the "
                       "nested-virtualization types) are", PREFIXES))
    if n.hosts > max_routes:
        more = (f"; raise the quota (up to {ROUTES_MAX:,}) and pass --max-routes"
                if n.hosts <= ROUTES_MAX and max_routes < ROUTES_MAX else "")
        out.append(Finding("routed", False, "routed-route-limit", f"routed needs one route per host in every source "
                           f"subnet's table: {n.hosts:,} routes, over the {max_routes:,} a table holds{more}", QUOTAS))
    else:
        out.append(Finding("routed", True, "routed-route-limit",
                           f"one route per host: {n.hosts:,} of a table's {max_routes:,}", QUOTAS))
    out.append(Finding("routed", True, "routed-outside-vpc", "the pool must lie outside the VPC's CIDR blocks (a "
                       "route more specific than the local route must match a whole subnet), and each host ENI's "
                       "source/destination check is turned off", ROUTING))
    if per_eni is None:
        out.append(Finding("secondary-ip", True, "secondary-ip-per-eni", f"{instance_type}'s addresses per ENI are "
                           "unknown to nestnet: check DescribeInstanceTypes", ENI_LIMITS))
    elif n.vms_per_host + 1 > per_eni:
        out.append(Finding("secondary-ip", False, "secondary-ip-per-eni",
                           f"each nested VM is a secondary address of its host's ENI: {n.vms_per_host:,} VMs plus the "
                           f"primary is {n.vms_per_host + 1:,}, over the {per_eni} a {instance_type} ENI holds",
                           ENI_LIMITS))
    else:
        out.append(Finding("secondary-ip", True, "secondary-ip-per-eni",
                           f"{n.vms_per_host + 1:,} of a {instance_type} ENI's {per_eni} addresses", ENI_LIMITS))
    out.append(Finding("secondary-ip", True, "secondary-ip-ec2-per-vm", "every nested VM added or removed is an EC2 "
                       "change (`nestnet aws apply`)", SEED))
    if block_prefix_len(n.vms_per_host) is None:
        out += [Finding(m, False, "block-limit", f"{n.vms_per_host:,} VMs per host do not fit one block", "nestnet")
                for m in MODES]
    return out


def advise(n: Needs, options: Mapping[str, str | None] | None = None) -> Advice:
    """The advice for ``n`` on EC2: ``n.max_routes`` the route tables' quota (None: 50),
    ``options["instance_type"]`` the hosts' instance type (None: c8i.large)."""
    n = replace(n, max_routes=n.max_routes or ROUTES_DEFAULT)
    routes = n.max_routes or ROUTES_DEFAULT
    itype = (options or {}).get("instance_type") or DEFAULT_TYPE
    found = tuple(findings(n, routes, itype, addresses_per_eni(itype)))
    out = ruled_out(found)
    # NAT when nothing needs the VMs' own addresses; else prefixes (no route, no check off),
    # routes, and secondary addresses last (an EC2 change per VM).
    mode = choose(("nat", "prefix", "routed", "secondary-ip"), out)
    if mode is None:
        why = none_fits(MODES, out)
    elif mode == "nat":
        why = NAT_WHY
    elif mode == "prefix":
        why = "nested VMs must be reachable by their own addresses: one ENI prefix per host does it with no route"
    elif mode == "routed":
        why = "more VMs per host than a /28 prefix holds: routes to the hosts' ENIs"
    else:
        why = "neither a prefix per host nor a route table holds this fabric; secondary addresses do"
    return Advice(n, mode, found, why, fragment(mode, n, routes, itype) if mode else "", out, MODES)


def fragment(mode: str, n: Needs, max_routes: int, instance_type: str) -> str:
    bpl = PREFIX_LEN if mode == "prefix" else (block_prefix_len(n.vms_per_host) or 16)
    pool_len = max(0, bpl - math.ceil(math.log2(max(n.hosts, 1))))
    lines = ["aws:", "  region: us-east-1", "  vpc: my-vpc", "  cidr_blocks: [10.0.0.0/16]",
             f"  instance_type: {instance_type}"]
    if mode == "routed":
        lines += ["  route_tables: {hosts-subnet: my-rt}", f"  max_routes: {max_routes}            "
                  f"# one route per host: {n.hosts:,} needed"]
        pool = IPv4Network(f"100.64.0.0/{max(pool_len, 10)}", strict=False)
        note = "outside the VPC: each block is a route to its host's ENI"
    elif mode == "nat":
        pool = IPv4Network(f"192.168.0.0/{max(pool_len, 16)}", strict=False)
        note = "private, outside the VPC: only the host sees these"
    else:
        pool = IPv4Network(f"10.0.128.0/{max(pool_len, 1)}", strict=False)
        note = ("inside the hosts' subnet: each block becomes a prefix of its host's ENI" if mode == "prefix"
                else "inside the hosts' subnet")
    lines += ["nested:", f"  mode: {mode}", f"  pool: {pool}          # {n.hosts:,} hosts x /{bpl} blocks; {note}",
              f"  block_prefix_len: {bpl}", "  guest_style: onlink", "  egress: masquerade-outside-vnet"]
    return "\n".join(lines) + "\n"
