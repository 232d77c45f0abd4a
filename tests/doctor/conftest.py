"""Doctor fixtures: small fabrics as spec dicts, written to tmp files; labs with unique names."""

from __future__ import annotations

import copy
import itertools
import os
from pathlib import Path

import yaml

from nestnet.plan import Plan, load_plan

# The seed fabric (examples/seed.yaml) with a second VM on h1, so h1's VMs also talk to each other.
SPEC = {
    "version": 1,
    "name": "doc",
    "azure": {"resource_group": "rg", "vnet": "vnet", "address_space": ["10.0.0.0/16"], "route_table": "rt"},
    "subnets": [{"name": "vm-subnet", "prefix": "10.0.1.0/24"}, {"name": "mgmt-subnet", "prefix": "10.0.2.0/24"}],
    "nested": {"mode": "routed", "pool": "10.0.1.128/25", "block_prefix_len": 28, "guest_style": "onlink",
               "egress": "masquerade-outside-vnet"},
    "host_defaults": {"uplink": "eth1"},
    "hosts": [
        {"name": "h1", "ip": "10.0.1.10", "nic": "h1-nic", "block": "10.0.1.128/28"},
        {"name": "h2", "ip": "10.0.1.11", "nic": "h2-nic", "block": "10.0.1.160/28"},
    ],
    "vms": [
        {"name": "v1", "host": "h1", "ip": "10.0.1.130"},
        {"name": "v1b", "host": "h1", "ip": "10.0.1.131"},
        {"name": "v2", "host": "h2", "ip": "10.0.1.162"},
    ],
    "endpoints": [{"name": "mgmt", "ip": "10.0.2.5", "subnet": "mgmt-subnet"}],
}

_seq = itertools.count()


def spec(guest_style: str = "onlink") -> dict:
    s = copy.deepcopy(SPEC)
    s["nested"]["guest_style"] = guest_style
    # unique per test process and call: the name names the lab's namespaces
    s["name"] = f"doc{os.getpid() % 100000}-{next(_seq)}{guest_style[0]}"
    return s


def write(tmp: Path, s: dict) -> tuple[Path, Plan]:
    path = tmp / f"{s['name']}.yaml"
    path.write_text(yaml.safe_dump(s, sort_keys=False))
    return path, load_plan(str(path), write=False)
