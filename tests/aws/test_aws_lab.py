"""examples/aws.yaml in the lab (issue 25): `lab demo --cloud aws` in the prefix and routed modes,
and one lab that stays up per mode under every fault kind an AWS plan of that mode takes (AWS's
own: src-dst-check-on, no-eni-prefix, no-route, route-blackhole, main-route-table; and the host
kinds), one at a time: the lab's failing pairs are exactly the model's (`lab fault` on an AWS lab
once died with "State has no attribute azure")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import count
from pathlib import Path

import pytest

from nestnet.clouds.aws.lab import example_plan
from nestnet.errors import UsageError
from nestnet.faults import fault_kinds, parse_fault
from nestnet.model import apply_fault, from_plan
from nestnet.model.classes import reachability

pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root and network namespaces")]
MODES = ("prefix", "routed")
_seq = count()


def _name(tag: str) -> str:
    return f"aw{os.getpid() % 100000}-{tag}{next(_seq)}"


@pytest.mark.parametrize("mode", MODES)
def test_lab_demo_on_the_aws_example_passes(mode: str) -> None:
    r = subprocess.run([sys.executable, "-m", "nestnet", "lab", "demo", "--cloud", "aws", "--mode", mode, "--json",
                        "--name", _name("d")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    d = json.loads(r.stdout)
    assert len(d["pairs"]) == 25 and all(p["ok"] for p in d["pairs"]) and d["check_agrees"] is True


@pytest.mark.parametrize("mode", MODES)
def test_each_fault_fails_exactly_the_pairs_the_model_fails(mode: str) -> None:
    from nestnet import lab

    plan = example_plan(mode, _name("f"))
    texts = [f"{kind}:{target}" for kind, (what, _) in sorted(fault_kinds("aws").items())
             for target in ((next(iter(plan.hosts)),) if what == "host" else tuple(plan.subnets))]
    faults, refused = [], []
    for text in texts:
        try:
            faults.append(parse_fault(text, plan))
        except UsageError:  # a kind that means nothing in this mode
            refused.append(text.split(":")[0])
    assert sorted(set(refused)) == {"prefix": ["main-route-table", "no-route", "route-blackhole"],
                                    "routed": ["no-eni-prefix"]}[mode]
    healthy = from_plan(plan)
    try:
        lab.up(plan)
        assert all(p.ok for p in lab.matrix(plan)), "the healthy AWS lab is not all green"
        broke = 0
        for fault in faults:
            lab.apply_fault(plan, fault)
            real = {(p.src, p.dst) for p in lab.matrix(plan) if not p.ok}
            lab.heal(plan)
            model = {(p.src, p.dst) for p in reachability(apply_fault(healthy, fault)).pairs()}
            assert model == real, f"{mode} {fault}: model only {sorted(model - real)}, lab only {sorted(real - model)}"
            broke += bool(real)
        assert broke, "no fault broke anything: the comparison proves nothing"
    finally:
        lab.down(plan)


def _internet_plan(mode: str, internet: dict[str, str], public: list[str]):
    import yaml

    from nestnet.clouds.aws.lab import example_spec
    from nestnet.plan import load_source
    from nestnet.spec import SpecSource

    data = example_spec(mode, _name("i"))
    data["aws"]["internet"] = internet
    data["aws"]["public_ips"] = public
    text = yaml.safe_dump(data, sort_keys=False)
    return load_source(SpecSource(Path(f"/nonexistent/aws-inet-{mode}.yaml"), text), write=False).plan


# (aws.internet, aws.public_ips, the internet pairs that fail): every way a subnet reaches the
# internet, a host's and an endpoint's public IP
INTERNETS = [
    ({"vm-subnet": "internet-gateway"}, ["vme-kvm-vm1"], {"vme-kvm-vm2", "web2", "mgmt-vm"}),
    ({"vm-subnet": "nat-gateway", "mgmt-subnet": "internet-gateway"}, ["mgmt-vm"], set()),
    ({"mgmt-subnet": "internet-gateway"}, ["vme-kvm-vm2"], {"vme-kvm-vm1", "vme-kvm-vm2", "web1", "web2", "mgmt-vm"}),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("internet,public,cut", INTERNETS)
def test_the_labs_internet_is_ec2s(mode: str, internet: dict[str, str], public: list[str], cut: set[str]) -> None:
    """The lab's internet pairs are the model's, as EC2 has them (docs/decisions/0031): behind an
    internet gateway only a primary address with a public IP gets out (web1, masqueraded to
    vme-kvm-vm1's, too; no longer once vme-kvm-vm1 stops masquerading: its public IP is not on
    web1's address), behind a NAT gateway every ENI's own address, with neither nobody. Once up,
    programming the fabric again changes nothing."""
    from nestnet import clouds, lab
    from nestnet.lab.topology import Topology
    from nestnet.model.state import CloudState

    plan = _internet_plan(mode, internet, public)
    healthy = from_plan(plan)
    want = {(p.src, p.dst) for p in reachability(healthy).pairs()}
    assert want == {(n, "internet") for n in cut}, "the model's internet is not the one this test means"
    try:
        lab.up(plan)
        real = {(p.src, p.dst) for p in lab.matrix(plan) if not p.ok}
        assert real == want, f"model only {sorted(want - real)}, lab only {sorted(real - want)}"
        assert not clouds.of(plan).lab_fabric().program_ns(Topology.from_plan(plan), CloudState.from_plan(plan))
        fault = parse_fault("no-masquerade:vme-kvm-vm1", plan)
        lab.apply_fault(plan, fault)
        real = {(p.src, p.dst) for p in lab.matrix(plan) if not p.ok}
        lab.heal(plan)
        model = {(p.src, p.dst) for p in reachability(apply_fault(healthy, fault)).pairs()}
        assert real == model, f"model only {sorted(model - real)}, lab only {sorted(real - model)}"
        if "vme-kvm-vm1" in public:
            assert ("web1", "internet") in model - want
    finally:
        lab.down(plan)
