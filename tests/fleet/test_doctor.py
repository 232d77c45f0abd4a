"""`nestnet fleet doctor` end to end: real ansible-playbook over real ssh into each lab host, from
the lab's mgmt VM; each host's own doctor diagnoses it, the findings are merged."""

from __future__ import annotations

import json
import subprocess

import pytest

from nestnet import lab
from nestnet.faults import Fault

from .conftest import NESTNET, Fleet

pytestmark = pytest.mark.root


def fleet_doctor(f: Fleet, *args: str) -> subprocess.CompletedProcess:
    env = {
        "ANSIBLE_HOME": str(f.tmp / "ansible"),
        "ANSIBLE_LOCAL_TEMP": str(f.tmp / "ansible" / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(f.tmp / "remote"),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(f.tmp / "cp"),
    }
    argv = ["env", *(f"{k}={v}" for k, v in env.items()),
            NESTNET, "fleet", "doctor", str(f.spec), "--inventory", str(f.inventory()), *args]
    return lab.exec_(f.plan, "mgmt-vm", argv)


def test_fleet_doctor_healthy_then_one_broken_host_named(fleet_lab: Fleet):
    f = fleet_lab
    r = fleet_doctor(f, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["healthy"] and {h["host"]: h["status"] for h in doc["hosts"]} == {"hosta": "healthy", "hostb": "healthy"}
    assert doc["failing_pairs"] == []
    assert doc["probe"] == "icmp" and {h["probe"] for h in doc["hosts"]} == {"icmp"}  # each host's doctor says so

    lab.apply_fault(f.plan, Fault("no-host-routes", "hosta"))
    r = fleet_doctor(f, "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    status = {h["host"]: h for h in doc["hosts"]}
    assert status["hosta"]["status"] == "problems" and status["hostb"]["status"] == "healthy"
    assert any("10.0.1.48/28" in x for x in status["hosta"]["findings"])
    assert any(c["kind"] == "route" for c in status["hosta"]["drift"])
    failing = {(p["src"], p["dst"]): p["seen_by"] for p in doc["failing_pairs"]}
    assert failing[("vma", "vmb")] == ["hosta"]
    assert all(p["reason"] and p["dies_at"] for p in doc["failing_pairs"])
    assert sum(c["pairs"] for c in doc["causes"]) == len(doc["failing_pairs"])
    # nothing changed on the hosts: the fault is still there, and no copy of the spec is left
    assert ("vma", "vmb") in {(p.src, p.dst) for p in lab.matrix(f.plan) if not p.ok}
    assert not (f.host_root("hosta") / "etc" / "nestnet" / "nestnet.yaml").exists()

    r = fleet_doctor(f)  # people: a table, the findings per host, the failing pairs
    assert r.returncode == 1
    assert "FAIL " in r.stdout and "(seen by hosta; dies at" in r.stdout and "1/2 hosts healthy" in r.stderr
    assert r.stdout.count("FAIL ") == len(doc["causes"]) and "vma" in r.stdout

    # --probe reaches every host's doctor (each one's own JSON names it); a missing route fails
    # TCP as it fails a ping, and the people's summary names the probe
    r = fleet_doctor(f, "--probe", "tcp/22", "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["probe"] == "tcp/22" and {h["host"]: h["probe"] for h in doc["hosts"]} == {"hosta": "tcp/22", "hostb": "tcp/22"}
    assert {(p["src"], p["dst"]): p["seen_by"] for p in doc["failing_pairs"]}[("vma", "vmb")] == ["hosta"]
    r = fleet_doctor(f, "--probe", "udp/53")
    assert r.returncode == 1 and "1/2 hosts healthy, " in r.stderr and "pairs failing (probe udp/53)" in r.stderr, r.stderr
