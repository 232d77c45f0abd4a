"""Azure's own fault kinds for ``check --fault`` and ``lab fault`` (the cloud seam's
``fault_kinds``): a NIC's IP forwarding, a subnet's association with nestnet's route table, a
user route, a NIC's prefix ip configuration. Their names and texts are the ones nestnet has
always listed."""

from __future__ import annotations

from .. import FaultKind
from ...model.whatif import nic_forwarding_off, no_nic_prefix, no_route_table, no_user_route

FAULT_KINDS: dict[str, FaultKind] = {
    "nic-forwarding-off": FaultKind("host", "IP forwarding off on the host's Azure NIC", nic_forwarding_off),
    "no-route-table": FaultKind("subnet", "the subnet is not associated with nestnet's route table", no_route_table),
    "no-user-route": FaultKind("host", "the Azure user route for the host's block is missing", no_user_route),
    "no-nic-prefix": FaultKind("host", "the prefix ip configuration of the host's Azure NIC is missing (nic-prefix mode)",
                               no_nic_prefix),
}
