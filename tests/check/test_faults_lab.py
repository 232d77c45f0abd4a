"""Each fault, one at a time on a lab that stays up: the model's failing pairs are exactly the
lab's, and every failed pair's reason names the broken thing (host, its NIC, or the subnet)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nestnet.faults import FAULT_KINDS, Fault
from nestnet.model import apply_fault, from_plan
from nestnet.model.classes import reachability

from .conftest import base
from .fabrics import write_plan

lab = pytest.importorskip("nestnet.lab", reason="the lab (nestnet.lab) has not landed")

pytestmark = [pytest.mark.root, pytest.mark.slow]


def faults_for(plan) -> list[Fault]:
    return [
        Fault(kind, target)
        for kind, (what, _) in sorted(FAULT_KINDS.items())
        for target in (("h1",) if what == "host" else ("vm-subnet", "mgmt-subnet"))
    ]


def names_broken_thing(plan, fault: Fault, reason: str) -> bool:
    if fault.target in plan.hosts:
        return fault.target in reason or plan.hosts[fault.target].nic in reason
    return fault.target in reason


@pytest.mark.parametrize("style", ["onlink", "subnet", "nic-prefix"])
def test_each_fault_fails_exactly_the_pairs_the_lab_fails(tmp_path: Path, style: str) -> None:
    """nic-prefix: each host's block is its NIC's /28 prefix (blocks in the hosts' subnet, as the
    subnet style's); a missing prefix configuration is one of the faults."""
    spec = base(guest_style="subnet" if style != "onlink" else "onlink")
    if style == "nic-prefix":
        spec["nested"].update(guest_style="onlink", mode="nic-prefix")
    spec["name"] = f"ckf{os.getpid() % 10000}-{style[0]}"
    plan = write_plan(tmp_path, spec)
    healthy = from_plan(plan)
    report = []
    try:
        lab.up(plan)
        assert all(p.ok for p in lab.matrix(plan)), "the healthy lab is not all green"
        for fault in faults_for(plan):
            lab.apply_fault(plan, fault)
            real = {(p.src, p.dst) for p in lab.matrix(plan) if not p.ok}
            lab.heal(plan)
            failed = list(reachability(apply_fault(healthy, fault)).pairs())
            model = {(p.src, p.dst) for p in failed}
            report.append(f"{fault}: {len(real)} failed pairs")
            assert model == real, f"{fault}: model only {sorted(model - real)}, lab only {sorted(real - model)}"
            for p in failed:
                assert names_broken_thing(plan, fault, p.reason), f"{fault}: {p.reason}"
    finally:
        lab.down(plan)
    print("\n".join(report))
