"""What the core's commands show of Azure beside the model: its part of ``nestnet plan``, the route
a /32 exception takes (``vm add``), what ``doctor --azure`` read and where it differs from
the plan. Words only; the Plan is read, never changed."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Mapping

from .plan import azure_plan

if TYPE_CHECKING:
    from rich.console import Console

    from ...model.state import CloudState
    from ...plan import Plan


def show_plan(plan: Plan, out: Console) -> None:
    """The route table, its subnets and NICs, the secondary and prefix ip configurations."""
    from ...cli.output import table

    az = azure_plan(plan)
    if az.routes or az.secondary_ips:
        t = table(f"Azure route table {az.route_table or '-'}", ["route", "prefix", "next hop"])
        for r in az.routes:
            t.add_row(r.name, str(r.address_prefix), f"{r.next_hop_type} {r.next_hop_ip}")
        out.print(t)
        if az.subnet_associations:
            out.print(f"associated with subnets: {', '.join(az.subnet_associations)}")
        if az.nic_ip_forwarding:
            out.print(f"IP forwarding on NICs: {', '.join(az.nic_ip_forwarding)}")
        if az.secondary_ips:
            t = table("Secondary IP configurations", ["nic", "name", "ip"])
            for s in az.secondary_ips:
                t.add_row(s.nic, s.name, str(s.ip))
            out.print(t)
    if az.nic_prefixes:
        t = table("NIC prefix ip configurations (Azure's \"Prefix on NIC\")", ["nic", "name", "prefix"])
        for x in az.nic_prefixes:
            t.add_row(x.nic, x.name, str(x.prefix))
        out.print(t)


def exception_route(plan: Plan, ip: IPv4Address) -> str | None:
    """The Azure route a VM outside its host's block takes (a /32 of its own), in words."""
    route = next((r for r in azure_plan(plan).routes if r.address_prefix.prefixlen == 32
                  and r.address_prefix.network_address == ip), None)
    if route is None:
        return None
    return f"Azure route {route.name} ({route.address_prefix} → {route.next_hop_type} {route.next_hop_ip})"


def read_summary(got: CloudState) -> dict[str, list[str]]:
    """What `doctor --azure` read, for its JSON."""
    return {
        "user_routes": [f"{r.name} {r.prefix} -> {r.next_hop_ip}" for r in got.user_routes],
        "associated_subnets": sorted(s.name for s in got.subnets.values() if s.route_table),
        "ip_forwarding_nics": sorted(n.name for n in got.nics.values() if n.ip_forwarding),
    }


def read_line(summary: Mapping[str, list[str]]) -> str:
    return (f"Azure (read through ARM): {len(summary['user_routes'])} user routes, associated: "
            f"{', '.join(summary['associated_subnets']) or 'none'}, IP forwarding on: "
            f"{', '.join(summary['ip_forwarding_nics']) or 'none'}")


def findings(want: CloudState, got: CloudState) -> list[str]:
    """Where Azure differs from the plan, each with its fix."""
    out: list[str] = []
    have = {r.prefix: r.next_hop_ip for r in got.user_routes}
    for r in want.user_routes:
        if r.prefix not in have:
            out.append(f"Azure route table {want.route_table}: no route for {r.prefix} (the plan: {r.name} -> "
                       f"VirtualAppliance {r.next_hop_ip})")
        elif have[r.prefix] != r.next_hop_ip:
            out.append(f"Azure route for {r.prefix} goes to {have[r.prefix]}; the plan wants {r.next_hop_ip}")
    for name, s in want.subnets.items():
        if s.route_table and not got.subnets[name].route_table:
            out.append(f"Azure subnet {name} is not associated with route table {want.route_table}")
    for name, n in want.nics.items():
        if n.ip_forwarding and not got.nics[name].ip_forwarding:
            out.append(f"Azure NIC {name}: IP forwarding is off")
    return [f"{f} → `nestnet azure apply`" for f in out]


ASSUMED = "Azure: route table, subnet associations, NIC IP forwarding"


def assumed() -> str:
    return ASSUMED
