"""Lab fixtures: every lab a test brings up has a unique name and is always brought down."""

from __future__ import annotations

import copy
import itertools
import os
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml

from nestnet import lab
from nestnet.plan import Plan, load_plan

SEED = {
    "version": 1,
    "name": "seed",
    "azure": {
        "resource_group": "rg",
        "vnet": "vnet",
        "address_space": ["10.0.0.0/16"],
        "route_table": "rt",
    },
    "subnets": [
        {"name": "vm-subnet", "prefix": "10.0.1.0/24"},
        {"name": "mgmt-subnet", "prefix": "10.0.2.0/24"},
    ],
    "nested": {"mode": "routed", "pool": "10.0.1.0/24", "block_prefix_len": 28, "guest_style": "onlink"},
    "host_defaults": {"uplink": "eth1"},
    "hosts": [
        {"name": "hosta", "ip": "10.0.1.10", "block": "10.0.1.16/28"},
        {"name": "hostb", "ip": "10.0.1.11", "block": "10.0.1.48/28"},
    ],
    "vms": [
        {"name": "vma", "host": "hosta", "ip": "10.0.1.20"},
        {"name": "vmb", "host": "hostb", "ip": "10.0.1.50"},
    ],
    "endpoints": [{"name": "mgmt", "ip": "10.0.2.5", "subnet": "mgmt-subnet"}],
}

_seq = itertools.count()


def seed() -> dict:
    return copy.deepcopy(SEED)


def unique_name() -> str:
    # pid keeps parallel workers (xdist) and concurrent runs apart; <= 24 chars
    return f"t{os.getpid()}-{next(_seq)}"


def plan_of(tmp_path: Path, spec: dict) -> Plan:
    spec = {**spec, "name": unique_name()}
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return load_plan(path)


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[Callable[[dict], Plan]]:
    """``make_lab(spec_dict)`` brings a lab up; every one is brought down at the end, pass or fail."""
    made: list[Plan] = []

    def make(spec: dict, **kw) -> Plan:
        plan = plan_of(tmp_path, spec)
        made.append(plan)
        lab.up(plan, **kw)
        return plan

    try:
        yield make
    finally:
        for plan in made:
            lab.down(plan)


def red(plan: Plan) -> set[tuple[str, str]]:
    return {(p.src, p.dst) for p in lab.matrix(plan) if not p.ok}
