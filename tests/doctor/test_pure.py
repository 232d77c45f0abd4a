"""The doctor's pure part: an observation in, findings and failing pairs out - same verdicts as the
what-if model (``nestnet check --fault``) for the same breakage. No root."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nestnet.doctor import diagnose
from nestnet.faults import Fault
from nestnet.model import apply_fault, from_plan, observe_host
from nestnet.model import reachability
from nestnet.model.observed import sysctl_keys
from nestnet.model.state import HostState

from .conftest import spec, write


def _routes(h: HostState, drop: tuple = ()) -> str:
    def row(r, proto: str) -> dict:
        return {"dst": str(r.dst), "dev": r.dev, **({"gateway": str(r.via)} if r.via else {}), "protocol": proto}

    return json.dumps([row(r, "201") for r in h.owned_routes if r.dst not in drop]
                      + [row(r, "kernel") for r in h.other_routes])


def _sysctl(h: HostState) -> dict[str, str]:
    values = {k: "0" for k in sysctl_keys(h)}
    values["net.ipv4.ip_forward"] = "1"
    values["net.ipv4.conf.all.rp_filter"] = str(h.rp_filter)
    values[f"net.ipv4.conf.{h.bridge}.proxy_arp"] = str(int(h.proxy_arp))
    values[f"net.ipv4.conf.{h.bridge}.proxy_arp_pvlan"] = str(int(h.proxy_arp_pvlan))
    return values


def _nft(masquerade: bool = True, foreign_drop: bool = False) -> str:
    items: list[dict] = [{"chain": {"family": "inet", "table": "nestnet", "name": "forward", "type": "filter",
                                    "hook": "forward", "policy": "accept"}}]
    if masquerade:
        items.append({"rule": {"family": "inet", "table": "nestnet", "chain": "postrouting",
                               "expr": [{"masquerade": None}]}})
    if foreign_drop:
        items.append({"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "type": "filter",
                                "hook": "forward", "policy": "drop"}})
    return json.dumps({"nftables": items})


@pytest.fixture(params=["onlink", "subnet"])
def plan(request, tmp_path: Path):
    return write(tmp_path, spec(request.param))[1]


def _mine(plan) -> set[str]:
    return {"h1", *plan.hosts["h1"].vms}


def test_observation_as_planned_is_healthy(plan):
    h = from_plan(plan).hosts["h1"]
    d = diagnose(plan, "h1", observe_host(_routes(h), _sysctl(h), _nft()))
    assert d.healthy, (d.findings, d.pairs)
    # 6 nodes + the internet (a destination only): 6*5 + 6 pairs, of which 3*2 + 3 avoid h1, v1, v1b
    assert d.checked == 36 - 9
    assert d.to_dict()["healthy"] is True
    assert any("h2" in a for a in d.assumed) and any("Azure" in a for a in d.assumed)


@pytest.mark.parametrize("kind, needle", [
    ("ip-forward-off", "ip_forward is 0"),
    ("no-host-routes", "host route missing"),
    ("firewall-deny-routed", "has policy drop"),
    ("rp-filter-strict", "rp_filter is 1 (strict)"),
    ("no-masquerade", "masquerade rule is missing"),
    ("no-proxy-arp", "proxy_arp is 0 on"),
])
def test_each_fault_is_named_and_fails_the_same_pairs_as_the_what_if(plan, kind: str, needle: str):
    h = from_plan(plan).hosts["h1"]
    routes, sysctl, nft = _routes(h), _sysctl(h), _nft()
    if kind == "no-proxy-arp" and not h.proxy_arp:
        # onlink guests need no proxy ARP: the plan leaves it off, so off is healthy
        sysctl[f"net.ipv4.conf.{h.bridge}.proxy_arp"] = "0"
        d = diagnose(plan, "h1", observe_host(routes, sysctl, nft))
        assert d.healthy and not d.findings and not d.pairs
        return
    if kind == "ip-forward-off":
        sysctl["net.ipv4.ip_forward"] = "0"
    elif kind == "no-host-routes":
        routes = _routes(h, drop=tuple(r.dst for r in h.owned_routes))
    elif kind == "firewall-deny-routed":
        nft = _nft(foreign_drop=True)
    elif kind == "rp-filter-strict":
        sysctl = {k: "1" if k.endswith("rp_filter") else v for k, v in sysctl.items()}
    elif kind == "no-masquerade":
        nft = _nft(masquerade=False)
    else:
        sysctl[f"net.ipv4.conf.{h.bridge}.proxy_arp"] = "0"
    d = diagnose(plan, "h1", observe_host(routes, sysctl, nft))
    assert any(needle in f for f in d.findings), d.findings
    assert not d.healthy
    what_if = reachability(apply_fault(from_plan(plan), Fault(kind, "h1")))
    want = {(p.src, p.dst) for p in what_if.pairs() if {p.src, p.dst} & _mine(plan)}
    assert {(p.src, p.dst) for p in d.pairs} == want
    assert all(p.reason and p.dies_at for p in d.pairs)


def test_a_pair_the_spec_itself_breaks_is_labelled(tmp_path: Path):
    s = spec()
    s["subnets"][1]["route_table"] = False  # mgmt-subnet without the table: replies to nested VMs die
    plan = write(tmp_path, s)[1]
    h = from_plan(plan).hosts["h1"]
    d = diagnose(plan, "h1", observe_host(_routes(h), _sysctl(h), _nft()))
    assert d.pairs and not d.findings
    assert {(p.src, p.dst) for p in d.pairs} == set(d.planned_failures)
    assert d.healthy and not d.problems  # the spec's fault, not the host's: `nestnet check` says so
    assert all(x["fails_in_plan_too"] for x in d.to_dict()["pairs"])


def test_drift_alone_is_a_problem(plan):
    h = from_plan(plan).hosts["h1"]
    drift = ({"kind": "file", "op": "add", "key": "/etc/sysctl.d/60-nestnet.conf", "detail": ""},)
    d = diagnose(plan, "h1", observe_host(_routes(h), _sysctl(h), _nft()), drift)
    assert not d.pairs and not d.healthy and d.to_dict()["drift"] == list(drift)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nestnet", "doctor", *args], capture_output=True, text=True, check=False)


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path):
    path, _ = write(tmp_path, spec())
    r = _cli(str(path), "--host", "nope")
    assert r.returncode == 2 and "host 'nope' is not in" in r.stderr and "Traceback" not in r.stderr
    r = _cli(str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def _arm(plan, forwarding: bool, routes: bool, associated: bool):
    rt = plan.azure.route_table
    table_id = f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/routeTables/{rt}"
    table = {"name": rt, "properties": {"routes": [
        {"name": r.name, "properties": {"addressPrefix": str(r.address_prefix), "nextHopType": "VirtualAppliance",
                                        "nextHopIpAddress": str(r.next_hop_ip)}} for r in plan.azure.routes
    ] * routes + [{"name": "tagged", "properties": {"addressPrefix": "AzureCloud", "nextHopType": "Internet"}},
                  {"name": "v6", "properties": {"addressPrefix": "fd00::/64", "nextHopType": "VirtualAppliance",
                                                "nextHopIpAddress": "fd00::4"}}]}}
    vnet = {"properties": {"subnets": [
        {"name": s, "properties": {"routeTable": {"id": table_id.upper()}} if associated else {}} for s in plan.subnets
    ]}}
    nics = {h.nic: {"name": h.nic, "properties": {"enableIPForwarding": forwarding}} for h in plan.hosts.values()}
    return table, vnet, nics, table_id


@pytest.mark.parametrize("broken, needle, fault", [
    ({"forwarding": False}, "Azure NIC h1-nic: IP forwarding is off", "nic-forwarding-off:h1"),
    ({"routes": False}, "no route for 10.0.1.128/28", "no-user-route:h1"),
    ({"associated": False}, "Azure subnet mgmt-subnet is not associated", "no-route-table:mgmt-subnet"),
])
def test_azure_read_through_arm(tmp_path: Path, broken: dict, needle: str, fault: str):
    from nestnet.clouds.azure.dataplane import azure_state
    from nestnet.faults import parse_faults

    plan = write(tmp_path, spec())[1]
    planned = from_plan(plan)
    h = planned.hosts["h1"]
    obs = observe_host(_routes(h), _sysctl(h), _nft())
    healthy = azure_state(planned.azure, *_arm(plan, True, True, True))
    assert healthy == planned.azure
    assert diagnose(plan, "h1", obs, azure=healthy).healthy
    azure = azure_state(planned.azure, *_arm(plan, **{"forwarding": True, "routes": True, "associated": True,
                                                          **broken}))
    d = diagnose(plan, "h1", obs, azure=azure)
    assert any(needle in f and "nestnet azure apply" in f for f in d.findings), d.findings
    assert not any("Azure:" in a for a in d.assumed)
    # the what-if breaks only part of what ARM lacks (one NIC, route, subnet): its failures are a subset
    what_if = reachability(apply_fault(planned, *parse_faults((fault,), plan)))
    want = {(p.src, p.dst) for p in what_if.pairs() if {p.src, p.dst} & _mine(plan)}
    assert want and want <= {(p.src, p.dst) for p in d.pairs}


def _bigger(tmp_path: Path):
    s = spec()
    s["hosts"] += [{"name": f"x{i}", "ip": f"10.0.1.{20 + i}", "nic": f"x{i}-nic"} for i in range(5)]
    s["vms"] += [{"name": f"x{i}v{j}", "host": f"x{i}"} for i in range(5) for j in range(2)]
    return write(tmp_path, s)[1]


def test_failing_pairs_are_grouped_by_cause_and_each_group_fails_alike(tmp_path: Path):
    plan = _bigger(tmp_path)
    h = from_plan(plan).hosts["h1"]
    sysctl = {**_sysctl(h), "net.ipv4.ip_forward": "0"}
    d = diagnose(plan, "h1", observe_host(_routes(h), sysctl, _nft()))
    what_if = reachability(apply_fault(from_plan(plan), Fault("ip-forward-off", "h1")))
    want = {(p.src, p.dst): p for p in what_if.pairs() if {p.src, p.dst} & _mine(plan)}
    grouped = [p for g in d.groups for p in g.pairs]
    assert len(grouped) == len(set(grouped)) == d.failing and set(grouped) == set(want)
    assert len(d.groups) == 1  # ip_forward=0 is one cause (issue 23: not 7 groups, each with the fix)
    for g in d.groups:  # every member dies where its group's example does, for the same reason
        assert {want[p].dies_at for p in g.pairs} == {g.example.dies_at}
        assert all(want[p].fix == want[g.pairs[0]].fix for p in g.pairs)
    out = d.to_dict()
    assert out["failed_pairs"] == len(want) and len(out["pairs"]) == len(want)
    assert sum(g["pairs"] for g in out["groups"]) == len(want)
    assert all(out["groups"][p["group"]]["example"]["reason"] for p in out["pairs"])
    from nestnet.model.groups import PairBlock
    sets = [PairBlock(tuple(b["src"]), tuple(b["dst"]), b["hosts"]) for b in out["groups"][0]["sets"]]
    assert sorted(p for b in sets for p in b.pairs({})) == sorted(want)  # the sets are exactly the pairs


def test_doctor_prints_one_line_per_cause(tmp_path: Path, capsys):
    from nestnet.cli.doctor import _print

    plan = _bigger(tmp_path)
    h = from_plan(plan).hosts["h1"]
    d = diagnose(plan, "h1", observe_host(_routes(h), {**_sysctl(h), "net.ipv4.ip_forward": "0"}, _nft()))
    _print(d)
    text = capsys.readouterr().out
    assert text.count("FAIL ") == 1 and text.count("net.ipv4.ip_forward=0 →") == 1, text
    assert f"FAIL {d.failing} pairs: " in text


@pytest.mark.parametrize("kind", ["ip-forward-off", "no-host-routes"])
def test_host_apply_is_not_the_fix_when_it_has_nothing_to_change(plan, kind: str):
    """Issue 16: no pair that dies on this host may say `nestnet host apply` while the doctor says
    it has nothing to change; with drift, it is the fix."""
    h = from_plan(plan).hosts["h1"]
    routes, sysctl = _routes(h), _sysctl(h)
    if kind == "ip-forward-off":
        sysctl["net.ipv4.ip_forward"] = "0"
    else:
        routes = _routes(h, drop=tuple(r.dst for r in h.owned_routes))
    obs = observe_host(routes, sysctl, _nft())
    mine = [p for p in diagnose(plan, "h1", obs).pairs if p.dies_at == "h1"]
    assert mine and not any("nestnet host apply`" in p.fix and "nothing to change" not in p.fix for p in mine)
    assert all(p.reason.endswith(p.fix) for p in mine)
    drift = ({"kind": "sysctl", "op": "set", "key": "net.ipv4.ip_forward", "detail": "0 -> 1"},)
    with_drift = [p for p in diagnose(plan, "h1", obs, drift).pairs if p.dies_at == "h1"]
    assert with_drift and all(p.fix.startswith("`nestnet host apply`") for p in with_drift)


def test_azure_read_with_an_nsg_names_it(tmp_path: Path):
    """doctor --azure reads NSGs too (issue 10): a rule denying mgmt -> v1 fails that pair, named."""
    from nestnet.clouds.azure.dataplane import azure_state, with_nsgs

    plan = write(tmp_path, spec())[1]
    planned = from_plan(plan)
    h = planned.hosts["h1"]
    obs = observe_host(_routes(h), _sysctl(h), _nft())
    table, vnet, nics, table_id = _arm(plan, True, True, True)
    sub_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/vm-subnet"
    vnet["properties"]["subnets"][0]["properties"]["networkSecurityGroup"] = {"id": "/x/networkSecurityGroups/vm-nsg"}
    nsgs = [{"name": "vm-nsg", "properties": {"securityRules": [{"name": "deny-mgmt-v1", "properties": {
        "priority": 100, "direction": "Inbound", "access": "Deny", "protocol": "*", "sourceAddressPrefix": "10.0.2.5",
        "destinationAddressPrefix": "10.0.1.130", "sourcePortRange": "*", "destinationPortRange": "*"}}],
        "subnets": [{"id": sub_id}]}}]
    assert plan.subnets["vm-subnet"]  # the rule's subnet is the one h1 and v1 sit in
    azure = with_nsgs(azure_state(planned.azure, table, vnet, nics, table_id), nsgs, plan.azure.vnet, vnet, nics)
    assert azure.subnets["vm-subnet"].nsg == "vm-nsg"
    d = diagnose(plan, "h1", obs, azure=azure)
    assert {(p.src, p.dst) for p in d.pairs if not p.ok} == {("mgmt", "v1")}
    assert "NSG vm-nsg rule deny-mgmt-v1" in next(p.reason for p in d.pairs if not p.ok)
    assert not d.healthy


def test_probe_an_nsg_allowing_only_ssh_fails_pings_not_tcp_22(tmp_path: Path):
    """Azure read with an NSG on vm-subnet allowing TCP 22 only: the ping fails the pairs into
    vm-subnet naming the rule; `--probe tcp/22` finds the host healthy (issue 10)."""
    from dataclasses import replace

    from nestnet.model import Probe
    from nestnet.clouds.azure.nsg import Nsg, NsgRule

    plan = write(tmp_path, spec())[1]
    planned = from_plan(plan)
    h = planned.hosts["h1"]
    obs = observe_host(_routes(h), _sysctl(h), _nft())
    nsg = Nsg("vm-nsg", (NsgRule("allow-ssh", 100, "Inbound", "Allow", "Tcp", ("VirtualNetwork",), ("*",), ("*",), ("22",)),
                         NsgRule("DenyAll", 4096, "Inbound", "Deny")))
    az = planned.azure
    azure = replace(az, nsgs={"vm-nsg": nsg},
                    subnets={k: replace(s, nsg="vm-nsg" if k == "vm-subnet" else None) for k, s in az.subnets.items()})
    ping = diagnose(plan, "h1", obs, azure=azure)
    assert not ping.healthy and ("mgmt", "v1") in {p for g in ping.groups for p in g.pairs}
    assert all("rule DenyAll (priority 4096, Deny)" in g.example.reason for g in ping.problems)
    ssh = diagnose(plan, "h1", obs, azure=azure, probe=Probe("tcp", 22))
    assert ssh.healthy, [g.example.reason for g in ssh.groups]
    other = diagnose(plan, "h1", obs, azure=azure, probe=Probe("udp", 22))
    assert {p for g in other.groups for p in g.pairs} == {p for g in ping.groups for p in g.pairs}


@pytest.mark.parametrize("family,counts", [("ip", True), ("inet", True), ("ip6", False), ("bridge", False), ("arp", False)])
def test_foreign_forward_drop_counts_only_in_families_routed_ipv4_meets(family: str, counts: bool):
    """Issue 21 bug 3: a drop-policy forward chain stops the (IPv4, routed) pairs only in ip/inet."""
    items = json.loads(_nft())["nftables"] + [{"chain": {"family": family, "table": "filter", "name": "FORWARD",
                                                          "type": "filter", "hook": "forward", "policy": "drop"}}]
    obs = observe_host("[]", {}, json.dumps({"nftables": items}))
    assert obs.foreign_drops == ((f"{family} filter FORWARD",) if counts else ())


def test_exposed_ports_need_the_dnat_loaded_and_the_public_ip(tmp_path):
    """doctor judges the host's VMs' exposed ports from the internet (issue 26): healthy with the
    DNAT rule loaded; without it the port ends at the host; without a public IP in Azure it ends there."""
    from dataclasses import replace

    s = spec()
    vm = next(v for v in s["vms"] if v["host"] == "h1")
    vm["expose"] = [{"port": 80}]
    plan = write(tmp_path, s)[1]
    planned = from_plan(plan)
    h = planned.hosts["h1"]
    obs = observe_host(_routes(h), _sysctl(h), _nft())
    d = diagnose(plan, "h1", obs, dnat=frozenset({("tcp", 80)}))
    assert d.healthy and [(e.vm, e.public_port, e.ok) for e in d.exposed] == [(vm["name"], 80, True)]
    d = diagnose(plan, "h1", obs, dnat=frozenset())
    assert not d.healthy and not d.exposed[0].ok and "answered by h1" in d.exposed[0].reason
    assert d.to_dict()["exposed"][0]["ok"] is False
    d = diagnose(plan, "h1", obs, dnat=frozenset({("tcp", 80)}), azure=replace(planned.azure, public_ips=()))
    assert not d.healthy and "has no public IP" in d.exposed[0].reason
