"""The lab's fabric programmed from the emulator's state: `azure apply` is what turns pings green."""

from __future__ import annotations

import os

import pytest

from azure_helpers import seed_spec
from nestnet import lab
from nestnet.azure.labstate import fabric_state_from_emulator
from nestnet.azure.reconcile import reconcile
from nestnet.lab import fabric
from nestnet.lab.topology import Topology

pytestmark = pytest.mark.root


def red(plan):
    return {(p.src, p.dst) for p in lab.matrix(plan) if not p.ok}


def test_apply_against_the_emulator_makes_the_lab_green(emulator, plan_of):
    spec = seed_spec()
    spec["name"] = f"az{os.getpid()}"
    plan = plan_of(spec)
    ep = emulator(plan)
    lab.up(plan)
    try:
        topo = Topology.from_plan(plan)
        # Azure as Terraform left it: no routes, no associations, forwarding off.
        fabric.program_ns(topo, fabric_state_from_emulator(ep.arm.state_dir, plan))
        broken = red(plan)
        assert ("web1", "web2") in broken and ("mgmt-vm", "web1") in broken
        reconcile(ep.client(plan), plan)
        assert fabric.program_ns(topo, fabric_state_from_emulator(ep.arm.state_dir, plan))
        assert red(plan) == set()
    finally:
        lab.down(plan)
