"""The lab: the whole fabric emulated in network namespaces - the cloud, KVM hosts, nested VMs.

    nn-<name>.fabric     the cloud's SDN: one veth port per NIC, subnet gateways, proxy ARP on every
                         port, per-source-subnet route table, per-NIC source/destination check,
                         source-MAC check, Internet system route with SNAT for NIC addresses only
    nn-<name>.internet   a host at 203.0.113.10 behind the fabric
    nn-<name>.<host>     a KVM host, configured by nestnet's own host reconciler
    nn-<name>.<vm>       a nested VM, configured by the ``ip`` guest config nestnet generates
    nn-<name>.<endpoint> another VNet VM (e.g. the mgmt VM) in its subnet

The cloud seam: the fabric's dynamic part is programmed from a ``CloudState`` (user routes,
subnet associations, NICs with IP forwarding) by the cloud's lab fabric, ``program_ns(topology,
state)``, idempotently (observe, diff, change what differs). ``CloudState.from_plan(plan)`` is
the planned state and faults remove parts of it; the cloud's emulated API (``clouds.LabApi``)
can build a ``CloudState`` from its own resources and call the same function: ``up(plan,
<cloud>="api")`` starts the fabric with an empty cloud side for exactly that (the cloud's
emulator, seeded from the spec, programming the lab), and ``heal`` then leaves that side alone.

Python API: ``up(plan, faults=(), <cloud>="plan")``, ``down(plan_or_name)``, ``matrix(plan, probe=ICMP) -> [PingResult]``,
``apply_fault(plan, fault)``, ``heal(plan)``, ``exec_(plan, node, argv)``. All need root.
"""

from ..model.state import CloudState
from .core import apply_fault, down, exec_, heal, is_up, read_faults, up
from .matrix import PingResult, matrix
from .topology import INTERNET, Topology

__all__ = [
    "INTERNET",
    "CloudState",
    "PingResult",
    "Topology",
    "apply_fault",
    "down",
    "exec_",
    "heal",
    "is_up",
    "matrix",
    "read_faults",
    "up",
]
