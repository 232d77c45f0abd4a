"""OVS bridges (bridge_type: ovs), on a private Open vSwitch run inside the test namespace
(userspace datapath: there is no OVS kernel module here). Its processes are ended by PID."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from nestnet import host

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not shutil.which("ovs-vswitchd"), reason="Open vSwitch is not installed"),
]


@pytest.fixture
def ovs(tmp_path, monkeypatch):
    """Yield a function that starts ovsdb-server + ovs-vswitchd inside a namespace."""
    procs: list[subprocess.Popen] = []
    run = tmp_path / "ovs"
    run.mkdir()

    def start(ns_name: str) -> None:
        subprocess.run(["ovsdb-tool", "create", str(run / "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema"], check=True)
        env = {**os.environ, "OVS_RUNDIR": str(run), "OVS_LOGDIR": str(run), "OVS_DBDIR": str(run)}
        sock = run / "db.sock"
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", ns_name, "ovsdb-server", str(run / "conf.db"), f"--remote=punix:{sock}",
             f"--unixctl={run / 'ovsdb.ctl'}", f"--log-file={run / 'ovsdb.log'}"], env=env, stderr=subprocess.DEVNULL))
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.02)
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", ns_name, "ovs-vswitchd", f"unix:{sock}", f"--unixctl={run / 'vswitchd.ctl'}",
             f"--log-file={run / 'vswitchd.log'}"], env=env, stderr=subprocess.DEVNULL))
        monkeypatch.setenv("OVS_RUNDIR", str(run))  # ovs-vsctl (ours and nestnet's) finds this db
        subprocess.run(["ovs-vsctl", "--timeout=10", "init"], check=True)

    try:
        yield start
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


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
