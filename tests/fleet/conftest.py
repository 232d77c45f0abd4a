"""A lab whose hosts run a real sshd, and an Ansible controller in the lab's mgmt VM.

Every sshd is started by PID and killed at the end (``lab.down`` would kill it anyway with its
namespace); the lab is always brought down, pass or fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from nestnet import lab
from nestnet.lab.core import host_dirs
from nestnet.lab.fleetlab import NESTNET, SSHD, SSHD_CONFIG, ansible_env, inventory_vars
from nestnet.lab.topology import Topology
from nestnet.plan import Plan, load_plan


SPEC = {
    "version": 1,
    "azure": {"resource_group": "rg", "vnet": "vnet", "address_space": ["10.0.0.0/16"], "route_table": "rt"},
    "subnets": [
        {"name": "vm-subnet", "prefix": "10.0.1.0/24"},
        {"name": "mgmt-subnet", "prefix": "10.0.2.0/24"},
    ],
    "nested": {"mode": "routed", "pool": "10.0.1.0/24", "block_prefix_len": 28, "guest_style": "onlink"},
    "host_defaults": {"uplink": "eth1"},
    "hosts": [
        {"name": "hosta", "ip": "10.0.1.10", "block": "10.0.1.16/28"},
        {"name": "hostb", "ip": "10.0.1.11", "block": "10.0.1.48/28"},
    ],
    # vmb gets its address from the lock file: the hosts must receive the lock to agree.
    "vms": [{"name": "vma", "host": "hosta", "ip": "10.0.1.20"}, {"name": "vmb", "host": "hostb"}],
    "endpoints": [{"name": "mgmt-vm", "ip": "10.0.2.5", "subnet": "mgmt-subnet"}],
}



@dataclass
class Fleet:
    plan: Plan
    spec: Path
    tmp: Path
    key: Path

    def host_root(self, host: str) -> Path:
        return Path(host_dirs(self.plan, host)[0])

    def inventory(self, hosts: dict[str, dict] | None = None) -> Path:
        """``nestnet fleet inventory``'s output plus what the lab needs: the temp key, no host
        key checks, each host's lab root directory. ``hosts`` replaces the host entries."""
        r = subprocess.run([NESTNET, "fleet", "inventory", str(self.spec)], capture_output=True, text=True, check=True)
        inv = yaml.safe_load(r.stdout)
        group = inv["nestnet_hosts"]
        if hosts is not None:
            group["hosts"] = hosts
        for name, hv in group["hosts"].items():
            if name in self.plan.hosts:
                hv["nestnet_root"] = str(self.host_root(name))
        group["vars"].update(inventory_vars(self.key))
        path = self.tmp / f"inventory-{len(list(self.tmp.glob('inventory-*')))}.yaml"
        path.write_text(yaml.safe_dump(inv))
        return path

    def apply(self, *args: str, inventory: Path | None = None) -> subprocess.CompletedProcess:
        """``nestnet fleet apply`` run from the mgmt VM, the fabric's Ansible controller."""
        env = ansible_env(self.tmp)
        argv = [
            "env", *(f"{k}={v}" for k, v in env.items()),
            NESTNET, "fleet", "apply", str(self.spec), "--inventory", str(inventory or self.inventory()), *args,
        ]
        return lab.exec_(self.plan, "mgmt-vm", argv)


def _start_sshd(plan: Plan, host: str, d: Path, pubkey: str) -> subprocess.Popen:
    d.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")], check=True)
    (d / "authorized_keys").write_text(pubkey)
    (d / "sshd_config").write_text(SSHD_CONFIG.format(ip=plan.hosts[host].ip, d=d))
    ns = Topology.from_plan(plan).ns(host)
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, SSHD, "-D", "-f", str(d / "sshd_config"), "-E", str(d / "log")],
        stdin=subprocess.DEVNULL, start_new_session=True,
    )


def _wait_listening(d: Path, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    log = d / "log"
    while not (log.exists() and "Server listening" in log.read_text()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"sshd in {d.name} did not start: {log.read_text() if log.exists() else 'no log'}")
        time.sleep(0.05)


@pytest.fixture
def fleet_lab(tmp_path: Path) -> Iterator[Fleet]:
    missing = [t for t in (SSHD, "ssh", "ssh-keygen") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: openssh-server, openssh-client)")
    name = f"f{os.getpid()}"[:24]
    spec = tmp_path / "fleet.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "name": name}, sort_keys=False))
    plan = load_plan(spec)  # writes the lock (vmb's address)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    procs: list[subprocess.Popen] = []
    try:
        lab.up(plan)
        for h in plan.hosts:
            d = tmp_path / f"sshd-{h}"
            procs.append(_start_sshd(plan, h, d, (tmp_path / "id.pub").read_text()))
            _wait_listening(d, procs[-1])
        yield Fleet(plan, spec, tmp_path, tmp_path / "id")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        lab.down(plan)
