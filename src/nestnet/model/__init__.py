"""The offline forwarding model behind ``nestnet check``: pure, no I/O, no root.

    from_plan(plan) | from_observation(plan, observed hosts)
        ──apply_faults──▶ State ──check(state)──▶ CheckResult (summary, pairs())
                                ──Model(state).ping(src, dst)──▶ PairResult (reason, hops)

``state``: the input; ``engine``: the forwarding rules; ``whatif``: faults as State -> State;
``classes``: all pairs fast by equivalence classes; ``observed``: parsers of what a host reports.
"""

from .classes import CheckResult, check
from .engine import Drop, Model, PairResult
from .observed import HostObservation, from_observation, observe_host
from .state import INTERNET, INTERNET_IP, State, from_plan
from .whatif import apply_fault, apply_faults

__all__ = [
    "INTERNET",
    "INTERNET_IP",
    "CheckResult",
    "Drop",
    "HostObservation",
    "Model",
    "PairResult",
    "State",
    "apply_fault",
    "apply_faults",
    "check",
    "from_observation",
    "from_plan",
    "observe_host",
]
