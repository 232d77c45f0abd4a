"""``nestnet lab demo``: the seed fabric in one of the three modes, its own verification
section run inside the lab, every pair pinged, and ``check`` asked the same question.

The checks are the seed document's "Verification" steps, derived from the plan so they hold for
the packaged seed: (routed) every host shows a route for every other host's block via that
host, IP forwarding is on, and the first nested VM pings every host and every endpoint.

Modes (the seed's "Alternative Solutions"): ``routed`` is the seed itself; ``secondary-ip`` keeps
its addresses and makes each one an IP configuration of the host's NIC (the seed's Solution A
uses 10.0.1.20 that way); ``nat`` puts the nested VMs on a private network behind their host, as
the seed's NAT recipe does with libvirt's default network (virbr0, 192.168.122.0/24): the same
host parts, 10.0.1.x becoming 192.168.122.x.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Callable

import yaml

from ..model.probe import ICMP, Probe
from ..plan import Plan
from .core import exec_

MODES = ("routed", "nat", "secondary-ip", "nic-prefix")
NAT_PREFIX = "192.168.122."  # libvirt's default NAT network


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


def seed_spec(mode: str = "routed", name: str | None = None) -> dict:
    """The packaged seed spec in ``mode`` (see the module doc), optionally renamed (tests)."""
    spec = yaml.safe_load((files("nestnet") / "examples" / "seed.yaml").read_text(encoding="utf-8"))
    spec["nested"]["mode"] = mode
    if name:
        spec["name"] = name
    if mode == "nat":
        def private(a: str) -> str:
            return NAT_PREFIX + a.split(".", 3)[3]

        spec["nested"]["pool"] = NAT_PREFIX + "0/24"
        for h in spec["hosts"]:
            h["block"] = private(h["block"])
        for v in spec["vms"]:
            v["ip"] = private(v["ip"])
    return spec


def seed_plan(mode: str = "routed", name: str | None = None) -> Plan:
    from ..plan import load_source
    from ..spec import SpecSource

    text = (files("nestnet") / "examples" / "seed.yaml").read_text(encoding="utf-8")
    if mode != "routed" or name:
        text = f"# the packaged seed in mode {mode}\n" + yaml.safe_dump(seed_spec(mode, name), sort_keys=False)
    # Every block and VM address is pinned in the seed: nothing to allocate, no lock written.
    path = Path(str(files("nestnet") / "examples" / "seed.yaml"))
    if mode != "routed":
        path = path.with_name(f"seed-{mode}.yaml")
    return load_source(SpecSource(path, text), write=False).plan


def checks(plan: Plan) -> list[Check]:
    """Pure: the seed's verification steps for ``plan``."""
    out: list[Check] = []
    blocks = "|".join(str(h.block) for h in plan.hosts.values())
    for h in plan.hosts.values():
        show = ("sh", "-c", f"ip route show | grep -E '{blocks}'")
        for other in plan.hosts.values():
            if other.name != h.name and plan.mode == "routed":  # only routed hosts route other blocks
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


@dataclass(frozen=True)
class DemoPair:
    src: str
    dst: str
    ok: bool  # the lab's verdict (a real ping, or the probe's connection, both ways)
    expected: bool  # False only where the mode cannot serve the pair by design
    check: bool  # nestnet check's verdict
    why_not: str = ""  # why the mode cannot serve it

    def to_dict(self) -> dict[str, object]:
        return {"src": self.src, "dst": self.dst, "ok": self.ok, "expected": self.expected}


def judge(plan: Plan, lab_pairs, check_pairs) -> list[DemoPair]:
    """Pure: each lab pair with what the mode promises and what ``check`` said."""
    from ..advise import not_served

    said = {(p.src, p.dst): p.ok for p in check_pairs}
    out = []
    for p in lab_pairs:
        why = not_served(plan, p.src, p.dst)
        out.append(DemoPair(p.src, p.dst, p.ok, not why, said.get((p.src, p.dst), not p.ok), why))
    return out


def result(mode: str, pairs: list[DemoPair], probe: Probe = ICMP) -> dict[str, object]:
    return {
        "mode": mode,
        "probe": str(probe),
        "pairs": [p.to_dict() for p in pairs],
        "check_agrees": all(p.check == p.ok for p in pairs),
    }


def passed(pairs: list[DemoPair]) -> bool:
    return all(p.ok == p.expected and p.check == p.ok for p in pairs)


def run_demo(plan: Plan, report: Callable[[Check], None] = lambda c: None,
             probe: Probe = ICMP) -> tuple[list[Check], list[DemoPair]]:
    """Bring the lab of ``plan`` up, run the seed's checks and the matrix of ``probe`` (real pings,
    or real TCP/UDP to a port), ask ``check`` with the same probe, tear down."""
    from .. import lab as labmod
    from ..model import from_plan, reachability

    labmod.up(plan)
    try:
        done = run_checks(plan, checks(plan), report)
        lab_pairs = labmod.matrix(plan, probe)
    finally:
        labmod.down(plan)
    return done, judge(plan, lab_pairs, reachability(from_plan(plan), probe).pairs(include_ok=True))
