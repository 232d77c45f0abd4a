"""A VM outside its block in Azure: its /32 route written, removed when it returns home, and
counted against max_routes (with foreign routes) before anything is written."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from azure_helpers import add_foreign_routes
from nestnet.clouds.azure.reconcile import plan_changes, reconcile
from nestnet.errors import AzureError

# the fabric the mobility tests share (tests/mobility/specs.py; this directory is not a package)
_specs = importlib.util.spec_from_file_location("mobility_specs", Path(__file__).parents[1] / "mobility" / "specs.py")
assert _specs and _specs.loader
_mod = importlib.util.module_from_spec(_specs)
_specs.loader.exec_module(_mod)
mobile = _mod.mobile


def delta(before, after):
    return {k: after[k] - before[k] for k in after}


def routes(ep, plan):
    az = plan.azure
    table = ep.sdk(plan).route_tables.get(az.resource_group, az.route_table)
    return {r.name: (r.address_prefix, r.next_hop_ip_address) for r in table.routes}


def test_exception_route_there_and_back(emulator, plan_of):
    home = plan_of(mobile())
    ep = emulator(home)
    client = ep.client(home)
    reconcile(client, home)
    moved = plan_of(mobile(moved_to="kvm2"), "moved.yaml")
    reconcile(client, moved)
    got = routes(ep, moved)
    assert got["nestnet-web1.32"] == ("10.0.1.130/32", "10.0.1.11")
    assert got["nestnet-kvm1"] == ("10.0.1.128/28", "10.0.1.10")
    assert plan_changes(client, moved)[-1] == []  # a second run changes nothing
    reconcile(client, plan_of(mobile(), "back.yaml"))
    assert "nestnet-web1.32" not in routes(ep, moved)


def test_exception_over_the_limit_with_foreign_routes_writes_nothing(emulator, plan_of):
    spec = mobile()
    spec["azure"]["max_routes"] = 5
    home = plan_of(spec)
    ep = emulator(home)
    client = ep.client(home)
    reconcile(client, home)
    add_foreign_routes(ep, home, 2)
    spec = mobile(moved_to="kvm2")
    spec["azure"]["max_routes"] = 5
    moved = plan_of(spec, "moved.yaml")  # 4 routes of nestnet's fit the plan's limit alone
    before = ep.stats()
    with pytest.raises(AzureError, match=r"would hold 6 routes \(4 nestnet, 2 foreign\), over max_routes 5"):
        reconcile(client, moved)
    assert delta(before, ep.stats())["writes"] == 0
