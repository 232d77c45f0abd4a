"""`nestnet fleet apply` end to end: real ansible-playbook, real ssh into each lab host, run from
the lab's mgmt VM; the hosts' own reconciler does the work."""

from __future__ import annotations

import json
import subprocess

import pytest

from nestnet import lab
from nestnet.faults import Fault

from .conftest import Fleet

pytestmark = pytest.mark.root


def red(f: Fleet) -> set[tuple[str, str]]:
    return {(p.src, p.dst) for p in lab.matrix(f.plan) if not p.ok}


def outcome(r: subprocess.CompletedProcess) -> dict[str, dict]:
    assert "Traceback" not in r.stderr, r.stderr
    return {h["host"]: h for h in json.loads(r.stdout)["hosts"]}


def test_fleet_apply_heals_every_host_and_a_second_run_changes_nothing(fleet_lab: Fleet):
    f = fleet_lab
    assert red(f) == set()
    # Break every host behind nestnet's back (a reboot without persistence, an operator), so
    # the fleet has work to do. (`host remove` would also delete the bridge, and with it the
    # lab's VM ports, which libvirt, not nestnet, attaches.)
    for h in f.plan.hosts:
        for kind in ("no-host-routes", "ip-forward-off"):
            lab.apply_fault(f.plan, Fault(kind, h))
    broken = red(f)
    assert ("vma", "vmb") in broken and ("mgmt-vm", "vma") in broken

    r = f.apply("--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    hosts = outcome(r)
    assert set(hosts) == {"hosta", "hostb"}
    assert all(h["status"] == "changed" and h["changes"] for h in hosts.values())
    assert red(f) == broken  # the dry run changed nothing ...
    for h in f.plan.hosts:  # ... and left no copy of the spec behind
        conf = f.host_root(h) / "etc" / "nestnet"
        assert not (conf / "nestnet.yaml").exists() and not (conf / "nestnet.lock").exists()

    r = f.apply("--dry-run")  # people get the change lines, a table and a total
    assert r.returncode == 0, r.stderr
    assert "hosta: + route add 10.0.1.48/28 (via 10.0.1.11 dev eth1 proto nestnet)" in r.stdout
    assert f"{sum(len(h['changes']) for h in hosts.values())} changes pending (dry run) on 2 hosts" in r.stderr

    r = f.apply("--json")
    assert r.returncode == 0, r.stderr
    applied = outcome(r)
    assert all(h["status"] == "changed" for h in applied.values())
    # exactly what the dry run announced
    assert {n: h["changes"] for n, h in applied.items()} == {n: h["changes"] for n, h in hosts.items()}
    assert red(f) == set()
    for h in f.plan.hosts:
        conf = f.host_root(h) / "etc" / "nestnet"
        assert (conf / "nestnet.yaml").read_text() == f.spec.read_text()
        assert (conf / "nestnet.lock").read_text() == f.spec.with_suffix(".lock").read_text()

    for args in (("--json",), ("--dry-run", "--json")):
        r = f.apply(*args)
        assert r.returncode == 0, r.stderr
        assert {n: (h["status"], h["changes"]) for n, h in outcome(r).items()} == {
            "hosta": ("ok", []), "hostb": ("ok", [])
        }



def test_failed_unreachable_and_missing_hosts_exit_1_with_one_line_each(fleet_lab: Fleet):
    f = fleet_lab
    ip = {h: str(x.ip) for h, x in f.plan.hosts.items()}
    inv = f.inventory({
        "hosta": {"ansible_host": ip["hosta"]},
        "ghost": {"ansible_host": ip["hosta"], "nestnet_root": str(f.tmp / "ghost")},  # not in the plan
        "hostb": {"ansible_host": str(f.plan.vms["vma"].ip)},  # no sshd there: unreachable
    })
    r = f.apply("--json", inventory=inv)
    assert r.returncode == 1
    hosts = outcome(r)
    assert hosts["hosta"]["status"] == "ok"
    assert hosts["ghost"]["status"] == "failed"
    # the host's own one-line error, through Ansible
    spec_there = f.tmp / "ghost" / "etc" / "nestnet" / "nestnet.yaml"
    assert hosts["ghost"]["error"] == f"host 'ghost' is not in {spec_there} (did you mean 'hostb'? known: hosta, hostb)"
    assert hosts["hostb"]["status"] == "unreachable" and hosts["hostb"]["error"]
    assert "\n" not in hosts["hostb"]["error"]

    r = f.apply("--json", inventory=f.inventory({"hosta": {"ansible_host": ip["hosta"]}}))
    assert r.returncode == 1
    assert outcome(r)["hostb"] == {
        "host": "hostb", "status": "missing", "changes": [], "error": "not in the inventory's group nestnet_hosts",
    }
