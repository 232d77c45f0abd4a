"""Equivalence classes must give every pair the verdict brute force gives it."""

from __future__ import annotations

import random

import pytest

from nestnet.faults import parse_faults
from nestnet.model import Model, apply_faults, from_plan
from nestnet.model.classes import node_classes, reachability

from .conftest import base
from .fabrics import random_faults, random_nsgs, random_spec


@pytest.mark.parametrize("seed", range(60))
def test_classes_agree_with_brute_force(make_plan, seed):
    rng = random.Random(seed)
    plan = make_plan(random_spec(rng, f"cls{seed}", ("routed", "routed", "nat", "secondary-ip", "nic-prefix"), bridges=True))
    state = apply_faults(from_plan(plan), parse_faults(random_faults(rng, plan, most=4), plan))
    model = Model(state)
    brute = {(a, b): model.ping(a, b).ok for a in state.node_names for b in (*state.node_names, "internet") if a != b}
    res = reachability(state)
    got = {(p.src, p.dst): p.ok for p in res.pairs(include_ok=True)}
    assert got == brute
    assert res.summary == {"pairs": len(brute), "ok": sum(brute.values()), "failed": len(brute) - sum(brute.values())}


@pytest.mark.parametrize("seed", range(30))
def test_classes_agree_with_brute_force_with_nsgs(make_plan, seed):
    from dataclasses import replace

    rng = random.Random(1000 + seed)
    plan = make_plan(random_spec(rng, f"nsg{seed}", ("routed", "routed", "nat", "secondary-ip", "nic-prefix"), bridges=True))
    state = apply_faults(from_plan(plan), parse_faults(random_faults(rng, plan, most=2), plan))
    state = replace(state, cloud=random_nsgs(rng, state))
    model = Model(state)
    brute = {(a, b): model.ping(a, b).ok for a in state.node_names for b in (*state.node_names, "internet") if a != b}
    got = {(p.src, p.dst): p.ok for p in reachability(state).pairs(include_ok=True)}
    assert got == brute


@pytest.mark.parametrize("seed", range(30))
def test_classes_agree_with_brute_force_for_a_port_probe(make_plan, seed):
    """One probe for all pairs: the classes of the state stay right for TCP/UDP and port rules."""
    from dataclasses import replace

    from nestnet.model.probe import Probe

    rng = random.Random(2000 + seed)
    plan = make_plan(random_spec(rng, f"prb{seed}", ("routed", "routed", "nat", "secondary-ip", "nic-prefix"), bridges=True))
    state = apply_faults(from_plan(plan), parse_faults(random_faults(rng, plan, most=2), plan))
    state = replace(state, cloud=random_nsgs(rng, state, ports=True))
    probe = Probe.parse(rng.choice(("tcp/22", "tcp/1500", "udp/53", "tcp/80")))
    model = Model(state, probe)
    brute = {(a, b): model.ping(a, b).ok for a in state.node_names for b in (*state.node_names, "internet") if a != b}
    got = {(p.src, p.dst): p.ok for p in reachability(state, probe).pairs(include_ok=True)}
    assert got == brute


def test_regular_fabric_collapses_to_few_classes(make_plan):
    spec = base()
    spec["hosts"] += [{"name": f"x{i}", "ip": f"10.0.1.{100 + i}"} for i in range(6)]
    spec["vms"] += [{"name": f"x{i}v{j}", "host": f"x{i}"} for i in range(6) for j in range(2)]
    plan = make_plan(spec)
    classes, _ = node_classes(from_plan(plan))
    kinds = sorted(c.kind for c in classes)
    assert kinds == ["endpoint", "host", "internet", "vm"]


def test_nic_prefix_fabric_collapses_to_few_classes(make_plan):
    """Each host's NIC prefix is its own block to it: hosts stay alike (naming each prefix's
    addresses made every host special - 4,096 x 15 took minutes instead of seconds)."""
    spec = base(guest_style="subnet")
    spec["nested"].update(guest_style="onlink", mode="nic-prefix")
    spec["hosts"] += [{"name": f"x{i}", "ip": f"10.0.1.{100 + i}"} for i in range(5)]
    spec["vms"] += [{"name": f"x{i}v{j}", "host": f"x{i}"} for i in range(5) for j in range(2)]
    plan = make_plan(spec)
    classes, _ = node_classes(from_plan(plan))
    hosts = [c for c in classes if c.kind == "host"]
    assert len(hosts) <= 2 and max(len(c.members) for c in hosts) >= 5, [c.members for c in hosts]
    state = apply_faults(from_plan(plan), parse_faults(["no-nic-prefix:x1"], plan))
    assert ("x1",) in [c.members for c in node_classes(state)[0] if c.kind == "host"]


def test_a_fault_singles_out_its_host(make_plan):
    spec = base()
    spec["hosts"] += [{"name": f"x{i}", "ip": f"10.0.1.{100 + i}"} for i in range(3)]
    plan = make_plan(spec)
    state = apply_faults(from_plan(plan), parse_faults(["ip-forward-off:x1"], plan))
    classes, _ = node_classes(state)
    assert ("x1",) in [c.members for c in classes if c.kind == "host"]


@pytest.mark.parametrize("seed", range(30))
def test_planned_routes_read_by_rule_sign_hosts_as_walking_them_does(make_plan, seed):
    """The classes read a planned host's routes from the plan's rule (O(1)); the same host with
    its routes as a plain tuple (as observed) must get the same signature and specials."""
    from dataclasses import replace

    from nestnet.model.classes import _Signer
    from nestnet.model.state import PlannedRoutes

    rng = random.Random(seed)
    plan = make_plan(random_spec(rng, f"rule{seed}", ("routed", "routed", "nat", "secondary-ip", "nic-prefix"), bridges=True))
    state = apply_faults(from_plan(plan), parse_faults(random_faults(rng, plan, most=3), plan))
    walked = replace(state, hosts={n: replace(h, owned_routes=tuple(h.owned_routes)) for n, h in state.hosts.items()})
    assert any(isinstance(h.owned_routes, PlannedRoutes) for h in state.hosts.values())
    by_rule, by_walk = _Signer(state), _Signer(walked)
    for name in state.hosts:
        vm_ips = frozenset(g.ip for g in state.guests.values() if g.host == name)
        assert by_rule.host_key(state.hosts[name], vm_ips) == by_walk.host_key(walked.hosts[name], vm_ips)
    assert by_rule.special == by_walk.special
