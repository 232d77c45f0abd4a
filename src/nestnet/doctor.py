"""``nestnet doctor``: diagnose the live host this runs on, with the same model as ``check``.

    observe(plan, host, planned_host)       -> HostObservation of the current network namespace (I/O;
                                               a UFW host through ``ufw_view``)
    observe_cloud(plan, client)             -> the model's CloudState read through the cloud seam
    diagnose(plan, host, obs, drift, cloud) -> Diagnosis (pure: model + findings)
    run(plan, host, root, client)           -> all of it, plus the host reconciler's drift (no writes)

Only this host is observed (and the cloud, when a client is given); the other hosts, the guests, the
endpoints - and the cloud otherwise - are taken from the plan and reported as "assumed as planned".
The pairs checked are those with this host or one of its VMs at either end. Everything works on
the *current* network namespace, so tests call ``run`` inside a lab host with ``netns.run_in``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from . import firewall
from .errors import HostError, UsageError
from .firewall import Policy
from .names import unknown
from .model import (
    ICMP,
    INTERNET,
    HostObservation,
    Model,
    PairResult,
    Probe,
    State,
    reachability,
    from_observation,
    from_plan,
    observe_host,
)
from .model.observed import sysctl_keys
from .model.classes import Reachability
from .model.state import CloudState, HostState
from .plan import Plan

RP_MODES = {0: "off", 1: "strict", 2: "loose"}


@dataclass(frozen=True)
class PairGroup:
    """Failing pairs that fail alike: one class pair of ``check`` (same cause, same hop role),
    all failing in the plan too or none. ``example`` is one of them, traced."""

    example: PairResult
    pairs: tuple[tuple[str, str], ...]  # (src, dst), in node order
    in_plan: bool  # they fail in the plan too: the spec's doing (``nestnet check``)
    design: str = ""  # the mode cannot serve them by design (NAT): not a problem of this host
    blocks: tuple = ()  # the pairs as src-set x dst-set blocks (nestnet.model.groups.PairBlock)

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": len(self.pairs), "fails_in_plan_too": self.in_plan, "design": self.design,
                "sets": [b.to_dict() for b in self.blocks], "example": self.example.to_dict()}


@dataclass(frozen=True)
class Diagnosis:
    host: str
    findings: tuple[str, ...]  # observed knobs that differ from the plan, one line each
    groups: tuple[PairGroup, ...]  # failing pairs involving this host or its VMs, by cause
    checked: int  # how many pairs involve this host or its VMs
    drift: tuple[dict[str, str], ...]  # what `nestnet host apply` would change
    observed: Mapping[str, Any]
    assumed: tuple[str, ...]
    warnings: tuple[str, ...] = field(default=())
    model: Model | None = field(default=None, repr=False, compare=False)  # the observed fabric's
    traced: tuple[PairResult, ...] | None = field(default=None, repr=False, compare=False)
    forwards: tuple[Any, ...] = ()  # nat mode: this host's port forwards (forwards.ForwardResult)
    planned_forward_failures: frozenset[tuple[str, str, int]] = frozenset()  # (src, vm, port)
    exposed: tuple[Any, ...] = ()  # this host's VMs' exposed ports, from the internet (exposes.ExposeResult)
    planned_expose_failures: frozenset[tuple[str, str, int]] = frozenset()  # (vm, proto, public port)

    def __reduce__(self):  # pickled (out of a lab namespace): the pairs traced, without the model
        return (Diagnosis, (self.host, self.findings, self.groups, self.checked, self.drift, dict(self.observed),
                            self.assumed, self.warnings, None, self.pairs, self.forwards, self.planned_forward_failures,
                            self.exposed, self.planned_expose_failures))

    def trace(self, src: str, dst: str) -> PairResult:
        """One pair traced through the observed fabric, with an honest fix."""
        assert self.model is not None
        return _honest_fix(self.model.ping(src, dst), self.host, self.drift)

    @property
    def failing(self) -> int:
        """Failing pairs; not those the mode cannot serve by design (``by_design``)."""
        return sum(len(g.pairs) for g in self.groups if not g.design)

    @property
    def by_design(self) -> int:
        return sum(len(g.pairs) for g in self.groups if g.design)

    @property
    def planned_failures(self) -> frozenset[tuple[str, str]]:
        """Failing pairs that fail in the plan too."""
        return frozenset(p for g in self.groups if g.in_plan for p in g.pairs)

    @property
    def pairs(self) -> tuple[PairResult, ...]:
        """Every failing pair, each traced for its own reason (costs a trace per pair: the
        groups say the same in one trace per cause)."""
        order = sorted((p for g in self.groups for p in g.pairs), key=self._order().__getitem__)
        if self.model is None:
            return self.traced or ()
        return tuple(self.trace(a, b) for a, b in order)

    def _order(self) -> dict[tuple[str, str], int]:
        return {p: i for i, p in enumerate(p for g in self.groups for p in g.pairs)}

    @property
    def problems(self) -> tuple[PairGroup, ...]:
        """Groups the plan itself would not fail: what this host (or the cloud) breaks."""
        return tuple(g for g in self.groups if not g.in_plan and not g.design)

    @property
    def healthy(self) -> bool:
        """The host is as planned: pairs the spec itself fails (``nestnet check``) do not count."""
        return (not self.problems and not self.drift and not self.findings and not self.forward_problems
                and not self.expose_problems)

    @property
    def expose_problems(self) -> tuple[Any, ...]:
        """Exposed ports that fail here and not in the plan."""
        return tuple(e for e in self.exposed
                     if not e.ok and (e.vm, e.proto, e.public_port) not in self.planned_expose_failures)

    @property
    def forward_problems(self) -> tuple[Any, ...]:
        return tuple(f for f in self.forwards if not f.ok and (f.src, f.vm, f.port) not in self.planned_forward_failures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "healthy": self.healthy,
            "observed": dict(self.observed),
            "assumed_as_planned": list(self.assumed),
            "findings": list(self.findings),
            "checked_pairs": self.checked,
            "failed_pairs": self.failing,
            "by_design_pairs": self.by_design,
            "groups": [g.to_dict() for g in self.groups],
            "pairs": [
                {"src": a, "dst": b, "group": i, "fails_in_plan_too": g.in_plan,
                 **({"intermittent": True} if g.example.intermittent else {})}
                for i, g in enumerate(self.groups) for a, b in g.pairs
            ],
            "drift": list(self.drift),
            "forwards": [f.to_dict() for f in self.forwards],
            "exposed": [e.to_dict() for e in self.exposed],
        }


def host_of(plan: Plan, name: str | None) -> str:
    """The host to diagnose: ``name`` (checked against the plan) or the one whose IP is local."""
    if name is None:
        from .host import find_self

        try:
            return find_self(plan)
        except HostError as exc:  # the user must say which host: bad input, not a broken host
            raise UsageError(str(exc)) from None
    if name not in plan.hosts:
        raise UsageError(f"host {name!r} is not in {plan.source or plan.name}{unknown(name, plan.hosts)}")
    return name


# --- observing (I/O, read-only) -------------------------------------------------------------

def _output(argv: list[str]) -> str:
    from .host.observe import run

    r = run(argv)
    if r.returncode != 0:
        raise HostError(f"{' '.join(argv)}: {r.stderr.strip() or f'exit {r.returncode}'} (doctor needs root)")
    return r.stdout


def observe(plan: Plan, host: str, planned: HostState) -> HostObservation:
    """Kernel routes, the sysctls the model needs and the nftables ruleset of this namespace."""
    from .host.observe import sysctls

    routes = _output(["ip", "-j", "route", "show", "table", "main"])
    values = {k: v for k, v in sysctls(sysctl_keys(planned)).items() if v is not None}
    ruleset = _output(["nft", "-j", "list", "ruleset"])
    obs = observe_host(routes, values, ruleset)
    h = plan.hosts[host]
    return ufw_view(obs, ruleset, firewall.policy(plan, h)) if h.firewall == "ufw" else obs


def observe_cloud(plan: Plan, client: Any, cloud: str | None = None) -> CloudState:
    """The cloud's data plane as its API reports it (the plan's cloud unless ``cloud`` names
    another), through the cloud seam."""
    from .clouds import get, of

    return (of(plan) if cloud is None else get(cloud)).observed_state(plan, client)


def run(plan: Plan, host: str, root: str | Path = "/", client: Any = None, probe: Probe = ICMP) -> Diagnosis:
    """Observe this namespace as ``host`` (and the cloud through ``client``), diff it with the
    host reconciler, diagnose what ``probe`` (a ping, or TCP/UDP to a port) finds."""
    from . import host as reconciler

    state = from_plan(plan)
    obs = observe(plan, host, state.hosts[host])
    seen_cloud = observe_cloud(plan, client) if client is not None else None
    try:
        # adopt: a hand-built route with the planned next hop is drift to take over, not an error
        drift = tuple(c.to_dict() for c in reconciler.diff(plan, host, root, adopt=True))
    except HostError as exc:  # what apply would refuse is a finding, not a reason to stop diagnosing
        drift = ({"kind": "refused", "op": "refused", "key": host, "detail": str(exc)},)
    dnat = None
    if (any(plan.vms[v].forwards or plan.vms[v].exposes for v in plan.hosts[host].vms)
            and plan.hosts[host].firewall == "nftables"):
        from .forwards import dnat_ports

        dnat = dnat_ports(_output(["nft", "-j", "list", "ruleset"]))
    ufw_on = None
    if plan.hosts[host].firewall == "ufw":
        from .host import ufw as ufw_files

        try:
            ufw_on = ufw_files.enabled((Path(root) / ufw_files.CONF).read_text())
        except OSError:
            ufw_on = None
    return diagnose(plan, host, obs, drift, state, seen_cloud, dnat, probe, ufw_enabled=ufw_on)


# --- pure --------------------------------------------------------------------------------------

def diagnose(
    plan: Plan,
    host: str,
    obs: HostObservation,
    drift: tuple[dict[str, str], ...] = (),
    planned: State | None = None,
    cloud: CloudState | None = None,
    dnat: frozenset[tuple[str, int]] | None = None,
    probe: Probe = ICMP,
    ufw_enabled: bool | None = None,
    **by_name: CloudState,
) -> Diagnosis:
    """``cloud``: the cloud as observed (None: assumed as planned; also given by the cloud's name,
    ``<cloud>=state``, as callers did before the seam); ``dnat``: the DNAT rules seen; ``probe``:
    what every pair sends (NSG rules match its protocol and port); ``ufw_enabled``: UFW's ENABLED=
    on a ``firewall: ufw`` host (False: the fix is enabling it, not a reload)."""
    from . import clouds, exposes, forwards
    from .advise import design_rule

    if by_name:
        if set(by_name) != {plan.cloud.cloud_name} or cloud is not None:
            raise TypeError(f"diagnose(): unexpected keyword arguments {', '.join(sorted(by_name))}")
        cloud = by_name[plan.cloud.cloud_name]
    planned = planned or from_plan(plan)
    base = replace(planned, cloud=cloud) if cloud is not None else planned
    seen = from_observation(plan, {host: obs}, base=base)
    if dnat is not None and seen.hosts[host].dnat:  # only the exposed ports whose DNAT rule is loaded
        h = seen.hosts[host]
        seen = replace(seen, hosts={**seen.hosts, host: replace(h, dnat=tuple(d for d in h.dnat if d[:2] in dnat))})
    mine = {host, *plan.hosts[host].vms}
    vms = plan.hosts[host].vms
    res = reachability(seen, probe)

    def trace(a: str, b: str) -> PairResult:
        return _honest_fix(res.model.ping(a, b), host, drift)

    return Diagnosis(
        host=host,
        findings=tuple(findings(planned.hosts[host], seen.hosts[host], obs, plan.hosts[host].firewall == "ufw", ufw_enabled)
                       + (clouds.views(planned.cloud.cloud).findings(planned.cloud, cloud) if cloud is not None
                          else [])),
        groups=_groups(res, planned, mine, trace, lambda a, b: design_rule(plan, a, b)),
        checked=pair_count(seen, len(mine)),
        drift=drift,
        observed=summary(seen.hosts[host], obs, cloud),
        assumed=assumed(plan, host, cloud is not None),
        warnings=tuple(plan.warnings),
        model=res.model,
        forwards=tuple(fwd := forwards.check(seen, plan, vms=plan.hosts[host].vms, dnat=dnat)),
        planned_forward_failures=frozenset(
            (f.src, f.vm, f.port) for f in forwards.check(planned, plan, vms=plan.hosts[host].vms) if not f.ok
        ) if any(not f.ok for f in fwd) else frozenset(),
        exposed=tuple(exp := exposes.check(seen, plan, vms=vms)),
        planned_expose_failures=frozenset(
            (e.vm, e.proto, e.public_port) for e in exposes.check(planned, plan, vms=vms) if not e.ok
        ) if any(not e.ok for e in exp) else frozenset(),
    )


def _groups(res: Reachability, planned: State, mine: set[str],
            trace: Callable[[str, str], PairResult], design: Callable[[str, str], str]) -> tuple[PairGroup, ...]:
    """The failing pairs with one of ``mine`` at either end, one group per root cause (where it
    is and its fix, as ``nestnet check`` groups them), split by their verdict in the plan; one
    trace per class pair of ``check`` (1,000 hosts: a handful of traces, not one per pair)."""
    from .model.groups import cause_key, compress

    failing = res.failed_involving(mine)
    if not failing:
        return ()
    in_plan = reachability(planned, res.model.probe)  # verdicts by class: nothing traced
    order = {n: i for i, n in enumerate((*res.state.node_names, INTERNET))}
    acc: dict[Any, tuple[PairResult, str, list[tuple[str, str]]]] = {}
    for _, pairs in failing:
        split: dict[bool, list[tuple[str, str]]] = {}
        for a, b in pairs:
            split.setdefault(not in_plan.ok(a, b), []).append((a, b))
        for fails_in_plan, members in split.items():
            members.sort(key=lambda p: (order[p[0]], order[p[1]]))
            why = design(*members[0])
            example = PairResult(*members[0], False, why) if why else trace(*members[0])
            key = (fails_in_plan, why or cause_key(example))
            if key in acc:
                acc[key][2].extend(members)
            else:
                acc[key] = (example, why, members)
    groups = []
    for (fails_in_plan, _), (example, why, members) in acc.items():
        members.sort(key=lambda p: (order[p[0]], order[p[1]]))
        if (example.src, example.dst) != members[0]:
            example = PairResult(*members[0], False, why) if why else trace(*members[0])
        groups.append(PairGroup(example, tuple(members), fails_in_plan, why, compress(members, order)))
    groups.sort(key=lambda g: (bool(g.design), order[g.pairs[0][0]], order[g.pairs[0][1]]))
    return tuple(groups)


APPLY = "`nestnet host apply`"


def _honest_fix(p: PairResult, host: str, drift: tuple[dict[str, str], ...]) -> PairResult:
    """A pair that dies on this host while ``nestnet host apply`` has nothing to change here must
    not be told to run it (issue 16): keep the fix's alternative, or say so."""
    if p.ok or drift or p.dies_at != host or not p.fix.startswith(APPLY):
        return p
    rest = p.fix[len(APPLY):]
    if rest.startswith(" or "):
        fix = rest[len(" or "):]
    elif rest in ("", f" on {host}"):
        fix = f"{APPLY} has nothing to change on {host}: the cause is outside what nestnet writes (see the findings)"
    else:
        return p
    return replace(p, reason=p.reason[: len(p.reason) - len(p.fix)] + fix, fix=fix)


def ufw_view(obs: HostObservation, nft_json: str, pol: Policy) -> HostObservation:
    """A UFW host's observation: nestnet's rules live in UFW's iptables chains (nestnet.host.ufw
    renders ``pol`` there), which ``observe_host`` (it reads ``table inet nestnet``) does not see.
    Seen through iptables-nft: nestnet's chains hooked into UFW's forward chain stand for
    nestnet's forward chain, and then UFW's FORWARD policy drop ("default deny routed") is the
    plan, not a fault; a MASQUERADE rule in ``ip nat`` for the block (or in nestnet's masquerade
    chain) is its masquerade."""
    rules = [i["rule"] for i in json.loads(nft_json or '{"nftables": []}')["nftables"] if "rule" in i]
    entries = {firewall.ufw_chain(c.name) for c in pol.chains}
    hooked = any(
        (r["family"], r["table"], r["chain"]) == ("ip", "filter", firewall.UFW_HOOK)
        and any(e.get("jump", {}).get("target") in entries for e in r.get("expr", []))
        for r in rules
    )
    # the block, or with moved VMs what lives here (one iptables rule per prefix; a /32 is shown bare)
    from_block = [
        str(n.network_address) if n.prefixlen == 32 else {"prefix": {"addr": str(n.network_address), "len": n.prefixlen}}
        for n in pol.local
    ]

    def ours(r: dict) -> bool:  # nestnet's chain, or the block's source match (masquerade: all)
        return r["chain"].startswith(firewall.UFW_PREFIX) or any(
            e.get("match", {}).get("left", {}).get("payload", {}).get("field") == "saddr"
            and e["match"].get("right") in from_block for e in r.get("expr", [])
        )

    masq = any(
        (r["family"], r["table"]) == ("ip", "nat") and ours(r)
        and any("masquerade" in e or e.get("xt", {}).get("name") == "MASQUERADE" for e in r.get("expr", []))
        for r in rules
    )
    drops = tuple(d for d in obs.foreign_drops if not (hooked and d == "ip filter FORWARD"))
    return replace(obs, nestnet_forward=hooked, nestnet_masquerade=masq, foreign_drops=drops)


def pair_count(state: State, k: int) -> int:
    """Ordered pairs with one of ``k`` given nodes at either end (the internet is a destination)."""
    n, i = len(state.node_names), int(state.internet)

    def total(m: int) -> int:
        return m * (m - 1) + m * i

    return total(n) - total(n - k)


def findings(want: HostState, got: HostState, obs: HostObservation, ufw: bool = False,
             ufw_enabled: bool | None = None) -> list[str]:
    """What the host shows that the plan does not want, named the way an operator checks it."""
    out: list[str] = []
    if want.ip_forward and not got.ip_forward:
        out.append("ip_forward is 0; the plan wants 1 (the host does not route for its VMs)")
    if got.rp_filter != want.rp_filter:
        out.append(
            f"rp_filter is {got.rp_filter} ({RP_MODES.get(got.rp_filter, '?')}) at its strictest; the plan wants "
            f"{want.rp_filter} ({RP_MODES.get(want.rp_filter, '?')})"
        )
    for knob, w, g in (("proxy_arp", want.proxy_arp, got.proxy_arp),
                       ("proxy_arp_pvlan", want.proxy_arp_pvlan, got.proxy_arp_pvlan)):
        if w != g:
            out.append(f"{knob} is {int(g)} on {want.bridge}; the plan wants {int(w)}")
    have = set(got.owned_routes)
    for r in want.owned_routes:
        if r not in have:
            out.append(f"host route missing: {_route(r)} (proto nestnet)")
    planned_routes = set(want.owned_routes)
    for r in got.owned_routes:
        if r not in planned_routes:
            out.append(f"stale nestnet route: {_route(r)}")
    if want.firewall.chains and not obs.nestnet_forward:
        # `ufw reload` loads nothing while UFW is disabled (issue 21)
        reload = ("UFW is not enabled: `ufw allow <ssh port>/tcp` then `ufw enable`" if ufw_enabled is False
                  else "`ufw reload`")
        out.append("nestnet's forward rules are not loaded (" + (
            f"its chains in UFW's before.rules: {reload}" if ufw else f"table {firewall.FAMILY} {firewall.TABLE}") + ")")
    for chain in obs.foreign_drops:
        out.append(f"forward chain {chain} has policy drop: routed traffic stops there (UFW: default deny routed)")
    if want.masquerade and not obs.nestnet_masquerade:
        out.append("nestnet's masquerade rule is missing: nested VMs' internet traffic leaves untranslated")
    return out


def _route(r) -> str:
    return f"{r.dst}" + (f" via {r.via}" if r.via else "") + f" dev {r.dev}"


def summary(got: HostState, obs: HostObservation, cloud: CloudState | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ip_forward": int(got.ip_forward),
        "rp_filter": got.rp_filter,
        f"proxy_arp({got.bridge})": int(got.proxy_arp),
        f"proxy_arp_pvlan({got.bridge})": int(got.proxy_arp_pvlan),
        "sysctl": dict(obs.sysctl),
        "nestnet_routes": [_route(r) for r in obs.owned_routes],
        "other_routes": len(obs.other_routes),
        "nft": {
            "nestnet_forward_chain": obs.nestnet_forward,
            "nestnet_masquerade": obs.nestnet_masquerade,
            "foreign_drop_chains": list(obs.foreign_drops),
        },
    }
    if cloud is not None:  # what was read of the cloud, under its name
        from .clouds import views

        out[cloud.cloud] = views(cloud.cloud).read_summary(cloud)
    return out


def assumed(plan: Plan, host: str, cloud_read: bool = False) -> tuple[str, ...]:
    from .clouds import views

    others = [h for h in plan.hosts if h != host]
    out = [] if cloud_read else [views(plan.cloud.cloud_name).assumed()]
    if others:
        out.append("hosts " + ", ".join(others))
    out.append(f"guests and endpoints (and the {INTERNET})")
    return tuple(out)
