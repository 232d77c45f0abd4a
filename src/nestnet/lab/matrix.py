"""Reachability matrix: every node pings every other node, for real, with fping (or, with a TCP/UDP
probe, connects to a real listener in every other node: ``connect.py``).

One ``fping`` per source namespace probes all its destinations concurrently; all sources run at
once. A destination counts as reached when its echo reply came back, so a pair is green only when
both the forward and the return path work. fping retries an unanswered target once (the first
probe may have waited for ARP); every lab port answers ARP without delay, so the outcome does not
depend on timing. The emulated internet is a destination only: nothing on it can open a path into
a VNet without public addresses.

``--probe tcp/PORT`` or ``udp/PORT`` (what ``check --probe`` models): a listener on PORT in every
node's namespace (the internet's too), started here and ended by PID when the matrix is done,
then one prober per source namespace connecting to all its destinations at once. A TCP port
already served in a namespace (a VM's forward's web server) answers for itself; a UDP one is
refused (its service would not echo).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from ..errors import LabError
from ..model.probe import ICMP, Probe
from ..plan import Plan
from .core import require_up
from .topology import INTERNET, INTERNET_IP, ns_name

# -a: print the targets that answered; -q: nothing else; one retry after 300 ms, 1 ms between targets.
FPING = ("fping", "-a", "-q", "-r", "1", "-t", "300", "-i", "1")
AGENT = str(Path(__file__).with_name("connect.py"))
# TCP: the kernel resends an unanswered SYN after 1 s; UDP: the agent resends every 300 ms.
PROBE_TIMEOUT = {"tcp": 2.5, "udp": 1.5}


@dataclass(frozen=True, order=True)
class PingResult:
    src: str
    dst: str
    ok: bool

    def to_dict(self) -> dict[str, object]:
        return {"src": self.src, "dst": self.dst, "ok": self.ok}


def addresses(plan: Plan) -> dict[str, IPv4Address]:
    """Every node the matrix probes and its address, in plan order, the internet last."""
    out: dict[str, IPv4Address] = {h.name: h.ip for h in plan.hosts.values()}
    out |= {v.name: v.ip for v in plan.vms.values()}
    out |= {e.name: e.ip for e in plan.endpoints.values()}
    out[INTERNET] = INTERNET_IP
    return out


def parse_alive(stdout: str) -> set[str]:
    return {line.split()[0] for line in stdout.splitlines() if line.strip()}


def pairs_from(addrs: dict[str, IPv4Address], alive: dict[str, set[str]]) -> list[PingResult]:
    """Pure: the ordered pairs from each source's set of answering addresses."""
    return [
        PingResult(src, dst, str(ip) in alive[src])
        for src in alive
        for dst, ip in addrs.items()
        if dst != src
    ]


def matrix(plan: Plan, probe: Probe = ICMP) -> list[PingResult]:
    require_up(plan)
    addrs = addresses(plan)
    if probe.port is not None:
        return pairs_from(addrs, _connect_all(plan, addrs, probe))
    procs = {}
    in_guests = _libvirt_guests(plan)
    for src in addrs:
        if src == INTERNET or src in in_guests:
            continue
        targets = [str(ip) for dst, ip in addrs.items() if dst != src]
        cmd = ["ip", "netns", "exec", ns_name(plan.name, src), *FPING, *targets]
        procs[src] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    alive: dict[str, set[str]] = _from_guests(plan, addrs, in_guests)
    for src, p in procs.items():
        out, err = p.communicate()
        # fping exits 1 when some target did not answer; anything else is a real failure.
        if p.returncode not in (0, 1):
            raise LabError(f"fping from {src}: {err.strip() or f'exit {p.returncode}'}")
        alive[src] = parse_alive(out)
    return pairs_from(addrs, {src: alive[src] for src in addrs if src in alive})


def _libvirt_guests(plan: Plan) -> list[str]:
    from .core import guest_config

    return list(plan.vms) if guest_config(plan.name) == "libvirt" else []


def _from_guests(plan: Plan, addrs: dict[str, IPv4Address], guests: list[str]) -> dict[str, set[str]]:
    """libvirt guests probe from inside, through their agent (lab/libvirt.py): busybox ping to
    every target at once, an unanswered one tried once more (as fping -r 1)."""
    from concurrent.futures import ThreadPoolExecutor

    from . import libvirt
    from .core import state_dir

    def one(src: str) -> set[str]:
        targets = " ".join(str(ip) for dst, ip in addrs.items() if dst != src)
        line = (f"for t in {targets}; do (ping -c1 -W1 $t >/dev/null 2>&1 || ping -c1 -W1 $t >/dev/null 2>&1)"
                " && echo $t & done; wait")
        rc, out = libvirt.agent(plan, state_dir(plan.name), src, [line], timeout=60)[0]
        return parse_alive(out)

    if not guests:
        return {}
    with ThreadPoolExecutor(max_workers=len(guests)) as pool:
        return dict(zip(guests, pool.map(one, guests)))


def _agent(plan: Plan, node: str, *args: str) -> subprocess.Popen:
    # `ip netns exec` execs the agent itself: the PID recorded is the agent's.
    return subprocess.Popen(["ip", "netns", "exec", ns_name(plan.name, node), sys.executable, AGENT, *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _connect_all(plan: Plan, addrs: dict[str, IPv4Address], probe: Probe) -> dict[str, set[str]]:
    """Each source's set of destinations that answered ``probe``: a listener in every node, then
    one prober per source, all at once; every agent ended by its PID, also on failure."""
    proto, port = probe.protocol, str(probe.port)
    listeners: dict[str, subprocess.Popen] = {}
    procs: dict[str, subprocess.Popen] = {}
    try:
        for node in addrs:
            listeners[node] = _agent(plan, node, "listen", proto, port)
        for node, p in listeners.items():
            assert p.stdout is not None
            line = p.stdout.readline().strip()
            if line == "busy" and proto == "tcp":
                continue  # another server listens on it in this node: it answers the connects
            if line != "ready":
                why = "the port is taken by another service" if line == "busy" else (line or p.stderr.read().strip())
                raise LabError(f"--probe {probe}: no {proto} listener on port {port} in {node}: {why}")
        for src in addrs:
            if src == INTERNET:
                continue
            targets = [str(ip) for dst, ip in addrs.items() if dst != src]
            procs[src] = _agent(plan, src, "probe", proto, port, str(PROBE_TIMEOUT[proto]), *targets)
        alive: dict[str, set[str]] = {}
        for src, p in procs.items():
            out, err = p.communicate()
            if p.returncode != 0:
                raise LabError(f"{probe} probe from {src}: {err.strip() or f'exit {p.returncode}'}")
            alive[src] = parse_alive(out)
        return alive
    finally:
        for p in (*listeners.values(), *procs.values()):
            if p.poll() is None:
                p.kill()
            p.wait()
            for f in (p.stdout, p.stderr):
                if f is not None:
                    f.close()
