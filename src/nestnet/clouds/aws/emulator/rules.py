"""What EC2 does that moto does not, on moto's own backend objects.

moto (getmoto/moto 5.2) keeps VPCs, subnets, ENIs, instances and route tables, but ignores IPv4
prefixes on ENIs, counts no addresses against an instance type's limit, accepts any route, limits
no route table and shows every route ``active``. This module adds, each with its source in
docs/decisions/0030-aws-emulator-fidelity.md:

- IPv4 prefixes on ENIs (``AssignPrivateIpAddresses`` / ``UnassignPrivateIpAddresses`` with
  ``Ipv4Prefix.N`` or ``Ipv4PrefixCount``): /28s inside the ENI's subnet, clear of the subnet's
  reserved addresses and of every address and prefix of the subnet, stored on the ENI where
  ``DescribeNetworkInterfaces`` (and ``DescribeInstances``) show them as ``Ipv4Prefixes``;
- the addresses per ENI of the attached instance's type (moto ships AWS's instance-type data):
  private addresses plus prefixes, each prefix counting as one (``PrivateIpAddressLimitExceeded``);
- a secondary address already used in the subnet (``InvalidIPAddress.InUse``, unless
  ``AllowReassignment``) or outside it (``InvalidParameterValue``);
- routes more specific than the VPC's local route must match a whole subnet of the VPC and target
  an ENI, a NAT gateway or a Gateway Load Balancer endpoint (``InvalidParameterValue``);
- routes per table (``RouteLimitExceeded``; 50 by default, IPv4 counted apart from IPv6, the local
  route not counted);
- ``blackhole``: a route to an ENI that was deleted or is not attached to an instance.

Everything here runs under the front's lock, so a check and the write it guards are one step.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, ip_network
from typing import Any

PREFIX_LEN = 28  # EC2 delegates IPv4 prefixes as /28s ("Assign prefixes to network interfaces")
DEFAULT_MAX_ROUTES = 50  # VPC quotas: "Routes per route table (non-propagated routes)", default 50
MORE_SPECIFIC_TARGETS = ("NetworkInterfaceId", "NatGatewayId", "VpcEndpointId")


class Ec2Failure(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


def _bad(message: str) -> Ec2Failure:
    return Ec2Failure("InvalidParameterValue", message)


def _net(value: str, what: str) -> IPv4Network:
    try:
        return IPv4Network(value, strict=True)
    except ValueError:
        raise _bad(f"Value ({value}) for parameter {what} is invalid. This is not a valid IPv4 CIDR block.") from None


def eni_of(backend: Any, eni_id: str) -> Any:
    eni = backend.enis.get(eni_id)
    if eni is None:
        raise Ec2Failure("InvalidNetworkInterfaceID.NotFound", f"The networkInterface ID '{eni_id}' does not exist")
    return eni


def prefixes_of(eni: Any) -> list[str]:
    return [p["Ipv4Prefix"] for p in getattr(eni, "ipv4_prefixes", None) or []]


def _set_prefixes(eni: Any, prefixes: list[str]) -> None:
    # moto's serializer picks ``ipv4_prefixes`` for the ``Ipv4Prefixes`` member of its answers.
    eni.ipv4_prefixes = [{"Ipv4Prefix": p} for p in prefixes]


def address_limit(eni: Any) -> int | None:
    """Private IPv4 addresses (prefixes counted as one each) the ENI may have: its instance type's
    ``Ipv4AddressesPerInterface``; None while it is attached to no instance (checked when it is)."""
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    inst = getattr(eni, "instance", None)
    if inst is None:
        return None
    info = INSTANCE_TYPES.get(getattr(inst, "instance_type", ""), {})
    limit = (info.get("NetworkInfo") or {}).get("Ipv4AddressesPerInterface")
    return int(limit) if limit else None


def _used(eni: Any) -> int:
    return len(eni.private_ip_addresses) + len(prefixes_of(eni))


def _check_limit(eni: Any, adding: int) -> None:
    limit = address_limit(eni)
    if limit is not None and _used(eni) + adding > limit:
        raise Ec2Failure(
            "PrivateIpAddressLimitExceeded",
            f"Number of private addresses will exceed limit: {limit} for network interface {eni.id} "
            f"(instance type {eni.instance.instance_type}; it has {_used(eni)}, {adding} more asked; "
            "each IPv4 prefix counts as one)",
        )


def reserved(subnet: IPv4Network) -> tuple[IPv4Address, ...]:
    """The first four and the last address of a subnet (VPC user guide, "Subnet CIDR blocks")."""
    n = subnet.network_address
    return (n, n + 1, n + 2, n + 3, subnet.broadcast_address)


def _taken_in_subnet(backend: Any, subnet_id: str, skip: Any = None) -> tuple[set[IPv4Address], list[IPv4Network]]:
    ips: set[IPv4Address] = set()
    nets: list[IPv4Network] = []
    for e in backend.enis.values():
        if e is skip or getattr(e.subnet, "id", None) != subnet_id:
            continue
        ips.update(IPv4Address(a["PrivateIpAddress"]) for a in e.private_ip_addresses)
        nets.extend(IPv4Network(p) for p in prefixes_of(e))
    return ips, nets


def assign_prefixes(backend: Any, eni_id: str, wanted: list[str], count: int) -> list[str]:
    eni = eni_of(backend, eni_id)
    if wanted and count:
        raise Ec2Failure("InvalidParameterCombination", "Ipv4Prefixes and Ipv4PrefixCount cannot be used together")
    subnet = IPv4Network(eni.subnet.cidr_block)
    ips, nets = _taken_in_subnet(backend, eni.subnet.id)
    own = set(prefixes_of(eni))
    new: list[IPv4Network] = []
    for value in wanted:
        p = _net(value, "Ipv4Prefix")
        if str(p) in own:
            continue  # already this ENI's: EC2 takes it again without change (assumption, 0030)
        if p.prefixlen != PREFIX_LEN:
            raise _bad(f"Prefix {p} is not a /{PREFIX_LEN}: EC2 assigns IPv4 prefixes of /{PREFIX_LEN} only")
        if not p.subnet_of(subnet):
            raise _bad(f"Prefix {p} is not within the subnet {subnet} of network interface {eni_id}")
        if any(a in p for a in reserved(subnet)):
            raise _bad(f"Prefix {p} contains addresses reserved by the subnet {subnet}")
        if any(a in p for a in ips) or any(p.overlaps(n) for n in nets + new):
            raise Ec2Failure("InvalidParameterValue",
                             f"Prefix {p} overlaps an address or prefix already assigned in subnet {eni.subnet.id}")
        new.append(p)
    if count:
        for cand in subnet.subnets(new_prefix=PREFIX_LEN):
            if len(new) == count:
                break
            if any(a in cand for a in reserved(subnet)) or any(a in cand for a in ips) or \
                    any(cand.overlaps(n) for n in nets + new):
                continue
            new.append(cand)
        if len(new) < count:
            raise Ec2Failure("InsufficientFreeAddressesInSubnet",
                             f"There are not enough free /{PREFIX_LEN} prefixes in subnet {eni.subnet.id}")
    _check_limit(eni, len(new))
    _set_prefixes(eni, prefixes_of(eni) + [str(p) for p in new])
    return [str(p) for p in new]


def unassign_prefixes(backend: Any, eni_id: str, prefixes: list[str]) -> None:
    eni = eni_of(backend, eni_id)
    have = prefixes_of(eni)
    for p in prefixes:
        if p not in have:
            raise _bad(f"Some of the specified prefixes are not assigned to interface {eni_id}: {p}")
    _set_prefixes(eni, [p for p in have if p not in prefixes])


def check_private_ips(backend: Any, eni_id: str, ips: list[str], count: int, reassign: bool) -> None:
    """Before moto assigns secondary addresses: inside the subnet, free, within the limit."""
    eni = eni_of(backend, eni_id)
    subnet = IPv4Network(eni.subnet.cidr_block)
    taken, nets = _taken_in_subnet(backend, eni.subnet.id, skip=eni)
    own = {a["PrivateIpAddress"] for a in eni.private_ip_addresses}
    fresh = [ip for ip in ips if ip not in own]
    for ip in fresh:
        try:
            a = IPv4Address(ip)
        except ValueError:
            raise _bad(f"Value ({ip}) for parameter privateIpAddress is invalid.") from None
        if a not in subnet or a in reserved(subnet):
            raise _bad(f"Address {ip} does not fall within the subnet's address range {subnet}")
        if (a in taken or any(a in n for n in nets)) and not reassign:
            raise Ec2Failure("InvalidIPAddress.InUse", f"Address {ip} is in use.")
        if any(a in IPv4Network(p) for p in prefixes_of(eni)):
            raise Ec2Failure("InvalidIPAddress.InUse", f"Address {ip} is in use by a prefix of {eni_id}.")
    _check_limit(eni, len(fresh) + count)
    if reassign:
        for other in backend.enis.values():
            if other is not eni:
                other.private_ip_addresses = [
                    x for x in other.private_ip_addresses if x.get("Primary") or x["PrivateIpAddress"] not in fresh]


def check_route(backend: Any, table_id: str, destination: str | None, targets: dict[str, str], create: bool,
                max_routes: int) -> None:
    table = backend.route_tables.get(table_id)
    if table is None or not destination:
        return  # moto's own answers (InvalidRouteTableID.NotFound, missing parameters)
    dest = _net(destination, "destinationCidrBlock")
    vpc = backend.vpcs.get(table.vpc_id)
    cidrs = [ip_network(c["cidr_block"]) for c in (vpc.cidr_block_association_set if vpc else [])
             if c.get("cidr_block_state", {}).get("state", "associated") == "associated"]
    for c in cidrs:
        if dest.version == c.version and dest.subnet_of(c) and dest != c:  # more specific than the local route
            subnets = {s.cidr_block for s in backend.describe_subnets(filters={"vpc-id": [table.vpc_id]})}
            if str(dest) not in subnets:
                raise _bad(f"Route destination {dest} is more specific than the VPC's local route {c} but matches "
                           "no subnet's CIDR block; such a route must match the entire CIDR block of a subnet")
            if not any(k in targets for k in MORE_SPECIFIC_TARGETS):
                raise _bad(f"The route to {dest} is more specific than the local route {c}: its target must be a "
                           "network interface, a NAT gateway or a Gateway Load Balancer endpoint")
    if create:
        have = [r for r in table.routes if not r.local and r.destination_cidr_block]
        if not any(r.destination_cidr_block == str(dest) for r in have) and len(have) >= max_routes:
            raise Ec2Failure("RouteLimitExceeded",
                             f"The maximum number of routes ({max_routes}) has been reached for {table_id}")


def route_state(route: Any) -> str:
    """``blackhole`` when the route's ENI was deleted or is attached to no instance (assumed for
    the latter, see 0030); otherwise ``active`` as moto says."""
    eni = getattr(route, "interface", None)
    if eni is not None:
        backend = eni.ec2_backend
        if eni.id not in backend.enis or getattr(eni, "instance", None) is None:
            return "blackhole"
    return "active"


_PATCHED = False


def patch_moto() -> None:
    """moto's Route.state is a constant ``active``: make it EC2's (once per process)."""
    global _PATCHED
    if _PATCHED:
        return
    from moto.ec2.models.route_tables import Route

    Route.state = property(route_state)  # type: ignore[method-assign,assignment]
    _PATCHED = True
