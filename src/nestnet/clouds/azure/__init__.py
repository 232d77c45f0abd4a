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

import importlib
from typing import Any

TITLE = "Azure"  # in words, in help texts and messages
CLI_HELP = "Reconcile the Azure route table, subnets and NICs; export Terraform/az."  # `nestnet azure`
# Top-level commands of Azure's own, beside `nestnet azure` (module:attribute, one-line help).
TOP_COMMANDS = {
    "import": ("nestnet.clouds.azure.importcmd:import_", "Write a spec + lock reproducing the fabric Azure has today."),
    "rollout": ("nestnet.clouds.azure.rollout:rollout",
                "Bring Azure, then every host, to the spec; each step's changes and time."),
}

# `check --azure` / `doctor --azure`: read it instead of assuming the plan (the flag, what and how).
READ = ("--azure", "Azure (route table, subnet associations, NIC forwarding, NSGs) through the ARM API instead of "
        "assuming the plan; NESTNET_ARM_ENDPOINT etc. as for `nestnet azure`.")
# `check`'s offline inputs of Azure's own: flag, parameter, metavar, help, "module:function".
CHECK_FILES = (
    ("--nsgs", "nsgs_file", "FILE", "Network security groups as `az network nsg list -o json` prints them (offline).",
     "nestnet.clouds.azure.dataplane:with_nsgs_file"),
)
# Its environment variables (name, the parser's name in nestnet.env, help), checked at start-up.
ENV = (
    ("NESTNET_ARM_TIMEOUT", "seconds", "deadline of an Azure run, retries included (default 300)"),
    ("NESTNET_ARM_LOCK_TIMEOUT", "wait_seconds",
     "how long `azure apply` waits for another apply's lease on the route table / VNet (default 60; 0: not at all)"),
    ("NESTNET_ARM_ENDPOINT", "https_url", "the ARM endpoint (an emulator's), over the spec's cloud"),
    ("NESTNET_ARM_CA_BUNDLE", "pem_file", "PEM file TLS to ARM is verified against"),
    ("NESTNET_ARM_TOKEN", "token", "a static bearer token (emulators only)"),
    ("AZURE_SUBSCRIPTION_ID", "guid", "the subscription when the spec has none"),
)

# Loaded on first use: the core imports .facts, which must not load the ARM client, the differ and
# the exporters with it (~25 ms of the start-up of every command that only reads the spec).
_FROM = {
    **dict.fromkeys(("ArmClient", "ArmSettings", "EtagMismatch"), "arm"),
    **dict.fromkeys(("Change", "Desired", "Observed", "WantIpConfig", "desired", "nic_write_order"), "diff"),
    **dict.fromkeys(("az_script", "terraform", "write_export"), "export"),
    **dict.fromkeys(("apply", "observe", "plan_changes"), "reconcile"),
}
# ``diff`` and ``reconcile`` are the modules (the functions are diff.diff and reconcile.reconcile):
# a lazy package cannot give a name two meanings.


def __getattr__(name: str) -> Any:
    module = _FROM.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
    "nic_write_order",
    "observe",
    "plan_changes",
    "terraform",
    "write_export",
]
