"""lab migrate with libvirt guests (issue 22): ``virsh migrate --live`` between two booted hosts
over the lab's fabric, nestnet's qemu hook (``migration_hook: true``, installed by ``host apply``)
called by libvirt itself on both hosts, the gap measured to and from the VM, every pair green
afterwards; then ``lab reboot`` of the new host brings its guests back with their state. Figures:
bench/bench_libvirt_migrate.py (no timed assertion here)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from nestnet.lab import core, libvirt, systemd
from nestnet.plan import load_plan

from .libvirt_common import MARKS, NESTNET, SEED, images, nestnet as _nestnet  # noqa: F401 - images: the module's autouse fixture

pytestmark = MARKS


def mobile_seed(tmp_path: Path) -> Path:
    """The seed as a mobile fabric: guest_style shared (a guest's gateway the same on every host),
    nestnet's qemu hook on every host, the second host on UFW."""
    data = yaml.safe_load(SEED.read_text())
    data["name"] = f"lm{os.getpid() % 10000}"
    data["nested"]["guest_style"] = "shared"
    data["host_defaults"]["migration_hook"] = True
    # the new host runs UFW (enabled at boot), as Azure's Ubuntu hosts: its libvirt ports are
    # allowed as its admin would, the move tunnel by nestnet's own rules
    data["hosts"][1]["firewall"] = "ufw"
    spec = tmp_path / "nestnet.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec


def test_live_migration_under_libvirt_with_the_hook_then_a_reboot(tmp_path):
    spec = mobile_seed(tmp_path)
    _nestnet("lab", "up", str(spec), "--hosts", "systemd", "--guests", "libvirt")
    try:
        plan = load_plan(str(spec))
        state = core.state_dir(plan.name)
        src, dst = "vme-kvm-vm1", "vme-kvm-vm2"
        assert plan.vms["web1"].host == src
        # something only the running guest's memory holds: it must come along, not a fresh boot
        mark = os.urandom(8).hex()
        assert libvirt.agent(plan, state, "web1", [f"echo {mark} > /tmp/mark"]) == [(0, "")]

        r = _nestnet("lab", "migrate", str(spec), "web1", "--to", dst, "--json", ok=False)
        doc = json.loads(r.stdout)
        assert r.returncode == 0, doc
        # libvirt called nestnet's hook on both hosts, and it said what it did, without an error
        assert doc["hook_errors"] == []
        assert "vme-kvm-vm2: web1 arrive (migrate/begin)" in doc["hook"][dst]
        assert "vme-kvm-vm1: web1 depart (stopped/end)" in doc["hook"][src]
        # the departure staged before the migration was applied in shell, before nestnet's own start
        assert doc["hook"][src][0] == "nestnet: web1: staged departure applied (stopped end)"
        assert not (libvirt.host_root(state, src) / "run/nestnet/depart/web1.ip").exists()  # consumed
        for h in (src, dst):
            errs = systemd.run_inside(systemd.dirs(state, h), ["journalctl", "-t", "nestnet-hook", "-p", "err",
                                                               "-o", "cat", "--no-pager"]).stdout
            assert errs.strip() == "", f"{h}: {errs}"
        ufw = systemd.run_inside(systemd.dirs(state, dst), ["iptables", "-S", "ufw-before-input"]).stdout
        assert f"-A ufw-before-input -s {plan.hosts[src].ip}/32 -i eth1 -p udp -m udp --dport 4789 -j ACCEPT" in ufw
        # the gap was measured both ways (its figures: the bench)
        ways = {(p["src"], p["dst"]) for p in doc["probes"] if p["sent"] > 0}
        assert ways == {("mgmt-vm", "web1"), ("web1", "mgmt-vm")}
        # every pair green from inside the guests, as check says
        assert doc["pairs"] and all(p["ok"] and p["check"] for p in doc["pairs"])

        moved = load_plan(str(spec))
        assert moved.vms["web1"].host == dst
        assert libvirt.agent(moved, state, "web1", ["cat /tmp/mark"]) == [(0, mark)]
        running = systemd.run_inside(systemd.dirs(state, dst), ["virsh", "list", "--name"]).stdout.split()
        assert "web1" in running
        left = systemd.run_inside(systemd.dirs(state, src), ["virsh", "list", "--all", "--name"]).stdout.split()
        assert "web1" not in left  # --undefinesource: defined where it runs only
        _nestnet("check", str(spec))

        # a reboot of the new host: its libvirt brings the guests back as they were (libvirt-guests
        # saved them at poweroff; autostart, set for the migrated domain too, restores them), the
        # hook runs at their start, and every pair of the host is green again
        r = _nestnet("lab", "reboot", str(spec), dst, "--json", ok=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout)["hosts"][0]["green_s"] is not None
        assert libvirt.agent(moved, state, "web1", ["cat /tmp/mark"]) == [(0, mark)]
        boot = systemd.run_inside(systemd.dirs(state, dst), ["journalctl", "-b", "-t", "nestnet-hook", "-o", "cat",
                                                             "--no-pager"]).stdout
        assert "vme-kvm-vm2: web1 arrive (started/begin)" in boot and "failed" not in boot
    finally:
        subprocess.run([NESTNET, "-q", "lab", "down", str(spec)], capture_output=True)
