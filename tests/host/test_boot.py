"""A real boot (issue 21): the seed's hosts booted by systemd in containers (`lab up --hosts
systemd`), nestnet host apply run inside, then `lab reboot --all` with no nestnet command run:
`host diff` wants nothing on any host (it wanted the bridge's send_redirects, which systemd-sysctl
set before networkd made the bridge, and a dnsmasq restart, judged by a record in /run)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which("systemd-nspawn") or not shutil.which("debootstrap"),
                       reason="needs systemd-container and debootstrap (scripts/system-deps)"),
]

SEED = Path(__file__).parents[2] / "examples/seed.yaml"
NESTNET = str(Path(sys.executable).with_name("nestnet"))


def _nestnet(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([NESTNET, "-q", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"nestnet {' '.join(args)}: {r.returncode} {(r.stderr or r.stdout).strip()}")
    return r


def test_after_a_reboot_host_diff_wants_nothing(tmp_path):
    spec = tmp_path / "nestnet.yaml"
    spec.write_text(SEED.read_text().replace("\nname: ", f"\nname: hb{os.getpid() % 10000}-", 1))  # own lab name
    hosts = ["vme-kvm-vm1", "vme-kvm-vm2"]
    _nestnet("lab", "up", str(spec), "--hosts", "systemd", "--ufw", "ufw-hosts")
    try:
        for h in hosts:
            assert _nestnet("lab", "exec", str(spec), h, "--", "nestnet", "host", "diff", str(spec), check=False).returncode == 0
        _nestnet("lab", "reboot", str(spec), "--all")
        for h in hosts:
            r = _nestnet("lab", "exec", str(spec), h, "--", "nestnet", "-q", "host", "diff", str(spec), check=False)
            assert r.returncode == 0, r.stdout + r.stderr
            v = _nestnet("lab", "exec", str(spec), h, "--", "cat", "/proc/sys/net/ipv4/conf/nestbr0/send_redirects")
            assert v.stdout.strip() == "0"
        # networkd restarted (netplan apply's equivalent in a container) keeps it all
        _nestnet("lab", "exec", str(spec), hosts[0], "--", "systemctl", "restart", "systemd-networkd")
        r = _nestnet("lab", "exec", str(spec), hosts[0], "--", "nestnet", "-q", "host", "diff", str(spec), check=False)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        _nestnet("lab", "down", str(spec), check=False)
