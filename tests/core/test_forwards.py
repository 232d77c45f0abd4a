"""NAT mode's inbound port forwards: spec checks, the one firewall policy's DNAT in nft and UFW,
and the model's verdicts (check and the doctor). Pure."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nestnet import doctor, forwards
from nestnet.errors import SpecError
from nestnet.faults import parse_faults
from nestnet.host import nft, ufw
from nestnet.model import apply_faults, from_plan
from nestnet.plan import Forward, load

from .specs import seed, write


def nat_spec() -> dict:
    d = seed()
    d["nested"] = {"mode": "nat", "pool": "192.168.100.0/24", "block_prefix_len": 28}
    del d["azure"]["route_table"]
    for h in d["hosts"]:
        h.pop("block")
    d["vms"] = [
        {"name": "web1", "host": "vme-kvm-vm1", "forwards": [{"port": 80, "host_port": 8080}, {"port": 53, "proto": "udp"}]},
        {"name": "web2", "host": "vme-kvm-vm2", "forwards": [{"port": 80, "host_port": 8080}]},
    ]
    return d


def test_forwards_in_the_plan_and_the_one_policy(tmp_path):
    plan = load(write(tmp_path, nat_spec())).plan
    assert plan.vms["web1"].forwards == (Forward(80, 8080, "tcp"), Forward(53, 53, "udp"))
    ip = plan.vms["web1"].ip
    table = nft.render_table(plan, plan.hosts["vme-kvm-vm1"])
    assert f'iifname "eth1" ip daddr 10.0.1.10 tcp dport 8080 dnat ip to {ip}:80' in table
    assert f'iifname "eth1" ip daddr 10.0.1.10 udp dport 53 dnat ip to {ip}:53' in table
    seed_plan = load(write(tmp_path, seed(), "s.yaml")).plan
    assert "dnat" not in nft.render_table(seed_plan, seed_plan.hosts["vme-kvm-vm1"])
    nat, _ = ufw.blocks(plan, plan.hosts["vme-kvm-vm1"])
    assert f"-A PREROUTING -i eth1 -d 10.0.1.10 -p tcp --dport 8080 -j DNAT --to-destination {ip}:80" in nat
    assert ":PREROUTING ACCEPT [0:0]" in nat


@pytest.mark.parametrize("mutate, path, needle", [
    (lambda d: d["nested"].update(mode="routed", pool="10.0.1.0/24") or d["azure"].update(route_table="rt"),
     "vms[0].forwards[0]", "for nested.mode nat"),
    (lambda d: d["vms"][0]["forwards"].append({"port": 22, "host_port": 22}), "vms[0].forwards[2].host_port", "SSH port"),
    (lambda d: d["vms"][0]["forwards"].append({"port": 81, "host_port": 8080}), "vms[0].forwards[2].host_port",
     "already forwarded"),
    (lambda d: d["vms"][0]["forwards"].append({"port": 0}), "vms[0].forwards[2].port", "greater than or equal to 1"),
])
def test_bad_forwards_are_bad_input(tmp_path, mutate, path, needle):
    d = nat_spec()
    mutate(d)
    spec = write(tmp_path, d)
    with pytest.raises(SpecError) as e:
        load(spec)
    assert e.value.problems[0].path == path and needle in e.value.problems[0].message
    r = subprocess.run([sys.executable, "-m", "nestnet", "validate", str(spec)], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_model_verdicts_plan_and_faults(tmp_path):
    plan = load(write(tmp_path, nat_spec())).plan
    state = from_plan(plan)
    res = forwards.check(state, plan)
    assert [(f.src, f.vm, f.port, f.ok) for f in res] == [
        ("mgmt-vm", "web1", 80, True), ("mgmt-vm", "web1", 53, True), ("mgmt-vm", "web2", 80, True)]
    broken = apply_faults(state, parse_faults(["ip-forward-off:vme-kvm-vm2", "firewall-deny-routed:vme-kvm-vm1"], plan))
    res = {(f.vm, f.port): f for f in forwards.check(broken, plan)}
    assert not res[("web2", 80)].ok and "ip_forward" in res[("web2", 80)].reason
    assert not res[("web1", 80)].ok and "drops the forwarded packet" in res[("web1", 80)].reason
    # the rest of inbound stays closed: the endpoint cannot reach the VMs' own addresses
    from nestnet.model import Model

    assert not Model(state).ping("mgmt-vm", "web1").ok


def test_check_cli_lists_forwards_and_fails_on_a_broken_one(tmp_path):
    spec = write(tmp_path, nat_spec())
    run = lambda *a: subprocess.run([sys.executable, "-m", "nestnet", "check", str(spec), "--json", *a],
                                    capture_output=True, text=True)
    ok = json.loads(run().stdout)["forwards"]
    assert [f["ok"] for f in ok] == [True, True, True]
    r = run("--fault", "ip-forward-off:vme-kvm-vm2")
    bad = {(f["vm"], f["port"]): f["ok"] for f in json.loads(r.stdout)["forwards"]}
    assert bad == {("web1", 80): True, ("web1", 53): True, ("web2", 80): False} and r.returncode == 1


def test_doctor_names_a_missing_dnat_rule(tmp_path):
    plan = load(write(tmp_path, nat_spec())).plan
    from tests.doctor.test_pure import _nft, _routes, _sysctl

    from nestnet.model import observe_host

    st = from_plan(plan).hosts["vme-kvm-vm1"]
    obs = observe_host(_routes(st), _sysctl(st), _nft())
    assert doctor.diagnose(plan, "vme-kvm-vm1", obs, dnat=frozenset({("tcp", 8080), ("udp", 53)})).healthy
    d = doctor.diagnose(plan, "vme-kvm-vm1", obs, dnat=frozenset({("tcp", 8080)}))
    bad = [f for f in d.forward_problems]
    assert [(f.vm, f.port) for f in bad] == [("web1", 53)] and "no DNAT rule for udp port 53" in bad[0].reason
    assert not d.healthy and d.to_dict()["forwards"][0]["ok"] is True


def test_dnat_ports_from_nft_json():
    rs = {"nftables": [
        {"rule": {"family": "inet", "table": "nestnet", "chain": "prerouting", "expr": [
            {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth1"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}},
            {"dnat": {"family": "ip", "addr": "192.168.100.0", "port": 80}}]}},
        {"rule": {"family": "inet", "table": "other", "chain": "x", "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 9}},
            {"dnat": {"addr": "1.2.3.4"}}]}},
    ]}
    assert forwards.dnat_ports(json.dumps(rs)) == {("tcp", 8080)}
