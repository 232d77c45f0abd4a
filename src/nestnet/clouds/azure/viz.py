"""Azure's part of ``nestnet diagram`` and ``nestnet report`` (the seam's ``CloudDrawing``): the
VNet, Azure's SDN, the route table with its VirtualAppliance routes, each subnet's association,
each NIC's IP forwarding, secondary IP configurations and prefixes. Words only; the Plan and the
(faulted) State are read, never changed; the core draws the hosts, VMs and verdicts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import Drawn
from ...viz import on, seen
from .plan import AzurePlan, NicPrefix, azure_plan

if TYPE_CHECKING:
    from ...model.state import State
    from ...plan import Host, Plan, Subnet

network_id = "vnet"
exception_words = "/32 exception: a VM outside its host's block, one Azure route of its own"
host_heads = ("NIC", "IP forwarding (NIC)")
subnet_heads = ("route table",)


class _ByNic:
    """What a plan's Azure part holds per NIC (forwarding, secondary IPs, prefixes), indexed once per
    plan: the diagram and the report ask per host, and a tuple scan per host is N*N at 1,000 hosts."""

    def __init__(self, az: AzurePlan):
        self.forwarding = frozenset(az.nic_ip_forwarding)
        self.secondary: dict[str, int] = {}
        for sip in az.secondary_ips:
            self.secondary[sip.nic] = self.secondary.get(sip.nic, 0) + 1
        self.prefixes: dict[str, list[NicPrefix]] = {}
        for x in az.nic_prefixes:
            self.prefixes.setdefault(x.nic, []).append(x)


_memo: list = [None, None]  # (AzurePlan, _ByNic)


def _by_nic(plan: Plan) -> _ByNic:
    az = azure_plan(plan)
    if _memo[0] is not az:
        _memo[:] = [az, _ByNic(az)]
    by: _ByNic = _memo[1]
    return by


# ---------------------------------------------------------------- the diagram


def network(plan: Plan) -> str:
    return f"VNet {azure_plan(plan).vnet}"


def router(plan: Plan) -> tuple[str, ...]:
    return ("Azure SDN", "routes by the source subnet's table")


def egress(plan: Plan) -> tuple[str, ...]:
    return ("outbound: NIC addresses only",)


def route_table(plan: Plan, state: State) -> Drawn | None:
    """The route table with the user routes Azure holds (each a VirtualAppliance route nestnet
    writes) and the planned ones it lacks, in routed mode."""
    if plan.mode != "routed":
        return None
    az = state.cloud
    rt = az.route_table or "route table"
    lines = [f"route table {rt}", "prefix → next hop type, address"]
    moved = {m.ip: m for m in plan.moves}
    for r in az.user_routes:  # every user route nestnet writes is a VirtualAppliance route
        m = moved.get(r.prefix.network_address) if r.prefix.prefixlen == 32 else None
        lines.append(f"{r.prefix} → VirtualAppliance {r.next_hop_ip}" + (f" · /32 exception: {m.vm}" if m else ""))
    present = {u.prefix for u in az.user_routes}
    missing = [r for r in azure_plan(plan).routes if r.address_prefix not in present]
    lines += [f"MISSING {r.address_prefix} → {r.next_hop_type} {r.next_hop_ip} (planned)" for r in missing]
    if len(lines) == 2:
        lines.append("(no routes)")
    return Drawn(tuple(lines), tuple(f"route {r.name} ({r.address_prefix}) missing" for r in missing))


def subnet(plan: Plan, state: State, s: Subnet) -> Drawn:
    """Whether the subnet is associated with the route table (routed mode): capitals only where
    the state differs from the plan (a fault), as for NIC forwarding."""
    if plan.mode != "routed":
        return Drawn((f"no route table ({plan.mode})",))
    got = state.cloud.subnets[s.name].route_table
    assoc = "route table " + seen("associated" if got else "not associated",
                                  "associated" if s.route_table else "not associated")
    off = (f"subnet {s.name} is not associated with the route table",) if s.route_table and not got else ()
    return Drawn((assoc,), off, bool(got))


def nic(plan: Plan, state: State, h: Host) -> Drawn:
    """The host's NIC: its IP forwarding as observed, its secondary IPs, its prefixes (a missing
    one in capitals)."""
    by = _by_nic(plan)
    got = state.cloud.nics[h.nic]
    planned_fwd = h.nic in by.forwarding
    lines = [h.nic, f"IP forwarding {seen(on(got.ip_forwarding), on(planned_fwd))}"]
    if h.nic in by.secondary:
        n = by.secondary[h.nic]
        lines.append(f"+{n} secondary IP{'s' if n != 1 else ''}")
    off: tuple[str, ...] = () if got.ip_forwarding or not planned_fwd else (f"IP forwarding off on NIC {h.nic}",)
    for x in by.prefixes.get(h.nic, ()):
        held = x.prefix in got.prefixes
        lines.append(f"prefix {x.prefix}" + ("" if held else " MISSING (planned)"))
        off += () if held else (f"prefix {x.prefix} missing on NIC {h.nic}",)
    return Drawn(tuple(lines), off)


def nics(plan: Plan, state: State, hosts: tuple[Host, ...]) -> Drawn:
    fwd = _by_nic(plan).forwarding
    nics_ = state.cloud.nics
    return Drawn((f"{len(hosts)} NICs",), tuple(f"IP forwarding off on NIC {h.nic}" for h in hosts
                                                if h.nic in fwd and not nics_[h.nic].ip_forwarding))


# ---------------------------------------------------------------- the report


def host_cells(plan: Plan, state: State, h: Host) -> tuple[str, ...]:
    return h.nic, seen(on(state.cloud.nics[h.nic].ip_forwarding), on(h.nic in _by_nic(plan).forwarding))


def subnet_cells(plan: Plan, state: State, s: Subnet) -> tuple[str, ...]:
    if plan.mode != "routed":
        return ("—",)
    return (seen("associated" if state.cloud.subnets[s.name].route_table else "not associated",
                 "associated" if s.name in azure_plan(plan).subnet_associations else "not associated"),)


def tables_html(plan: Plan, state: State) -> str:
    """The route table's routes (a missing one marked), the secondary IP configurations and the
    NIC prefixes (Azure's Prefix on NIC, a missing one marked)."""
    from ...viz.report import _code, _e, _table

    az = azure_plan(plan)
    present = {u.prefix for u in state.cloud.user_routes}
    moved = {m.ip: m.vm for m in plan.moves}

    def route_name(r) -> str:
        vm = moved.get(r.address_prefix.network_address) if r.address_prefix.prefixlen == 32 else None
        return _e(r.name) + (f' <span class="muted">/32 exception: {_e(vm)}</span>' if vm else "") + (
            "" if r.address_prefix in present else ' <span class="off">MISSING (planned)</span>')

    routes = _table(
        ["name", "prefix", "next hop type", "next hop address"],
        [[route_name(r), _code(r.address_prefix), _e(r.next_hop_type), _code(r.next_hop_ip)] for r in az.routes],
    ) if az.routes else f'<p class="muted">No user routes: mode {_e(plan.mode)} needs none.</p>'
    secondary = _table(
        ["NIC", "IP configuration", "address", "subnet"],
        [[_e(s.nic), _e(s.name), _code(s.ip), _e(s.subnet)] for s in az.secondary_ips],
    ) if az.secondary_ips else ""
    nics_ = state.cloud.nics
    held = {x.nic: set(n.prefixes if (n := nics_.get(x.nic)) is not None else ()) for x in az.nic_prefixes}
    prefixes = _table(
        ["NIC", "IP configuration", "prefix", "subnet"],
        [[_e(x.nic), _e(x.name), _code(x.prefix) + ("" if x.prefix in held[x.nic] else
                                                   ' <span class="off">MISSING (planned)</span>'), _e(x.subnet)]
         for x in az.nic_prefixes],
    ) if az.nic_prefixes else ""
    return f"""<h3>Azure routes <span class="muted">{_e(az.route_table or "")}</span></h3>{routes}
{f"<h3>Secondary IP configurations</h3>{secondary}" if secondary else ""}
{f"<h3>NIC prefixes <span class='muted'>(Azure's Prefix on NIC)</span></h3>{prefixes}" if prefixes else ""}"""
