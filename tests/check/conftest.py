"""Fixtures for the check tests: small fabrics as spec dicts, turned into Plans in tmp_path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import pytest

from nestnet.plan import Plan

from .fabrics import write_plan

# The seed fabric (examples/seed.yaml) plus a third host in another subnet.
BASE = {
    "version": 1,
    "name": "chk",
    "azure": {"resource_group": "rg", "vnet": "vnet", "address_space": ["10.0.0.0/16"], "route_table": "rt"},
    "subnets": [
        {"name": "vm-subnet", "prefix": "10.0.1.0/24"},
        {"name": "mgmt-subnet", "prefix": "10.0.2.0/24"},
        {"name": "other", "prefix": "10.0.3.0/24"},
    ],
    "nested": {"mode": "routed", "pool": "10.0.1.0/24", "block_prefix_len": 28, "guest_style": "onlink"},
    "host_defaults": {"uplink": "eth1"},
    "hosts": [
        {"name": "h1", "ip": "10.0.1.10", "nic": "h1-nic", "block": "10.0.1.16/28"},
        {"name": "h2", "ip": "10.0.1.11", "nic": "h2-nic", "block": "10.0.1.48/28"},
    ],
    "vms": [
        {"name": "v1", "host": "h1", "ip": "10.0.1.20"},
        {"name": "v1b", "host": "h1", "ip": "10.0.1.21"},
        {"name": "v2", "host": "h2", "ip": "10.0.1.50"},
    ],
    "endpoints": [{"name": "mgmt", "ip": "10.0.2.5", "subnet": "mgmt-subnet"}],
}


def base(**nested) -> dict:
    spec = copy.deepcopy(BASE)
    spec["nested"].update(nested)
    if nested.get("guest_style") == "subnet":
        spec["nested"]["pool"] = "10.0.1.128/25"
        for h, blk in zip(spec["hosts"], ("10.0.1.128/28", "10.0.1.160/28")):
            h["block"] = blk
        for v, ip in zip(spec["vms"], ("10.0.1.130", "10.0.1.131", "10.0.1.162")):
            v["ip"] = ip
    return spec


@pytest.fixture
def make_plan(tmp_path: Path) -> Callable[[dict], Plan]:
    return lambda spec: write_plan(tmp_path, spec)
