"""Issue 26's Done-when: a VM exposed on tcp/80 in routed mode is reachable from the lab's internet
through its host's emulated public IP, in the lab (real curl and ping from the internet namespace)
and in ``check``, and is not reachable on other ports; check and the lab agree port by port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from nestnet import exposes
from nestnet.clouds.azure import sdn
from nestnet.clouds.azure.lab import PIP_TABLE
from nestnet.lab.topology import Topology
from nestnet.model import INTERNET, INTERNET_IP, Model, from_plan
from nestnet.model.state import OUTBOUND_IP

from .conftest import seed

pytestmark = pytest.mark.root
NESTNET = [sys.executable, "-m", "nestnet"]


def expose_spec() -> dict:
    d = seed()
    d["vms"][0]["expose"] = [{"port": 80}, {"port": 80, "public_port": 8080}]
    return d


def curl(ns: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, "curl", "-sS", "--max-time", "3", url],
                          capture_output=True, text=True)


def serve(ns: str, port: int, log: str) -> subprocess.Popen:
    """A real web server in ``ns`` whose access log (stderr) names each client's address."""
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "http.server", str(port), "--bind",
                             "0.0.0.0", "--directory", "/"], stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), start_new_session=True)


def test_exposed_vm_is_reachable_from_the_internet_on_its_port_only_and_check_agrees(make_lab, tmp_path):
    plan = make_lab(expose_spec())
    topo = Topology.from_plan(plan)
    inet, vm_ns = topo.internet_ns, topo.ns("vma")
    state = from_plan(plan)
    pub = exposes.public_ip_of(state, "hosta")
    assert pub is not None and exposes.public_ip_of(state, "hostb") is None
    servers = {port: serve(vm_ns, port, str(tmp_path / f"{port}.log")) for port in (80, 81)}
    try:
        deadline = time.monotonic() + 10
        while (got := curl(inet, f"http://{pub.address}/")).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        lab = {}
        for port in (80, 8080, 81, 22, 443):
            lab[port] = curl(inet, f"http://{pub.address}:{port}/").returncode == 0 and port in (80, 8080)
        # the VM answered (its directory listing), and saw the internet's own address: no masquerade,
        # the reply went back through the host's and the fabric's conntrack, from the public IP
        assert got.returncode == 0 and "Directory listing" in got.stdout, got.stderr
        assert f"{INTERNET_IP} - -" in (tmp_path / "80.log").read_text()
        assert lab == {80: True, 8080: True, 81: False, 22: False, 443: False}
        # 81 is served by the VM too: only the exposure decides; the VM's own address is not on the internet
        assert curl(inet, f"http://{pub.address}:81/").returncode != 0
        assert (tmp_path / "81.log").read_text() == ""
        assert curl(inet, f"http://{plan.vms['vma'].ip}:80/").returncode != 0
        # check agrees port by port, and names where the others end (at the host, not the VM)
        model = {port: exposes.reach(state, "vma", "tcp", port).ok for port in lab}
        assert model == {80: True, 8080: True, 81: False, 22: False, 443: False}
        assert "answered by hosta, not vma" in exposes.reach(state, "vma", "tcp", 81).reason
        # a ping to the public IP is answered by the host (Azure delivers it to the NIC), in both
        ping = subprocess.run(["ip", "netns", "exec", inet, "ping", "-c", "1", "-W", "2", str(pub.address)],
                              capture_output=True, text=True)
        assert ping.returncode == 0 and Model(state).from_internet("hosta", pub.address).ok
    finally:
        for p in servers.values():
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    # outbound: hosta (with the public IP) reaches the internet as its public IP, hostb as the
    # default outbound address; the model says the same
    log = tmp_path / "inet.log"
    web = serve(inet, 8088, str(log))
    try:
        for node in ("hosta", "hostb"):
            deadline = time.monotonic() + 10
            while curl(topo.ns(node), f"http://{INTERNET_IP}:8088/").returncode != 0 and time.monotonic() < deadline:
                time.sleep(0.2)
        seen = log.read_text()
        assert f"{pub.address} - -" in seen and f"{OUTBOUND_IP} - -" in seen, seen
    finally:
        os.killpg(web.pid, signal.SIGKILL)
        web.wait()
    hops = "\n".join(Model(state).ping("hosta", INTERNET).hops)
    assert f"translates {plan.hosts['hosta'].ip} to {pub.address}" in hops
    assert Model(state).ping("vma", INTERNET).ok and Model(state).ping("hostb", INTERNET).ok
    # the fabric holds the public IP's DNAT, and a second programming changes nothing
    assert str(pub.address) in subprocess.run(["ip", "netns", "exec", topo.sdn_ns, "nft", "list", "table", "ip",
                                               PIP_TABLE], capture_output=True, text=True, check=True).stdout
    assert not sdn.program_ns(topo, state.azure)
    # `nestnet check` lists the exposed ports as reachable, and `--trace internet vma` walks it
    r = subprocess.run([*NESTNET, "check", plan.source, "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [(e["vm"], e["public_port"], e["ok"]) for e in json.loads(r.stdout)["exposed"]] == [
        ("vma", 80, True), ("vma", 8080, True)]
    r = subprocess.run([*NESTNET, "check", plan.source, "--trace", INTERNET, "vma", "--probe", "tcp/81"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "answered by hosta, not vma" in r.stdout, r.stdout + r.stderr


FAULTS = ["ip-forward-off:hosta", "nic-forwarding-off:hosta", "firewall-deny-routed:hosta", "no-host-routes:hosta",
          "rp-filter-strict:hosta", "no-masquerade:hosta"]


def test_check_and_the_lab_agree_on_exposed_ports_under_every_fault(make_lab, tmp_path):
    """Each fault applied to the lab and as the model's what-if: the internet's curl to the exposed
    port and to one that is not exposed gets through exactly where `check --fault` says it does."""
    from nestnet.faults import parse_fault
    from nestnet.lab import core
    from nestnet.model import apply_faults

    from nestnet import lab

    plan = make_lab(expose_spec())
    topo = Topology.from_plan(plan)
    pub = exposes.public_ip_of(from_plan(plan), "hosta")
    server = serve(topo.ns("vma"), 80, str(tmp_path / "80.log"))
    try:
        deadline = time.monotonic() + 10
        while curl(topo.internet_ns, f"http://{pub.address}/").returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        verdicts = {}
        for text in FAULTS:
            fault = parse_fault(text, plan)
            lab.apply_fault(plan, fault)
            try:
                state = apply_faults(from_plan(plan), [fault])
                got = {port: curl(topo.internet_ns, f"http://{pub.address}:{port}/").returncode == 0
                       for port in (80, 8080, 81)}
                model = {port: exposes.reach(state, "vma", "tcp", port).ok for port in got}
                assert got == model, (text, got, model, exposes.reach(state, "vma", "tcp", 80).reason)
                verdicts[text] = got[80]
            finally:
                core.heal(plan)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    # the faults that stop the host forwarding or drop the DNATed flow break it; Azure's
    # forwarding flag does not (the public IP is delivered to the NIC's own address), nor masquerade
    assert verdicts == {"ip-forward-off:hosta": False, "nic-forwarding-off:hosta": True,
                        "firewall-deny-routed:hosta": False, "no-host-routes:hosta": False,
                        "rp-filter-strict:hosta": True, "no-masquerade:hosta": True}, verdicts
