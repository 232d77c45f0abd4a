"""Helpers for the azure tests: spec builders and a handle on an emulated ARM endpoint."""

from __future__ import annotations

import copy
import json
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nestnet.azure.arm import ArmClient, ArmSettings
from nestnet.azure.emulator import DEFAULT_SUBSCRIPTION, Arm, Emulator
from nestnet.plan import Plan

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


def seed_spec() -> dict:
    return copy.deepcopy(SEED)


def fabric_spec(n_hosts: int, **azure: Any) -> dict:
    """A routed fabric of ``n_hosts`` hosts in one subnet, /28 blocks from 10.1.0.0/16."""
    return {
        "version": 1,
        "name": "big",
        "azure": {"resource_group": "rg", "location": "westeurope", "vnet": "vnet",
                  "address_space": ["10.0.0.0/8"], "route_table": "rt", "max_routes": 400, **azure},
        "subnets": [{"name": "hosts", "prefix": "10.0.0.0/16"}, {"name": "mgmt", "prefix": "10.2.0.0/24"}],
        "nested": {"pool": "10.1.0.0/16", "block_prefix_len": 28},
        "hosts": [{"name": f"h{i}", "ip": f"10.0.{i // 250}.{i % 250 + 4}", "nic": f"h{i}-nic"} for i in range(n_hosts)],
    }


def write_spec(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class Endpoint:
    arm: Arm
    emulator: Emulator
    url: str
    ca: str

    def settings(self, plan: Plan) -> ArmSettings:
        return ArmSettings(self.url, plan.azure.subscription_id or DEFAULT_SUBSCRIPTION,
                           plan.azure.resource_group, self.ca, "test-token")

    def client(self, plan: Plan) -> ArmClient:
        return ArmClient(self.settings(plan))

    def stats(self) -> dict[str, int]:
        """Read over HTTPS, as any user of the emulator would."""
        ctx = ssl.create_default_context(cafile=self.ca)
        with urllib.request.urlopen(f"{self.url}/_emulator/stats", context=ctx, timeout=10) as r:
            return json.loads(r.read())

    def sdk(self, plan: Plan) -> Any:
        """The plain azure-mgmt-network client, for reading back what nestnet did."""
        return self.client(plan).sdk


