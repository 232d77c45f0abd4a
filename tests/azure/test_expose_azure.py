"""Exposed ports on Azure's side (issue 26): the host's public IP (nestnet's own, created and
associated, or the user's, named) and the NSG rules the ports need, through the real SDK over
HTTPS against the emulator. Every write carries If-Match (or If-None-Match: * for a create), a
second apply writes nothing, foreign public IPs and NSGs are untouched, and `check --azure` sees
the public IP ARM gave."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from azure_helpers import seed_spec, write_spec
from nestnet.clouds.azure.publicip import needs
from nestnet.clouds.azure.reconcile import apply, plan_changes, reconcile
from nestnet.errors import AzureError

H1, NIC1 = "vme-kvm-vm1", "vme-kvm-vm1-vm-nic"
OWN = f"nestnet-{H1}-pip"
TAGS = {"managed-by": "nestnet", "nestnet-fabric": "hpe-vme-test"}


def exposed(public_ip: str | None = None) -> dict:
    d = seed_spec()
    d["vms"][0]["expose"] = [{"port": 80}, {"port": 8443, "public_port": 443}]
    if public_ip:
        d["hosts"][0]["public_ip"] = public_ip
    return d


def record_writes(ep) -> list[tuple[str, str, dict]]:
    """Every write the emulator is sent: (method, path, its precondition headers)."""
    seen: list[tuple[str, str, dict]] = []
    handle = ep.arm.handle

    def spy(method, path, headers, body, base):
        if method in ("PUT", "DELETE", "PATCH"):
            seen.append((method, path.split("?")[0], {k: v for k, v in headers.items() if k.startswith("if-")}))
        return handle(method, path, headers, body, base)

    ep.arm.handle = spy
    return seen


def make_nsg(ep, plan, name: str, tags: dict | None, rules: list | None = None, on: str = "vm-subnet") -> None:
    sdk = ep.sdk(plan)
    rg, vnet = plan.azure.resource_group, plan.azure.vnet
    nsg = sdk.network_security_groups.begin_create_or_update(
        rg, name, {"location": "eastus", "tags": tags or {}, "properties": {"securityRules": rules or []}}).result()
    sub = sdk.subnets.get(rg, vnet, on).as_dict()
    sub["properties"]["networkSecurityGroup"] = {"id": nsg.id}
    sdk.subnets.begin_create_or_update(rg, vnet, on, sub).result()


def nsg_rules(ep, plan, name: str) -> dict:
    nsg = ep.sdk(plan).network_security_groups.get(plan.azure.resource_group, name).as_dict()
    return {r["name"]: r["properties"] for r in nsg["properties"].get("securityRules") or []}


def test_own_public_ip_created_associated_and_its_nsg_rules_written_once(emulator, plan_of):
    plan = plan_of(exposed())
    ep = emulator(plan)
    make_nsg(ep, plan, "vm-nsg", TAGS)  # nestnet's to change
    writes = record_writes(ep)
    client = ep.client(plan)
    changes, outcome = reconcile(client, plan)
    kinds = {(c.action, c.kind, c.name) for c in changes}
    assert {("create", "public_ip", OWN), ("associate", "public_ip", OWN),
            ("add", "security_rule", "nestnet-expose-web1-tcp-80"),
            ("add", "security_rule", "nestnet-expose-web1-tcp-443")} <= kinds
    assert sorted(map(str, outcome.applied)) == sorted(map(str, changes))
    # every write was guarded: If-Match on what was read, If-None-Match: * for what is new
    assert writes and all(h.get("if-match") or h.get("if-none-match") == "*" for _m, _p, h in writes), writes
    assert any("/publicIPAddresses/" in p and h == {"if-none-match": "*"} for _m, p, h in writes)
    sdk = ep.sdk(plan)
    pip = sdk.public_ip_addresses.get(plan.azure.resource_group, OWN).as_dict()
    assert pip["sku"]["name"] == "Standard" and pip["tags"] == TAGS
    assert pip["properties"]["publicIPAllocationMethod"] == "Static"
    nic = sdk.network_interfaces.get(plan.azure.resource_group, NIC1).as_dict()
    primary = next(c for c in nic["properties"]["ipConfigurations"] if c["properties"]["primary"])
    assert primary["properties"]["publicIPAddress"]["id"].lower() == pip["id"].lower()
    assert nic["properties"]["enableIPForwarding"] is True  # forwarding and the association: one NIC PUT
    assert sum(1 for m, p, _h in writes if "/networkInterfaces/" in p and p.endswith(NIC1)) == 1
    rules = nsg_rules(ep, plan, "vm-nsg")
    r80 = rules["nestnet-expose-web1-tcp-80"]
    assert (r80["access"], r80["direction"], r80["protocol"], r80["destinationPortRange"],
            r80["destinationAddressPrefix"], r80["sourceAddressPrefix"]) == ("Allow", "Inbound", "Tcp", "80",
                                                                           "10.0.1.10", "Internet")
    assert {r["priority"] for r in rules.values()} == {4096, 4095}  # below (after) any rule of the user's
    # a second apply: nothing to do, nothing written, nothing needed
    del writes[:]
    want, obs, again = plan_changes(client, plan)
    assert again == [] and needs(want, obs, again, plan.azure.resource_group) == []
    assert apply(client, want, obs, again).writes == 0 and writes == []
    # a VM no longer exposed on 443: only nestnet's rule for it goes, with If-Match
    d = exposed()
    d["vms"][0]["expose"] = [{"port": 80}]
    plan2 = plan_of(d, "two.yaml")
    changes, _ = reconcile(ep.client(plan2), plan2)
    assert [(c.action, c.kind, c.name) for c in changes] == [("delete", "security_rule", "nestnet-expose-web1-tcp-443")]
    assert writes[-1][0] == "DELETE" and writes[-1][2].get("if-match")
    assert set(nsg_rules(ep, plan, "vm-nsg")) == {"nestnet-expose-web1-tcp-80"}


def test_a_foreign_nsg_is_checked_and_named_never_written(emulator, plan_of, tmp_path):
    plan = plan_of(exposed())
    ep = emulator(plan)
    deny = {"name": "deny-web", "properties": {"protocol": "Tcp", "sourceAddressPrefix": "*", "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRange": "443", "access": "Deny", "priority": 200,
            "direction": "Inbound"}}
    allow80 = {"name": "allow-web", "properties": {**deny["properties"], "destinationPortRange": "80",
               "access": "Allow", "priority": 100}}
    make_nsg(ep, plan, "team-nsg", {"owner": "team"}, [allow80, deny])
    before = ep.sdk(plan).network_security_groups.get(plan.azure.resource_group, "team-nsg").etag
    path = write_spec(tmp_path / "spec.yaml", exposed())
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": ep.url, "NESTNET_ARM_CA_BUNDLE": ep.ca, "NESTNET_ARM_TOKEN": "t",
           "AZURE_SUBSCRIPTION_ID": plan.azure.subscription_id or "00000000-0000-0000-0000-000000000000"}
    nn = [sys.executable, "-m", "nestnet", "azure"]
    r = subprocess.run([*nn, "apply", str(path), "--json"], capture_output=True, text=True, env=env)
    doc = json.loads(r.stdout)
    assert r.returncode == 1, r.stderr  # done, but the exposed port 443 still needs what nestnet may not write
    assert not any(c["kind"] == "security_rule" for c in doc["changes"])
    assert len(doc["needs"]) == 1 and "'team-nsg'" in doc["needs"][0] and "tcp/443" in doc["needs"][0]
    assert "az network nsg rule create" in doc["needs"][0] and "--destination-port-ranges 443" in doc["needs"][0]
    assert ep.sdk(plan).network_security_groups.get(plan.azure.resource_group, "team-nsg").etag == before
    r = subprocess.run([*nn, "diff", str(path)], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "no changes" in r.stdout and "not nestnet's to change" in r.stdout, r.stdout
    # check --azure reads the public IP ARM gave and judges both ports through the real NSG
    r = subprocess.run([sys.executable, "-m", "nestnet", "check", str(path), "--azure", "--json"],
                       capture_output=True, text=True, env=env)
    exp = {e["public_port"]: e for e in json.loads(r.stdout)["exposed"]}
    pip = ep.sdk(plan).public_ip_addresses.get(plan.azure.resource_group, OWN).as_dict()
    assert exp[80]["ok"] and exp[80]["address"] == pip["properties"]["ipAddress"]
    assert not exp[443]["ok"] and "deny-web" in exp[443]["reason"] and r.returncode == 1


def test_without_any_nsg_a_standard_public_ip_is_named_closed(emulator, plan_of):
    plan = plan_of(exposed())
    ep = emulator(plan)
    client = ep.client(plan)
    reconcile(client, plan)
    want, obs, changes = plan_changes(client, plan)
    assert changes == []
    (need,) = needs(want, obs, changes, plan.azure.resource_group)
    assert "Standard SKU, closed to inbound" in need and "tcp/80, tcp/443" in need


def test_the_users_public_ip_is_associated_and_never_written_foreign_ones_untouched(emulator, plan_of):
    plan = plan_of(exposed("web-pip"))
    ep = emulator(plan)
    sdk = ep.sdk(plan)
    rg = plan.azure.resource_group
    for name in ("web-pip", "other-pip"):
        sdk.public_ip_addresses.begin_create_or_update(
            rg, name, {"location": "eastus", "sku": {"name": "Standard"},
                       "properties": {"publicIPAllocationMethod": "Static"}}).result()
    etags = {n: sdk.public_ip_addresses.get(rg, n).etag for n in ("web-pip", "other-pip")}
    writes = record_writes(ep)
    changes, _ = reconcile(ep.client(plan), plan)
    assert [(c.action, c.name) for c in changes if c.kind == "public_ip"] == [("associate", "web-pip")]
    assert not any("/publicIPAddresses/" in p for _m, p, _h in writes)  # associated on the NIC, never written
    held = sdk.public_ip_addresses.get(rg, "web-pip").as_dict()["properties"]["ipConfiguration"]["id"]
    assert f"/networkInterfaces/{NIC1}/" in held
    assert sdk.public_ip_addresses.get(rg, "other-pip").etag == etags["other-pip"]
    # the primary already holds another public IP: refused before any write, naming both
    plan2 = plan_of(exposed("other-pip"), "two.yaml")
    del writes[:]
    with pytest.raises(AzureError, match="holds public IP 'web-pip', not 'other-pip'"):
        reconcile(ep.client(plan2), plan2)
    assert writes == []


def test_refusals_before_any_write(emulator, plan_of):
    plan = plan_of(exposed())
    ep = emulator(plan)
    sdk = ep.sdk(plan)
    # a foreign resource already carries nestnet's name for the host's public IP
    sdk.public_ip_addresses.begin_create_or_update(plan.azure.resource_group, OWN, {"location": "eastus"}).result()
    writes = record_writes(ep)
    with pytest.raises(AzureError, match=f"public IP '{OWN}' exists and is not nestnet's"):
        reconcile(ep.client(plan), plan)
    plan2 = plan_of(exposed("missing-pip"), "two.yaml")
    with pytest.raises(AzureError, match="public IP 'missing-pip' .* was not found"):
        reconcile(ep.client(plan2), plan2)
    assert writes == []


def test_exports_know_the_public_ip_and_the_rules(plan_of, tmp_path):
    from nestnet.clouds.azure.export import export_text

    plan = plan_of(exposed())
    tf = export_text(plan, "terraform")
    assert f'resource "azurerm_public_ip" "pip_{OWN.replace("-", "_")}"' in tf and 'sku                 = "Standard"' in tf
    assert '"vme-kvm-vm1-vm-nic" = azurerm_public_ip.' in tf
    assert tf.count('resource "azurerm_network_security_rule"') == 2 and 'destination_port_range      = "443"' in tf
    sh = export_text(plan, "az")
    assert "az network public-ip create" in sh and "--public-ip-address nestnet-vme-kvm-vm1-pip" in sh
    assert sh.count("az network nsg rule create") == 2
    script = tmp_path / "nestnet-az.sh"
    script.write_text(sh)
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    # the user's public IP: read, never created
    named = export_text(plan_of(exposed("web-pip"), "two.yaml"), "terraform")
    assert 'data "azurerm_public_ip" "pip_web_pip"' in named and 'resource "azurerm_public_ip"' not in named
    assert "public-ip create" not in export_text(plan_of(exposed("web-pip"), "three.yaml"), "az")
    # nothing exposed: the exports as before
    seed = plan_of(seed_spec(), "seed.yaml")
    assert "azurerm_public_ip" not in export_text(seed, "terraform") and "public-ip" not in export_text(seed, "az")


@pytest.mark.root
def test_the_lab_follows_arm_the_public_ip_arm_gave_reaches_the_vm_once_the_nsg_allows_it(emulator, plan_of, tmp_path):
    """`lab up --azure api`'s fabric from the emulator's resources: before apply there is no public IP;
    after it the one ARM gave (203.0.113.x) carries tcp/80 to the VM through the Allow rule nestnet
    wrote into its NSG, while the NSG's DenyAllInBound keeps 81 (not exposed) closed; check agrees."""
    import signal

    from nestnet import exposes, lab
    from nestnet.clouds.azure import sdn
    from nestnet.clouds.azure.lab import from_emulator
    from nestnet.lab.topology import Topology
    from nestnet.model import from_plan

    d = exposed()
    d["name"] = f"ex{os.getpid()}"
    plan = plan_of(d)
    ep = emulator(plan)
    make_nsg(ep, plan, "vm-nsg", {**TAGS, "nestnet-fabric": plan.name})
    lab.up(plan)
    server = None
    try:
        topo = Topology.from_plan(plan)
        sdn.program_ns(topo, from_emulator(ep.arm.state_dir, plan))
        assert from_emulator(ep.arm.state_dir, plan).public_ips == ()
        reconcile(ep.client(plan), plan)
        cloud = from_emulator(ep.arm.state_dir, plan)
        (pub,) = cloud.public_ips
        assert pub.address.exploded.startswith("203.0.113.") and pub.standard
        assert sdn.program_ns(topo, cloud) and not sdn.program_ns(topo, cloud)  # once, then nothing
        server = subprocess.Popen(["ip", "netns", "exec", topo.ns("web1"), sys.executable, "-m", "http.server", "80",
                                   "--bind", "0.0.0.0", "--directory", "/"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        state = from_plan(plan)
        from dataclasses import replace

        state = replace(state, cloud=cloud)

        def curl(port: int) -> bool:
            return subprocess.run(["ip", "netns", "exec", topo.internet_ns, "curl", "-s", "-o", "/dev/null",
                                   "--max-time", "3", f"http://{pub.address}:{port}/"]).returncode == 0

        import time

        deadline = time.monotonic() + 10
        while not curl(80) and time.monotonic() < deadline:
            time.sleep(0.2)
        lab_says = {port: curl(port) for port in (80, 81)}
        assert lab_says == {80: True, 81: False}
        assert {port: exposes.reach(state, "web1", "tcp", port).ok for port in (80, 81)} == lab_says
        assert "DenyAllInBound" in exposes.reach(state, "web1", "tcp", 81).reason  # the NSG, before the host
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        lab.down(plan)


def test_a_host_that_stops_exposing_lets_go_of_nestnets_public_ip_and_only_that(emulator, plan_of):
    plan = plan_of(exposed())
    ep = emulator(plan)
    make_nsg(ep, plan, "vm-nsg", TAGS)
    sdk = ep.sdk(plan)
    rg = plan.azure.resource_group
    sdk.public_ip_addresses.begin_create_or_update(  # someone else's, named like nestnet's: never touched
        rg, "nestnet-other-pip", {"location": "eastus", "sku": {"name": "Standard"},
                                  "properties": {"publicIPAllocationMethod": "Static"}}).result()
    reconcile(ep.client(plan), plan)
    bare = plan_of(seed_spec(), "bare.yaml")  # nothing exposed any more
    writes = record_writes(ep)
    changes, outcome = reconcile(ep.client(bare), bare)
    assert sorted((c.action, c.kind, c.name) for c in changes) == [
        ("delete", "public_ip", OWN), ("delete", "security_rule", "nestnet-expose-web1-tcp-443"),
        ("delete", "security_rule", "nestnet-expose-web1-tcp-80"), ("dissociate", "public_ip", OWN)]
    assert [m for m, _p, _h in writes] == ["PUT", "DELETE", "DELETE", "DELETE"]
    assert all(h.get("if-match") for _m, _p, h in writes) and nsg_rules(ep, plan, "vm-nsg") == {}
    assert {p.name for p in sdk.public_ip_addresses.list(rg)} == {"nestnet-other-pip"}
    nic = sdk.network_interfaces.get(rg, NIC1).as_dict()
    assert not any(c["properties"].get("publicIPAddress") for c in nic["properties"]["ipConfigurations"])
    del writes[:]
    assert reconcile(ep.client(bare), bare)[0] == [] and writes == []
