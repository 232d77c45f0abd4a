"""The pure diff and PUT bodies on plain data: no SDK, no emulator."""

from __future__ import annotations

from dataclasses import replace

import pytest

from azure_helpers import seed_spec
from nestnet.clouds.azure.diff import Observed, desired, diff, route_table_body
from nestnet.errors import AzureError

TABLE_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/routeTables/vme-kvm-nested-vm-routes"


def route(name, prefix, hop_ip=None, hop="VirtualAppliance"):
    p = {"addressPrefix": prefix, "nextHopType": hop, "provisioningState": "Succeeded"}
    if hop_ip:
        p["nextHopIpAddress"] = hop_ip
    return {"name": name, "etag": "e", "properties": p}


def observed(routes, *, tags=None, subnets=("vm-subnet", "mgmt-subnet"), assoc=True, fwd=True, extra_props=None):
    table = {"id": TABLE_ID, "location": "eastus", "etag": 'W/"1"',
             "tags": {"managed-by": "nestnet", "nestnet-fabric": "hpe-vme-test"} if tags is None else tags,
             "properties": {"routes": routes, "provisioningState": "Succeeded", "subnets": [], **(extra_props or {})}}
    vnet = {"location": "eastus", "properties": {"subnets": [
        {"name": s, "properties": {"routeTable": {"id": TABLE_ID.upper()}} if assoc else {}} for s in subnets]}}
    nics = {n: {"name": n, "properties": {"enableIPForwarding": fwd}} for n in ("vme-kvm-vm1-vm-nic", "vme-kvm-vm2-vm-nic")}
    return Observed(table, vnet, nics)


IN_SYNC = [route("nestnet-vme-kvm-vm1", "10.0.1.16/28", "10.0.1.10"), route("nestnet-vme-kvm-vm2", "10.0.1.48/28", "10.0.1.11")]


@pytest.fixture
def want(plan_of):
    return desired(plan_of(seed_spec()))


def test_in_sync_is_empty_case_insensitive_ids(want):
    assert diff(want, observed(IN_SYNC), TABLE_ID) == []


CASES = {
    "moved hop": ([route("nestnet-vme-kvm-vm1", "10.0.1.16/28", "10.0.1.99"), IN_SYNC[1]], [("update", "nestnet-vme-kvm-vm1")]),
    "stale owned": ([*IN_SYNC, route("nestnet-gone", "10.0.1.96/28", "10.0.1.13")], [("delete", "nestnet-gone")]),
    "foreign kept": ([*IN_SYNC, route("onprem", "192.168.0.0/16", "10.0.2.4")], []),
    "missing": ([IN_SYNC[0]], [("add", "nestnet-vme-kvm-vm2")]),
    "prefix case": ([route("NESTNET-VME-KVM-VM1", "10.0.1.16/28", "10.0.1.10"), IN_SYNC[1]], []),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_route_cases(want, case):
    routes, expected = CASES[case]
    assert [(c.action, c.name) for c in diff(want, observed(routes), TABLE_ID)] == expected


def test_body_keeps_foreign_routes_and_table_settings(want):
    obs = observed([route("onprem", "192.168.0.0/16", "10.0.2.4"), IN_SYNC[0]], extra_props={"disableBgpRoutePropagation": True})
    changes = diff(want, obs, TABLE_ID)
    body = route_table_body(want, obs.table, changes, "eastus")
    assert "etag" not in body and "subnets" not in body["properties"]
    assert body["properties"]["disableBgpRoutePropagation"] is True
    assert [r["name"] for r in body["properties"]["routes"]] == ["onprem", "nestnet-vme-kvm-vm1", "nestnet-vme-kvm-vm2"]
    assert obs.table["properties"]["routes"][0]["etag"] == "e"  # the observation is not mutated


def test_subnets_and_nics(want):
    obs = observed(IN_SYNC, assoc=False, fwd=False)
    got = [(c.action, c.name) for c in diff(want, obs, TABLE_ID)]
    assert got == [("associate", "vm-subnet"), ("associate", "mgmt-subnet"),
                   ("enable-ip-forwarding", "vme-kvm-vm1-vm-nic"), ("enable-ip-forwarding", "vme-kvm-vm2-vm-nic")]
    other = observed(IN_SYNC)
    other.vnet["properties"]["subnets"][0]["properties"]["routeTable"]["id"] = TABLE_ID.replace("vme-kvm", "other")
    with pytest.raises(AzureError, match="subnet 'vm-subnet' is associated with another route table"):
        diff(want, other, TABLE_ID)


def test_untagged_table_gets_tags_and_other_modes_touch_nothing(want, plan_of):
    changes = diff(want, observed(IN_SYNC, tags={"team": "net"}), TABLE_ID)
    assert [(c.action, c.kind) for c in changes] == [("tag", "route_table")]
    assert changes[0].after == {"team": "net", "managed-by": "nestnet", "nestnet-fabric": "hpe-vme-test"}
    spec = seed_spec()
    spec["nested"]["mode"] = "nat"
    nat = desired(plan_of(spec, name="nat.yaml"))
    assert diff(nat, Observed(None, None, {}), TABLE_ID) == []
    with pytest.raises(AzureError, match="over max_routes 1"):
        diff(replace(want, max_routes=1), observed(IN_SYNC), TABLE_ID)


def test_plan_names_that_azure_takes_for_one_are_refused(want):
    # Issue 20: hosts kvm-a and KVM-A planned routes nestnet-kvm-a and nestnet-KVM-A; the diff kept
    # one of them, apply wrote one and said nothing. A plan built past validation must not either.
    r = want.routes[0]
    two = replace(want, routes=(r, replace(r, name=r.name.upper(), address_prefix="10.0.1.64/28")))
    with pytest.raises(AzureError, match=r"routes 'nestnet-vme-kvm-vm1' and 'NESTNET-VME-KVM-VM1', one name to Azure"):
        diff(two, observed(IN_SYNC), TABLE_ID)


def test_a_nic_is_found_whatever_the_case_azure_spells_it(want):
    # Azure answers with the NIC's name as it was created; the spec may spell it otherwise.
    obs = observed(IN_SYNC, fwd=False)
    obs = replace(obs, nics={n.upper(): {**v, "name": n.upper()} for n, v in obs.nics.items()})
    changes = diff(want, obs, TABLE_ID)
    assert [(c.action, c.name) for c in changes] == [
        ("enable-ip-forwarding", "vme-kvm-vm1-vm-nic"), ("enable-ip-forwarding", "vme-kvm-vm2-vm-nic")]
