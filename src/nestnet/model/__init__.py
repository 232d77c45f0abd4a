"""The offline forwarding model behind ``nestnet check``: pure, no I/O, no root.

    State.from_plan(plan) / an observed State  ──apply_faults──▶  State  ──check──▶  CheckResult
                                                                        ──trace──▶  PairResult

See ``engine`` for the rules, ``state`` for the input, ``classes`` for how large fabrics are
checked by equivalence classes.
"""

from .engine import Drop, Model, PairResult
from .state import INTERNET, INTERNET_IP, State, from_plan
from .whatif import apply_fault, apply_faults

__all__ = [
    "INTERNET",
    "INTERNET_IP",
    "Drop",
    "Model",
    "PairResult",
    "State",
    "apply_fault",
    "apply_faults",
    "from_plan",
]
