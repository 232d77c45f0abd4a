"""Spec builders for tests: the seed fabric as data, mutated per case."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

SEED = {
    "version": 1,
    "name": "hpe-vme-test",
    "azure": {
        "resource_group": "rg-hpe-vme-test",
        "location": "eastus",
        "vnet": "vme-vnet",
        "address_space": ["10.0.0.0/16"],
        "route_table": "vme-kvm-nested-vm-routes",
    },
    "subnets": [
        {"name": "vm-subnet", "prefix": "10.0.1.0/24"},
        {"name": "mgmt-subnet", "prefix": "10.0.2.0/24"},
    ],
    "nested": {"mode": "routed", "pool": "10.0.1.0/24", "block_prefix_len": 28, "guest_style": "onlink"},
    "host_defaults": {"uplink": "eth1"},
    "hosts": [
        {"name": "vme-kvm-vm1", "ip": "10.0.1.10", "nic": "vme-kvm-vm1-vm-nic", "block": "10.0.1.16/28"},
        {"name": "vme-kvm-vm2", "ip": "10.0.1.11", "nic": "vme-kvm-vm2-vm-nic", "block": "10.0.1.48/28"},
    ],
    "vms": [
        {"name": "web1", "host": "vme-kvm-vm1", "ip": "10.0.1.20"},
        {"name": "web2", "host": "vme-kvm-vm2", "ip": "10.0.1.50"},
    ],
    "endpoints": [{"name": "mgmt-vm", "ip": "10.0.2.5", "subnet": "mgmt-subnet"}],
}


def seed() -> dict:
    return copy.deepcopy(SEED)


def write(tmp: Path, data: dict | str, name: str = "spec.yaml") -> Path:
    p = tmp / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return p


def fabric(n_hosts: int, vms_per_host: int = 0, *, name: str = "big", plen: int = 28, pool: str = "10.1.0.0/16") -> dict:
    """A large routed fabric: hosts in 10.0.0.0/16 (one subnet), blocks from ``pool``."""
    hosts = [{"name": f"h{i}", "ip": f"10.0.{i // 250}.{i % 250 + 4}"} for i in range(n_hosts)]
    vms = [{"name": f"h{i}-v{j}", "host": f"h{i}"} for i in range(n_hosts) for j in range(vms_per_host)]
    return {
        "version": 1,
        "name": name,
        "azure": {
            "resource_group": "rg",
            "vnet": "vnet",
            "address_space": ["10.0.0.0/8"],
            "route_table": "rt",
            "max_routes": 1000,
        },
        "subnets": [{"name": "hosts", "prefix": "10.0.0.0/16"}],
        "nested": {"pool": pool, "block_prefix_len": plen},
        "hosts": hosts,
        "vms": vms,
    }
