"""Failures grouped by root cause (issue 23 item 9) and nat mode's verdicts (issue 24): each group's
pair sets are exactly its pairs, one group per cause, NAT's by-design pairs are no failure, and
check's JSON grows linearly with the fabric, not with its pairs."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from nestnet.advise import design_rule
from nestnet.faults import parse_faults
from nestnet.model import Model, apply_faults, from_plan, reachability
from nestnet.model.groups import BY_DESIGN, FAIL, OK, expand, groups, host_of
from nestnet.plan import load_plan

from tests.core.specs import fabric, seed, write

FAULTS = ["nic-forwarding-off", "ip-forward-off", "no-host-routes", "rp-filter-strict", "firewall-deny-routed",
          "no-user-route"]


def _check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nestnet", "-q", "check", *args], capture_output=True, text=True)


def _spec(hosts: int, vms: int, mode: str = "routed") -> dict:
    s = fabric(hosts, vms, plen=28)
    s["subnets"].append({"name": "mgmt", "prefix": "10.2.0.0/24"})
    s["endpoints"] = [{"name": "mgmt-vm", "ip": "10.2.0.5", "subnet": "mgmt"}]
    s["nested"]["mode"] = mode
    return s


@pytest.mark.parametrize("seed_no", range(6))
def test_groups_hold_exactly_every_pair_with_its_verdict(tmp_path, seed_no: int):
    """Brute force: every ordered pair traced one by one; the groups' blocks expand to exactly
    those verdicts, a pair in one group only, and each failing group's pairs share its fix."""
    rng = random.Random(seed_no)
    mode = rng.choice(["routed", "nat"])
    plan = load_plan(write(tmp_path, _spec(rng.randint(3, 5), rng.randint(1, 3), mode)))
    faults = [f"{k}:h{rng.randrange(len(plan.hosts))}" for k in rng.sample(FAULTS, rng.randint(0, 2))]
    state = apply_faults(from_plan(plan), parse_faults(faults, plan))
    res = reachability(state)
    got = {}
    doc = {"groups": [g.to_dict() for g in groups(res, lambda a, b: design_rule(plan, a, b), True)],
           "vm_host": {n: h for n, h in host_of(state).items() if n != h}}
    for a, b, g in expand(json.loads(json.dumps(doc))):
        assert (a, b) not in got, (a, b)
        got[(a, b)] = g
    model = Model(state)
    want = {(a, b): model.ping(a, b) for a in state.node_names for b in (*state.node_names, "internet") if a != b}
    assert set(got) == set(want)
    for k, p in want.items():
        g = got[k]
        if p.ok:
            assert g["verdict"] == OK, (k, g)
        elif design_rule(plan, *k):
            assert g["verdict"] == BY_DESIGN and "nestnet azure apply" not in json.dumps(g)
        else:
            assert g["verdict"] == FAIL and p.fix == g["fix"], (k, p.reason, g["cause"])
    causes = [(g["dies_at"], g["fix"]) for g in doc["groups"] if g["verdict"] == FAIL]
    assert len(causes) == len(set(causes))  # one group per cause


def test_a_nat_fabric_as_planned_passes_with_its_by_design_pairs(tmp_path):
    s = seed()
    s["nested"]["mode"] = "nat"
    path = write(tmp_path, s)
    r = _check(str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 failed, 6 unreachable by design" in r.stdout and "FAIL" not in r.stdout
    assert "azure apply" not in r.stdout and r.stdout.count("by design") == 2  # the summary and one group
    doc = json.loads(_check(str(path), "--json").stdout)
    assert doc["summary"] == {"pairs": 25, "ok": 19, "failed": 0, "by_design": 6}
    (g,) = doc["groups"]
    assert g["verdict"] == BY_DESIGN and g["design"].startswith("NAT: ") and "fix" not in g
    assert sorted((a, b) for a, b, _ in expand(doc)) == sorted(
        (src, dst) for dst in ("web1", "web2") for src in ("vme-kvm-vm1", "vme-kvm-vm2", "web1", "web2", "mgmt-vm")
        if src != dst and {src, dst} not in ({"vme-kvm-vm1", "web1"}, {"vme-kvm-vm2", "web2"}))


def test_a_nat_fabric_with_a_real_fault_still_fails(tmp_path):
    s = seed()
    s["nested"]["mode"] = "nat"
    r = _check(str(write(tmp_path, s)), "--fault", "no-masquerade:vme-kvm-vm1")
    assert r.returncode == 1 and "FAIL" in r.stdout and "unreachable by design" in r.stdout


def _json_bytes(tmp_path, hosts: int, mode: str, *args: str) -> int:
    d = tmp_path / f"{mode}{hosts}"
    d.mkdir()
    r = _check(str(write(d, _spec(hosts, 4, mode))), "--json", *args)
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    assert doc["summary"]["failed"] + doc["summary"]["by_design"] > hosts  # many pairs, few groups
    return len(r.stdout)


@pytest.mark.parametrize("mode, args", [("nat", ()), ("routed", ("--fault", "nic-forwarding-off:h1",
                                                                  "--fault", "no-host-routes:h2"))])
def test_check_json_grows_linearly_with_the_fabric(tmp_path, mode: str, args: tuple[str, ...]):
    """Twice the hosts: four times the pairs, about twice the JSON (issue 24: nat's grew to 1.9 GB)."""
    small, big = _json_bytes(tmp_path, 20, mode, *args), _json_bytes(tmp_path, 40, mode, *args)
    assert big / small < 2.5, (small, big)
