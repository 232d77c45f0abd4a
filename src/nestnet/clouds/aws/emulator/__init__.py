"""An emulated EC2 endpoint over real HTTPS: moto's server behind a front that adds what EC2 does and
moto does not (ENI IPv4 prefixes, address and route limits, the more-specific-than-local rule,
``blackhole``), and what EC2's limits and other writers cause, on demand.

    faults.py   the injections (--inject KIND:RATE): throttling, unavailability, another writer
    rules.py    EC2's rules on moto's backend objects
    front.py    the request pipeline: stats, injections, rules, then moto
    server.py   the TLS front and moto's ThreadedMotoServer on loopback

Sources and assumptions: docs/decisions/0030-aws-emulator-fidelity.md.
"""

from .faults import KINDS, Injector, parse_inject
from .server import Emulator

__all__ = ["KINDS", "Emulator", "Injector", "parse_inject"]
