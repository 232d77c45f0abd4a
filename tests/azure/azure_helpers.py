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

from core.specs import SEED  # noqa: E402 - the seed fabric as data, shared by the test areas


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


