"""OVS bridges (bridge_type: ovs), on a private Open vSwitch run inside the test namespace
(the ``ovs`` fixture in conftest.py)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from nestnet import host

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not shutil.which("ovs-vswitchd"), reason="Open vSwitch is not installed"),
]


def test_ovs_bridge_apply_idempotent_remove(ns, ovs, make_plan, root):
    n = ns()
    ovs(n.name)
    plan = make_plan(bridge_type="ovs")
    changes = n.run(host.apply, plan, "h0", root)
    assert "link add nestbr0" in [f"{c.kind} {c.op} {c.key}" for c in changes]
    assert "nestbr0" in subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split()
    assert "10.0.1.16/28 dev nestbr0 proto 201" in n.sh("ip", "-N", "route").stdout.replace("  ", " ")
    from nestnet.host import observe

    assert n.run(observe.links)["nestbr0"].mac == "02:6e:0a:00:01:0a"
    assert n.run(host.apply, plan, "h0", root) == []
    n.run(host.remove, plan, "h0", root)
    assert "nestbr0" not in subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split()
    assert "proto 201" not in n.sh("ip", "-N", "route").stdout
