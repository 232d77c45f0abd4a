"""Golden cases: tests/core/golden/<case>/spec.yaml -> expected plan JSON and guest configs.

Regenerate after an intended change with NESTNET_REGEN=1, then review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from nestnet.guest import FORMATS, render
from nestnet.plan import load

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "spec.yaml").exists())


def _compare(path: Path, actual: str) -> None:
    if os.environ.get("NESTNET_REGEN"):
        path.write_text(actual)
    assert path.exists(), f"{path} missing: run with NESTNET_REGEN=1 and review"
    assert actual == path.read_text(), f"{path} differs"


@pytest.mark.parametrize("case", CASES)
def test_plan_json(case, tmp_path):
    spec = tmp_path / "spec.yaml"
    shutil.copy(GOLDEN / case / "spec.yaml", spec)
    plan = load(spec).plan
    d = plan.to_dict()
    for w in d["warnings"]:
        w["file"] = "spec.yaml"
    _compare(GOLDEN / case / "expected-plan.json", json.dumps(d, indent=2) + "\n")
    _compare(GOLDEN / case / "expected.lock", (tmp_path / "spec.lock").read_text())
    for vm in list(plan.vms)[:2]:
        for fmt in FORMATS:
            _compare(GOLDEN / case / f"expected-{vm}.{fmt}", render(plan, vm, fmt))


@pytest.mark.parametrize("case", CASES)
def test_plan_json_text_equals_the_dict(case, tmp_path):
    """`plan --json` prints Plan.to_json(): the same text json.dumps gives for to_dict()."""
    spec = tmp_path / "spec.yaml"
    shutil.copy(GOLDEN / case / "spec.yaml", spec)
    plan = load(spec).plan
    assert plan.to_json() == json.dumps(plan.to_dict())


def test_plan_json_text_two_subnets_and_bridges(tmp_path):
    import yaml

    from .specs import fabric

    d = fabric(40, 1)
    d["subnets"].append({"name": "other", "prefix": "10.2.0.0/24"})
    for i, h in enumerate(d["hosts"][:12]):
        h["ip"] = f"10.2.0.{i + 10}"
    d["hosts"][3].update(bridge="br-x", bridge_has_uplink=True, uplink="eth9")
    spec = tmp_path / "big.yaml"
    spec.write_text(yaml.safe_dump(d))
    plan = load(spec).plan
    assert {h.subnet for h in plan.hosts.values()} == {"hosts", "other"}
    assert plan.to_json() == json.dumps(plan.to_dict())


def test_a_vms_json_text_equals_its_dict():
    """VM.json_text (the fast path of plan --json) is json.dumps(VM.to_dict()) for any VM."""
    import random
    from ipaddress import IPv4Address

    from nestnet.plan import VM, Expose, Forward

    rnd = random.Random(24)
    parts: dict = {}  # shared across VMs, as plan --json shares it
    words = ["web1", "h0-v10", "é-ünïcode", 'q"uote\\', "a b", ""]
    ips = [IPv4Address(rnd.getrandbits(32)) for _ in range(3)]
    for _ in range(300):
        vm = VM(
            name=rnd.choice(words), host=rnd.choice(words), ip=IPv4Address(rnd.getrandbits(32)),
            prefix_len=rnd.choice([32, 24, 0]), gateway=rnd.choice(ips),
            guest_style=rnd.choice(["onlink", "subnet", "shared"]), mac=rnd.choice(words),
            nameservers=tuple(rnd.choice(ips) for _ in range(rnd.randint(0, 2))),
            search=tuple(rnd.choice(words) for _ in range(rnd.randint(0, 2))),
            forwards=(Forward(80, 8080),) if rnd.random() < 0.2 else (),
            exposes=(Expose(443, 8443, "udp"),) if rnd.random() < 0.2 else (),
        )
        assert vm.json_text() == vm.json_text(str, parts) == json.dumps(vm.to_dict())
