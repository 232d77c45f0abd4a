"""AWS's part of ``nestnet diagram`` and ``nestnet report`` (the seam's ``CloudDrawing``), in EC2's
words: the VPC and its router, each subnet's route table and its way to the internet
(``aws.internet``), the routes to ENIs (routed mode, a blackhole or a missing one marked), each
host's ENI with its IPv4 prefix (prefix mode), its secondary private addresses (secondary-ip) and
its source/destination check. The (faulted) State is drawn as observed, the plan's value beside it
where they differ; the core draws the hosts, VMs and verdicts."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from .. import Drawn
from ...viz import seen
from .cloud import aws_of
from .dataplane import NO_INTERNET
from .faults import BLACKHOLE
from .plan import AwsPlan

if TYPE_CHECKING:
    from ...model.state import NicState, State
    from ...plan import Host, Plan, Subnet

network_id = "vpc"
exception_words = "/32 exception: a VM outside its host's block, one route to an ENI of its own"
host_heads = ("ENI", "source/destination check")
subnet_heads = ("route table", "internet (0.0.0.0/0)")

# aws.internet's values in words
INTERNET_WORDS = {"nat-gateway": "NAT gateway", "internet-gateway": "internet gateway", NO_INTERNET: "no route"}
EGRESS_WORDS = {"nat-gateway": "NAT gateway: ENI addresses, translated",
                "internet-gateway": "internet gateway: public IPs only"}


class _Index:
    """What a plan's AWS part holds per host and subnet, indexed once per plan (the diagram and the
    report ask per host: a tuple scan per host is N*N at 1,000 hosts)."""

    def __init__(self, aws: AwsPlan):
        self.eni = {h: eni for h, eni, _ in aws.host_enis}
        self.check_off = frozenset(aws.source_dest_check_off)
        self.prefixes: dict[str, list] = {}
        for p in aws.prefixes:
            self.prefixes.setdefault(p.host, []).append(p.prefix)
        self.addresses: dict[str, list[IPv4Address]] = {}
        for a in aws.addresses:
            self.addresses.setdefault(a.host, []).append(IPv4Address(a.ip))
        self.table = dict(aws.route_tables_by_subnet)
        self.internet = dict(aws.internet)


_memo: list = [None, None]  # (AwsPlan, _Index)


def _index(plan: Plan) -> _Index:
    aws = aws_of(plan)
    if _memo[0] is not aws:
        _memo[:] = [aws, _Index(aws)]
    ix: _Index = _memo[1]
    return ix


def _check(nic: NicState) -> str:
    """The source/destination check as EC2 says it: off is what the model calls forwarding."""
    return "off" if nic.ip_forwarding else "on"


def _check_planned(plan: Plan, h: Host) -> str:
    ix = _index(plan)
    return "off" if ix.eni[h.name] in ix.check_off else "on"


def _table_of(plan: Plan, state: State, s: Subnet) -> tuple[str, tuple[str, ...]]:
    """The subnet's route table as observed (routed mode: the VPC's main table when the fault moved
    it there), and what is not as planned."""
    ref = _index(plan).table.get(s.name)
    planned = f"route table {ref}" if ref else "the main route table"
    if plan.mode != "routed" or not s.route_table:
        return planned, ()
    if state.cloud.subnets[s.name].route_table:
        return planned, ()
    return seen("the main route table", planned), (f"subnet {s.name} uses the VPC's main route table, not {ref}",)


def _internet(state: State, s: Subnet) -> str:
    how = state.cloud.subnets[s.name].internet or NO_INTERNET
    return INTERNET_WORDS.get(how, how)


# ---------------------------------------------------------------- the diagram


def network(plan: Plan) -> str:
    return f"VPC {aws_of(plan).vpc}"


def router(plan: Plan) -> tuple[str, ...]:
    return ("VPC router", "routes by the source subnet's table")


def egress(plan: Plan) -> tuple[str, ...]:
    ways = list(dict.fromkeys(how for _, how in aws_of(plan).internet))
    if not ways:
        return ("outbound: none (no subnet has a NAT or internet gateway)",)
    return tuple(f"outbound: {EGRESS_WORDS.get(w, w)}" for w in ways)


def _route_target(state: State, hop: IPv4Address) -> str:
    if hop == BLACKHOLE:
        return "BLACKHOLE (its target ENI is gone)"
    owner = next((n for n in state.cloud.nics.values() if hop in n.addresses), None)
    return f"ENI {owner.name} ({hop})" if owner is not None else f"{hop} (no ENI's)"


def route_table(plan: Plan, state: State) -> Drawn | None:
    """The routes to ENIs the route tables hold (routed mode): a blackhole and a planned route they
    lack marked."""
    if plan.mode != "routed":
        return None
    aws = aws_of(plan)
    tables = ", ".join(aws.table_refs) or "route table"
    lines = [f"route table{'s' if len(aws.table_refs) > 1 else ''} {tables}", "destination → target"]
    moved = {m.ip: m for m in plan.moves}
    off: list[str] = []
    for r in state.cloud.user_routes:
        m = moved.get(r.prefix.network_address) if r.prefix.prefixlen == 32 else None
        lines.append(f"{r.prefix} → {_route_target(state, r.next_hop_ip)}" + (f" · /32 exception: {m.vm}" if m else ""))
        if r.next_hop_ip == BLACKHOLE:
            off.append(f"route {r.prefix} is a blackhole")
    present = {u.prefix for u in state.cloud.user_routes}
    missing = list(dict.fromkeys((r.destination, r.eni) for r in aws.routes if r.destination not in present))
    lines += [f"MISSING {dst} → ENI {eni} (planned)" for dst, eni in missing]
    off += [f"route {dst} → ENI {eni} missing" for dst, eni in missing]
    if len(lines) == 2:
        lines.append("(no routes)")
    return Drawn(tuple(lines), tuple(off))


def subnet(plan: Plan, state: State, s: Subnet) -> Drawn:
    table, off = _table_of(plan, state, s)
    linked = plan.mode == "routed" and bool(state.cloud.subnets[s.name].route_table)
    return Drawn((table, f"internet: {_internet(state, s)}"), off, linked)


def _eni_lines(plan: Plan, state: State, h: Host) -> tuple[list[str], list[str]]:
    """The ENI's source/destination check, its IPv4 prefixes and secondary addresses as observed
    (a planned one it lacks in capitals), and what is not as planned."""
    ix = _index(plan)
    got = state.cloud.nics[h.nic]
    eni = ix.eni[h.name]
    planned = _check_planned(plan, h)
    lines = [eni, f"source/dest check {seen(_check(got), planned)}"]
    off = [f"source/dest check on for ENI {eni}"] if planned == "off" and _check(got) == "on" else []
    for p in ix.prefixes.get(h.name, ()):
        held = p in got.prefixes
        lines.append(f"IPv4 prefix {p}" + ("" if held else " MISSING (planned)"))
        off += [] if held else [f"IPv4 prefix {p} missing on ENI {eni}"]
    addresses = ix.addresses.get(h.name, ())
    if addresses:
        lines.append(f"+{len(addresses)} secondary IP{'s' if len(addresses) != 1 else ''}")
        lost = [a for a in addresses if a not in got.addresses]
        lines += [f"{a} MISSING (planned)" for a in lost]
        off += [f"secondary address {a} missing on ENI {eni}" for a in lost]
    return lines, off


def nic(plan: Plan, state: State, h: Host) -> Drawn:
    lines, off = _eni_lines(plan, state, h)
    return Drawn(tuple(lines), tuple(off))


def nics(plan: Plan, state: State, hosts: tuple[Host, ...]) -> Drawn:
    off = [o for h in hosts for o in _eni_lines(plan, state, h)[1]]
    return Drawn((f"{len(hosts)} ENIs",), tuple(off))


# ---------------------------------------------------------------- the report


def host_cells(plan: Plan, state: State, h: Host) -> tuple[str, ...]:
    return _index(plan).eni[h.name], seen(_check(state.cloud.nics[h.nic]), _check_planned(plan, h))


def subnet_cells(plan: Plan, state: State, s: Subnet) -> tuple[str, ...]:
    return _table_of(plan, state, s)[0], _internet(state, s)


def tables_html(plan: Plan, state: State) -> str:
    """The routes to ENIs (a missing or blackholed one marked), the ENIs' IPv4 prefixes and their
    secondary private addresses (a missing one marked), each as observed."""
    from ...viz.report import _code, _e, _table

    aws = aws_of(plan)
    missing = ' <span class="off">MISSING (planned)</span>'
    hop = {u.prefix: u.next_hop_ip for u in state.cloud.user_routes}
    moved = {m.ip: m.vm for m in plan.moves}

    def target(r) -> str:
        if r.destination not in hop:
            return _e(f"ENI {r.eni}") + missing
        if hop[r.destination] == BLACKHOLE:
            return _e(f"ENI {r.eni}") + ' <span class="off">BLACKHOLE (its target ENI is gone)</span>'
        vm = moved.get(r.destination.network_address) if r.destination.prefixlen == 32 else None
        return _e(f"ENI {r.eni}") + (f' <span class="muted">/32 exception: {_e(vm)}</span>' if vm else "")

    routes = _table(
        ["route table", "destination", "target", "host"],
        [[_e(r.table), _code(r.destination), target(r), _e(r.host)] for r in aws.routes],
    ) if aws.routes else f'<p class="muted">No routes to ENIs: mode {_e(plan.mode)} needs none.</p>'
    nics_ = state.cloud.nics
    hosts = plan.hosts
    prefixes = _table(
        ["host", "ENI", "IPv4 prefix"],
        [[_e(p.host), _e(p.eni), _code(p.prefix) + ("" if p.prefix in nics_[hosts[p.host].nic].prefixes else missing)]
         for p in aws.prefixes],
    ) if aws.prefixes else ""
    addresses = _table(
        ["host", "ENI", "address", "VM"],
        [[_e(a.host), _e(a.eni), _code(a.ip) + ("" if IPv4Address(a.ip) in nics_[hosts[a.host].nic].addresses
                                                 else missing), _e(a.vm)]
         for a in aws.addresses],
    ) if aws.addresses else ""
    return f"""<h3>Routes to ENIs <span class="muted">{_e(", ".join(aws.table_refs))}</span></h3>{routes}
{f"<h3>ENI IPv4 prefixes <span class='muted'>(EC2 delivers their addresses to the ENI)</span></h3>{prefixes}" if prefixes else ""}
{f"<h3>Secondary private IPv4 addresses</h3>{addresses}" if addresses else ""}"""
