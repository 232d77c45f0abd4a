"""A private Open vSwitch per OVS host, run inside the host's namespace (userspace datapath).

There is no OVS kernel module on these machines, so ovs-vswitchd's userspace datapath carries
the bridge; its tap devices appear in the namespace the daemon runs in. Each host gets its own
database and sockets under the lab's state directory, so nothing touches the machine's OVS.
The daemons are ended by ``lab down`` like every other process inside the lab's namespaces.
Every function runs INSIDE the host's namespace.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..errors import LabError
from .sysio import run

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


def env(rundir: Path) -> dict[str, str]:
    return {var: str(rundir) for var in ("OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR")}


def use(rundir: Path) -> None:
    """Point every ovs-vsctl of this process and its children (the host reconciler's too) here."""
    os.environ.update(env(rundir))


def _daemon(argv: list[str]) -> None:
    # --detach returns once the daemon is ready; its stdio must not hold our pipes open.
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise LabError(f"{argv[0]}: {r.stderr.strip() or f'exit {r.returncode}'}")


def start(rundir: Path) -> None:
    rundir.mkdir(parents=True, exist_ok=True)
    use(rundir)
    db, sock = rundir / "conf.db", rundir / "db.sock"
    run(["ovsdb-tool", "create", str(db), str(SCHEMA)])
    common = ["--detach", "--no-chdir"]
    _daemon(["ovsdb-server", str(db), f"--remote=punix:{sock}", f"--unixctl={rundir / 'ovsdb.ctl'}",
             f"--pidfile={rundir / 'ovsdb.pid'}", f"--log-file={rundir / 'ovsdb.log'}", *common])
    run(["ovs-vsctl", "--no-wait", "init"])
    _daemon(["ovs-vswitchd", f"unix:{sock}", f"--unixctl={rundir / 'vswitchd.ctl'}",
             f"--pidfile={rundir / 'vswitchd.pid'}", f"--log-file={rundir / 'vswitchd.log'}", *common])


def add_bridge(name: str, mac: str, ports: list[str]) -> None:
    """A bridge as the OS (HPE VM Essentials) builds it before nestnet runs, e.g. holding the uplink."""
    argv = ["ovs-vsctl", "--timeout=10", "add-br", name, "--", "set", "bridge", name, "datapath_type=netdev",
            f"other-config:hwaddr={mac}"]
    for p in ports:
        argv += ["--", "add-port", name, p]
    run(argv)


def add_ports(bridge: str, ports: list[str]) -> None:
    if ports:
        argv = ["ovs-vsctl", "--timeout=10"]
        for p in ports:
            argv += ["--", "add-port", bridge, p]
        run(argv)


def tx_checksum_off(ifname: str) -> None:
    # The userspace datapath does not complete checksums the veth left to offload (TCP breaks).
    run(["ethtool", "-K", ifname, "tx", "off"])
