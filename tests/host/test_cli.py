"""`nestnet host ...` end to end, run inside a test namespace: the issue's 'done when'."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

SEED = Path(__file__).parents[2] / "examples" / "seed.yaml"
NESTNET = str(Path(sys.executable).with_name("nestnet"))


def test_seed_through_the_cli(ns, root):
    n = ns()
    n.sh("ip", "route", "add", "10.0.2.0/24", "via", "10.0.1.1")  # a foreign route
    r = n.sh(NESTNET, "host", "diff", str(SEED), "--root", str(root), "--json", check=False)
    assert r.returncode == 1 and json.loads(r.stdout)["changes"], r.stderr  # changes pending: 1, as azure diff
    r = n.sh(NESTNET, "host", "apply", str(SEED), "--host", "vme-kvm-vm1", "--root", str(root), "--json")
    changes = json.loads(r.stdout)["changes"]
    assert {"kind": "route", "op": "add", "key": "10.0.1.48/28", "detail": "via 10.0.1.11 dev eth1 proto nestnet"} in changes
    assert "10.0.1.48/28 via 10.0.1.11 dev eth1 proto 201" in n.sh("ip", "-N", "route").stdout
    assert json.loads(n.sh(NESTNET, "host", "diff", str(SEED), "--root", str(root), "--json").stdout)["changes"] == []
    r = n.sh(NESTNET, "host", "remove", str(SEED), "--root", str(root), "--dry-run", "--json")
    assert json.loads(r.stdout)["changes"] and "proto 201" in n.sh("ip", "-N", "route").stdout  # dry run: nothing
    n.sh(NESTNET, "host", "remove", str(SEED), "--root", str(root))
    routes = n.sh("ip", "-N", "route").stdout
    assert "proto 201" not in routes and "10.0.2.0/24 via 10.0.1.1" in routes
    assert [p for p in root.rglob("*") if p.is_file()] == [root / "run/nestnet/host.lock"]  # the runtime lock stays


def test_errors_are_one_line(ns, root):
    n = ns.bare()
    r = n.sh(NESTNET, "host", "diff", str(SEED), "--root", str(root), check=False)
    assert r.returncode == 2  # the user must say which host: bad input, as for doctor
    assert r.stderr.strip().splitlines()[-1] == (
        f"error: none of the hosts of {SEED} has its IP on a local interface; pass --host NAME"
    )
    r = n.sh(NESTNET, "host", "diff", str(SEED), "--host", "vme-kvm-vm1", "--root", str(root), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == "error: host vme-kvm-vm1: uplink 'eth1' does not exist here (hosts[].uplink in the spec)"
