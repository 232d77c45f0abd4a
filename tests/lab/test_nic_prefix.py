"""nic-prefix mode in the lab (docs/decisions/0028): Azure delivers each host's /28 to its NIC and
lets it send from it; without the prefix configuration the block is nobody's."""

from __future__ import annotations

import pytest

from nestnet import lab
from nestnet.faults import Fault
from nestnet.clouds.azure import sdn
from nestnet.lab.topology import Topology
from nestnet.model import apply_fault, from_plan
from nestnet.model.classes import reachability

from .conftest import red, seed

pytestmark = pytest.mark.root


def prefix_seed() -> dict:
    spec = seed()
    spec["nested"]["mode"] = "nic-prefix"
    return spec


def test_every_pair_is_green_and_a_missing_prefix_cuts_exactly_what_check_says(make_lab):
    plan = make_lab(prefix_seed())
    assert plan.azure.nic_prefixes and not plan.azure.routes and not plan.azure.nic_ip_forwarding
    assert red(plan) == set()
    topo = Topology.from_plan(plan)
    assert not sdn.program_ns(topo, lab.CloudState.from_plan(plan))  # programmed once: nothing left to do
    fault = Fault("no-nic-prefix", "hostb")
    lab.apply_fault(plan, fault)
    try:
        broken = red(plan)
        model = {(p.src, p.dst) for p in reachability(apply_fault(from_plan(plan), fault)).pairs()}
        assert broken == model
        # hostb's VM is cut off from everything beyond its host, and its internet too: Azure no
        # longer owns its address for hostb's NIC
        assert {("hosta", "vmb"), ("vma", "vmb"), ("mgmt", "vmb"), ("vmb", "hosta"), ("vmb", "mgmt")} <= broken
        assert not any("vma" in p and "vmb" not in p for p in broken)
    finally:
        lab.heal(plan)
    assert red(plan) == set()
