"""What the lab runs inside nested VMs: a web server on every port a NAT forward points at
(``python -m http.server``), so ``lab services`` can connect through the host's DNAT. Started by
``lab up`` with their PIDs recorded; ``lab down`` ends every process of the lab's namespaces."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from ..errors import LabError
from ..netns import run_in
from ..plan import Plan
from .topology import Topology


def start(plan: Plan, topo: Topology, state: Path) -> None:
    d = state / "apps"
    procs = []
    for v in plan.vms.values():
        for port in sorted({f.port for f in v.forwards if f.proto == "tcp"}):
            d.mkdir(parents=True, exist_ok=True)
            log = open(d / f"{v.name}-{port}.log", "w")
            p = subprocess.Popen(
                ["ip", "netns", "exec", topo.ns(v.name), sys.executable, "-m", "http.server", str(port),
                 "--bind", "0.0.0.0", "--directory", str(d)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            log.close()
            (d / f"{v.name}-{port}.pid").write_text(f"{p.pid}\n")
            procs.append((v.name, port, p))
    for vm, port, p in procs:
        for _ in range(300):
            if run_in(topo.ns(vm), _listening, port):
                break
            if p.poll() is not None:
                raise LabError(f"the web server in {vm} on port {port} did not start (see {d})")
            time.sleep(0.02)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
