"""AWS's data plane in the model's one shape (``CloudState``), planned and as EC2 reports it.

The VPC router's rules that the model needs are those it already applies to Azure, with EC2's
names (DESIGN §5c, docs/decisions/0031): the route table of the *source* subnet, longest prefix
match, the local route delivering to the ENI that owns an address (its primary, secondary
addresses and the addresses of its IPv4 prefixes), a route to an ENI (``CloudState`` keeps it as a
route whose next hop is the ENI's primary address), the source/destination check per ENI (off:
``ip_forwarding``), the first four and the last address of a subnet never delivered, and private
ranges outside the VPC dropped (no route). One route table per fabric is modelled: nestnet writes
the same routes into every source subnet's table.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

from .faults import BLACKHOLE
from .plan import AwsPlan
from .validate import reserved

AWS = "aws"
NO_INTERNET = "none"  # a subnet whose route table has no route to an internet or NAT gateway


def planned_state(plan: Any) -> Any:
    """EC2 once nestnet has applied ``plan``."""
    from ...model.state import PUBLIC_STANDIN, CloudState, NicState, PublicIp, SubnetState, UserRoute, endpoint_nic
    from ..azure.facts import none_routes  # RFC 1918 ranges outside the network: no route in a VPC either

    aws: AwsPlan = plan.cloud
    internet = dict(aws.internet)
    subnets = {s.name: SubnetState(s.name, s.prefix, s.gateway, s.route_table and aws.mode == "routed",
                                   reserved(s.prefix), internet=internet.get(s.name, NO_INTERNET))
               for s in plan.subnets.values()}
    prefixes = {p.host: (p.prefix,) for p in aws.prefixes}
    secondary: dict[str, set[IPv4Address]] = {}
    for a in aws.addresses:
        secondary.setdefault(a.host, set()).add(IPv4Address(a.ip))
    nics: dict[str, Any] = {}
    for h in plan.hosts.values():
        own = prefixes.get(h.name, ())
        nics[h.nic] = NicState(h.nic, h.subnet, h.name,
                               frozenset({h.ip, *secondary.get(h.name, ()), *(a for p in own for a in p)}),
                               aws.mode == "routed", prefixes=own)
    for e in plan.endpoints.values():
        nic = endpoint_nic(e.name)
        nics[nic] = NicState(nic, e.subnet, e.name, frozenset({e.ip}), False)
    hosts = {h.name: h for h in plan.hosts.values()}
    # EC2's routes have no names: a route is its table's and its destination's (as observed_state names them)
    table = aws.table_refs[0] if aws.table_refs else "route table"
    routes = tuple(UserRoute(f"{table}:{p}", p, h.ip) for h in hosts.values() for p in h.local_prefixes) \
        if aws.mode == "routed" else ()
    # a public IPv4 address on a primary ENI: the stand-ins of the plan's public IPs, as Azure's
    # (EC2 picks the address); closed to inbound as a security group keeps it unless a rule allows
    nodes = [(h.name, h.nic) for h in plan.hosts.values()] + [(e.name, endpoint_nic(e.name)) for e in plan.endpoints.values()]
    public = tuple(PublicIp(f"{n}-public-ip", PUBLIC_STANDIN[i + 1], nic, standard=True)
                   for i, (n, nic) in enumerate(nodes) if n in aws.public_ips)
    return CloudState(
        address_space=plan.address_space,
        public_ips=public,
        route_table=(aws.table_refs[0] if aws.table_refs else None) if aws.mode == "routed" else None,
        subnets=subnets,
        user_routes=routes,
        nics=nics,
        resource_group=aws.vpc,
        none_routes=none_routes(tuple(plan.address_space)),
        owned_by_nic=aws.mode in ("secondary-ip", "prefix"),
        cloud=AWS,
    )


def observed_state(plan: Any, obs: Any) -> Any:
    """The planned state with what EC2 holds: the hosts' ENIs' addresses, prefixes and checks, the
    routes into the pool in the spec's tables (to an ENI: next hop its primary address; a
    blackhole: ``faults.BLACKHOLE``, no ENI's), which subnets those tables serve."""
    from dataclasses import replace

    from ...model.state import UserRoute
    from .desired import check_reality, resolve_table

    planned = planned_state(plan)
    aws: AwsPlan = plan.cloud
    enis = check_reality(aws, obs)
    nics = dict(planned.nics)
    for h in plan.hosts.values():
        e = obs.enis[enis[h.name]]
        pref = tuple(IPv4Network(p) for p in e.prefixes)
        nics[h.nic] = replace(nics[h.nic], addresses=frozenset(
            {IPv4Address(e.primary_ip), *(IPv4Address(a) for a in e.secondary_ips), *(a for p in pref for a in p)}),
            prefixes=pref, ip_forwarding=not e.source_dest_check)
    primary = {e.id: IPv4Address(e.primary_ip) for e in obs.enis.values()}
    tables = [resolve_table(obs, ref) for ref in aws.table_refs]
    routes: list[Any] = []
    served: set[str] = set()
    by_cidr = {cidr: sid for sid, (_, cidr) in obs.subnets.items()}
    for tid in dict.fromkeys(tables):
        t = obs.tables[tid]
        served |= set(t.subnet_ids)
        for r in t.routes:
            if r.target == "local" or (r.state == "active" and r.eni not in primary):
                continue  # the local route is the model's; other live targets (gateways) are not nestnet's
            # a blackhole still wins the longest prefix match, and drops (its next hop is no ENI's)
            hop = primary[r.eni] if r.state == "active" else BLACKHOLE
            routes.append(UserRoute(f"{t.name or t.id}:{r.destination}", IPv4Network(r.destination), hop))
    subnets = {name: replace(s, route_table=by_cidr.get(str(s.prefix)) in served and bool(tables))
               for name, s in planned.subnets.items()}
    return replace(planned, nics=nics, user_routes=tuple(dict.fromkeys(routes)), subnets=subnets)
