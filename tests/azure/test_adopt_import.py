"""Day one on Azure: the seed's hand-built route table (routes `to-kvm-vm1-nested`, no nestnet
tags) imported into a spec, then adopted by one whole-table PUT; a route that sends a block
elsewhere is refused. Real SDK over real HTTPS against the emulated ARM endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nestnet.clouds.azure import handbuilt
from nestnet.clouds.azure.reconcile import plan_changes, reconcile
from nestnet.errors import AzureError
from nestnet.plan import load_plan

from azure_helpers import seed_spec
from test_reconcile import delta, planned, read_back

NESTNET = str(Path(sys.executable).with_name("nestnet"))


def hand_built(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    handbuilt.build(ep.client(plan), plan)
    return plan, ep


def test_adopt_renames_in_one_put_and_moves_no_packet(emulator, plan_of):
    plan, ep = hand_built(emulator, plan_of)
    client = ep.client(plan)
    _, before_routes, assoc, fwd = read_back(ep, plan)
    assert before_routes == {"to-kvm-vm1-nested": ("10.0.1.16/28", "VirtualAppliance", "10.0.1.10"),
                             "to-kvm-vm2-nested": ("10.0.1.48/28", "VirtualAppliance", "10.0.1.11")}
    with pytest.raises(AzureError, match=r"foreign route 'to-kvm-vm1-nested' .*run with --adopt"):
        plan_changes(client, plan)
    _, _, changes = plan_changes(client, plan, adopt=True)
    assert sorted((c.action, c.name, (c.before or {}).get("name")) for c in changes if c.kind == "route") == [
        ("adopt", "nestnet-vme-kvm-vm1", "to-kvm-vm1-nested"), ("adopt", "nestnet-vme-kvm-vm2", "to-kvm-vm2-nested")]
    assert {c.kind for c in changes} == {"route", "route_table"}  # renames and the table's tags; nothing else
    assert "adopt route to-kvm-vm1-nested as nestnet-vme-kvm-vm1: 10.0.1.16/28 -> VirtualAppliance 10.0.1.10 (same next hop)" in map(str, changes)
    stats = ep.stats()
    _, outcome = reconcile(client, plan, adopt=True)
    assert outcome.writes == 1 and delta(stats, ep.stats())["writes"] == 1  # one whole-table PUT
    _, routes, assoc2, fwd2 = read_back(ep, plan)
    assert routes == planned(plan)
    # where every prefix goes is unchanged
    assert sorted(routes.values()) == sorted(before_routes.values()) and (assoc2, fwd2) == (assoc, fwd)
    assert plan_changes(client, plan)[2] == [] and plan_changes(client, plan, adopt=True)[2] == []


def test_adopt_refuses_a_different_next_hop_and_writes_nothing(emulator, plan_of):
    plan, ep = hand_built(emulator, plan_of)
    az = plan.azure
    ep.sdk(plan).routes.begin_create_or_update(az.resource_group, az.route_table, "to-kvm-vm2-nested", {
        "properties": {"addressPrefix": "10.0.1.48/28", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.1.12"}
    }).result()
    stats = ep.stats()
    with pytest.raises(AzureError) as exc:
        reconcile(ep.client(plan), plan, adopt=True)
    msg = str(exc.value)
    assert "foreign route 'to-kvm-vm2-nested'" in msg and "next hop is 10.0.1.48/28 -> VirtualAppliance 10.0.1.12" in msg
    assert "does not take it over" in msg and "to-kvm-vm1-nested" not in msg
    assert delta(stats, ep.stats())["writes"] == 0


def test_import_reproduces_the_hand_built_fabric(emulator, plan_of, tmp_path):
    plan, ep = hand_built(emulator, plan_of)
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": ep.url, "NESTNET_ARM_CA_BUNDLE": ep.ca, "NESTNET_ARM_TOKEN": "t",
           "AZURE_SUBSCRIPTION_ID": ep.settings(plan).subscription_id}
    out = tmp_path / "imported" / "fabric.yaml"
    r = subprocess.run([NESTNET, "import", "--resource-group", plan.azure.resource_group, "--vnet", plan.azure.vnet,
                        "--out", str(out), "--name", plan.name, "--host-default", "uplink=eth1"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "# guessed" in text and "from route to-kvm-vm1-nested" in text
    assert out.with_suffix(".lock").exists()
    got = load_plan(out, write=False)
    # The same blocks on the same hosts (named after their NICs), the mgmt VM as an endpoint,
    # the same subnets associated.
    assert {h.nic: str(h.block) for h in got.hosts.values()} == {h.nic: str(h.block) for h in plan.hosts.values()}
    assert {h.nic: str(h.ip) for h in got.hosts.values()} == {h.nic: str(h.ip) for h in plan.hosts.values()}
    assert {str(e.ip) for e in got.endpoints.values()} == {"10.0.2.5"}
    assert sorted(got.azure.subnet_associations) == sorted(plan.azure.subnet_associations)
    assert {(str(r.address_prefix), str(r.next_hop_ip)) for r in got.azure.routes} == {
        (str(r.address_prefix), str(r.next_hop_ip)) for r in plan.azure.routes}
    # azure diff --adopt: renames only
    r = subprocess.run([NESTNET, "azure", "diff", str(out), "--adopt", "--json"], capture_output=True, text=True, env=env)
    assert r.returncode == 1, r.stderr
    changes = yaml.safe_load(r.stdout)["changes"]
    assert {c["action"] for c in changes} == {"adopt", "tag"}
    assert all(c["before"]["addressPrefix"] == c["after"]["addressPrefix"]
               and c["before"]["nextHopIpAddress"] == c["after"]["nextHopIpAddress"] for c in changes if c["action"] == "adopt")
    # never overwrites; bad input is one line, exit 2
    r = subprocess.run([NESTNET, "import", "--resource-group", plan.azure.resource_group, "--vnet", plan.azure.vnet,
                        "--out", str(out)], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "already exists" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([NESTNET, "import", "--resource-group", plan.azure.resource_group, "--vnet", plan.azure.vnet,
                        "--out", str(tmp_path / "x.yaml"), "--host-default", "colour=red"], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "--host-default colour" in r.stderr and not (tmp_path / "x.yaml").exists()


def test_import_of_nics_whose_names_differ_only_by_case_then_adopt(emulator, plan_of, tmp_path):
    """Issue 20: NICs kvm_a-nic and KVM-A-nic (no VM to name them) gave hosts kvm-a and KVM-A, one
    route name to Azure; `azure diff --adopt` then refused with "its next hop is X, not X"."""
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    az, sdk = plan.azure, ep.sdk(plan)
    subnet = sdk.virtual_networks.get(az.resource_group, az.vnet).json["properties"]["subnets"][0]["id"]
    for nic, ip in (("kvm_a-nic", "10.0.1.12"), ("KVM-A-nic", "10.0.1.13")):  # NICs of no VM
        sdk.network_interfaces.begin_create_or_update(az.resource_group, nic, {"location": "eastus", "properties": {
            "ipConfigurations": [{"name": "ipconfig1", "properties": {
                "privateIPAllocationMethod": "Static", "privateIPAddress": ip, "subnet": {"id": subnet}}}]}}).result()
    sdk.route_tables.begin_create_or_update(az.resource_group, az.route_table, {"location": "eastus", "properties": {"routes": [
        {"name": "to-a", "properties": {"addressPrefix": "10.0.1.64/28", "nextHopType": "VirtualAppliance",
                                        "nextHopIpAddress": "10.0.1.12"}},
        {"name": "to-b", "properties": {"addressPrefix": "10.0.1.80/28", "nextHopType": "VirtualAppliance",
                                        "nextHopIpAddress": "10.0.1.13"}}]}}).result()
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": ep.url, "NESTNET_ARM_CA_BUNDLE": ep.ca, "NESTNET_ARM_TOKEN": "t",
           "AZURE_SUBSCRIPTION_ID": ep.settings(plan).subscription_id}
    out = tmp_path / "imported.yaml"
    r = subprocess.run([NESTNET, "import", "--resource-group", az.resource_group, "--vnet", az.vnet, "--route-table",
                        az.route_table, "--out", str(out), "--name", plan.name], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    got = load_plan(out, write=False)
    names = sorted(h.name for h in got.hosts.values())
    assert len({n.lower() for n in names}) == 2, names
    r = subprocess.run([NESTNET, "azure", "diff", str(out), "--adopt", "--json"], capture_output=True, text=True, env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    changes = yaml.safe_load(r.stdout)["changes"]
    assert sorted((c["before"]["name"], c["name"]) for c in changes if c["action"] == "adopt") == sorted(
        (f"to-{'a' if str(got.hosts[n].ip) == '10.0.1.12' else 'b'}", f"nestnet-{n}") for n in names)
