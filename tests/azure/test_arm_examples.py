"""Microsoft's published REST examples (azure-rest-api-specs, Microsoft.Network 2024-05-01; copies and
sources in arm_examples/) replayed against the emulator over HTTPS: each answer has a documented
status code and every documented key (values may differ), headers included.

Each case lists what must exist first (created through the emulator's API, as a user would) and the
request the example documents."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from emulator_http import request
from nestnet.azure.emulator import Arm, Emulator

EXAMPLES = Path(__file__).parent / "arm_examples"


def base(rg: str = "rg1") -> str:
    return f"/subscriptions/subid/resourceGroups/{rg}/providers/Microsoft.Network"


RG1_VNET = ("PUT", f"{base()}/virtualNetworks/rg1-vnet", {
    "location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["172.20.0.0/16"]},
                                         "subnets": [{"name": "default", "properties": {"addressPrefix": "172.20.2.0/24"}}]}})
TESTRT = f"{base()}/routeTables/testrt"
TESTNSG = f"{base()}/networkSecurityGroups/testnsg"
SUBNET_TEST_VNET = f"{base('subnet-test')}/virtualNetworks/vnetname"
RULE1 = {"name": "rule1", "properties": {"protocol": "*", "sourceAddressPrefix": "*", "destinationAddressPrefix": "*",
                                         "access": "Allow", "destinationPortRange": "80", "sourcePortRange": "*",
                                         "priority": 130, "direction": "Inbound"}}


def _route_table(hop: str) -> tuple[str, str, dict]:
    return ("PUT", TESTRT, {"location": "westus", "properties": {"routes": [
        {"name": "route1", "properties": {"addressPrefix": "10.0.3.0/24", "nextHopType": hop}}]}})


def _example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


# example -> (setup requests, (method, path, body-parameter name or None))
CASES: dict[str, tuple[list[tuple[str, str, Any]], tuple[str, str, str | None]]] = {
    "RouteTableCreate": ([], ("PUT", TESTRT, "parameters")),
    "RouteTableGet": ([_route_table("VirtualNetworkGateway")], ("GET", TESTRT, None)),
    "RouteTableDelete": ([("PUT", TESTRT, {"location": "westus"})], ("DELETE", TESTRT, None)),
    "RouteTableRouteGet": ([_route_table("Internet")], ("GET", f"{TESTRT}/routes/route1", None)),
    "SubnetGet": ([("PUT", SUBNET_TEST_VNET, {"location": "eastus", "properties": {
        "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
        "subnets": [{"name": "subnet1", "properties": {"addressPrefix": "10.0.0.0/16"}}]}})],
        ("GET", f"{SUBNET_TEST_VNET}/subnets/subnet1", None)),
    "SubnetCreateServiceEndpoint": ([("PUT", SUBNET_TEST_VNET, {"location": "eastus", "properties": {
        "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}})],
        ("PUT", f"{SUBNET_TEST_VNET}/subnets/subnet1", "subnetParameters")),
    "NetworkInterfaceCreate": ([RG1_VNET], ("PUT", f"{base()}/networkInterfaces/test-nic", "parameters")),
    "NetworkInterfaceUpdateTags": ([RG1_VNET, ("PUT", f"{base()}/networkInterfaces/test-nic",
                                               _example("NetworkInterfaceCreate")["parameters"]["parameters"])],
                                   ("PATCH", f"{base()}/networkInterfaces/test-nic", "parameters")),
    "NetworkInterfaceEffectiveRouteTableList": (
        [RG1_VNET, ("PUT", f"{base()}/networkInterfaces/nic1", {"location": "eastus", "properties": {"ipConfigurations": [
            {"name": "ipconfig1", "properties": {"subnet": {"id": f"{base()}/virtualNetworks/rg1-vnet/subnets/default"}}}]}})],
        ("POST", f"{base()}/networkInterfaces/nic1/effectiveRouteTable", None)),
    "NetworkSecurityGroupCreate": ([], ("PUT", TESTNSG, "parameters")),
    "NetworkSecurityGroupCreateWithRule": ([], ("PUT", TESTNSG, "parameters")),
    "NetworkSecurityGroupGet": ([("PUT", TESTNSG, {"location": "westus", "properties": {"securityRules": [RULE1]}})],
                                ("GET", TESTNSG, None)),
}


def missing_keys(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every key of ``expected`` (recursively) that ``actual`` lacks; list items matched by name."""
    out: list[str] = []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [path or "(body)"]
        for k, v in expected.items():
            if k not in actual:
                out.append(f"{path}.{k}" if path else k)
            else:
                out += missing_keys(v, actual[k], f"{path}.{k}" if path else k)
    elif isinstance(expected, list):
        if not isinstance(actual, list):
            return [path]
        for i, e in enumerate(expected):
            if not isinstance(e, (dict, list)):
                continue  # a value, which may differ
            if isinstance(e, dict) and "name" in e:
                match = next((a for a in actual if isinstance(a, dict) and str(a.get("name", "")).lower() == e["name"].lower()), None)
            else:
                match = actual[i] if i < len(actual) else None
            if match is None:
                out.append(f"{path}[{e.get('name', i) if isinstance(e, dict) else i}]")
            else:
                out += missing_keys(e, match, f"{path}[{i}]")
    return out


def test_every_stored_example_is_replayed():
    assert sorted(p.stem for p in EXAMPLES.glob("*.json")) == sorted(CASES)
    sources = (EXAMPLES / "SOURCES.md").read_text()
    assert all(f"`{name}.json`" in sources for name in CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_microsoft_example(tmp_path, name):
    example = _example(name)
    setup, (method, path, param) = CASES[name]
    arm = Arm(tmp_path / "arm")
    em = Emulator(arm).start()
    try:
        ep = SimpleNamespace(url=em.url, ca=str(em.ca_pem))
        for m, p, body in setup:
            status, _, out = request(ep, m, p, body)
            assert status in (200, 201), (p, out)
        body = example["parameters"][param] if param else None
        status, headers, out = request(ep, method, path, body)
        documented = example["responses"]
        assert str(status) in documented, f"{name}: answered {status} {out}, documented {sorted(documented)}"
        doc = documented[str(status)]
        assert missing_keys(doc.get("body"), out) == [], f"{name}: keys missing from the answer"
        assert [h for h in doc.get("headers", {}) if h.lower() not in headers] == []
        if status == 202 and "body" in documented.get("200", {}) and "location" in headers:  # the LRO result
            status, _, result = request(ep, "GET", headers["location"].split(em.url, 1)[1], query="")
            assert status == 200 and missing_keys(documented["200"]["body"], result) == [], name
            prefixes = {(r["addressPrefix"][0], r["nextHopType"]) for r in result["value"]}
            assert {(r["addressPrefix"][0], r["nextHopType"]) for r in documented["200"]["body"]["value"]
                    if r["nextHopType"] != "VnetLocal"} <= prefixes
        if method == "PUT":  # the state the client's final GET reads has the documented keys too
            status, _, final = request(ep, "GET", path)
            assert status == 200 and missing_keys(doc.get("body"), final) == [], name
    finally:
        em.stop()
