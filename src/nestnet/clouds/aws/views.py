"""What the core's commands show of AWS beside the model: its part of ``nestnet plan``, the route
a /32 exception takes (``vm add``), what ``doctor --aws`` read and where it differs from
the plan. Words only; the Plan is read, never changed."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Mapping

from .cloud import aws_of

if TYPE_CHECKING:
    from rich.console import Console

    from ...model.state import CloudState
    from ...plan import Plan


def show_plan(plan: Plan, out: Console) -> None:
    """The ENI prefixes, the routes to ENIs, the ENIs whose source/destination check is off and the
    secondary private addresses."""
    from ...cli.output import table

    aws = aws_of(plan)
    if aws.prefixes:
        t = table("ENI IPv4 prefixes", ["host", "eni", "prefix"])
        for p in aws.prefixes:
            t.add_row(p.host, p.eni, str(p.prefix))
        out.print(t)
    if aws.routes:
        t = table("Routes to ENIs", ["route table", "destination", "host", "eni"])
        for r in aws.routes:
            t.add_row(r.table, str(r.destination), r.host, r.eni)
        out.print(t)
    if aws.source_dest_check_off:
        out.print(f"source/destination check off on ENIs: {', '.join(aws.source_dest_check_off)}")
    if aws.addresses:
        t = table("Secondary private IPv4 addresses", ["host", "eni", "ip", "vm"])
        for a in aws.addresses:
            t.add_row(a.host, a.eni, a.ip, a.vm)
        out.print(t)


def exception_route(plan: Plan, ip: IPv4Address) -> str | None:
    """The routes to an ENI a VM outside its host's block takes (a /32 of its own), in words."""
    routes = [r for r in aws_of(plan).routes if r.destination.prefixlen == 32 and r.destination.network_address == ip]
    if not routes:
        return None
    return (f"AWS route {routes[0].destination} → {routes[0].eni} in "
            f"{', '.join(dict.fromkeys(r.table for r in routes))}")


def read_summary(got: CloudState) -> dict[str, list[str]]:
    """What `doctor --aws` read, for its JSON."""
    return {
        "routes": [f"{r.name} -> {r.next_hop_ip}" for r in got.user_routes],
        "prefixes": sorted(f"{n.name} {p}" for n in got.nics.values() for p in n.prefixes),
        "source_dest_check_off": sorted(n.name for n in got.nics.values() if n.ip_forwarding),
    }


def read_line(summary: Mapping[str, list[str]]) -> str:
    return (f"AWS (read through EC2): {len(summary['routes'])} routes to ENIs, prefixes: "
            f"{', '.join(summary['prefixes']) or 'none'}, source/destination check off: "
            f"{', '.join(summary['source_dest_check_off']) or 'none'}")


def findings(want: CloudState, got: CloudState) -> list[str]:
    """Where EC2 differs from the plan, each with its fix."""
    out: list[str] = []
    have = {r.prefix: r.next_hop_ip for r in got.user_routes}
    for r in want.user_routes:
        if r.prefix not in have:
            out.append(f"AWS route table {want.route_table}: no route for {r.prefix} (the plan: to the ENI of "
                       f"{r.next_hop_ip})")
        elif have[r.prefix] != r.next_hop_ip:
            out.append(f"AWS route for {r.prefix} goes to the ENI of {have[r.prefix]}; the plan wants {r.next_hop_ip}")
    for name, s in want.subnets.items():
        if s.route_table and not got.subnets[name].route_table:
            out.append(f"AWS subnet {name} is not served by route table {want.route_table}")
    for name, n in want.nics.items():
        seen = got.nics[name]
        for p in n.prefixes:
            if p not in seen.prefixes:
                out.append(f"AWS ENI {name}: IPv4 prefix {p} is not assigned")
        if n.ip_forwarding and not seen.ip_forwarding:
            out.append(f"AWS ENI {name}: the source/destination check is on")
        missing = sorted(n.addresses - seen.addresses - {a for p in n.prefixes for a in p})
        if missing:
            out.append(f"AWS ENI {name}: secondary private address{'es' if len(missing) > 1 else ''} "
                       f"{', '.join(map(str, missing))} not assigned")
    return [f"{f} → `nestnet aws apply`" for f in out]


ASSUMED = "AWS: ENI prefixes and addresses, routes to ENIs, source/destination checks"


def assumed() -> str:
    return ASSUMED
