"""`nestnet check` end to end: exit codes, JSON shape, --all, --trace, bad input as one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nestnet.model.groups import expand

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    for name in ("seed.yaml", "seed.lock"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    return tmp_path / "seed.yaml"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nestnet", "check", *args], capture_output=True, text=True)


def test_seed_is_all_green(seed):
    r = run(str(seed))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "25/25 pairs ok, 0 failed" in r.stdout


def test_json_lists_failed_pairs_and_exits_1(seed):
    r = run(str(seed), "--fault", "nic-forwarding-off:vme-kvm-vm2", "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["summary"] == {"pairs": 25, "ok": 19, "failed": 6, "by_design": 0}
    pairs = [(a, b) for a, b, _ in expand(out)]
    assert sorted(pairs) == sorted({
        ("vme-kvm-vm1", "web2"), ("web1", "web2"), ("web2", "vme-kvm-vm1"), ("web2", "web1"),
        ("web2", "mgmt-vm"), ("mgmt-vm", "web2"),
    })
    (g,) = out["groups"]  # one cause: the NIC's forwarding
    assert g["verdict"] == "fail" and g["count"] == 6 and g["dies_at"] == "azure:vme-kvm-vm2-vm-nic"
    assert "vme-kvm-vm2-vm-nic" in g["cause"] and g["fix"].startswith("`nestnet azure apply`")
    assert g["example"]["hops"] and g["example"]["reason"].endswith(g["fix"])


def test_one_cause_is_printed_once(seed):
    """Issue 23 item 9: one line per cause with its fix and the pairs it breaks, not 6 (or 12)."""
    r = run(str(seed), "--fault", "nic-forwarding-off:vme-kvm-vm2")
    assert r.returncode == 1
    assert r.stdout.count("FAIL") == 1 and r.stdout.count("--ip-forwarding true") == 1, r.stdout
    assert "6 failed (1 cause)" in r.stdout
    assert "FAIL 6 pairs: vme-kvm-vm1, web1, mgmt-vm → web2; web2 → vme-kvm-vm1, web1, mgmt-vm" in r.stdout


def test_all_lists_every_pair(seed):
    out = json.loads(run(str(seed), "--all", "--json").stdout)
    pairs = list(expand(out))
    assert len(pairs) == len(set((a, b) for a, b, _ in pairs)) == out["summary"]["pairs"] == 25
    assert all(g["verdict"] == "ok" for _, _, g in pairs)


def test_trace_prints_both_directions(seed):
    r = run(str(seed), "--trace", "web1", "mgmt-vm")
    assert r.returncode == 0
    assert "request web1 → mgmt-vm" in r.stdout and "reply mgmt-vm → web1" in r.stdout


def test_trace_of_a_failing_pair_names_the_cause(seed):
    r = run(str(seed), "--trace", "mgmt-vm", "web1", "--fault", "no-route-table:mgmt-subnet")
    assert r.returncode == 1
    assert "FAILED at azure:mgmt-subnet" in r.stdout and "not associated with route table" in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fault", "bogus:x"], "fault 'bogus:x': expected one of"),
        (["--fault", "ip-forward-off:nohost"], "'nohost' is not a host"),
        (["--trace", "web1", "nowhere"], "no node named 'nowhere'"),
        (["--trace", "internet", "web1"], "the internet is a destination only"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(seed, args, message):
    r = run(str(seed), *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_missing_spec_is_exit_2(tmp_path):
    r = run(str(tmp_path / "nope.yaml"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
