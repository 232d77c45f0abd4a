"""``nestnet lab demo --mode M``: the seed in each mode, in the lab; what each mode cannot serve by
design is exactly what fails, and ``check`` agrees with the lab pair by pair."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nestnet.advise import not_served
from nestnet.lab.demo import MODES, judge, passed, result, run_demo, seed_plan
from nestnet.model import from_plan, reachability

from .conftest import unique_name


@pytest.mark.parametrize("mode", MODES)
def test_by_design_failures_are_exactly_checks(mode: str) -> None:
    """Pure: the model fails exactly the pairs the mode cannot serve by design (no lab needed)."""
    plan = seed_plan(mode)
    res = list(reachability(from_plan(plan)).pairs(include_ok=True))
    failed = {(p.src, p.dst) for p in res if not p.ok}
    designed = {(p.src, p.dst) for p in res if not_served(plan, p.src, p.dst)}
    assert failed == designed
    assert (len(failed), len(res)) == ((6, 25) if mode == "nat" else (0, 25))


def test_seed_modes_keep_the_seed_fabric() -> None:
    plans = {m: seed_plan(m) for m in MODES}
    for m, p in plans.items():
        assert p.mode == m and list(p.hosts) == ["vme-kvm-vm1", "vme-kvm-vm2"] and list(p.vms) == ["web1", "web2"]
        assert str(p.endpoints["mgmt-vm"].ip) == "10.0.2.5"
    assert [str(v.ip) for v in plans["secondary-ip"].vms.values()] == ["10.0.1.20", "10.0.1.50"]
    assert {str(s.ip) for s in plans["secondary-ip"].azure.secondary_ips} == {"10.0.1.20", "10.0.1.50"}
    assert [str(v.ip) for v in plans["nat"].vms.values()] == ["192.168.122.20", "192.168.122.50"]
    assert plans["nat"].azure.routes == () and plans["routed"].azure.routes


def test_judge_flags_surprises_and_disagreement() -> None:
    from nestnet.lab import PingResult as LabPair

    plan = seed_plan("nat")
    lab = [LabPair("mgmt-vm", "web1", False), LabPair("web1", "mgmt-vm", True)]
    said = [LabPair("mgmt-vm", "web1", False), LabPair("web1", "mgmt-vm", True)]
    pairs = judge(plan, lab, said)
    assert [(p.expected, p.check) for p in pairs] == [(False, False), (True, True)] and passed(pairs)
    assert result("nat", pairs)["check_agrees"] is True
    bad = judge(plan, [LabPair("mgmt-vm", "web1", True)], said)  # reached what NAT hides: unexpected
    assert not passed(bad) and result("nat", bad)["check_agrees"] is False
    bad = judge(plan, [LabPair("web1", "mgmt-vm", False)], said)  # an expected pair failed
    assert not passed(bad)


@pytest.mark.root
@pytest.mark.parametrize("mode", MODES)
def test_demo_in_the_lab(mode: str) -> None:
    plan = seed_plan(mode, unique_name())
    done, pairs = run_demo(plan)
    assert done and all(c.ok for c in done), [c for c in done if not c.ok]
    assert len(pairs) == 25 and {p.dst for p in pairs} >= {"internet"}
    assert all(p.ok == p.expected for p in pairs), [p for p in pairs if p.ok != p.expected]
    assert all(p.check == p.ok for p in pairs)
    assert sum(not p.expected for p in pairs) == (6 if mode == "nat" else 0)
    assert passed(pairs)


@pytest.mark.root
def test_cli_json() -> None:
    r = subprocess.run([sys.executable, "-m", "nestnet", "lab", "demo", "--mode", "nat", "--json",
                        "--name", unique_name()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["mode"] == "nat" and d["check_agrees"] is True and len(d["pairs"]) == 25
    assert set(d["pairs"][0]) == {"src", "dst", "ok", "expected"}
    assert {(p["src"], p["dst"]) for p in d["pairs"] if not p["expected"]} == {
        (p["src"], p["dst"]) for p in d["pairs"] if not p["ok"]}


@pytest.mark.root
def test_cli_probe_tcp_judges_real_connections() -> None:
    """--probe tcp/22: the lab connects to a listener on port 22 in every destination and check is
    asked the same; nat hides the same VMs from TCP as from pings."""
    r = subprocess.run([sys.executable, "-m", "nestnet", "lab", "demo", "--mode", "nat", "--probe", "tcp/22", "--json",
                        "--name", unique_name()], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["probe"] == "tcp/22" and d["check_agrees"] is True and len(d["pairs"]) == 25
    failed = {(p["src"], p["dst"]) for p in d["pairs"] if not p["ok"]}
    assert failed == {(p["src"], p["dst"]) for p in d["pairs"] if not p["expected"]} and len(failed) == 6


@pytest.mark.root
def test_cli_probe_udp_named_for_people() -> None:
    r = subprocess.run([sys.executable, "-m", "nestnet", "lab", "demo", "--probe", "udp/5353", "--name", unique_name()],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "(every ordered pair, both directions, probe udp/5353):" in r.stdout
    assert "25/25 pairs reachable" in r.stdout and "demo passed" in r.stdout


@pytest.mark.parametrize("args, line", [
    (("--probe", "udp/0"), "error: --probe udp/0: udp needs a port 1-65535 (expected udp/PORT, e.g. udp/22)"),
    (("--scenario", "adopt", "--probe", "tcp/22"),
     "error: --scenario adopt pings; --probe tcp/22 runs with --scenario seed only"),
])
def test_cli_bad_probe_is_one_line(args, line) -> None:
    r = subprocess.run([sys.executable, "-m", "nestnet", "lab", "demo", *args, "--name", unique_name()],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.splitlines() == [line] and r.stdout == "", r.stderr
