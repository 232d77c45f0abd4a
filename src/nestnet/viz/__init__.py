"""Seeing the fabric: the diagram and the one-page report, both from the one Plan and the one model.

    plan + faults ──analyse()──▶ Verdicts (the faulted State and every ordered pair's verdict)
        ──diagram.build()──▶ Diagram ──to_dot() / to_mermaid() / svg()
        ──report.render()──▶ one self-contained HTML page (diagram, plan, matrix, failures)

Pure except ``diagram.svg`` (runs Graphviz's ``dot``); the CLI (``nestnet.cli.viz``) and the lab
do the rest of the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterator

from ..faults import Fault
from ..model.probe import ICMP, Probe
from ..plan import Plan


@dataclass(frozen=True)
class Verdicts:
    plan: Plan
    faults: tuple[Fault, ...]
    state: object  # nestnet.model.State, with the faults applied
    result: object  # nestnet.model.Reachability: class verdicts, every pair on demand
    groups: tuple = ()  # failing and by-design pairs by cause (nestnet.model.groups.CauseGroup)
    probe: Probe = ICMP  # what every pair sent

    @cached_property
    def failed(self) -> tuple:
        """Every failing pair (by design too), node order, each traced: a trace per pair, so
        only for small fabrics (a matrix); ``groups`` say the same in one trace per cause."""
        return tuple(self.result.pairs())

    @property
    def failing(self) -> int:
        """Failing pairs the mode should serve."""
        return sum(g.count for g in self.groups if g.verdict == "fail")

    @property
    def by_design(self) -> int:
        return sum(g.count for g in self.groups if g.verdict == "by-design")

    @property
    def total(self) -> int:
        return self.result.summary["pairs"]

    @property
    def pairs(self) -> Iterator:
        """Every ordered pair, node order (N*N of them: only for small fabrics, e.g. a matrix)."""
        return self.result.pairs(include_ok=True)


def seen(observed: str, planned: str) -> str:
    """A knob as drawn: what is observed, and in capitals with the plan's value where they differ
    ("OFF (planned on)"), so a faulted picture never shows the plan as if it were the state."""
    return observed if observed == planned else f"{observed.upper()} (planned {planned})"


def on(flag: bool) -> str:
    return "on" if flag else "off"


def analyse(plan: Plan, faults: tuple[Fault, ...] = (), probe: Probe = ICMP) -> Verdicts:
    """Run ``check`` (``--probe probe``) on ``plan`` with ``faults``: class verdicts, failures
    with hop and cause."""
    from ..advise import design_rule
    from ..model import apply_faults, from_plan, reachability
    from ..model.groups import groups

    state = apply_faults(from_plan(plan), faults)
    result = reachability(state, probe)
    return Verdicts(plan, tuple(faults), state, result, tuple(groups(result, lambda a, b: design_rule(plan, a, b))),
                    probe)
