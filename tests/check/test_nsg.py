"""Network security groups and Azure's default None routes in the model (issue 10).

Evaluation order (inbound: subnet then NIC; outbound: NIC then subnet), priorities, the default
rules, statefulness, the service tags, the None routes, and `nestnet check --nsgs FILE`."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest

from nestnet.clouds.azure.dataplane import nsgs_from_arm, with_nsgs
from nestnet.model import Model, from_plan, reachability
from nestnet.clouds.azure.nsg import Nsg, NsgRule, Tags, decide

from .conftest import base


def rule(name, prio, direction, access, src="*", dst="*", protocol="*", port="*"):
    return NsgRule(name, prio, direction, access, protocol, (src,), (dst,), ("*",), (port,))


def with_groups(state, nsgs, subnets=None, nics=None):
    az = state.azure
    return replace(state, cloud=replace(
        az, nsgs={n.name: n for n in nsgs},
        subnets={k: replace(s, nsg=(subnets or {}).get(k)) for k, s in az.subnets.items()},
        nics={k: replace(n, nsg=(nics or {}).get(k)) for k, n in az.nics.items()},
    ))


@pytest.fixture
def state(make_plan):
    return from_plan(make_plan(base()))


def failed(state):
    return {(p.src, p.dst) for p in reachability(state).pairs()}


def test_an_nsg_with_only_default_rules_changes_nothing(state):
    before = failed(state)
    nsg = Nsg("plain")
    got = with_groups(state, [nsg], {"vm-subnet": "plain", "mgmt-subnet": "plain"}, {"h1-nic": "plain"})
    assert failed(got) == before == set()


def test_inbound_deny_of_one_pair_fails_exactly_that_pair_and_names_the_rule(state):
    nsg = Nsg("vm-nsg", (rule("deny-mgmt-v1", 100, "Inbound", "Deny", "10.0.2.5", "10.0.1.20"),))
    got = with_groups(state, [nsg], {"vm-subnet": "vm-nsg"})
    assert failed(got) == {("mgmt", "v1")}
    r = Model(got).ping("mgmt", "v1")
    assert "NSG vm-nsg rule deny-mgmt-v1 (priority 100, Deny)" in r.reason and r.dies_at == "azure:vm-nsg"
    assert "az network nsg rule delete -g rg --nsg-name vm-nsg -n deny-mgmt-v1" in r.fix
    # stateful: v1 → mgmt's reply (mgmt → v1) passes, though the rule matches it
    assert Model(got).ping("v1", "mgmt").ok


def test_lowest_priority_number_wins(state):
    deny_first = Nsg("n", (rule("deny", 100, "Inbound", "Deny", "10.0.2.5"), rule("allow", 200, "Inbound", "Allow", "10.0.2.5")))
    allow_first = Nsg("n", (rule("deny", 300, "Inbound", "Deny", "10.0.2.5"), rule("allow", 200, "Inbound", "Allow", "10.0.2.5")))
    assert not Model(with_groups(state, [deny_first], {"vm-subnet": "n"})).ping("mgmt", "h1").ok
    assert Model(with_groups(state, [allow_first], {"vm-subnet": "n"})).ping("mgmt", "h1").ok


def test_inbound_subnet_then_nic_outbound_nic_then_subnet(state):
    allow = Nsg("allow", (rule("allow-all-in", 100, "Inbound", "Allow"), rule("allow-all-out", 100, "Outbound", "Allow")))
    deny = Nsg("deny", (rule("deny-in", 100, "Inbound", "Deny", "10.0.2.5"), rule("deny-out", 100, "Outbound", "Deny", "*", "10.0.2.5")))
    # both NSGs must allow: an allow in the first never skips the second
    r = Model(with_groups(state, [allow, deny], {"vm-subnet": "allow"}, {"h1-nic": "deny"})).ping("mgmt", "h1")
    assert not r.ok and "deny-in" in r.reason and "NIC h1-nic" in r.reason
    hops = "\n".join(r.hops)
    assert "NSG allow (subnet vm-subnet) inbound" in hops  # subnet first, inbound
    r = Model(with_groups(state, [allow, deny], {"vm-subnet": "deny"}, {"h1-nic": "allow"})).ping("h1", "mgmt")
    assert not r.ok and "deny-out" in r.reason and "subnet vm-subnet" in r.reason
    assert "NSG allow (NIC h1-nic) outbound" in "\n".join(r.hops)  # NIC first, outbound


def test_default_deny_all_inbound_blocks_what_is_not_virtual_network(state):
    deny_vnet = Nsg("n", (rule("deny-vnet-in", 100, "Inbound", "Deny", "VirtualNetwork", "VirtualNetwork"),))
    r = Model(with_groups(state, [deny_vnet], {"mgmt-subnet": "n"})).ping("v1", "mgmt")
    assert not r.ok and "deny-vnet-in" in r.reason
    # the internet's replies come back through an NSG that allows nothing inbound: stateful
    assert Model(with_groups(state, [Nsg("n")], {"vm-subnet": "n"}, {"h1-nic": "n"})).ping("h1", "internet").ok
    deny_inet = Nsg("n", (rule("no-internet", 100, "Outbound", "Deny", "*", "Internet"),))
    r = Model(with_groups(state, [deny_inet], {"vm-subnet": "n"})).ping("v1", "internet")
    assert not r.ok and "no-internet" in r.reason


def test_a_ping_matches_no_tcp_or_port_rule(state):
    nsg = Nsg("n", (rule("tcp", 100, "Inbound", "Deny", "10.0.2.5", protocol="Tcp"),
                    rule("ssh", 110, "Inbound", "Deny", "10.0.2.5", port="22")))
    assert Model(with_groups(state, [nsg], {"vm-subnet": "n"})).ping("mgmt", "v1").ok


def test_virtual_network_tag_covers_user_route_prefixes():
    tags = Tags((IPv4Network("10.0.0.0/16"), IPv4Network("172.20.0.0/28")))
    nsg = Nsg("n", (rule("deny-vnet", 100, "Inbound", "Deny", "VirtualNetwork"),))
    assert decide(nsg, "Inbound", IPv4Address("172.20.0.5"), IPv4Address("10.0.1.4"), tags).name == "deny-vnet"
    r = decide(nsg, "Inbound", IPv4Address("203.0.113.10"), IPv4Address("10.0.1.4"), tags)
    assert r.name == "DenyAllInBound"  # Internet: outside every VirtualNetwork prefix
    lb = decide(Nsg("n"), "Inbound", IPv4Address("168.63.129.16"), IPv4Address("10.0.1.4"), tags)
    assert lb.name == "AllowAzureLoadBalancerInBound"
    out = decide(Nsg("n"), "Outbound", IPv4Address("10.0.1.4"), IPv4Address("203.0.113.10"), tags)
    assert out.name == "AllowInternetOutBound"


def test_cloud_state_tags_include_the_route_tables_prefixes(state):
    vn = state.azure.tags.virtual_network
    assert IPv4Network("10.0.0.0/16") in vn and IPv4Network("10.0.1.16/28") in vn


# ---- Azure's default None routes

def test_none_routes_drop_private_destinations_outside_the_vnet(state):
    assert IPv4Network("10.0.0.0/8") in state.azure.none_routes
    m = Model(state)
    leg = m._leg("mgmt", IPv4Address("10.0.2.5"), IPv4Address("192.168.5.5"), __import__(
        "nestnet.model.engine", fromlist=["_Flow"])._Flow(), reply=False)
    assert leg.drop is not None and "system route 192.168.0.0/16 has next hop None" in leg.drop.why
    # a nested VM's packet (masqueraded by its host, egress default) dies at Azure the same way
    from nestnet.model.engine import _Flow

    leg = m._leg("v1", IPv4Address("10.0.1.20"), IPv4Address("192.168.5.5"), _Flow(), reply=False)
    assert leg.drop is not None and leg.drop.where.startswith("azure") and "None" in leg.drop.why
    leg = m._leg("v1", IPv4Address("10.0.1.20"), IPv4Address("100.64.1.1"), _Flow(), reply=False)
    assert "100.64.0.0/10 has next hop None" in leg.drop.why


def test_the_vnet_prefix_and_user_routes_win_over_none(make_plan):
    spec = base()
    spec["azure"]["address_space"] = ["10.0.0.0/8"]
    st = from_plan(make_plan(spec))
    assert IPv4Network("10.0.0.0/8") not in st.azure.none_routes  # equal to the VNet's: a VNet route
    assert Model(st).ping("mgmt", "v1").ok
    st = from_plan(make_plan(base()))
    # a user route inside 10/8 is longer than the None route: it wins (the nested blocks' routes)
    assert Model(st)._azure_route("mgmt-subnet", IPv4Address("10.0.1.20"))[0] == "user"
    assert Model(st)._azure_route("mgmt-subnet", IPv4Address("10.1.0.1"))[0] == "none"
    assert Model(st)._azure_route("mgmt-subnet", IPv4Address("203.0.113.10"))[0] == "internet"


# ---- ARM JSON: `az network nsg list -o json` and the REST/SDK shape

AZ_LIST = [{
    "name": "vm-nsg", "resourceGroup": "rg", "type": "Microsoft.Network/networkSecurityGroups",
    "securityRules": [{
        "name": "deny-mgmt-v1", "priority": 100, "direction": "Inbound", "access": "Deny", "protocol": "*",
        "sourceAddressPrefix": "10.0.2.5", "sourceAddressPrefixes": [], "destinationAddressPrefix": "",
        "destinationAddressPrefixes": ["10.0.1.20"], "sourcePortRange": "*", "destinationPortRange": "*",
    }],
    "defaultSecurityRules": [{"name": "DenyAllInBound", "priority": 65500, "direction": "Inbound", "access": "Deny",
                              "protocol": "*", "sourceAddressPrefix": "*", "destinationAddressPrefix": "*"}],
    "subnets": [{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/vm-subnet",
                 "resourceGroup": "rg"}],
    "networkInterfaces": [{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/h2-nic"}],
}]


def test_az_cli_shape_is_read_with_its_attachments():
    nsgs, subnets, nics = nsgs_from_arm(AZ_LIST, "vnet")
    assert subnets == {"vm-subnet": "vm-nsg"} and nics == {"h2-nic": "vm-nsg"}
    (r,) = nsgs["vm-nsg"].rules
    assert (r.priority, r.sources, r.destinations, r.access) == (100, ("10.0.2.5",), ("10.0.1.20",), "Deny")
    assert nsgs_from_arm(AZ_LIST, "other-vnet")[1] == {}  # a subnet of another VNet is not ours


def test_rest_shape_with_properties_reads_the_same():
    rest = [{"name": "vm-nsg", "id": "x", "properties": {
        "securityRules": [{"name": "deny-mgmt-v1", "properties": {k: v for k, v in AZ_LIST[0]["securityRules"][0].items()
                                                                  if k != "name"}}],
        "subnets": AZ_LIST[0]["subnets"], "networkInterfaces": AZ_LIST[0]["networkInterfaces"]}}]
    assert nsgs_from_arm(rest, "vnet") == nsgs_from_arm(AZ_LIST, "vnet")


def test_with_nsgs_attaches_to_the_state(state):
    got = replace(state, cloud=with_nsgs(state.azure, AZ_LIST, "vnet"))
    assert got.azure.subnets["vm-subnet"].nsg == "vm-nsg" and got.azure.nics["h2-nic"].nsg == "vm-nsg"
    assert failed(got) == {("mgmt", "v1")}


def run_check(*args):
    return subprocess.run([sys.executable, "-m", "nestnet", "check", *args], capture_output=True, text=True)


def test_cli_nsgs_file(make_plan, tmp_path):
    plan = make_plan(base())
    f = tmp_path / "nsgs.json"
    f.write_text(json.dumps(AZ_LIST))
    r = run_check(plan.source, "--nsgs", str(f), "--json")
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    from nestnet.model.groups import expand

    assert [(a, b) for a, b, _ in expand(out)] == [("mgmt", "v1")]
    assert "NSG vm-nsg rule deny-mgmt-v1" in out["groups"][0]["cause"]


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("{not json", "not JSON"),
    ('{"a": 1}', "expected a JSON list"),
    ('[{"name": "n", "securityRules": [{"name": "r", "priority": "high", "direction": "Inbound", "access": "Deny"}]}]',
     "[0] n: securityRules[0] r: priority 'high' is not an integer"),
    ('[{"name": "n", "securityRules": [{"name": "r", "priority": 100, "direction": "In", "access": "Deny"}]}]',
     "direction 'In' is not Inbound or Outbound"),
])
def test_cli_nsgs_file_bad_input(make_plan, tmp_path, content, message):
    plan = make_plan(base())
    f = tmp_path / "nsgs.json"
    if content is not None:
        f.write_text(content)
    r = run_check(plan.source, "--nsgs", str(f))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
