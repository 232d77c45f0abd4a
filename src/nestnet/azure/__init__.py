"""nestnet's Azure side: reconcile the route table, subnet associations and NIC forwarding.

    diff.py       pure: desired state from the Plan, diff against observed ARM JSON, PUT bodies
    arm.py        the seam: the only module importing the Azure SDK (lazily); errors -> AzureError
    reconcile.py  observe (3 reads) -> diff -> apply (one etag-guarded route-table PUT, 412 retry)
    export.py     Terraform (seed style) and az CLI script renderers
    emulator.py   an HTTPS ARM emulator the unmodified SDK works against
    labstate.py   the lab's AzureState read from the emulator (``lab up --azure api``)
"""

from .arm import ArmClient, ArmSettings, EtagMismatch
from .diff import Change, Desired, Observed, desired, diff
from .export import az_script, terraform, write_export
from .labstate import fabric_state_from_emulator, lab_programmer
from .reconcile import apply, observe, plan_changes, reconcile

__all__ = [
    "ArmClient",
    "ArmSettings",
    "Change",
    "Desired",
    "EtagMismatch",
    "Observed",
    "apply",
    "az_script",
    "desired",
    "diff",
    "fabric_state_from_emulator",
    "lab_programmer",
    "observe",
    "plan_changes",
    "reconcile",
    "terraform",
    "write_export",
]
