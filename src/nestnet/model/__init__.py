"""The offline forwarding model behind ``nestnet check``: pure, no I/O, no root.

    from_plan(plan) | from_observation(plan, observed hosts)
        ──apply_faults──▶ State ──reachability(state)──▶ Reachability (summary, pairs())
                                ──Model(state, probe).ping(src, dst)──▶ PairResult (reason, hops)

``state``: the input; ``engine``: the forwarding rules; ``whatif``: faults as State -> State;
``classes``: all pairs fast by equivalence classes; ``observed``: parsers of what a host reports.
"""

from .classes import Reachability, reachability
from .engine import Drop, Model, PairResult
from .nsg import ICMP, Probe
from .observed import HostObservation, from_observation, observe_host
from .state import INTERNET, INTERNET_IP, State, from_plan
from .whatif import apply_fault, apply_faults

# The name other code used for it (nestnet.viz, lab/demo): "check" is also the spec check
# (nestnet.validate) and the command; new code says reachability.
check = reachability

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
