"""``nestnet lab demo``: the seed fabric, its own verification section run inside the lab.

The checks are the seed document's "Verification" steps, derived from the plan so they hold for
the packaged seed: every host shows a route for every other host's block via that host, IP
forwarding is on, and the first nested VM pings every host and every endpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import as_file, files
from typing import Callable

from ..plan import Plan, load_plan
from .core import exec_


@dataclass(frozen=True)
class Check:
    node: str
    argv: tuple[str, ...]
    expect: str  # what the output must show (regex), "" = exit status 0 is enough
    ok: bool = False
    output: str = ""

    @property
    def command(self) -> str:
        return self.argv[2] if self.argv[:2] == ("sh", "-c") else " ".join(self.argv)


def seed_plan() -> Plan:
    with as_file(files("nestnet") / "examples" / "seed.yaml") as path:
        return load_plan(path, write=False)


def checks(plan: Plan) -> list[Check]:
    """Pure: the seed's verification steps for ``plan``."""
    out: list[Check] = []
    blocks = "|".join(str(h.block) for h in plan.hosts.values())
    for h in plan.hosts.values():
        show = ("sh", "-c", f"ip route show | grep -E '{blocks}'")
        for other in plan.hosts.values():
            if other.name != h.name:
                via = other.ip if other.subnet == h.subnet else h.gateway
                out.append(Check(h.name, show, rf"{re.escape(str(other.block))} via {re.escape(str(via))}"))
        out.append(Check(h.name, ("sysctl", "net.ipv4.ip_forward"), r"net\.ipv4\.ip_forward = 1"))
    if plan.vms:
        vm = next(iter(plan.vms.values()))
        targets = [h.ip for h in plan.hosts.values()] + [e.ip for e in plan.endpoints.values()]
        out += [Check(vm.name, ("ping", "-c1", "-W1", str(ip)), "") for ip in targets]
    return out


def run_checks(plan: Plan, todo: list[Check], report: Callable[[Check], None]) -> list[Check]:
    done = []
    for c in todo:
        r = exec_(plan, c.node, list(c.argv))
        out = (r.stdout or "") + (r.stderr or "")
        ok = r.returncode == 0 and (not c.expect or re.search(c.expect, out) is not None)
        result = Check(c.node, c.argv, c.expect, ok, out.strip())
        report(result)
        done.append(result)
    return done
