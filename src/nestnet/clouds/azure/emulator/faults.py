"""What ARM answers when other writers and ARM's own limits get in the way, injected on demand.

``--inject KIND:RATE`` (and ``POST /_emulator/inject``) makes that share of requests meet:

- ``429``: throttling. Reads get ARM's ``SubscriptionRequestsThrottled``; writes get ARM's or
  Microsoft.Network's ``RetryableErrorDueToAnotherOperation`` (the latter's 429 is documented on
  "Request limits and throttling"); ``Retry-After`` unless set to ``none``; the
  ``x-ms-ratelimit-remaining-subscription-{reads,writes}`` header of the request's kind is 0.
- ``409``: a write answered ``409 AnotherOperationInProgress`` (not applied).
- ``canceled``: a write accepted as usual, whose long-running operation then ends ``Canceled``
  (plain, or with detail ``CanceledAndSupersededDueToAnotherOperation``); nothing is applied.
- ``writer``: another writer changes the resource between the client's read and its write:
  an NSG of the resource group (when there is one and the subnet has none) or else a service
  endpoint on the subnet (or on a subnet of the VNet), a foreign route in the route table, a tag
  on the NIC; each bumps the etags as ARM does. The client's write then meets that
  change (412 when it sent ``If-Match``; otherwise it overwrites it, as ARM would).

Draws come from one seeded ``random.Random``, so a test run is reproducible. Sources and
assumptions: docs/decisions/0009-arm-emulator-fidelity.md.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ...inject import parse_inject as _parse_inject
from .common import API_VERSION, ArmFailure, Reply, error_body, new_etag

KINDS = ("429", "409", "canceled", "writer")
WRITER_ACTIONS = ("service_endpoint", "foreign_route", "nic_tag", "nsg")
# Token buckets of ARM's regional throttling (Microsoft Learn, "Request limits and throttling"):
# subscription reads 250 (refill 25/s), writes 200 (refill 10/s). Only reported in headers: the
# emulator throttles when asked to (--inject 429), not on its own.
BUCKETS = {"reads": (250, 25.0), "writes": (200, 10.0)}
FOREIGN_ROUTE_PREFIX = "other-writer-"
# Service endpoint services the other writer attaches, in order (Microsoft Learn, "Virtual Network
# service endpoints").
SERVICES = ("Microsoft.Storage", "Microsoft.KeyVault", "Microsoft.Sql", "Microsoft.AzureCosmosDB",
            "Microsoft.ServiceBus", "Microsoft.EventHub")


def parse_inject(value: str) -> tuple[str, float]:
    return _parse_inject(value, KINDS, "429:0.3")


@dataclass
class Injector:
    rates: dict[str, float] = field(default_factory=dict)
    retry_after: str | None = "1"  # None: no Retry-After header on injected 429s
    seed: int | None = 0
    clock: Any = time.monotonic  # the token buckets' clock (tests pass their own)
    counts: dict[str, Any] = field(default_factory=lambda: {
        "429": 0, "409": 0, "canceled": 0, "writer": {a: 0 for a in WRITER_ACTIONS}})

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._tokens = {k: float(size) for k, (size, _) in BUCKETS.items()}
        self._at = self.clock()
        self._foreign = 0

    def configure(self, rates: dict[str, float], seed: int | None = None, retry_after: str | None | bool = False) -> None:
        for kind, rate in rates.items():
            if kind not in KINDS or not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate <= 1:
                raise ArmFailure(400, "InvalidInjection", f"{kind}:{rate!r}: expected KIND in {', '.join(KINDS)}, 0 <= RATE <= 1")
        self.rates.update({k: float(v) for k, v in rates.items()})
        if seed is not None:
            self.seed = seed
            self._rng = random.Random(seed)
        if retry_after is not False:
            self.retry_after = retry_after  # type: ignore[assignment]

    def roll(self, kind: str) -> bool:
        rate = self.rates.get(kind, 0.0)
        return rate > 0 and self._rng.random() < rate

    # -- ARM's rate-limit headers ---------------------------------------------------------------
    def remaining(self, kind: str) -> dict[str, str]:
        """Spend one token of ``kind`` (reads/writes) and report what is left, as ARM does."""
        now = self.clock()
        for k, (size, refill) in BUCKETS.items():
            self._tokens[k] = min(float(size), self._tokens[k] + (now - self._at) * refill)
        self._at = now
        self._tokens[kind] = max(0.0, self._tokens[kind] - 1)
        return {f"x-ms-ratelimit-remaining-subscription-{kind}": str(int(self._tokens[kind]))}

    # -- the injected answers -------------------------------------------------------------------
    def throttle(self, write: bool, sub: str) -> Reply | None:
        if not self.roll("429"):
            return None
        self.counts["429"] += 1
        kind = "writes" if write else "reads"
        headers = {f"x-ms-ratelimit-remaining-subscription-{kind}": "0"}
        wait = self.retry_after
        if wait is not None:
            headers["Retry-After"] = wait
        if write and self._rng.random() < 0.5:
            body = error_body("RetryableErrorDueToAnotherOperation",
                              "Operation could not be completed because another operation on the resource is in "
                              "progress; retry later.")
        else:
            body = error_body("SubscriptionRequestsThrottled",
                              f"Number of '{kind[:-1]}' requests for subscription '{sub}' actor "
                              f"'00000000-0000-0000-0000-00000000e1a0' exceeded. Please try again after "
                              f"'{wait or '1'}' seconds.")
        return Reply(429, body, headers)

    def conflict(self, base: str, sub: str, location: str) -> None:
        """Raise ARM's 409 AnotherOperationInProgress for a write, if drawn."""
        if not self.roll("409"):
            return
        self.counts["409"] += 1
        op = f"{base}/subscriptions/{sub}/providers/Microsoft.Network/locations/{location}/operations/{uuid.uuid4()}"
        raise ArmFailure(409, "AnotherOperationInProgress",
                         "Another operation on this or dependent resource is in progress. To retrieve status of the "
                         f"operation use uri: {op}?api-version={API_VERSION}.", [])

    def cancellation(self, operation: str) -> dict[str, Any] | None:
        """The final status of a write's long-running operation when it is to end Canceled."""
        if not self.roll("canceled"):
            return None
        self.counts["canceled"] += 1
        err: dict[str, Any] = {"code": "Canceled", "message": "Operation was canceled."}
        if self._rng.random() < 0.5:
            err["details"] = [{
                "code": "CanceledAndSupersededDueToAnotherOperation",
                "message": f"Operation {operation} ({uuid.uuid4()}) was canceled and superseded by operation "
                           f"{operation} ({uuid.uuid4()}).",
            }]
        return {"status": "Canceled", "error": err}

    # -- the other writer -----------------------------------------------------------------------
    def other_writer(self, resource: dict[str, Any], subnet: str | None = None, nsgs: list[str] | tuple[str, ...] = ()) -> str | None:
        """Change ``resource`` (stored form) in place as another writer would; the action's name."""
        if not self.roll("writer"):
            return None
        t = resource.get("type", "")
        props = resource.setdefault("properties", {})
        etag = new_etag()
        action = None
        if t.endswith("/routeTables"):
            self._foreign += 1
            name = f"{FOREIGN_ROUTE_PREFIX}{self._foreign}"
            # TEST-NET-3 /32s (RFC 5737): never a nested block, never a duplicate prefix of a plan.
            props.setdefault("routes", []).append({
                "id": f"{resource['id']}/routes/{name}", "name": name, "type": "Microsoft.Network/routeTables/routes",
                "properties": {"addressPrefix": f"203.0.113.{self._foreign % 256}/32", "nextHopType": "None",
                               "provisioningState": "Succeeded"}})
            for r in props["routes"]:
                r["etag"] = etag
            action = "foreign_route"
        elif t.endswith("/virtualNetworks"):
            subnets = props.get("subnets") or []
            target = next((s for s in subnets if subnet and s["name"].lower() == subnet.lower()), None)
            target = target or (subnets[self._rng.randrange(len(subnets))] if subnets else None)
            if target is None:
                return None
            tprops = target.setdefault("properties", {})
            if nsgs and not tprops.get("networkSecurityGroup"):
                tprops["networkSecurityGroup"] = {"id": nsgs[0]}
                action = "nsg"
            else:
                eps = tprops.setdefault("serviceEndpoints", [])
                have = {e.get("service") for e in eps}
                service = next((s for s in SERVICES if s not in have), None)
                if service is None:
                    return None
                eps.append({"service": service, "locations": [resource.get("location", "eastus")],
                            "provisioningState": "Succeeded"})
                action = "service_endpoint"
            for s in subnets:
                s["etag"] = etag
        elif t.endswith("/networkInterfaces"):
            tags = resource.setdefault("tags", {})
            tags["other-writer"] = str(int(tags.get("other-writer", "0") or 0) + 1)
            for c in props.get("ipConfigurations") or []:
                c["etag"] = etag
            action = "nic_tag"
        if action is None:
            return None
        resource["etag"] = etag
        self.counts["writer"][action] += 1
        return action

    def settings(self) -> dict[str, Any]:
        return {"rates": dict(self.rates), "seed": self.seed, "retry_after": self.retry_after}

    def stats(self) -> dict[str, int]:
        """Flat counters (every value a number, so a test can subtract two readings)."""
        out = {f"injected_{k}": self.counts[k] for k in ("429", "409", "canceled")}
        out.update({f"writer_{a}": n for a, n in self.counts["writer"].items()})
        return out
