"""Seeing the fabric: the diagram and the one-page report, both from the one Plan and the one model.

    plan + faults ──analyse()──▶ Verdicts (the faulted State and every ordered pair's verdict)
        ──diagram.build()──▶ Diagram ──to_dot() / to_mermaid() / svg()
        ──report.render()──▶ one self-contained HTML page (diagram, plan, matrix, failures)

Pure except ``diagram.svg`` (runs Graphviz's ``dot``); the CLI (``nestnet.cli.viz``) and the lab
do the rest of the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..faults import Fault
from ..plan import Plan


@dataclass(frozen=True)
class Verdicts:
    plan: Plan
    faults: tuple[Fault, ...]
    state: object  # nestnet.model.State, with the faults applied
    pairs: tuple  # every ordered pair (nestnet.model PairResult), node order, failed ones traced

    @property
    def failed(self) -> tuple:
        return tuple(p for p in self.pairs if not p.ok)


def analyse(plan: Plan, faults: tuple[Fault, ...] = ()) -> Verdicts:
    """Run ``check`` on ``plan`` with ``faults``: every ordered pair, failures with hop and cause."""
    from ..model import apply_faults, check, from_plan

    state = apply_faults(from_plan(plan), faults)
    return Verdicts(plan, tuple(faults), state, tuple(check(state).pairs(include_ok=True)))
