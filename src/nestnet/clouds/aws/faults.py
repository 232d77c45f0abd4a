"""AWS's own fault kinds for ``check --fault`` and ``lab fault`` (the cloud seam's
``fault_kinds``; sources in docs/decisions/0031):

- ``src-dst-check-on:HOST``: the source/destination check of the host's ENI is on (EC2's default:
  "the instance must be the source or destination of any traffic it sends or receives", EC2 user
  guide "Source/destination checks"). In routed mode EC2 then drops what the host forwards for its
  block; in prefix mode nothing breaks, as the block's addresses are the ENI's own (its IPv4 prefix,
  EC2 user guide "Prefix delegation for Amazon EC2 network interfaces"; DESIGN §5c). Every mode.
- ``no-eni-prefix:HOST``: the host ENI's /28 IPv4 prefix is gone (unassigned): EC2 delivers the
  block's addresses to no ENI. Prefix mode only.
- ``no-route:HOST``: the route for the host's block to its ENI is gone from the route tables.
  Routed mode only.
- ``route-blackhole:HOST``: the route stays but its target ENI is gone (deleted, or the instance
  replaced by one with a new ENI): EC2 shows it ``blackhole`` and drops what it matches, which a
  missing route would have sent elsewhere (VPC user guide "Route tables"; EC2 API reference
  ``Route``: "The blackhole state indicates that the route's target isn't available"). Routed
  mode only.
- ``main-route-table:SUBNET``: the subnet is associated with the VPC's main route table, not the
  one ``aws.route_tables`` names (where nestnet writes its routes): its traffic meets none of
  them (VPC user guide "Route tables": "a subnet ... not explicitly associated ... is implicitly
  associated with the main route table"). Routed mode only.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from .. import FaultKind
from ...model.state import State
from ...model.whatif import dead_user_route, nic_forwarding_off, no_nic_prefix, no_route_table, no_user_route

# A route whose target is gone: no ENI owns this address, so the model and the lab drop what the
# route matches (it still wins the longest prefix match, as a blackhole route does in EC2).
BLACKHOLE = IPv4Address("0.0.0.0")


def _blackhole(state: State, host: str) -> State:
    return dead_user_route(state, host, BLACKHOLE)


FAULT_KINDS: dict[str, FaultKind] = {
    "src-dst-check-on": FaultKind("host", "the source/destination check of the host's ENI is on (routed mode: what "
                                          "the host forwards is dropped; prefix mode: its prefix still passes)",
                                  nic_forwarding_off),
    "no-eni-prefix": FaultKind("host", "the /28 IPv4 prefix of the host's ENI is missing (prefix mode)", no_nic_prefix,
                               ("prefix", "nic-prefix")),  # nic-prefix: Azure's name of the same mode
    "no-route": FaultKind("host", "the route for the host's block to its ENI is missing (routed mode)", no_user_route,
                          ("routed",)),
    "route-blackhole": FaultKind("host", "the route for the host's block is a blackhole: its target ENI is gone "
                                         "(routed mode)", _blackhole, ("routed",)),
    "main-route-table": FaultKind("subnet", "the subnet uses the VPC's main route table, not the one nestnet writes "
                                            "(routed mode)", no_route_table, ("routed",)),
}
