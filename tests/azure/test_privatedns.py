"""Nested VMs' A records in an Azure Private DNS zone: nestnet's reconciler against the emulator
over real HTTPS, through the unmodified azure-mgmt-privatedns client."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest

from nestnet.clouds.azure import privatedns
from nestnet.clouds.azure.reconcile import reconcile
from nestnet.errors import AzureError

from azure_helpers import seed_spec

ZONE = "nested.example.net"


def zoned(**extra):
    spec = seed_spec()
    spec["azure"]["private_dns_zone"] = ZONE
    spec["azure"].update(extra)
    return spec


def records(ep, plan) -> dict[str, tuple[list[str], dict]]:
    """Read back with the plain SDK: name -> (addresses, metadata)."""
    dns = privatedns.DnsClient(ep.client(plan)).sdk
    out = {}
    for rs in dns.record_sets.list_by_type(plan.azure.resource_group, ZONE, "A"):
        out[rs.name] = (sorted(a.ipv4_address for a in rs.properties.a_records or []), dict(rs.properties.metadata or {}))
    return out


def foreign(ep, plan, name: str, ip: str, meta: dict | None = None) -> None:
    dns = privatedns.DnsClient(ep.client(plan)).sdk
    dns.record_sets.create_or_update(plan.azure.resource_group, ZONE, "A", name,
                                     {"properties": {"ttl": 60, "metadata": meta or {"owner": "someone"},
                                                     "aRecords": [{"ipv4Address": ip}]}})


def test_one_record_per_vm_then_nothing_and_foreign_records_untouched(emulator, plan_of):
    plan = plan_of(zoned())
    ep = emulator(plan)
    foreign(ep, plan, "printer", "10.0.2.9")
    changes, out = reconcile(ep.client(plan), plan)
    assert sorted((c.action, c.name) for c in changes if c.kind == "dns_record") == [("create", "web1"), ("create", "web2")]
    got = records(ep, plan)
    assert got["web1"] == (["10.0.1.20"], {"nestnet": plan.name}) and got["web2"][0] == ["10.0.1.50"]
    assert got["printer"] == (["10.0.2.9"], {"owner": "someone"})
    changes, out = reconcile(ep.client(plan), plan)
    assert changes == [] and out.writes == 0


def test_owned_records_follow_the_plan_and_a_foreign_one_of_a_vm_name_is_refused(emulator, plan_of, tmp_path):
    plan = plan_of(zoned())
    ep = emulator(plan)
    reconcile(ep.client(plan), plan)
    spec = zoned()
    spec["vms"] = [{"name": "web1", "host": "vme-kvm-vm1", "ip": "10.0.1.21"}]  # moved; web2 gone
    moved = plan_of(spec, "moved.yaml")
    changes, _ = reconcile(ep.client(moved), moved)
    assert sorted((c.action, c.name) for c in changes if c.kind == "dns_record") == [("delete", "web2"), ("update", "web1")]
    assert records(ep, moved) == {"web1": (["10.0.1.21"], {"nestnet": plan.name})}
    # a record set of a VM's name that nestnet does not own: left alone, and said so
    foreign(ep, moved, "web3", "10.0.9.9")
    spec["vms"].append({"name": "web3", "host": "vme-kvm-vm2", "ip": "10.0.1.51"})
    more = plan_of(spec, "more.yaml")
    with pytest.raises(AzureError, match="record set 'web3' .* is not nestnet's"):
        reconcile(ep.client(more), more)
    assert records(ep, more)["web3"] == (["10.0.9.9"], {"owner": "someone"})
    # another fabric's records are foreign too (pure diff: the same rule)
    theirs = {"name": "web1", "etag": "e", "properties": {"ttl": 300, "metadata": {"nestnet": "other-fabric"},
                                                          "aRecords": [{"ipv4Address": "10.0.1.21"}]}}
    with pytest.raises(AzureError, match="not nestnet's"):
        privatedns.diff(moved, [theirs])
    mine = {**theirs, "properties": {**theirs["properties"], "metadata": {"nestnet": moved.name}}}
    assert privatedns.diff(moved, [mine]) == []


def test_a_record_created_between_read_and_write_is_not_overwritten(emulator, plan_of):
    from nestnet.clouds.azure.reconcile import apply, plan_changes

    plan = plan_of(zoned())
    ep = emulator(plan)
    client = ep.client(plan)
    want, obs, changes = plan_changes(client, plan)
    foreign(ep, plan, "web1", "10.0.7.7")  # another writer, after nestnet read the zone
    with pytest.raises(AzureError, match="412"):
        apply(client, want, obs, changes)
    assert records(ep, plan)["web1"] == (["10.0.7.7"], {"owner": "someone"})


def test_emulator_answers_as_the_service(emulator, plan_of):
    plan = plan_of(zoned())
    ep = emulator(plan)
    ctx = ssl.create_default_context(cafile=ep.ca)
    base = f"{ep.url}/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-hpe-vme-test/providers/Microsoft.Network/privateDnsZones"

    def call(method: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
        req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": "Bearer t", "Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    assert call("GET", f"/{ZONE}/A?api-version=1999-01-01")[0] == 400
    status, err = call("GET", "/no.such.zone/A/x?api-version=2020-06-01")
    assert status == 404 and err["error"]["code"] == "ParentResourceNotFound"
    body = {"properties": {"ttl": 10, "aRecords": [{"ipv4Address": "10.0.1.5"}]}}
    status, rs = call("PUT", f"/{ZONE}/A/x?api-version=2020-06-01", body)
    assert status == 201 and rs["properties"]["fqdn"] == f"x.{ZONE}." and rs["etag"]
    assert call("PUT", f"/{ZONE}/A/x?api-version=2020-06-01", body, {"If-None-Match": "*"})[0] == 412
    assert call("DELETE", f"/{ZONE}/A/x?api-version=2020-06-01", None, {"If-Match": "stale"})[0] == 412
    assert call("PUT", f"/{ZONE}/A/x?api-version=2020-06-01", {"properties": {"aRecords": [{"ipv4Address": "nope"}]}})[0] == 400
    assert call("DELETE", f"/{ZONE}/A/x?api-version=2020-06-01", None, {"If-Match": rs["etag"]})[0] == 200
    assert call("DELETE", f"/{ZONE}/A/x?api-version=2020-06-01")[0] == 204


def test_exports_carry_the_records(plan_of, tmp_path):
    from nestnet.clouds.azure.export import write_export

    plan = plan_of(zoned())
    tf = write_export(plan, "terraform", tmp_path / "tf").read_text()
    assert 'resource "azurerm_private_dns_a_record" "dns_web1"' in tf and 'records             = ["10.0.1.20"]' in tf
    assert 'tags                = { "nestnet" = "hpe-vme-test" }' in tf
    sh = write_export(plan, "az", tmp_path / "az").read_text()
    assert "az network private-dns record-set a create --resource-group rg-hpe-vme-test --zone-name nested.example.net --name web1 --ttl 300 --metadata nestnet=hpe-vme-test" in sh
    assert "--record-set-name web2 --ipv4-address 10.0.1.50" in sh
