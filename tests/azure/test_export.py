"""Exports: golden files for the seed, HCL that parses, a bash script that passes `bash -n` and
hands hostile names to `az` byte for byte (run against a fake `az` that records its argv)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import hcl2
import pytest

from azure_helpers import seed_spec
from nestnet.azure.export import az_script, terraform, write_export
from nestnet.errors import UsageError
from nestnet.plan import AzureRoute

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
    return replace(plan, name=h["fabric"], azure=az, source="evil\nsource.yaml")


def test_az_script_passes_hostile_names_verbatim(seed_plan, tmp_path):
    plan = hostile_plan(seed_plan)
    script = write_export(plan, "az", tmp_path / "out")
    subprocess.run(["bash", "-n", str(script)], check=True)
    fake = tmp_path / "bin" / "az"
    fake.parent.mkdir()
    log = tmp_path / "az.log"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\nopen({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    subprocess.run(["bash", str(script)], check=True, cwd=tmp_path, env=env)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    h = HOSTILE
    common = ["--subscription", "sub $(id)", "--resource-group", h["rg"]]
    assert calls == [
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
