"""Issue 10's done-when for NSGs: an NSG created through the SDK on the VM subnet, denying
10.0.2.5 -> one nested VM inbound (priority 100), makes `nestnet check --azure` and the lab with
Azure from the emulator fail exactly that pair; the reply direction stays open (stateful)."""

from __future__ import annotations

import json
import os

import pytest

from azure_helpers import check_azure, seed_spec, write_spec
from nestnet import lab
from nestnet.clouds.azure.reconcile import reconcile
from nestnet.clouds.azure.lab import lab_programmer

DENY = {"protocol": "*", "sourceAddressPrefix": "10.0.2.5", "destinationAddressPrefix": "10.0.1.51",
        "access": "Deny", "sourcePortRange": "*", "destinationPortRange": "*", "priority": 100, "direction": "Inbound"}


def three_hosts(name: str) -> dict:
    spec = seed_spec()
    spec["name"] = name
    spec["hosts"].append({"name": "vme-kvm-vm3", "ip": "10.0.1.12", "nic": "vme-kvm-vm3-vm-nic", "block": "10.0.1.80/28"})
    spec["vms"] += [{"name": "web2b", "host": "vme-kvm-vm2", "ip": "10.0.1.51"},
                    {"name": "web3", "host": "vme-kvm-vm3", "ip": "10.0.1.82"}]
    return spec


def reconciled_three_hosts(emulator, plan_of, tmp_path, name: str):
    """The three-host fabric written to a spec file and reconciled into a fresh emulator."""
    spec = three_hosts(name)
    path = write_spec(tmp_path / "spec.yaml", spec)
    plan = plan_of(spec)
    ep = emulator(plan)
    reconcile(ep.client(plan), plan)
    return path, plan, ep


def create_nsg(ep, plan) -> None:
    """As a person would with the SDK: the NSG with its rule, then the subnet pointing at it."""
    sdk = ep.sdk(plan)
    rg, vnet = plan.azure.resource_group, plan.azure.vnet
    nsg = sdk.network_security_groups.begin_create_or_update(
        rg, "vm-nsg", {"location": "eastus", "properties": {"securityRules": [{"name": "deny-mgmt-web2b",
                                                                                "properties": DENY}]}}).result()
    sub = sdk.subnets.get(rg, vnet, "vm-subnet").as_dict()
    sub["properties"]["networkSecurityGroup"] = {"id": nsg.id}
    sdk.subnets.begin_create_or_update(rg, vnet, "vm-subnet", sub).result()


def test_check_azure_reports_exactly_the_denied_pair(emulator, plan_of, tmp_path):
    path, plan, ep = reconciled_three_hosts(emulator, plan_of, tmp_path, "nsgchk")
    r = check_azure(ep, path, plan)
    assert r.returncode == 0, r.stdout + r.stderr
    create_nsg(ep, plan)
    r = check_azure(ep, path, plan)
    assert r.returncode == 1, r.stderr
    from nestnet.model.groups import expand

    doc = json.loads(r.stdout)
    assert [(a, b) for a, b, _ in expand(doc)] == [("mgmt-vm", "web2b")]
    (g,) = doc["groups"]
    assert "NSG vm-nsg rule deny-mgmt-web2b (priority 100, Deny)" in g["cause"]
    assert "az network nsg rule delete" in g["fix"]


@pytest.mark.root
def test_lab_with_the_emulators_azure_fails_exactly_that_pair(emulator, plan_of):
    plan = plan_of(three_hosts(f"nsgl{os.getpid() % 10000}"))
    ep = emulator(plan)
    lab.up(plan)
    try:
        ep.arm.on_change = lab_programmer(plan)  # as `lab up --azure api` wires it
        reconcile(ep.client(plan), plan)
        assert {(p.src, p.dst) for p in lab.matrix(plan) if not p.ok} == set()
        create_nsg(ep, plan)
        red = {(p.src, p.dst) for p in lab.matrix(plan) if not p.ok}
        assert red == {("mgmt-vm", "web2b")}  # web2b -> mgmt-vm and its reply pass: stateful
    finally:
        lab.down(plan)
