"""The day-one and day-two scenarios end to end: real namespaces, the ARM emulator over HTTPS,
Ansible over real sshd, fping. Each brings its own lab up and always down."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from nestnet.lab import scenarios

pytestmark = pytest.mark.root

SEED = Path(__file__).parents[2] / "examples" / "seed.yaml"


@pytest.fixture(autouse=True)
def _needs_sshd():
    if shutil.which("/usr/sbin/sshd") is None or shutil.which("ssh") is None:
        pytest.skip("needs openssh-server and openssh-client")


def test_adopt_scenario_loses_no_probe(tmp_path):
    o = scenarios.adopt(SEED, lambda _m: None, name=f"ad{os.getpid()}"[:24])
    d = o.doc
    assert d["sent"] >= 4 * 40, d  # four pairs, at least a second of 40 probes/s each
    assert d["lost"] == 0, d["probes"]
    assert all(p["ok"] for p in d["pairs"]) and len(d["pairs"]) == 25
    assert d["second_run_changes"] == 0
    assert [s["step"] for s in d["steps"]] == ["azure", "hosts"] and d["steps"][0]["changes"] == 3
    assert o.ok


def test_add_host_scenario_converges(tmp_path):
    o = scenarios.add_host(SEED, lambda _m: None, name=f"ah{os.getpid()}"[:24])
    d = o.doc
    assert o.ok, [p for p in d["pairs"] if not p["ok"]]
    assert d["engine"] == "ansible" and d["hosts"] == "3 -> 4"
    assert d["convergence_s"] > 0 and len(d["pairs"]) == 9 * 9  # 4 hosts, 4 VMs, mgmt-vm; + the internet as destination
    # Azure: the new route and the new NIC's forwarding; every old host: one route (+ its file)
    assert d["changes"]["azure"] == 2
    assert all(n == 2 for h, n in d["changes"]["hosts"].items() if h != "vme-kvm-vm4")


def test_migrate_scenario_moves_web1_on_a_copy_and_every_pair_works():
    """`lab demo --scenario migrate` as a newcomer runs it (issue 23): one command, the packaged
    seed untouched, web1 moved while mgmt-vm and web2 ping it, every pair as check says."""
    import hashlib
    import json
    import subprocess
    import sys
    from importlib.resources import files

    seed = files("nestnet") / "examples"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in seed.iterdir() if p.is_file()}
    r = subprocess.run([sys.executable, "-m", "nestnet", "lab", "demo", "--scenario", "migrate", "--json",
                        "--name", f"mg{os.getpid()}"[:24]], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    d = json.loads(r.stdout)
    assert (d["vm"], d["from"], d["to"]) == ("web1", "vme-kvm-vm1", "vme-kvm-vm3")
    assert {p["src"] for p in d["probes"]} == {"mgmt-vm", "web2"} and all(p["sent"] > 0 for p in d["probes"])
    assert len(d["pairs"]) == 6 * 6 and all(p["ok"] and p["check"] for p in d["pairs"])
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in seed.iterdir() if p.is_file()}
    assert after == before
