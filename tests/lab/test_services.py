"""Nested VMs that boot by DHCP and resolve names: `lab up --guests dhcp`, `lab services`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nestnet import lab
from nestnet.lab import dns, services
from nestnet.lab.core import state_dir
from nestnet.lab.topology import Topology

from .conftest import seed
from .test_lifecycle import three_hosts

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not shutil.which("udhcpc") or not Path("/usr/sbin/dnsmasq").exists(),
                       reason="needs dnsmasq-base and udhcpc (scripts/system-deps)"),
]
NESTNET = [sys.executable, "-m", "nestnet"]

# A DNS query for www.example.com (A), sent from inside a namespace straight to a server.
ASK = r"""
import socket, sys
q = bytes.fromhex("123401000001000000000000") + b"\x03www\x07example\x03com\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5)
s.sendto(q, (sys.argv[1], 53))
try:
    print("answer" if s.recvfrom(512)[0][:2] == q[:2] else "other")
except OSError:
    print("none")
"""


def ask(plan, node: str, server: str) -> str:
    ns = Topology.from_plan(plan).ns(node)
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", ASK, server], capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("style", ["onlink", "subnet"])
def test_seed_by_dhcp_every_service_ok_leases_match_the_plan_and_matrix_stays_green(make_lab, style):
    spec = seed()
    spec["nested"]["guest_style"] = style
    spec["azure"]["private_dns_zone"] = "nested.example.net"
    plan = make_lab(spec, guests="dhcp")
    res = services.run(plan)
    assert set(res) == set(plan.vms)
    for v, r in res.items():
        assert r.to_dict() == {"dhcp": {"ok": True, "ip": str(plan.vms[v].ip)}, "dns": {"ok": True},
                               "http": {"ok": True}, "forwards": []}, (v, r.names)
        # the guest was configured by its DHCP client only: the lease it recorded at boot
        rec = (state_dir(plan.name) / "leases" / v / "eth0.lease").read_text()
        assert f"ip={plan.vms[v].ip}\n" in rec and f"mask={plan.vms[v].prefix_len}\n" in rec
    # another VM's short name resolved through the search domain the DHCP server handed out
    assert "vmb" in res["vma"].names
    resolv = (dns.ETC_NETNS / Topology.from_plan(plan).ns("vma") / "resolv.conf").read_text()
    assert resolv == "search nested.example.net\nnameserver 10.0.1.10\n"
    assert all(p.ok for p in lab.matrix(plan))


def test_three_hosts_by_dhcp_with_the_cli_json(make_lab):
    spec = three_hosts()  # one host in its own subnet, a mgmt endpoint
    spec["nested"]["dhcp"] = {"dynamic": True}
    spec["azure"]["private_dns_zone"] = "nested.example.net"
    plan = make_lab(spec, guests="dhcp")
    r = subprocess.run([*NESTNET, "lab", "services", plan.source, "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out == {"vms": {v.name: {"dhcp": {"ok": True, "ip": str(v.ip)}, "dns": {"ok": True}, "http": {"ok": True},
                                    "forwards": []} for v in plan.vms.values()}}
    assert all(p.ok for p in lab.matrix(plan))


def test_azure_dns_answers_nic_addresses_only_and_services_see_a_dead_forwarder(make_lab):
    spec = seed()
    spec["nested"]["egress"] = "none"  # nothing masquerades a guest's own query
    plan = make_lab(spec)  # static guests: resolv.conf from the guest config
    assert ask(plan, "hosta", str(dns.AZURE_DNS)) == "answer"
    assert ask(plan, "mgmt", str(dns.AZURE_DNS)) == "answer"
    assert ask(plan, "vma", str(dns.AZURE_DNS)) == "none"  # ASSUMPTION 3.12: a nested source
    assert ask(plan, "vma", "10.0.1.10") == "answer"  # its host forwards from the host's address
    res = services.run(plan)
    assert res["vma"].dhcp_ok and res["vma"].dns_ok and not res["vma"].http_ok  # egress none: no internet
    # the forwarder stopped: names fail, and lab services says so with exit 1
    lab.exec_(plan, "hosta", ["kill", (state_dir(plan.name) / "hosts" / "hosta" / "run/nestnet/dnsmasq.pid").read_text().strip()])
    res = services.run(plan)
    assert not res["vma"].dns_ok and not res["vma"].dhcp_ok and res["vmb"].dns_ok
    r = subprocess.run([*NESTNET, "lab", "services", plan.source], capture_output=True, text=True)
    assert r.returncode == 1


def test_down_leaves_no_resolv_conf_behind(tmp_path):
    from .conftest import plan_of

    plan = plan_of(tmp_path, seed())
    lab.up(plan, guests="dhcp")
    try:
        prefix = Topology.from_plan(plan).ns("")
        assert any(d.name.startswith(prefix) for d in dns.ETC_NETNS.iterdir())
    finally:
        lab.down(plan)
    assert not dns.ETC_NETNS.exists() or not any(d.name.startswith(prefix) for d in dns.ETC_NETNS.iterdir())


CONNECT = r"""
import socket, sys
s = socket.socket(); s.settimeout(1.5)
print("open" if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else "closed")
"""


def connect(plan, node: str, ip: str, port: int) -> str:
    ns = Topology.from_plan(plan).ns(node)
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", CONNECT, ip, str(port)],
                          capture_output=True, text=True).stdout.strip()


def nat_three_hosts() -> dict:
    spec = three_hosts()
    spec["nested"] = {"mode": "nat", "pool": "192.168.100.0/24", "block_prefix_len": 28}
    for h in spec["hosts"]:
        h.pop("block", None)
    spec["vms"] = [
        {"name": "vma", "host": "hosta", "forwards": [{"port": 80, "host_port": 8080}, {"port": 22, "host_port": 2201}]},
        {"name": "vmb", "host": "hostb", "forwards": [{"port": 80, "host_port": 8080}]},
        {"name": "vmc", "host": "hostc"},
    ]
    return spec


def test_nat_forwards_reachable_from_mgmt_and_check_agrees_with_the_lab(make_lab):
    from nestnet import forwards
    from nestnet.doctor import run as doctor_run
    from nestnet.lab.core import host_dirs
    from nestnet.model import apply_faults, from_plan
    from nestnet.netns import run_in

    plan = make_lab(nat_three_hosts(), guests="dhcp")
    res = services.run(plan)
    assert {v: r.to_dict() for v, r in res.items()} == {
        "vma": {"dhcp": {"ok": True, "ip": str(plan.vms["vma"].ip)}, "dns": {"ok": True}, "http": {"ok": True},
                "forwards": [{"port": 80, "ok": True}, {"port": 22, "ok": True}]},
        "vmb": {"dhcp": {"ok": True, "ip": str(plan.vms["vmb"].ip)}, "dns": {"ok": True}, "http": {"ok": True},
                "forwards": [{"port": 80, "ok": True}]},
        "vmc": {"dhcp": {"ok": True, "ip": str(plan.vms["vmc"].ip)}, "dns": {"ok": True}, "http": {"ok": True},
                "forwards": []},
    }
    model = {(f.vm, f.port): f.ok for f in forwards.check(from_plan(plan), plan)}
    lab_says = {(v, p): ok for v, r in res.items() for p, ok in r.forwards}
    assert model == lab_says
    # other inbound stays closed: the VM's own address, and a host port nobody forwards
    assert connect(plan, "mgmt", str(plan.vms["vma"].ip), 80) == "closed"
    assert connect(plan, "mgmt", "10.0.1.10", 8081) == "closed"
    assert connect(plan, "mgmt", "10.0.1.10", 8080) == "open"
    # the doctor on the host agrees
    d = run_in(Topology.from_plan(plan).ns("hosta"), doctor_run, plan, "hosta", host_dirs(plan, "hosta")[0])
    assert d.healthy and [f.ok for f in d.forwards] == [True, True]
    # broken the same way in the lab and in the model: same verdicts
    from nestnet.faults import parse_faults

    faults = parse_faults(["ip-forward-off:hostb"], plan)
    lab.apply_fault(plan, faults[0])
    res = services.run(plan)
    model = {(f.vm, f.port): f.ok for f in forwards.check(apply_faults(from_plan(plan), faults), plan)}
    assert model == {(v, p): ok for v, r in res.items() for p, ok in r.forwards} == {
        ("vma", 80): True, ("vma", 22): True, ("vmb", 80): False}


def test_with_azure_api_names_come_from_the_zone_azure_apply_writes(make_lab):
    """lab up --azure api: the emulator's zone is empty until `azure apply` (run on a lab host)
    writes the records; the lab's Azure DNS then answers from it."""
    spec = seed()
    spec["azure"]["private_dns_zone"] = "nested.example.net"
    plan = make_lab(spec, azure="api", guests="dhcp")
    assert not services.run(plan)["vma"].dns_ok  # vmb.nested.example.net: not there yet
    from nestnet.lab.core import arm_env

    env = ["env", *(f"{k}={v}" for k, v in arm_env(plan).items())]
    r = lab.exec_(plan, "hosta", [*env, *NESTNET, "azure", "apply", plan.source])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "create dns record vmb" in r.stdout
    res = services.run(plan)
    assert all(x.ok for x in res.values()), {v: x.names for v, x in res.items()}
    assert all(p.ok for p in lab.matrix(plan))
