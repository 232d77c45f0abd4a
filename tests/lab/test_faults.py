"""Each fault of the shared vocabulary turns exactly the expected pairs red; heal turns them green."""

from __future__ import annotations

from pathlib import Path

import pytest

from nestnet import lab
from nestnet.faults import parse_fault
from nestnet.netns import run_in
from nestnet.lab.sysio import read_sysctl
from nestnet.lab.topology import Topology

from .conftest import plan_of, red, seed

pytestmark = pytest.mark.root

# Pairs through hostb's NIC that carry a nested address: hostb's VM and the other nodes.
ACROSS_B = {
    ("hosta", "vmb"), ("vma", "vmb"), ("mgmt", "vmb"),
    ("vmb", "hosta"), ("vmb", "vma"), ("vmb", "mgmt"),
}
EXPECTED = {
    "nic-forwarding-off:hostb": ACROSS_B,
    "no-user-route:hostb": ACROSS_B,
    "no-nic-prefix:hostb": set(),  # routed mode puts no prefix on a NIC (tests/lab/test_nic_prefix.py)
    "no-route-table:mgmt-subnet": {("mgmt", "vma"), ("mgmt", "vmb"), ("vma", "mgmt"), ("vmb", "mgmt")},
    # Azure routes by destination IP whatever the host's next hop: without the table nothing
    # leaving vm-subnet reaches a nested block; mgmt-subnet keeps the table, so mgmt still works.
    "no-route-table:vm-subnet": {
        ("hosta", "vmb"), ("hostb", "vma"), ("vma", "vmb"), ("vmb", "vma"), ("vma", "hostb"), ("vmb", "hosta"),
    },
    # hostb no longer routes: its VM is cut off from everything but hostb itself
    "ip-forward-off:hostb": ACROSS_B | {("vmb", "internet")},
    "firewall-deny-routed:hostb": ACROSS_B | {("vmb", "internet")},
    # its own block's route is gone too: not even hostb reaches vmb
    "no-host-routes:hostb": ACROSS_B | {("vmb", "internet"), ("hostb", "vmb"), ("vmb", "hostb")},
    "no-masquerade:hostb": {("vmb", "internet")},
    # symmetric routes: strict rp_filter changes nothing; onlink guests need no proxy ARP
    "rp-filter-strict:hostb": set(),
    "no-proxy-arp:hostb": set(),
}


@pytest.fixture(scope="module")
def seed_lab(tmp_path_factory):
    plan = plan_of(Path(tmp_path_factory.mktemp("faults")), seed())
    try:
        lab.up(plan)
        yield plan
    finally:
        lab.down(plan)


def test_every_fault_kind_is_covered():
    from nestnet.faults import FAULT_KINDS

    assert {k.split(":")[0] for k in EXPECTED} == set(FAULT_KINDS)


@pytest.mark.parametrize("text", sorted(EXPECTED))
def test_fault_turns_exactly_the_expected_pairs_red_and_heal_restores(seed_lab, text):
    plan = seed_lab
    assert red(plan) == set()
    fault = parse_fault(text, plan)
    lab.apply_fault(plan, fault)
    try:
        assert lab.read_faults(plan.name) == (fault,)
        assert red(plan) == EXPECTED[text]
    finally:
        assert lab.heal(plan) == (fault,)
    assert red(plan) == set()
    assert lab.read_faults(plan.name) == ()


def test_harmless_faults_really_change_the_host(seed_lab):
    plan = seed_lab
    ns = Topology.from_plan(plan).ns("hostb")
    lab.apply_fault(plan, parse_fault("rp-filter-strict:hostb", plan))
    lab.apply_fault(plan, parse_fault("no-proxy-arp:hostb", plan))
    try:
        bridge = plan.hosts["hostb"].bridge
        assert run_in(ns, read_sysctl, "net.ipv4.conf.all.rp_filter") == "1"
        assert run_in(ns, read_sysctl, f"net.ipv4.conf.{bridge}.proxy_arp") == "0"
    finally:
        lab.heal(plan)
    assert run_in(ns, read_sysctl, "net.ipv4.conf.all.rp_filter") == "2"


def test_up_with_faults(tmp_path):
    plan = plan_of(tmp_path, seed())
    try:
        lab.up(plan, (parse_fault("no-masquerade:hosta", plan),))
        assert red(plan) == {("vma", "internet")}
    finally:
        lab.down(plan)


def test_every_fault_at_once_heals_in_one_step(seed_lab):
    plan = seed_lab
    for text in EXPECTED:
        lab.apply_fault(plan, parse_fault(text, plan))
    assert len(lab.read_faults(plan.name)) == len(EXPECTED)
    assert red(plan) >= set().union(*EXPECTED.values())
    assert len(lab.heal(plan)) == len(EXPECTED)
    assert red(plan) == set()
