"""Real sshd on the lab's hosts and an Ansible controller in an endpoint VM, as ``fleet`` runs.

``FleetLab(plan, workdir)`` starts one sshd per host (inside the host's namespace, listening on
the host's address, a throwaway key), writes an inventory that reaches the hosts through the
emulated fabric and points each at its lab root, and runs nestnet commands from the controller
(the first endpoint: the seed's mgmt VM). Every sshd is ended by its PID in ``close``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ..errors import LabError
from ..plan import Plan
from .core import exec_, host_dirs
from .topology import Topology

SSHD = "/usr/sbin/sshd"
NESTNET = str(Path(sys.executable).with_name("nestnet"))
SSHD_CONFIG = """\
ListenAddress {ip}:22
HostKey {d}/host_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
"""


def inventory_vars(key: Path) -> dict[str, str]:
    """What a lab adds to ``fleet inventory``'s vars: root with the lab's key, no host key checks."""
    return {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5",
        "ansible_python_interpreter": sys.executable,
        "nestnet_install": "skip",  # the lab's hosts share this machine's filesystem and venv
        "nestnet_command": NESTNET,
    }


def ansible_env(d: Path) -> dict[str, str]:
    """Ansible's environment for a controller whose scratch space is ``d``."""
    return {
        "ANSIBLE_HOME": str(d / "ansible"),
        "ANSIBLE_LOCAL_TEMP": str(d / "ansible" / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(d / "remote"),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(d / "cp"),
    }


class FleetLab:
    def __init__(self, lab_plan: Plan, workdir: Path):
        missing = [t for t in (SSHD, "ssh", "ssh-keygen") if shutil.which(t) is None]
        if missing:
            raise LabError(f"needs {', '.join(missing)} (Debian: openssh-server, openssh-client)")
        if not lab_plan.endpoints:
            raise LabError("the Ansible controller runs in an endpoint VM; the spec has none")
        self.plan = lab_plan
        self.dir = workdir
        self.controller = next(iter(lab_plan.endpoints))
        self.procs: dict[str, subprocess.Popen] = {}
        self.key = workdir / "id"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory

    def start(self, hosts: list[str] | None = None) -> None:
        todo = [h for h in (hosts or list(self.plan.hosts)) if h not in self.procs]
        dirs = {}
        for h in todo:
            d = self.dir / f"sshd-{h}"
            d.mkdir()
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")], check=True)
            (d / "authorized_keys").write_text((self.key.with_suffix(".pub")).read_text())
            (d / "sshd_config").write_text(SSHD_CONFIG.format(ip=self.plan.hosts[h].ip, d=d))
            ns = Topology.from_plan(self.plan).ns(h)
            self.procs[h] = subprocess.Popen(
                ["ip", "netns", "exec", ns, SSHD, "-D", "-f", str(d / "sshd_config"), "-E", str(d / "log")],
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
            dirs[h] = d
        deadline = time.monotonic() + 10
        for h, d in dirs.items():
            log = d / "log"
            while not (log.exists() and "Server listening" in log.read_text()):
                if self.procs[h].poll() is not None or time.monotonic() > deadline:
                    raise LabError(f"sshd on {h} did not start: {log.read_text() if log.exists() else 'no log'}")
                time.sleep(0.05)

    def inventory(self, spec_plan: Plan) -> Path:
        """The inventory ``fleet inventory`` builds for ``spec_plan``, plus what the lab needs."""
        from ..fleet import inventory

        by_ip = {str(h.ip): n for n, h in self.plan.hosts.items()}
        inv = inventory(spec_plan)
        group = inv["nestnet_hosts"]
        for name, hv in group["hosts"].items():
            lab_host = by_ip.get(hv["ansible_host"])
            if lab_host is None:
                raise LabError(f"host {name} ({hv['ansible_host']}) is not a machine of lab {self.plan.name}")
            hv["nestnet_root"] = host_dirs(self.plan, lab_host)[0]
        group["vars"].update(inventory_vars(self.key))
        path = self.dir / f"inventory-{len(list(self.dir.glob('inventory-*')))}.yaml"
        path.write_text(yaml.safe_dump(inv))
        return path

    def env(self, arm: dict[str, str] | None = None) -> list[str]:
        env = {**ansible_env(self.dir), **(arm or {})}
        return [f"{k}={v}" for k, v in env.items()]

    def nestnet(self, *args: str, arm: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """``nestnet ARGS`` run on the controller (the mgmt VM), with Ansible's and ARM's env."""
        return exec_(self.plan, self.controller, ["env", *self.env(arm), NESTNET, *args])

    def remote_cpu_s(self) -> float:
        """User+sys seconds the hosts' sshd trees have used so far (sessions, modules, ``nestnet
        host apply``). Every live process of a tree counts its own and its reaped children's
        time; sessions Ansible's ControlPersist keeps open are still alive, hence the walk."""
        stats: dict[int, tuple[int, int]] = {}  # pid -> (ppid, ticks)
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                f = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # after "(comm)": state ppid ... ; fields 14-17 of stat: utime stime cutime cstime
            stats[int(d.name)] = (int(f[1]), sum(int(x) for x in f[11:15]))
        kids: dict[int, list[int]] = {}
        for pid, (ppid, _) in stats.items():
            kids.setdefault(ppid, []).append(pid)
        todo = [p.pid for p in self.procs.values()]  # `ip netns exec` execs sshd: the PID is sshd's
        total = 0
        while todo:
            pid = todo.pop()
            if pid in stats:
                total += stats[pid][1]
                todo.extend(kids.get(pid, []))
        return total / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()
        self.procs.clear()

    def __enter__(self) -> "FleetLab":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

