"""What the spec checks need to know of AWS (the cloud seam's ``spec_rules()``): names, the ranges a
VPC refuses, its smallest subnet and reserved addresses, the ``aws:`` section's own checks, what its
modes need of the blocks, and its limits. Messages name the spec's key and value."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from ...errors import Problem
from .plan import PREFIX_MODES

PREFIX_LEN = 28  # EC2 delegates IPv4 prefixes as /28s ("Assign prefixes to network interfaces")
# A subnet's and a host's names in the core (subnets[].name, hosts[].nic) are Name tags or ids.
NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.:/+=@-]{0,253}[A-Za-z0-9_])?$")
# Ranges a VPC cannot use (VPC user guide, "VPC CIDR blocks": multicast, loopback, link-local
# (where the Amazon DNS server and instance metadata live), the broadcast address, 0.0.0.0/8).
AWS_FORBIDDEN_SPACE = tuple(
    IPv4Network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32")
)


def reserved(prefix: IPv4Network) -> tuple[IPv4Address, ...]:
    """The first four and the last address of a subnet (VPC user guide, "Subnet CIDR blocks")."""
    n = prefix.network_address
    return (n, n + 1, n + 2, n + 3, prefix.broadcast_address)


def _in_vpc(spec: Any, net: IPv4Network) -> bool:
    return any(net.overlaps(IPv4Network(c)) for c in spec.aws.cidr_blocks if _net(c))


def _net(text: str) -> IPv4Network | None:
    try:
        return IPv4Network(text)
    except ValueError:
        return None


class AwsSpecRules:
    title = "AWS"
    name_re = NAME_RE
    forbidden_space = AWS_FORBIDDEN_SPACE
    forbidden_why = "which AWS does not allow in a VPC's CIDR blocks"
    smallest_subnet = 28  # a subnet is /16 to /28 (VPC user guide, "Subnet CIDR blocks")
    reserved_why = "first four and last address"

    def reserved(self, prefix: IPv4Network) -> tuple[IPv4Address, ...]:
        return reserved(prefix)

    def name_key(self, name: str) -> str:
        return name  # EC2's ids and tags are case-sensitive

    def address_space(self, spec: Any) -> list[tuple[str, str]]:
        """Where nested addresses are routable: the VPC's CIDR blocks, and in routed mode the pool,
        which lies outside them (routes to an ENI for it are EC2's routed building block)."""
        out = [(f"aws.cidr_blocks[{i}]", text) for i, text in enumerate(spec.aws.cidr_blocks)]
        if spec.nested.mode == "routed":
            out.append(("nested.pool", spec.nested.pool))
        return out

    def check_section(self, spec: Any, p: list[Problem]) -> None:
        aws = spec.aws
        for i, c in enumerate(aws.cidr_blocks):
            net = _net(c)
            if net is None:
                p.append(Problem(f"aws.cidr_blocks[{i}]", f"{c!r} is not an IPv4 network (e.g. 10.0.0.0/16)"))
            elif not 16 <= net.prefixlen <= 28:
                p.append(Problem(f"aws.cidr_blocks[{i}]", f"{c}: a VPC CIDR block is /16 to /28"))
        names = {s.name for s in spec.subnets}
        for key in ("route_tables", "subnet_ids"):
            for s in getattr(aws, key):
                if s not in names:
                    p.append(Problem(f"aws.{key}.{s}", f"{s!r} is not a subnet of the spec (subnets[].name)"))
        hosts = {h.name for h in spec.hosts}
        for h in aws.instances:
            if h not in hosts:
                p.append(Problem(f"aws.instances.{h}", f"{h!r} is not a host of the spec (hosts[].name)"))
        for s in aws.internet:
            if s not in names:
                p.append(Problem(f"aws.internet.{s}", f"{s!r} is not a subnet of the spec (subnets[].name)"))
        nodes = hosts | {e.name for e in spec.endpoints}
        for i, n in enumerate(aws.public_ips):
            if n not in nodes:
                p.append(Problem(f"aws.public_ips[{i}]", f"{n!r} is not a host or endpoint of the spec"))
        if spec.nested.mode == "routed":
            missing = [s.name for s in spec.subnets if s.route_table and s.name not in aws.route_tables]
            if missing:
                p.append(Problem("aws.route_tables", f"routed mode writes a route per host block into the route table "
                                                     f"of every source subnet: name the table of {', '.join(missing)}"))

    def check_blocks(self, spec: Any, p: list[Problem]) -> None:
        nested = spec.nested
        pool = _net(nested.pool)
        if nested.mode in PREFIX_MODES:
            if nested.block_prefix_len != PREFIX_LEN:
                p.append(Problem("nested.block_prefix_len", f"{nested.block_prefix_len}: prefix mode gives each host "
                                 f"one ENI IPv4 prefix, and EC2 delegates only /{PREFIX_LEN}s: set it to {PREFIX_LEN}"))
            if pool is not None and not any(pool.subnet_of(IPv4Network(c)) for c in spec.aws.cidr_blocks if _net(c)):
                p.append(Problem("nested.pool", f"{pool}: prefix mode takes the hosts' blocks from their subnets, so "
                                 "the pool must lie inside the VPC's CIDR blocks"))
        elif nested.mode == "routed" and pool is not None and _in_vpc(spec, pool):
            p.append(Problem("nested.pool", f"{pool} overlaps the VPC's CIDR blocks: a route more specific than the "
                             "VPC's local route must match a whole subnet, so routed mode needs a pool outside "
                             "aws.cidr_blocks (e.g. 100.64.0.0/24); or use prefix mode"))

    def check_limits(self, spec: Any, p: list[Problem]) -> None:
        aws = spec.aws
        if spec.nested.mode == "routed" and len(spec.hosts) > aws.max_routes:
            p.append(Problem("hosts", f"{len(spec.hosts)} hosts need {len(spec.hosts)} routes per route table, more "
                             f"than aws.max_routes={aws.max_routes} (EC2's quota is 50 by default, up to 1,000); "
                             "raise the quota and max_routes, or use prefix mode (no routes)"))
        limit = addresses_per_eni(aws.instance_type)
        if limit is None:
            return
        if spec.nested.mode == "secondary-ip":
            per_host: dict[str, int] = {}
            for v in spec.vms:
                per_host[v.host] = per_host.get(v.host, 0) + 1
            for h, n in per_host.items():
                if n + 1 > limit:
                    p.append(Problem("vms", f"host {h!r} has {n} VMs: with its primary that is {n + 1} addresses on "
                                     f"its ENI, over the {limit} a {aws.instance_type} allows; use prefix mode"))

    def route_limit(self, spec: Any) -> tuple[int, str]:
        return spec.aws.max_routes, "aws.max_routes"

    def low_block_why(self, mode: str) -> str | None:
        """EC2 picks a new interface's address among the subnet's free ones (which one it does not
        say; EC2 user guide "Amazon EC2 instance IP addressing"). An assigned prefix's addresses are
        the ENI's and EC2 gives them to no other interface, and before that `aws apply` stops at
        EC2's refusal of an overlapping prefix (one line): no risk in prefix mode. Secondary
        addresses not yet assigned can be taken; an explicit subnet CIDR reservation keeps EC2's
        auto-assignment out of a range (VPC user guide "Subnet CIDR reservations")."""
        if mode != "secondary-ip":
            return None
        return ("EC2 gives a new network interface any free address of the subnet, so give network interfaces "
                "static addresses or reserve the pool (an explicit subnet CIDR reservation)")


def addresses_per_eni(instance_type: str | None) -> int | None:
    """``Ipv4AddressesPerInterface`` of an instance type, from the copy of EC2's
    ``DescribeInstanceTypes`` that moto ships; None when unknown."""
    if not instance_type:
        return None
    try:
        from moto.ec2.models.instance_types import INSTANCE_TYPES
    except ImportError:  # pragma: no cover - moto is a dependency
        return None
    info = INSTANCE_TYPES.get(instance_type) or {}
    limit = (info.get("NetworkInfo") or {}).get("Ipv4AddressesPerInterface")
    return int(limit) if limit else None


RULES = AwsSpecRules()
