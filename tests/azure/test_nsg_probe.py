"""`--probe` end to end through ARM (issue 10): an NSG created through the SDK on the VM subnet
allows TCP 22 (and 2222-2230) from VirtualNetwork, then denies everything. `nestnet check --azure
--probe tcp/22` passes every pair, `check --azure` (a ping) fails the pairs into the subnet naming
DenyAll; the lab with the emulator's Azure agrees with real connects and pings."""

from __future__ import annotations

import json
import os

import pytest

from azure_helpers import check_azure, write_spec
from nestnet import lab
from nestnet.clouds.azure.reconcile import reconcile
from nestnet.clouds.azure.lab import lab_programmer
from nestnet.model import Probe
from nestnet.model.groups import expand

from test_nsg_done_when import reconciled_three_hosts, three_hosts

RULES = [
    {"name": "allow-ssh", "properties": {
        "protocol": "Tcp", "sourceAddressPrefix": "VirtualNetwork", "destinationAddressPrefix": "*",
        "access": "Allow", "sourcePortRange": "*", "destinationPortRanges": ["22", "2222-2230"], "priority": 100,
        "direction": "Inbound"}},
    {"name": "DenyAll", "properties": {
        "protocol": "*", "sourceAddressPrefix": "*", "destinationAddressPrefix": "*", "access": "Deny",
        "sourcePortRange": "*", "destinationPortRange": "*", "priority": 4096, "direction": "Inbound"}},
]


def create_ssh_only(ep, plan) -> None:
    sdk = ep.sdk(plan)
    rg, vnet = plan.azure.resource_group, plan.azure.vnet
    nsg = sdk.network_security_groups.begin_create_or_update(
        rg, "vm-nsg", {"location": "eastus", "properties": {"securityRules": RULES}}).result()
    sub = sdk.subnets.get(rg, vnet, "vm-subnet").as_dict()
    sub["properties"]["networkSecurityGroup"] = {"id": nsg.id}
    sdk.subnets.begin_create_or_update(rg, vnet, "vm-subnet", sub).result()


INTO_VM_SUBNET = {"vme-kvm-vm1", "vme-kvm-vm2", "vme-kvm-vm3", "web1", "web2", "web2b", "web3"}


def test_check_azure_with_probe(emulator, plan_of, tmp_path):
    path, plan, ep = reconciled_three_hosts(emulator, plan_of, tmp_path, "nsgprb")
    create_ssh_only(ep, plan)
    r = check_azure(ep, path, plan, "--probe", "tcp/22")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["probe"] == "tcp/22"
    assert check_azure(ep, path, plan, "--probe", "tcp/2225").returncode == 0
    r = check_azure(ep, path, plan)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["probe"] == "icmp"
    failed = {(a, b) for a, b, _ in expand(doc)}
    assert ("mgmt-vm", "web1") in failed and {d for _, d in failed} <= INTO_VM_SUBNET
    assert all("NSG vm-nsg rule DenyAll (priority 4096, Deny)" in g["cause"] for g in doc["groups"])
    r = check_azure(ep, path, plan, "--probe", "tcp/80")
    assert {(a, b) for a, b, _ in expand(json.loads(r.stdout))} == failed
    r = check_azure(ep, path, plan, "--probe", "tcp/99999")
    assert r.returncode == 2 and r.stderr.startswith("error: --probe tcp/99999: ")


@pytest.mark.root
def test_lab_with_the_emulators_azure_agrees_with_check_for_each_probe(emulator, plan_of, tmp_path):
    spec = three_hosts(f"nsgp{os.getpid() % 10000}")
    path = write_spec(tmp_path / "spec.yaml", spec)
    plan = plan_of(spec)
    ep = emulator(plan)
    lab.up(plan)
    try:
        ep.arm.on_change = lab_programmer(plan)  # as `lab up --azure api` wires it
        reconcile(ep.client(plan), plan)
        create_ssh_only(ep, plan)
        for probe in ("tcp/22", "icmp", "udp/22"):
            real = {(p.src, p.dst) for p in lab.matrix(plan, Probe.parse(probe)) if not p.ok}
            r = check_azure(ep, path, plan, "--probe", probe)
            model = {(a, b) for a, b, _ in expand(json.loads(r.stdout))}
            assert real == model, f"{probe}: lab only {sorted(real - model)}, check only {sorted(model - real)}"
            assert bool(real) == (probe != "tcp/22")
    finally:
        lab.down(plan)
