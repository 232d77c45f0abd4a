"""The probe (`--probe icmp|tcp/PORT|udp/PORT`): NSG rules matched by protocol and ports, in the
model, `check`, and the lab's real connects (issue 10)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest

from nestnet.model import ICMP, Model, Probe, from_plan, reachability
from nestnet.model.probe import EPHEMERAL
from nestnet.clouds.azure.nsg import Nsg, NsgRule, Tags, decide, matches

from .conftest import base
from .test_nsg import with_groups

TAGS = Tags((IPv4Network("10.0.0.0/16"),))
A, B = IPv4Address("10.0.2.5"), IPv4Address("10.0.1.20")
TCP22, UDP53 = Probe("tcp", 22), Probe("udp", 53)


def r(access="Allow", protocol="*", dports=("*",), sports=("*",), direction="Inbound"):
    return NsgRule("r", 100, direction, access, protocol, ("*",), ("*",), sports, dports)


@pytest.mark.parametrize("text, probe", [
    ("icmp", ICMP), ("ICMP", ICMP), ("tcp/22", TCP22), ("udp/53", UDP53), ("tcp/1", Probe("tcp", 1)),
    ("tcp/65535", Probe("tcp", 65535)),
])
def test_probe_parses(text, probe):
    assert Probe.parse(text) == probe and str(Probe.parse(str(probe))) == str(probe)


@pytest.mark.parametrize("text, message", [
    ("tcp/0", "port 1-65535"), ("tcp/70000", "port 1-65535"), ("sctp/1", "unknown protocol 'sctp'"),
    ("tcp/x", "port 1-65535"), ("tcp", "port 1-65535"), ("tcp/²", "port 1-65535"), ("udp/-1", "port 1-65535"), ("icmp/8", "icmp has no port"), ("", "unknown protocol"),
])
def test_bad_probe_says_why(text, message):
    with pytest.raises(ValueError, match=message):
        Probe.parse(text)


@pytest.mark.parametrize("protocol, probe, hit", [
    ("*", TCP22, True), ("Tcp", TCP22, True), ("tcp", TCP22, True), ("Udp", TCP22, False), ("Icmp", TCP22, False),
    ("Esp", TCP22, False), ("Ah", TCP22, False), ("Udp", UDP53, True), ("Tcp", UDP53, False),
    ("Icmp", ICMP, True), ("Tcp", ICMP, False), ("Esp", ICMP, False), ("Ah", ICMP, False), ("*", ICMP, True),
])
def test_protocol(protocol, probe, hit):
    assert matches(r(protocol=protocol), A, B, TAGS, probe) is hit


@pytest.mark.parametrize("dports, hit", [
    (("*",), True), (("22",), True), (("23",), False), (("20-25",), True), (("23-1000",), False),
    (("80", "22"), True), (("80", "443-445"), False), (("0-65535",), True), ((" 22 ",), True),
])
def test_destination_port_ranges(dports, hit):
    assert matches(r(dports=dports), A, B, TAGS, TCP22) is hit
    assert matches(r(access="Deny", dports=dports), A, B, TAGS, TCP22) is hit


def test_a_port_rule_never_matches_a_ping():
    assert not matches(r(dports=("22",)), A, B, TAGS, ICMP)
    assert not matches(r(access="Deny", dports=("0-65535",)), A, B, TAGS, ICMP)  # as the lab renders it
    assert not matches(r(access="Deny", sports=("1000",)), A, B, TAGS, ICMP)


@pytest.mark.parametrize("sports, allow_hits, deny_hits", [
    (("*",), True, True),
    (("22",), False, False),  # never an ephemeral port: neither matches
    (("1000-2000",), False, False),
    (("50000",), False, True),  # might be the client's port: an allow cannot count on it, a deny might hit
    (("40000-65535",), False, True),
    ((f"{EPHEMERAL[0]}-{EPHEMERAL[1]}",), True, True),  # every ephemeral port: both match
    (("32768-40000", "40001-65535"), True, True),
    (("32768-40000", "40002-65535"), False, True),  # a gap: the client may use 40001
])
def test_the_clients_ephemeral_source_port_is_judged_for_the_worst_case(sports, allow_hits, deny_hits):
    assert matches(r(sports=sports), A, B, TAGS, TCP22) is allow_hits
    assert matches(r(access="Deny", sports=sports), A, B, TAGS, TCP22) is deny_hits


def test_a_reply_has_its_ports_swapped():
    # the reply B:22 -> A:ephemeral, judged as a new flow where no state exists
    assert matches(r(sports=("22",)), B, A, TAGS, TCP22, reply=True)
    assert not matches(r(dports=("22",)), B, A, TAGS, TCP22, reply=True)
    assert not matches(r(dports=("22",), sports=("22",)), B, A, TAGS, TCP22, reply=True)


def test_decide_takes_the_first_match_for_the_probe():
    nsg = Nsg("n", (NsgRule("ssh", 100, "Inbound", "Allow", "Tcp", ("VirtualNetwork",), ("*",), ("*",), ("22",)),
                    NsgRule("DenyAll", 4096, "Inbound", "Deny")))
    assert decide(nsg, "Inbound", A, B, TAGS, TCP22).name == "ssh"
    assert decide(nsg, "Inbound", A, B, TAGS, Probe("tcp", 23)).name == "DenyAll"
    assert decide(nsg, "Inbound", A, B, TAGS, Probe("udp", 22)).name == "DenyAll"
    assert decide(nsg, "Inbound", A, B, TAGS).name == "DenyAll"


# ---------------------------------------------------------------- a fabric: SSH only into vm-subnet

SSH_ONLY = Nsg("vm-nsg", (
    NsgRule("allow-ssh", 100, "Inbound", "Allow", "Tcp", ("VirtualNetwork",), ("*",), ("*",), ("22",)),
    NsgRule("DenyAll", 4096, "Inbound", "Deny"),
))


@pytest.fixture
def ssh_only(make_plan):
    return with_groups(from_plan(make_plan(base())), [SSH_ONLY], {"vm-subnet": "vm-nsg"})


def test_ssh_only_passes_tcp_22_and_fails_ping_naming_the_deny_all_rule(ssh_only):
    ping = Model(ssh_only).ping("mgmt", "v1")
    assert not ping.ok and ping.dies_at == "azure:vm-nsg"
    assert "NSG vm-nsg rule DenyAll (priority 4096, Deny)" in ping.reason
    ssh = Model(ssh_only, TCP22).ping("mgmt", "v1")
    assert ssh.ok, ssh.reason
    assert any("allow-ssh allows" in h for h in ssh.hops)
    # the reply v1:22 -> mgmt passes by state: it crosses no rule
    assert any("reply of an allowed flow" in h for h in ssh.hops)
    other = Model(ssh_only, Probe("tcp", 80)).ping("mgmt", "v1")
    assert not other.ok and "tcp/80" in other.reason and "rule DenyAll" in other.reason


def test_ssh_only_over_all_pairs(ssh_only):
    def failed(probe):
        return {(p.src, p.dst) for p in reachability(ssh_only, probe).pairs()}

    into_vm_subnet = {(a, b) for a in ssh_only.node_names for b in ("h1", "h2", "v1", "v1b", "v2") if a != b}
    assert failed(TCP22) == set()
    pinged = failed(ICMP)
    assert ("mgmt", "v1") in pinged and ("h1", "h2") in pinged
    # nothing leaving vm-subnet's NICs is judged inbound there: to mgmt and the internet stays open
    assert not {p for p in pinged if p[1] in ("mgmt", "internet")}
    assert pinged <= into_vm_subnet
    assert failed(UDP53) == pinged


def test_the_fix_for_a_deny_names_the_probes_protocol_and_port(make_plan):
    from nestnet.clouds.azure.nsg import DEFAULT_RULES

    deny = Nsg("strict", (NsgRule("deny-vnet", 100, "Inbound", "Deny", "*", ("VirtualNetwork",), ("*",)),))
    st = with_groups(from_plan(make_plan(base())), [deny], {"vm-subnet": "strict"})
    res = Model(st, TCP22).ping("mgmt", "v1")
    assert not res.ok and "deny-vnet" in res.reason
    assert "allow 10.0.2.5 → 10.0.1.20 tcp/22 with a priority number below 100" in res.fix
    deny_all = next(r for r in DEFAULT_RULES if r.name == "DenyAllInBound")
    fix = Model(st, TCP22)._nsg_fix(deny, deny_all, "Inbound", A, B)
    assert "--priority 101 " in fix and "--protocol Tcp --destination-port-ranges 22 " in fix
    assert "--protocol '*' " in Model(st)._nsg_fix(deny, deny_all, "Inbound", A, B)


# ---------------------------------------------------------------- the CLI

def nsg_file(tmp_path):
    arm = [{
        "name": "vm-nsg",
        "securityRules": [
            {"name": "allow-ssh", "priority": 100, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
             "sourceAddressPrefix": "VirtualNetwork", "destinationAddressPrefix": "*", "sourcePortRange": "*",
             "destinationPortRanges": ["2222-2230", "22"]},
            {"name": "DenyAll", "priority": 4096, "direction": "Inbound", "access": "Deny", "protocol": "*",
             "sourceAddressPrefix": "*", "destinationAddressPrefix": "*", "sourcePortRange": "*",
             "destinationPortRange": "*"},
        ],
        "subnets": [{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/vm-subnet"}],
    }]
    path = tmp_path / "nsgs.json"
    path.write_text(json.dumps(arm))
    return path


def run(*args):
    return subprocess.run([sys.executable, "-m", "nestnet", "check", *args], capture_output=True, text=True)


@pytest.fixture
def spec(tmp_path):
    import yaml

    path = tmp_path / "chk.yaml"
    path.write_text(yaml.safe_dump(base(), sort_keys=False))
    return path


def test_check_nsgs_file_with_probe_tcp_22(spec, tmp_path):
    nsgs = nsg_file(tmp_path)
    r = run(str(spec), "--nsgs", str(nsgs), "--probe", "tcp/22", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["probe"] == "tcp/22" and doc["summary"]["failed"] == 0
    r = run(str(spec), "--nsgs", str(nsgs), "--json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["probe"] == "icmp"
    from nestnet.model.groups import expand

    group = next(g for a, b, g in expand(doc) if (a, b) == ("mgmt", "v1"))
    assert "NSG vm-nsg rule DenyAll (priority 4096, Deny)" in group["cause"]
    r = run(str(spec), "--nsgs", str(nsgs), "--probe", "udp/22", "--trace", "mgmt", "v1")
    assert r.returncode == 1 and "udp/22" in r.stdout and "DenyAll" in r.stdout
    r = run(str(spec), "--nsgs", str(nsgs), "--probe", "tcp/22", "--trace", "mgmt", "v1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["probe"] == "tcp/22"


@pytest.mark.parametrize("value", ["tcp/0", "tcp/70000", "sctp/1", "tcp/x", "icmp/1"])
def test_bad_probe_is_one_line_naming_option_and_value_exit_2(spec, value):
    r = run(str(spec), "--probe", value)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --probe {value}: "), r.stderr


# ---------------------------------------------------------------- the lab: real connects

@pytest.mark.root
@pytest.mark.slow
def test_the_lab_agrees_with_real_connects_and_pings(tmp_path):
    """SSH only into vm-subnet, enforced by the lab's fabric (nftables with conntrack): real TCP
    connects to port 22 pass where the model passes them, pings and other ports fail exactly
    where the model fails them; no listener outlives the matrix."""
    import os

    lab = pytest.importorskip("nestnet.lab")
    from nestnet.clouds.azure import sdn
    from nestnet.lab.topology import Topology

    from .fabrics import write_plan

    spec = base()
    spec["name"] = f"ckp{os.getpid() % 10000}"
    plan = write_plan(tmp_path, spec)
    state = with_groups(from_plan(plan), [SSH_ONLY], {"vm-subnet": "vm-nsg"})
    try:
        lab.up(plan)
        sdn.program_ns(Topology.from_plan(plan), state.azure)
        seen = {}
        for probe in (TCP22, ICMP, Probe("tcp", 80), Probe("udp", 22)):
            real = {(p.src, p.dst): p.ok for p in lab.matrix(plan, probe)}
            model = {(p.src, p.dst): p.ok for p in reachability(state, probe).pairs(include_ok=True)}
            assert real == model, f"{probe}: lab only ok {sorted(k for k in real if real[k] and not model[k])}, " \
                                  f"model only ok {sorted(k for k in real if model[k] and not real[k])}"
            seen[str(probe)] = real
        assert seen["tcp/22"][("mgmt", "v1")] and all(seen["tcp/22"].values())
        assert not seen["icmp"][("mgmt", "v1")] and not seen["tcp/80"][("mgmt", "v1")]
        assert seen["udp/22"] == seen["icmp"] and sum(not ok for ok in seen["icmp"].values()) > 5
        assert not _agents_of(plan.name)
        # the helper sees agents while they run (so the assertion above can fail)
        from nestnet.lab.matrix import _agent

        p = _agent(plan, "v1", "listen", "tcp", "2345")
        try:
            assert p.stdout.readline().strip() == "ready" and _agents_of(plan.name)
        finally:
            p.kill()
            p.wait()
    finally:
        lab.down(plan)


def _agents_of(name: str) -> list[str]:
    """The probe agents still running in the lab's namespaces."""
    from pathlib import Path

    out = []
    for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split():
        if ns.startswith(f"nn-{name}."):
            for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split():
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                if "connect.py" in cmd:
                    out.append(f"{ns}: {cmd}")
    return out
