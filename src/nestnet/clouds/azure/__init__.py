"""nestnet's Azure side: reconcile the route table, subnet associations and NIC forwarding
(routed mode) or the secondary ip configurations on the host NICs (secondary-ip mode).

    diff.py       pure: desired state from the Plan, diff against observed ARM JSON, PUT bodies,
                  the order of NIC writes (addresses freed before they are taken)
    arm.py        the seam: the only module importing the Azure SDK (lazily); errors -> AzureError
    reconcile.py  observe (<= 3 reads) -> diff -> apply (one etag-guarded PUT per route table and
                  per changed NIC, re-read and retry on 412)
    export.py     Terraform (seed style) and az CLI script renderers
    emulator.py   an HTTPS ARM emulator the unmodified SDK works against
    dataplane.py  pure: ARM JSON -> the model's CloudState (routes, associations, NIC forwarding)
"""

from .arm import ArmClient, ArmSettings, EtagMismatch
from .diff import Change, Desired, Observed, WantIpConfig, desired, diff, nic_write_order
from .export import az_script, terraform, write_export
from .reconcile import apply, observe, plan_changes, reconcile

__all__ = [
    "ArmClient",
    "ArmSettings",
    "Change",
    "Desired",
    "EtagMismatch",
    "Observed",
    "WantIpConfig",
    "apply",
    "az_script",
    "desired",
    "diff",
    "nic_write_order",
    "observe",
    "plan_changes",
    "reconcile",
    "terraform",
    "write_export",
]
