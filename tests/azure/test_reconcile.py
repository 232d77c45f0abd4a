"""nestnet's reconciler through the real azure-mgmt-network SDK against the emulated ARM endpoint
over real HTTPS; results read back with the plain SDK and counted with the emulator's stats."""

from __future__ import annotations

from dataclasses import replace

import pytest

from nestnet.clouds.azure.arm import ArmClient, ArmSettings
from nestnet.clouds.azure.diff import TAG_FABRIC
from nestnet.clouds.azure.reconcile import apply, plan_changes, reconcile
from nestnet.errors import AzureError, ServiceError, UsageError

from azure_helpers import add_foreign_routes, fabric_spec, seed_spec


def read_back(ep, plan):
    """Routes, associated subnets and forwarding NICs, as the plain SDK sees them."""
    sdk = ep.sdk(plan)
    az = plan.azure
    table = sdk.route_tables.get(az.resource_group, az.route_table)
    routes = {r.name: (r.properties.address_prefix, r.properties.next_hop_type, r.properties.next_hop_ip_address)
              for r in table.properties.routes}
    vnet = sdk.virtual_networks.get(az.resource_group, az.vnet)
    assoc = {s.name for s in vnet.properties.subnets
             if s.properties.route_table and s.properties.route_table.id.lower() == table.id.lower()}
    fwd = {n.name for n in sdk.network_interfaces.list(az.resource_group) if n.properties.enable_ip_forwarding}
    return table, routes, assoc, fwd


def planned(plan):
    return {r.name: (str(r.address_prefix), "VirtualAppliance", str(r.next_hop_ip)) for r in plan.azure.routes}


def delta(before, after):
    return {k: after[k] - before[k] for k in after}


def test_create_from_nothing_then_second_run_changes_nothing(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    changes, outcome = reconcile(client, plan)
    assert {(c.action, c.kind) for c in changes} == {
        ("create", "route_table"), ("add", "route"), ("associate", "subnet"), ("enable-ip-forwarding", "nic")}
    # One table PUT, one PUT per subnet, one per NIC.
    assert outcome.writes == 1 + 2 + 2
    table, routes, assoc, fwd = read_back(ep, plan)
    assert routes == planned(plan)
    assert routes["nestnet-vme-kvm-vm1"] == ("10.0.1.16/28", "VirtualAppliance", "10.0.1.10")
    assert assoc == {"vm-subnet", "mgmt-subnet"}
    assert fwd == {"vme-kvm-vm1-vm-nic", "vme-kvm-vm2-vm-nic"}
    assert table.tags == {"managed-by": "nestnet", TAG_FABRIC: "hpe-vme-test"}
    # The effective routes of a host NIC now carry the user routes (long-running POST).
    eff = client.effective_routes("vme-kvm-vm1-vm-nic")
    assert {"10.0.1.48/28"} <= {p for e in eff if e["source"] == "User" for p in e["addressPrefix"]}

    before = ep.stats()
    changes, outcome = reconcile(client, plan)
    after = delta(before, ep.stats())
    assert changes == [] and outcome.writes == 0
    assert after["writes"] == 0 and after["reads"] == 3


def test_foreign_route_is_kept_unless_pruned(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    reconcile(client, plan)
    sdk = ep.sdk(plan)
    az = plan.azure
    sdk.routes.begin_create_or_update(
        az.resource_group, az.route_table, "to-onprem",
        {"properties": {"addressPrefix": "192.168.0.0/16", "nextHopType": "VirtualAppliance",
                        "nextHopIpAddress": "10.0.2.4"}},
    ).result()
    _, _, changes = plan_changes(client, plan)
    assert changes == []
    # A change to nestnet's own routes keeps the foreign one: the host's NIC got a new address.
    spec = seed_spec()
    spec["hosts"][1]["ip"] = "10.0.1.12"
    plan2 = plan_of(spec)
    ep.readdress_nic(plan, "vme-kvm-vm2-vm-nic", "10.0.1.12")
    changes, _ = reconcile(client, plan2)
    assert [(c.action, c.name) for c in changes] == [("update", "nestnet-vme-kvm-vm2")]
    _, routes, _, _ = read_back(ep, plan2)
    assert routes["to-onprem"] == ("192.168.0.0/16", "VirtualAppliance", "10.0.2.4")
    assert routes["nestnet-vme-kvm-vm2"][2] == "10.0.1.12"
    changes, _ = reconcile(client, plan2, prune_foreign=True)
    assert [(c.action, c.name) for c in changes] == [("delete", "to-onprem")]
    _, routes, _, _ = read_back(ep, plan2)
    assert routes == planned(plan2)


def test_host_added_costs_two_writes_and_the_same_requests_at_4_and_60_hosts(emulator, plan_of, tmp_path):
    costs = {}
    for n in (4, 60):
        small = plan_of(fabric_spec(n), name=f"f{n}.yaml")
        ep = emulator(small)
        reconcile(ep.client(small), small)
        bigger = plan_of(fabric_spec(n + 1), name=f"f{n}.yaml")
        ep.arm.seed(bigger)  # Terraform created the new host's NIC
        before = ep.stats()
        changes, outcome = reconcile(ep.client(bigger), bigger)
        costs[n] = delta(before, ep.stats())
        assert [(c.action, c.kind) for c in changes] == [("add", "route"), ("enable-ip-forwarding", "nic")]
        assert outcome.writes == 2
        _, routes, _, fwd = read_back(ep, bigger)
        assert routes == planned(bigger) and len(routes) == n + 1
        assert len(fwd) == n + 1
    assert costs[4]["writes"] == costs[60]["writes"] == 2
    assert costs[4]["reads"] == costs[60]["reads"]
    assert costs[4]["requests"] == costs[60]["requests"]


def test_host_removed_deletes_only_its_route(emulator, plan_of):
    plan = plan_of(fabric_spec(5))
    ep = emulator(plan)
    client = ep.client(plan)
    reconcile(client, plan)
    spec = fabric_spec(5)
    del spec["hosts"][2]
    smaller = plan_of(spec)
    before = ep.stats()
    changes, outcome = reconcile(client, smaller)
    assert [(c.action, c.kind, c.name) for c in changes] == [("delete", "route", "nestnet-h2")]
    assert delta(before, ep.stats())["writes"] == 1
    _, routes, _, fwd = read_back(ep, smaller)
    assert routes == planned(smaller)
    assert "h2-nic" in fwd  # forwarding is never turned off by nestnet


def test_concurrent_modification_412_rereads_and_keeps_the_other_writer(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    reconcile(client, plan)
    spec = seed_spec()
    spec["hosts"].append({"name": "vme-kvm-vm3", "ip": "10.0.1.12", "nic": "vme-kvm-vm3-nic", "block": "10.0.1.64/28"})
    plan3 = plan_of(spec)
    ep.arm.seed(plan3)
    want, obs, changes = plan_changes(client, plan3)
    # Someone else writes the table between our read and our PUT.
    az = plan.azure
    ep.sdk(plan).routes.begin_create_or_update(
        az.resource_group, az.route_table, "someone-else",
        {"properties": {"addressPrefix": "172.16.0.0/12", "nextHopType": "None"}},
    ).result()
    before = ep.stats()
    outcome = apply(client, want, obs, changes)
    d = delta(before, ep.stats())
    assert outcome.retries_412 == 1 and d["precondition_failed"] == 1
    _, routes, _, fwd = read_back(ep, plan3)
    assert routes == {**planned(plan3), "someone-else": ("172.16.0.0/12", "None", None)}
    assert "vme-kvm-vm3-nic" in fwd


def test_injected_429s_converge(emulator, plan_of):
    plan = plan_of(fabric_spec(8))
    ep = emulator(plan, inject_429=0.3, retry_after="0.01", rng_seed=7)
    client = ep.client(plan)
    reconcile(client, plan)
    _, _, changes = plan_changes(client, plan)
    assert changes == []
    stats = ep.stats()
    assert stats["throttled"] >= 3
    _, routes, assoc, fwd = read_back(ep, plan)
    assert routes == planned(plan) and assoc == {"hosts", "mgmt"} and len(fwd) == 8


def test_over_limit_is_refused_before_any_write(emulator, plan_of):
    plan = plan_of(fabric_spec(3, max_routes=4))
    ep = emulator(plan)
    client = ep.client(plan)
    reconcile(client, plan)
    add_foreign_routes(ep, plan, 2)
    spec = fabric_spec(3, max_routes=4)
    spec["hosts"][0]["ip"] = "10.0.0.100"  # a change that would otherwise be written
    changed = plan_of(spec)
    ep.readdress_nic(plan, "h0-nic", "10.0.0.100")
    before = ep.stats()
    with pytest.raises(AzureError, match=r"would hold 5 routes \(3 nestnet, 2 foreign\), over max_routes 4"):
        reconcile(client, changed)
    assert delta(before, ep.stats())["writes"] == 0


def test_refusals_name_the_thing(emulator, plan_of):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    client = ep.client(plan)
    az = plan.azure
    ep.sdk(plan).route_tables.begin_create_or_update(
        az.resource_group, az.route_table,
        {"location": "eastus", "tags": {TAG_FABRIC: "other-fabric"},
         "properties": {"routes": [{"name": "legacy", "properties": {
             "addressPrefix": "10.0.1.16/28", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.1.9"}}]}},
    ).result()
    before = ep.stats()
    with pytest.raises(AzureError) as exc:
        reconcile(client, plan)
    msg = str(exc.value)
    assert "tagged for nestnet fabric 'other-fabric'" in msg
    assert "foreign route 'legacy'" in msg and "10.0.1.16/28" in msg
    assert "\n" not in msg
    assert delta(before, ep.stats())["writes"] == 0

    spec = seed_spec()
    spec["hosts"][0]["nic"] = "no-such-nic"
    with pytest.raises(AzureError, match="network interface 'no-such-nic' was not found"):
        plan_changes(client, plan_of(spec, name="other.yaml"))


def test_tls_is_verified_and_http_refused(emulator, plan_of, tmp_path):
    plan = plan_of(seed_spec())
    ep = emulator(plan)
    other_ca = emulator(None).ca  # a CA that did not sign this endpoint's certificate
    bad = ArmClient(ArmSettings(ep.url, "00000000-0000-0000-0000-000000000000", az_rg(plan), other_ca, "t"))
    with pytest.raises(ServiceError, match="cannot reach ARM"):
        bad.get_vnet(plan.azure.vnet)
    with pytest.raises(UsageError, match="must be an https:// URL"):
        ArmSettings.from_env("rg", "sub", {"NESTNET_ARM_ENDPOINT": ep.url.replace("https", "http")})
    with pytest.raises(UsageError, match="no subscription"):
        ArmSettings.from_env("rg", None, {})


def az_rg(plan):
    return plan.azure.resource_group


def test_location_from_the_vnet_when_the_spec_has_none(emulator, plan_of):
    spec = fabric_spec(2)
    del spec["azure"]["location"]
    plan = plan_of(spec)
    seeded = replace(plan, cloud=replace(plan.azure, location="northeurope"))
    ep = emulator(seeded)
    reconcile(ep.client(plan), plan)
    table, routes, _, _ = read_back(ep, plan)
    assert table.location == "northeurope" and routes == planned(plan)


def test_lab_state_follows_the_emulator(emulator, plan_of):
    from nestnet.clouds.azure.lab import CloudState, from_emulator

    plan = plan_of(seed_spec())
    seen = []
    ep = emulator(plan, on_change=lambda arm: seen.append(len(arm.resources)))
    empty = from_emulator(ep.arm.state_dir, plan)
    assert empty == CloudState.from_plan(plan).unconfigured()
    reconcile(ep.client(plan), plan)
    assert from_emulator(ep.arm.state_dir, plan) == CloudState.from_plan(plan)
    assert len(seen) == 1 + 5  # the seed, then one notification per accepted write


def test_a_412_retry_reports_what_it_wrote_including_deleting_the_other_writers_route(emulator, plan_of, tmp_path):
    """Issue 20: two operators, one adding h3 and one h4. The second one's PUT met 412, re-read the
    table, re-computed the diff (its spec has no h4: delete it) and wrote that, but printed and
    returned only its own add. Now what apply prints and returns is what it wrote."""
    import json as _json
    import os
    import subprocess
    import sys

    from azure_helpers import write_between, write_spec

    base = plan_of(fabric_spec(3), name="base.yaml")
    ep = emulator(base)
    reconcile(ep.client(base), base)
    with_h3, with_h4 = fabric_spec(4), fabric_spec(5)
    del with_h4["hosts"][3]  # h0-h2 and h4
    plan3, plan4 = plan_of(with_h3, name="a.yaml"), plan_of(with_h4, name="b.yaml")
    ep.arm.seed(plan3)
    ep.arm.seed(plan4)
    env = {**os.environ, "NESTNET_ARM_ENDPOINT": ep.url, "NESTNET_ARM_CA_BUNDLE": ep.ca, "NESTNET_ARM_TOKEN": "t",
           "AZURE_SUBSCRIPTION_ID": ep.settings(base).subscription_id}
    for as_json in (True, False):
        reconcile(ep.client(base), base)  # back to h0-h2 (h3/h4 NICs keep forwarding: never turned off)
        # the other operator applies h4 between this apply's read and its table PUT, bypassing the
        # apply lease (a library call): the first table PUT is this apply's lease (decision 0029)
        puts: list[int] = []

        def other() -> None:
            puts.append(1)
            if len(puts) == 2:
                reconcile(ep.client(plan4), plan4)

        write_between(ep, "PUT", "/routeTables/", other, times=2)
        r = subprocess.run([sys.executable, "-m", "nestnet", "azure", "apply", str(tmp_path / "a.yaml"),
                            *(["--json"] if as_json else [])], capture_output=True, text=True, env=env, timeout=120)
        ep.arm.handle = type(ep.arm).handle.__get__(ep.arm)  # the hook off again
        assert r.returncode == 0, r.stderr
        _, routes, _, _ = read_back(ep, plan3)
        assert routes == planned(plan3)  # h4's route is gone: the re-computed diff deleted it
        if as_json:
            out = _json.loads(r.stdout)
            assert out["retries_412"] == 1
            assert [(c["action"], c["name"]) for c in out["changes"] if c["kind"] == "route"] == [("add", "nestnet-h3")]
            assert sorted((c["action"], c["name"]) for c in out["applied"] if c["kind"] == "route") == [
                ("add", "nestnet-h3"), ("delete", "nestnet-h4")]
        else:
            assert "applying 1 change(s):\n  add route nestnet-h3" in r.stdout
            tail = r.stdout.split("Azure changed meanwhile: re-read it and wrote instead", 1)[1]
            assert "delete route nestnet-h4: 10.1.0.48/28 -> VirtualAppliance 10.0.0.8" in tail and "add route nestnet-h3" in tail, r.stdout
