"""What EC2 answers when its limits and other writers get in the way, injected on demand.

``--inject KIND:RATE`` (and ``POST /_emulator/inject``) makes that share of EC2 requests meet:

- ``throttle``: ``503 RequestLimitExceeded`` (EC2 API reference, "Error codes" and "Request
  throttling": EC2 throttles per account and Region, answering this code; the SDKs retry it);
- ``unavailable``: ``503 Unavailable`` ("The server is overloaded and can't handle the request");
- ``internal``: ``500 InternalError`` ("An internal error has occurred");
- ``writer``: another writer changes the resource between the client's read and its write: a
  foreign route in the route table a route write names (TEST-NET-3 /32, RFC 5737), a foreign
  secondary address on the network interface an address write names. EC2 has no etags: the
  client's write is then applied as sent, so only a write that names what it changes keeps the
  other writer's work (the reconciler's guarantee, tested with this).

Draws come from one seeded ``random.Random``, so a run is reproducible. Sources and assumptions:
docs/decisions/0030-aws-emulator-fidelity.md.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ...inject import parse_inject as _parse_inject

KINDS = ("throttle", "unavailable", "internal", "writer")

# code, HTTP status, message (EC2 API reference, "Error codes for the Amazon EC2 API").
ANSWERS = {
    "throttle": ("RequestLimitExceeded", 503, "Request limit exceeded."),
    "unavailable": ("Unavailable", 503, "The server is overloaded and can't handle the request."),
    "internal": ("InternalError", 500, "An internal error has occurred. Retry your request."),
}


def parse_inject(value: str) -> tuple[str, float]:
    return _parse_inject(value, KINDS, "throttle:0.3")


@dataclass
class Injector:
    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def configure(self, rates: dict[str, float], seed: int | None = None) -> None:
        for kind, rate in rates.items():
            if kind not in KINDS or isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                raise ValueError(f"{kind}:{rate!r}: expected KIND in {', '.join(KINDS)}, 0 <= RATE <= 1")
        self.rates.update({k: float(v) for k, v in rates.items()})
        if seed is not None:
            self.seed = seed
            self._rng = random.Random(seed)

    def roll(self, kind: str) -> bool:
        rate = self.rates.get(kind, 0.0)
        hit = rate > 0 and self._rng.random() < rate
        if hit:
            self.counts[kind] += 1
        return hit

    def failure(self) -> tuple[str, int, str] | None:
        """The injected error for this request, if one is drawn (throttling first)."""
        for kind in ("throttle", "unavailable", "internal"):
            if self.roll(kind):
                return ANSWERS[kind]
        return None
