"""Exports: golden files for the seed, HCL that parses, a bash script that passes `bash -n` and
hands hostile names to `az` byte for byte (run against a fake `az` that records its argv)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import hcl2
import pytest

from azure_helpers import fake_az, seed_spec
from nestnet.clouds.azure.export import az_script, terraform, write_export
from nestnet.errors import UsageError
from nestnet.clouds.azure.plan import AzureRoute

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("NESTNET_REGEN_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.write_text(text)
    assert path.exists(), f"missing golden {path}; run with NESTNET_REGEN_GOLDEN=1 and review the diff"
    assert text == path.read_text(), f"{name} differs from its golden file (NESTNET_REGEN_GOLDEN=1 to update)"


def hcl_value(raw: str) -> str:
    """Undo HCL quoting as Terraform reads it: string escapes, then $${ and %%{ template escapes."""
    assert raw.startswith('"') and raw.endswith('"')
    return json.loads(raw).replace("$${", "${").replace("%%{", "%{")


@pytest.fixture
def seed_plan(plan_of):
    return replace(plan_of(seed_spec()), source="seed.yaml")


def test_terraform_golden_and_parses(seed_plan):
    text = terraform(seed_plan)
    check_golden("seed.tf", text)
    doc = hcl2.loads(text)
    resources = [(k.strip('"'), n.strip('"'), body) for block in doc["resource"] for k, v in block.items() for n, body in v.items()]
    routes = {hcl_value(b["name"]): b for t, _, b in resources if t == "azurerm_route"}
    assert set(routes) == {"nestnet-vme-kvm-vm1", "nestnet-vme-kvm-vm2"}
    r1 = routes["nestnet-vme-kvm-vm1"]
    assert hcl_value(r1["address_prefix"]) == "10.0.1.16/28"
    assert hcl_value(r1["next_hop_type"]) == "VirtualAppliance"
    assert hcl_value(r1["next_hop_in_ip_address"]) == "10.0.1.10"
    assoc = [b for t, _, b in resources if t == "azurerm_subnet_route_table_association"]
    assert len(assoc) == 2
    tables = [b for t, _, b in resources if t == "azurerm_route_table"]
    assert len(tables) == 1 and "route" not in tables[0]  # never inline routes next to azurerm_route
    assert "ip_forwarding_enabled = true" in text and "inline `route`" in text


def test_az_script_golden_and_syntax(seed_plan, tmp_path):
    text = az_script(seed_plan)
    check_golden("seed-az.sh", text)
    path = write_export(seed_plan, "az", tmp_path)
    assert path.name == "nestnet-az.sh" and os.access(path, os.X_OK)
    subprocess.run(["bash", "-n", str(path)], check=True)


HOSTILE = {
    "rg": "rg'; touch PWNED1; echo '",
    "table": 'rt $(touch PWNED2) "x" ${HOME}',
    "vnet": "vnet`touch PWNED3`",
    "subnet": "sub net;touch PWNED4",
    "nic": "nic\nwith newline %{x}",
    "route": "nestnet-h$1 \\ 'q'",
    "fabric": "fab&&touch PWNED5",
}


def hostile_plan(plan):
    h = HOSTILE
    az = replace(
        plan.azure,
        resource_group=h["rg"],
        route_table=h["table"],
        vnet=h["vnet"],
        subnet_associations=(h["subnet"],),
        nic_ip_forwarding=(h["nic"],),
        routes=(AzureRoute(h["route"], plan.azure.routes[0].address_prefix, plan.azure.routes[0].next_hop_ip),),
        subscription_id="sub $(id)",
    )
    return replace(plan, name=h["fabric"], cloud=az, source="evil\nsource.yaml")


def test_az_script_passes_hostile_names_verbatim(seed_plan, tmp_path):
    plan = hostile_plan(seed_plan)
    script = write_export(plan, "az", tmp_path / "out")
    subprocess.run(["bash", "-n", str(script)], check=True)
    h = HOSTILE
    env, log, _ = fake_az(tmp_path, {"subnets": {f"{h['vnet']}/{h['subnet']}": {}}, "nics": {h["nic"]: {}}})
    subprocess.run(["bash", str(script)], check=True, cwd=tmp_path, env=env)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    common = ["--subscription", "sub $(id)", "--resource-group", h["rg"]]
    assert calls == [
        ["network", "route-table", "show", *common, "--name", h["table"], "--output", "none"],
        ["network", "route-table", "create", *common, "--name", h["table"], "--location", "eastus",
         "--tags", "managed-by=nestnet", f"nestnet-fabric={h['fabric']}"],
        ["network", "route-table", "route", "create", *common, "--route-table-name", h["table"], "--name", h["route"],
         "--address-prefix", "10.0.1.16/28", "--next-hop-type", "VirtualAppliance", "--next-hop-ip-address", "10.0.1.10"],
        ["network", "vnet", "subnet", "update", *common, "--vnet-name", h["vnet"], "--name", h["subnet"],
         "--route-table", h["table"]],
        ["network", "nic", "update", *common, "--name", h["nic"], "--ip-forwarding", "true"],
    ]
    assert not list(tmp_path.glob("PWNED*"))


def test_terraform_quotes_hostile_names(seed_plan):
    plan = hostile_plan(seed_plan)
    text = terraform(plan)
    doc = hcl2.loads(text)
    table = doc["resource"][0]['"azurerm_route_table"']['"nestnet"']
    assert hcl_value(table["name"]) == HOSTILE["table"]
    assert hcl_value(table["resource_group_name"]) == HOSTILE["rg"]
    route = doc["resource"][1]['"azurerm_route"']
    (label, body), = route.items()
    assert hcl_value(body["name"]) == HOSTILE["route"]
    assert label.strip('"').replace("_", "").isalnum()  # resource labels are sanitised identifiers
    assert hcl_value(doc["locals"][0]["nestnet_ip_forwarding_nics"][0]) == HOSTILE["nic"]


def test_export_needs_routed_mode(seed_plan):
    with pytest.raises(UsageError, match="routed mode"):
        terraform(replace(seed_plan, mode="nat"))


def test_az_script_twice_keeps_foreign_routes_and_changes_nothing(seed_plan, tmp_path):
    """Run against the stateful fake `az`: a table that exists with a foreign route, subnets with
    settings of their own. Twice: the foreign route and settings survive, the second run changes
    no state. The fake's `route-table create` drops routes as ARM's bare PUT does (checked last)."""
    script = write_export(seed_plan, "az", tmp_path / "out")
    foreign = {"addressPrefix": "192.168.0.0/16", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.2.4"}
    before = {
        "routeTables": {"vme-kvm-nested-vm-routes": {"location": "eastus", "tags": {"owner": "netops"},
                                                      "routes": {"to-onprem": foreign}}},
        "subnets": {"vme-vnet/vm-subnet": {"serviceEndpoints": ["Microsoft.Storage"]}, "vme-vnet/mgmt-subnet": {}},
        "nics": {"vme-kvm-vm1-vm-nic": {"tags": {"team": "a"}}, "vme-kvm-vm2-vm-nic": {}},
    }
    env, log, state_path = fake_az(tmp_path, before)
    subprocess.run(["bash", str(script)], check=True, env=env)
    first = json.loads(state_path.read_text())
    table = first["routeTables"]["vme-kvm-nested-vm-routes"]
    assert table["routes"]["to-onprem"] == foreign and table["tags"] == {"owner": "netops"}
    assert set(table["routes"]) == {"to-onprem", "nestnet-vme-kvm-vm1", "nestnet-vme-kvm-vm2"}
    assert first["subnets"]["vme-vnet/vm-subnet"] == {"serviceEndpoints": ["Microsoft.Storage"],
                                                      "routeTable": "vme-kvm-nested-vm-routes"}
    assert first["nics"]["vme-kvm-vm1-vm-nic"] == {"tags": {"team": "a"}, "enableIPForwarding": True}
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert ["network", "route-table", "create"] not in [c[:3] for c in calls]  # the table existed
    subprocess.run(["bash", str(script)], check=True, env=env)
    second = json.loads(state_path.read_text())
    assert {k: v for k, v in second.items() if k != "writes"} == {k: v for k, v in first.items() if k != "writes"}
    # On a missing table the script creates it (tagged) and then adds the routes.
    (tmp_path / "empty").mkdir()
    env2, _, state2 = fake_az(tmp_path / "empty", {"subnets": before["subnets"], "nics": before["nics"]})
    subprocess.run(["bash", str(script)], check=True, env=env2)
    created = json.loads(state2.read_text())["routeTables"]["vme-kvm-nested-vm-routes"]
    assert created["tags"] == {"managed-by": "nestnet", "nestnet-fabric": "hpe-vme-test"}
    assert set(created["routes"]) == {"nestnet-vme-kvm-vm1", "nestnet-vme-kvm-vm2"}
    # The trap the script avoids: the bare `route-table create` the seed's Solution 3 runs drops routes.
    subprocess.run(["az", "network", "route-table", "create", "--resource-group", "rg-hpe-vme-test",
                    "--name", "vme-kvm-nested-vm-routes", "--location", "eastus"], check=True, env=env)
    assert json.loads(state_path.read_text())["routeTables"]["vme-kvm-nested-vm-routes"]["routes"] == {}


def test_az_script_stops_when_it_cannot_tell_whether_the_table_exists(seed_plan, tmp_path):
    script = write_export(seed_plan, "az", tmp_path / "out")
    env, log, _ = fake_az(tmp_path, {})
    bad = tmp_path / "fakebin" / "az"
    bad.write_text("#!/bin/sh\necho \"$@\" >> \"$FAKE_AZ_LOG\"\necho 'AuthorizationFailed' >&2\nexit 1\n")
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "cannot tell whether the route table exists" in r.stderr
    assert len(log.read_text().splitlines()) == 1  # only the show: nothing written


def test_terraform_association_inline_or_resource(seed_plan):
    inline = terraform(seed_plan, "inline")
    doc = hcl2.loads(inline)
    types = {k.strip('"') for block in doc["resource"] for k in block}
    assert "azurerm_subnet_route_table_association" not in types and "data" not in doc
    loc = {k: v for block in doc["locals"] for k, v in block.items()}
    assert loc["nestnet_route_table_id"] == "${azurerm_route_table.nestnet.id}"
    assert [hcl_value(x) for x in loc["nestnet_route_table_subnets"]] == ["vm-subnet", "mgmt-subnet"]
    assert "route_table_id = local.nestnet_route_table_id" in inline
    resource = terraform(seed_plan, "resource")
    assert resource == terraform(seed_plan) and "--tf-association inline" in resource
    # Rendering is deterministic: exporting twice writes the same file.
    assert terraform(seed_plan, "inline") == inline
    with pytest.raises(UsageError, match="--tf-association 'both'"):
        terraform(seed_plan, "both")
