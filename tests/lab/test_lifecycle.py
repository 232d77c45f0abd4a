"""Bring-up, the Python API and the CLI, and a clean tear-down."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from dataclasses import replace

import pytest

from nestnet import lab
from nestnet.errors import LabError, UsageError
from nestnet.faults import Fault
from nestnet.clouds.azure import sdn
from nestnet.lab.core import state_dir
from nestnet.lab.topology import Topology
from nestnet.host import apply as host_apply
from nestnet.netns import list_names, run_in

from .conftest import plan_of, red, seed

pytestmark = pytest.mark.root
NESTNET = [sys.executable, "-m", "nestnet"]


def three_hosts() -> dict:
    """3 hosts (one in its own subnet, reached through the gateway), 3 VMs, a mgmt endpoint."""
    spec = seed()
    spec["subnets"].append({"name": "vm2-subnet", "prefix": "10.0.3.0/24"})
    spec["hosts"].append({"name": "hostc", "ip": "10.0.3.10", "block": "10.0.1.80/28"})
    spec["vms"].append({"name": "vmc", "host": "hostc", "ip": "10.0.1.85"})
    return spec


def test_three_host_fabric_is_all_green_and_reprogramming_changes_nothing(make_lab):
    plan = make_lab(three_hosts())
    pairs = lab.matrix(plan)
    assert len(pairs) == 7 * 7  # 7 nodes to each other and to the internet
    assert red(plan) == set()
    topo = Topology.from_plan(plan)
    assert not sdn.program_ns(topo, lab.CloudState.from_plan(plan))
    # the host reconciler itself configured the hosts: a second run has nothing to do
    for h in plan.hosts:
        root = state_dir(plan.name) / "hosts" / h
        assert run_in(topo.ns(h), host_apply, plan, h, root=str(root)) == []


@pytest.mark.parametrize("mode", ["secondary-ip", "nat"])
def test_the_alternative_modes(make_lab, mode):
    spec = seed()
    spec["nested"]["mode"] = mode
    plan = make_lab(spec)
    # secondary IPs: Azure owns every guest address, all green. NAT: no way in from outside the host.
    inbound = {("hosta", "vmb"), ("hostb", "vma"), ("mgmt", "vma"), ("mgmt", "vmb"), ("vma", "vmb"), ("vmb", "vma")}
    assert red(plan) == (set() if mode == "secondary-ip" else inbound)


@pytest.mark.parametrize("bridge_type", ["linux", "ovs"])
def test_bridge_holding_the_uplink_comes_up(make_lab, bridge_type):
    """Topology T2 (the seed's HPE `mgmt` bridge): the lab builds the bridge with the uplink and
    the address, as the OS would, then the host reconciler adds its L2 guards."""
    if bridge_type == "ovs" and not shutil.which("ovs-vswitchd"):
        pytest.skip("Open vSwitch is not installed")
    spec = seed()
    spec["hosts"][0].update(bridge="mgmt", bridge_has_uplink=True, bridge_type=bridge_type)
    plan = make_lab(spec)
    assert red(plan) == set()
    if bridge_type == "linux":
        ports = lab.exec_(plan, "hosta", ["ip", "-o", "link", "show", "master", "mgmt"]).stdout
        ports = " ".join(line.split(":")[1].split("@")[0].strip() for line in ports.splitlines())
    else:
        ports = lab.exec_(plan, "hosta", ["ovs-vsctl", "list-ports", "mgmt"]).stdout
    assert sorted(ports.split()) == ["eth1", "vn0a000114"]  # the VM port is named by its address


@pytest.mark.skipif(not shutil.which("ovs-vswitchd"), reason="Open vSwitch is not installed")
def test_ovs_host_on_a_private_userspace_switch(make_lab):
    spec = seed()
    spec["hosts"][1]["bridge_type"] = "ovs"
    plan = make_lab(spec)
    assert red(plan) == set()
    ports = lab.exec_(plan, "hostb", ["ovs-vsctl", "list-ports", "nestbr0"]).stdout
    assert ports.split() == ["vn0a000132"]
    # TCP too: the userspace datapath needs the veths' checksum offload off
    server = ["python3", "-c", "import socket; s=socket.create_server(('0.0.0.0', 7000)); c=s.accept()[0]; c.sendall(b'ok')"]
    srv = subprocess.Popen(["ip", "netns", "exec", Topology.from_plan(plan).ns("vmb"), *server])
    try:
        client = "import socket,time\nfor _ in range(50):\n try: print(socket.create_connection(('10.0.1.50', 7000), 2).recv(2).decode()); break\n except ConnectionRefusedError: time.sleep(0.05)"
        assert lab.exec_(plan, "vma", ["python3", "-c", client]).stdout.strip() == "ok"
    finally:
        srv.kill()
        srv.wait()


def test_down_leaves_no_namespace_process_or_state(tmp_path):
    plan = plan_of(tmp_path, seed())
    lab.up(plan)
    try:
        ns = Topology.from_plan(plan).ns("vma")
        sleeper = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "300"])
        assert lab.exec_(plan, "vma", ["ip", "-br", "addr", "show", "eth0"]).stdout.split()[2] == "10.0.1.20/32"
    finally:
        lab.down(plan)
    assert sleeper.wait(timeout=5) == -9
    assert not [n for n in list_names() if n.startswith(f"nn-{plan.name}.")]
    assert not state_dir(plan.name).exists()
    lab.down(plan.name)  # nothing left: a second down is a no-op


def test_up_refuses_a_running_lab_and_cleans_up_after_a_failed_up(make_lab, tmp_path):
    plan = make_lab(seed())
    with pytest.raises(LabError, match="already up"):
        lab.up(plan)
    with pytest.raises(UsageError, match="no node named 'nope'"):
        lab.exec_(plan, "nope", ["true"])
    broken = plan_of(tmp_path, seed())
    bad_host = replace(broken.hosts["hosta"], uplink="x" * 20)  # no such interface name is possible
    broken = replace(broken, hosts={**broken.hosts, "hosta": bad_host})
    with pytest.raises(LabError):
        lab.up(broken)
    assert not lab.is_up(broken.name)


def test_not_root_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        lab.up(plan_of(tmp_path, seed()))


def test_cli_up_matrix_json_fault_heal_exec_down(tmp_path):
    plan = plan_of(tmp_path, seed())
    spec = str(tmp_path / f"{plan.name}.yaml")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*NESTNET, "lab", *args], capture_output=True, text=True)

    try:
        assert cli("up", spec).returncode == 0
        r = cli("matrix", spec, "--json")
        assert r.returncode == 0, r.stderr
        pairs = json.loads(r.stdout)["pairs"]
        assert {"src": "vma", "dst": "vmb", "ok": True} in pairs and len(pairs) == 25
        assert cli("fault", spec, "no-user-route:hostb").returncode == 0
        r = cli("matrix", spec, "--json")
        assert r.returncode == 1
        assert {"src": "vma", "dst": "vmb", "ok": False} in json.loads(r.stdout)["pairs"]
        r = cli("fault", spec, "no-user-route:nohost")
        assert r.returncode == 2 and r.stderr.startswith("error: fault 'no-user-route:nohost'")
        assert "no-user-route:hostb" in cli("heal", spec).stderr
        assert cli("matrix", spec).returncode == 0
        r = cli("exec", spec, "internet", "--", "ip", "-br", "addr", "show", "lo")
        assert r.returncode == 0 and "203.0.113.10/32" in r.stdout
        assert cli("exec", spec, "vma", "--", "false").returncode == 1
    finally:
        assert cli("down", spec).returncode == 0
    assert not lab.is_up(plan.name)


def test_demo_passes_from_any_directory(tmp_path):
    r = subprocess.run([*NESTNET, "lab", "demo"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS web1: ping -c1 -W1 10.0.2.5" in r.stdout
    assert "25/25 pairs reachable" in r.stdout and "demo passed" in r.stdout
    assert not list(Path("/run/netns").glob("nn-hpe-vme-test.*"))


def test_azure_api_mode_starts_empty_and_follows_whoever_programs_the_fabric(tmp_path):
    plan = plan_of(tmp_path, seed())
    try:
        lab.up(plan, azure="api")
        # nothing configured in Azure yet: no user routes, no IP forwarding, no associations
        assert ("vma", "vmb") in red(plan) and ("hosta", "hostb") not in red(plan)
        topo = Topology.from_plan(plan)
        sdn.program_ns(topo, lab.CloudState.from_plan(plan))  # what the ARM emulator's hook does
        assert red(plan) == set()
        with pytest.raises(UsageError, match="ARM API"):
            lab.apply_fault(plan, Fault("no-user-route", "hosta"))
        lab.apply_fault(plan, Fault("ip-forward-off", "hosta"))
        lab.heal(plan)  # heals the host, leaves Azure's side to the API
        assert red(plan) == set()
        sdn.program_ns(topo, lab.CloudState.from_plan(plan).unconfigured())
        lab.heal(plan)
        assert ("vma", "vmb") in red(plan)
    finally:
        lab.down(plan)
