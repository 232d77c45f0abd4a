"""An emulated ARM endpoint: the Microsoft.Network subset nestnet uses, over real HTTPS.

Faithful where the unmodified ``azure-mgmt-network`` client and nestnet's reconciler can tell:
resource ids, etags that change on every write (children carry their parent's), ``If-Match`` ->
412 ``PreconditionFailedEtagMismatch``, writes as long-running operations (``Azure-AsyncOperation``
polled, then the client's final GET), ``effectiveRouteTable`` as a POST with a ``Location`` result,
NIC ip configurations checked as ARM does, api-versions, names, tags and body shapes validated as
ARM does, and on demand what other writers and ARM's limits cause (429, 409, Canceled, a concurrent
writer). Sources and assumptions: docs/decisions/0009-arm-emulator-fidelity.md.

    common.py     types, ids, etags, ARM's error shape
    rules.py      what ARM refuses: api-versions, names, tags, body shapes, routes, subnets, ip configurations
    resources.py  PUT body -> stored resource, views, effective routes, seeding from a plan
    faults.py     the injections (--inject KIND:RATE) and ARM's rate-limit headers
    provider.py   the request pipeline: auth, api-version, throttling, preconditions, LROs, handlers
    store.py      state.json (atomic, locked per state directory, damaged files set aside)
    server.py     the HTTPS server: framing, TLS per connection, JSON answers to broken requests
"""

from .common import DEFAULT_SUBSCRIPTION, NET, STATE_FILE, ArmFailure, Reply
from .faults import KINDS, Injector, parse_inject
from .provider import Arm, Stats
from .server import MAX_BODY, Emulator, parse_listen
from .store import StateDamaged, Store, read_resources

__all__ = [
    "DEFAULT_SUBSCRIPTION",
    "KINDS",
    "MAX_BODY",
    "NET",
    "STATE_FILE",
    "Arm",
    "ArmFailure",
    "Emulator",
    "Injector",
    "Reply",
    "StateDamaged",
    "Stats",
    "Store",
    "parse_inject",
    "parse_listen",
    "read_resources",
]
