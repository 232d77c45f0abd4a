"""The offline forwarding model behind ``nestnet check``: pure, no I/O, no root.

    from_plan(plan) | from_observation(plan, observed hosts)
        ──apply_faults──▶ State ──reachability(state)──▶ Reachability (summary, pairs())
                                ──Model(state, probe).ping(src, dst)──▶ PairResult (reason, hops)

``state``: the input; ``engine``: the forwarding rules; ``whatif``: faults as State -> State;
``classes``: all pairs fast by equivalence classes; ``observed``: parsers of what a host reports.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .classes import Reachability, reachability
    from .engine import Drop, Model, PairResult
    from .probe import ICMP, Probe
    from .observed import HostObservation, from_observation, observe_host
    from .state import INTERNET, INTERNET_IP, State, from_plan
    from .whatif import apply_fault, apply_faults

    check = reachability

# Loaded on first use: every spec load imports nestnet.model.state (a cloud's planned state), and
# the engine, classes and what-if behind this package's names cost it 15 ms of start-up.
_FROM = {
    "Reachability": "classes", "reachability": "classes", "check": "classes",
    "Drop": "engine", "Model": "engine", "PairResult": "engine",
    "ICMP": "probe", "Probe": "probe",
    "HostObservation": "observed", "from_observation": "observed", "observe_host": "observed",
    "INTERNET": "state", "INTERNET_IP": "state", "State": "state", "from_plan": "state",
    "apply_fault": "whatif", "apply_faults": "whatif",
}


def __getattr__(name: str) -> Any:
    module = _FROM.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # The name other code used for reachability (nestnet.viz, lab/demo): "check" is also the
    # spec check (nestnet.validate) and the command; new code says reachability.
    value = getattr(import_module(f"{__name__}.{module}"), "reachability" if name == "check" else name)
    globals()[name] = value
    return value


__all__ = [
    "ICMP",
    "INTERNET",
    "INTERNET_IP",
    "Probe",
    "Reachability",
    "Drop",
    "HostObservation",
    "Model",
    "PairResult",
    "State",
    "apply_fault",
    "apply_faults",
    "check",
    "reachability",
    "from_observation",
    "from_plan",
    "observe_host",
]
