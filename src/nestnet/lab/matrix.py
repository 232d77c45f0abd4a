"""Reachability matrix: every node pings every other node, for real, with fping.

One ``fping`` per source namespace probes all its destinations concurrently; all sources run at
once. A destination counts as reached when its echo reply came back, so a pair is green only when
both the forward and the return path work. fping retries an unanswered target once (the first
probe may have waited for ARP); every lab port answers ARP without delay, so the outcome does not
depend on timing. The emulated internet is a destination only: nothing on it can open a path into
a VNet without public addresses.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from ipaddress import IPv4Address

from ..errors import LabError
from ..plan import Plan
from .core import require_up
from .topology import INTERNET, INTERNET_IP, ns_name

# -a: print the targets that answered; -q: nothing else; one retry after 300 ms, 1 ms between targets.
FPING = ("fping", "-a", "-q", "-r", "1", "-t", "300", "-i", "1")


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


def matrix(plan: Plan) -> list[PingResult]:
    require_up(plan)
    addrs = addresses(plan)
    procs = {}
    for src in addrs:
        if src == INTERNET:
            continue
        targets = [str(ip) for dst, ip in addrs.items() if dst != src]
        cmd = ["ip", "netns", "exec", ns_name(plan.name, src), *FPING, *targets]
        procs[src] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    alive: dict[str, set[str]] = {}
    for src, p in procs.items():
        out, err = p.communicate()
        # fping exits 1 when some target did not answer; anything else is a real failure.
        if p.returncode not in (0, 1):
            raise LabError(f"fping from {src}: {err.strip() or f'exit {p.returncode}'}")
        alive[src] = parse_alive(out)
    return pairs_from(addrs, alive)
