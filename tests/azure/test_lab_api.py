"""The lab's fabric programmed from the emulator's state: `azure apply` is what turns pings green."""

from __future__ import annotations

import os

import pytest

from azure_helpers import seed_spec
from nestnet import lab
from nestnet.clouds.azure.reconcile import reconcile
from nestnet.clouds.azure import sdn
from nestnet.clouds.azure.lab import from_emulator
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
        sdn.program_ns(topo, from_emulator(ep.arm.state_dir, plan))
        broken = red(plan)
        assert ("web1", "web2") in broken and ("mgmt-vm", "web1") in broken
        reconcile(ep.client(plan), plan)
        assert sdn.program_ns(topo, from_emulator(ep.arm.state_dir, plan))
        assert red(plan) == set()
    finally:
        lab.down(plan)


def test_emulator_process_programs_the_lab_on_every_write(plan_of, tmp_path):
    """What `nestnet lab up SPEC --azure api` runs: the emulator process follows the lab."""
    import signal
    import subprocess
    import sys
    import time

    from azure_helpers import write_spec
    from nestnet.clouds.azure.emulator import DEFAULT_SUBSCRIPTION

    spec = seed_spec()
    spec["name"] = f"azp{os.getpid()}"
    path = write_spec(tmp_path / "lab.yaml", spec)
    plan = plan_of(spec, name="lab.yaml")
    state = tmp_path / "arm"
    lab.up(plan)
    proc = None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nestnet", "azure", "emulator", "--listen", "127.0.0.1:0",
             "--state-dir", str(state), "--seed", str(path), "--program-lab"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not (state / "endpoint").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        assert ("web1", "web2") in red(plan)
        env = {**os.environ, "NESTNET_ARM_ENDPOINT": (state / "endpoint").read_text().strip(),
               "NESTNET_ARM_CA_BUNDLE": str(state / "ca.pem"), "NESTNET_ARM_TOKEN": "lab",
               "AZURE_SUBSCRIPTION_ID": DEFAULT_SUBSCRIPTION}
        r = subprocess.run([sys.executable, "-m", "nestnet", "azure", "apply", str(path)],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        assert red(plan) == set()
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        lab.down(plan)


def test_lab_up_azure_api_runs_arm_on_the_lab_internet(tmp_path):
    """`nestnet lab up SPEC --azure api`: ARM (the emulator) lives in the lab's internet; a lab host
    runs `nestnet azure apply` against it through the fabric, and that is what turns pings green."""
    import json
    import subprocess
    import sys

    from azure_helpers import write_spec
    from nestnet.lab.core import arm_env
    from nestnet.netns import list_names
    from nestnet.plan import load_plan

    spec = seed_spec()
    spec["name"] = f"azapi{os.getpid()}"
    path = write_spec(tmp_path / "lab.yaml", spec)

    def nestnet(*args):
        return subprocess.run([sys.executable, "-m", "nestnet", *args], capture_output=True, text=True, timeout=120)

    def red():
        r = nestnet("lab", "matrix", str(path), "--json")
        return {(p["src"], p["dst"]) for p in json.loads(r.stdout)["pairs"] if not p["ok"]}

    r = nestnet("lab", "up", str(path), "--azure", "api")
    try:
        assert r.returncode == 0, r.stderr
        assert "nestnet azure apply" in r.stderr and "https://203.0.113.10:443" in r.stderr
        assert {("web1", "web2"), ("mgmt-vm", "web1")} <= red()  # Azure as Terraform left it
        hint = [ln for ln in r.stderr.splitlines() if "nestnet azure apply" in ln]
        assert hint == [f"  nestnet lab exec {path} vme-kvm-vm1 -- nestnet azure apply {path}"]
        # lab exec on a host sets the lab's ARM environment itself: no env to copy.
        r = nestnet("lab", "exec", str(path), "vme-kvm-vm1", "--",
                    sys.executable, "-m", "nestnet", "azure", "apply", str(path))
        assert r.returncode == 0, r.stderr + r.stdout
        assert red() == set()
        r = nestnet("lab", "exec", str(path), "vme-kvm-vm2", "--",
                    sys.executable, "-m", "nestnet", "azure", "diff", str(path), "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["changes"] == []
        env = arm_env(load_plan(path, write=False))
        r = nestnet("lab", "exec", str(path), "vme-kvm-vm2", "--", "printenv", "NESTNET_ARM_ENDPOINT")
        assert r.stdout.strip() == env["NESTNET_ARM_ENDPOINT"] == "https://203.0.113.10:443"
    finally:
        nestnet("lab", "down", str(path))
    assert not [n for n in list_names() if spec["name"] in n]
