"""The apply lease: one `nestnet azure apply` at a time per fabric, as Terraform locks its state.

Terraform's azurerm backend takes a lease on the state blob before it writes and releases it
after; a second run waits up to ``-lock-timeout`` and then fails naming the lock's holder, and
``terraform force-unlock`` clears a stuck lock (docs/decisions/0029-azure-apply-lease.md). ARM
has no lease on a route table, so nestnet records its lease in a tag of the resource its
applies share and makes the tag's write the lock's compare-and-swap: the whole resource, as just
read, is PUT with ``If-Match`` on that read's etag, so of two applies taking the lease at once
ARM lets exactly one write (the other gets 412, reads again and sees the winner's lease).

- Where: the spec's route table (routed mode; created by the lease when missing, which is then
  reported as the apply's ``create route table``), else the VNet (every other mode).
- What: ``nestnet-apply-lease = "expires=<UTC> holder=<user>@<host>:<pid> spec=<path>"``.
- How long: the run's deadline (``--timeout``) plus ``MARGIN`` - an apply cannot hold it longer
  unless it is killed; a killed apply's lease expires and the next apply takes it over.
- Everything else on the resource (foreign tags, routes, subnets) is written back as read.
"""

from __future__ import annotations

import copy
import getpass
import os
import re
import signal
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from ...errors import ServiceError
from .errors import AzureError
from .arm import READ_TIMEOUT, ArmClient
from .diff import TAG_LEASE, Change, Desired, route_table_body

DEFAULT_LOCK_TIMEOUT = 60.0  # seconds a second apply waits for the first one
MARGIN = READ_TIMEOUT + 30.0  # past the deadline: the last request's read timeout, and slack
POLL = 1.0  # seconds between reads while waiting
RELEASE_GRACE = 60.0  # the release gets this long even when the run's deadline has passed
MAX_TAG_VALUE = 256  # Azure's limit for a tag value
_VALUE = re.compile(r"^expires=(\S+) holder=(\S+) spec=(.*)$", re.S)


def _utc(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Lease:
    holder: str
    expires: datetime | None  # None: a value nestnet cannot read (never taken for expired)
    spec: str
    raw: str

    @classmethod
    def new(cls, spec: str, ttl: float) -> "Lease":
        expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=ttl)
        holder = f"{_user()}@{socket.gethostname()}:{os.getpid()}"
        head = f"expires={_utc(expires)} holder={holder} spec="
        room = MAX_TAG_VALUE - len(head)
        spec_shown = spec if len(spec) <= room else "..." + spec[-(room - 3):]
        return cls(holder, expires, spec_shown, head + spec_shown)

    @classmethod
    def parse(cls, value: Any) -> "Lease | None":
        if not value:
            return None
        m = _VALUE.match(str(value))
        if m:
            try:
                expires = datetime.strptime(m[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
                return cls(m[2], expires, m[3], str(value))
            except ValueError:
                pass
        return cls("?", None, "?", str(value))

    def live(self, now: datetime | None = None) -> bool:
        return self.expires is None or self.expires > (now or datetime.now(timezone.utc))

    def describe(self) -> str:
        if self.expires is None:
            return f"an unreadable lease {self.raw!r}"
        return f"{self.holder} (spec {self.spec}), expires {_utc(self.expires)}"

    def to_dict(self) -> dict[str, Any]:
        return {"holder": self.holder, "spec": self.spec,
                "expires": _utc(self.expires) if self.expires else None, "value": self.raw}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's uid)
        return f"uid{os.getuid()}"


@dataclass(frozen=True)
class Place:
    """The resource the lease lives on: the route table (routed mode), else the VNet."""

    kind: str  # "route table" | "virtual network"
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"

    def read(self, client: ArmClient) -> dict[str, Any] | None:
        if self.kind == "route table":
            return client.get_route_table(self.name)
        return client.get_vnet(self.name)

    def put(self, client: ArmClient, body: dict[str, Any], etag: str | None) -> Any:
        if self.kind == "route table":
            return client.put_route_table(self.name, body, etag)
        if not etag:
            raise AzureError(f"{self}: ARM sent no etag, so nestnet cannot take the apply lease safely")
        return client.put_vnet(self.name, body, etag)


def place_for(want: Desired) -> Place:
    return Place("route table", want.table) if want.table else Place("virtual network", want.vnet)


def body_with_tags(want: Desired, place: Place, current: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    """The resource as read, only its tags replaced (what ARM computes is left out, as in every PUT)."""
    if place.kind == "route table":
        body = route_table_body(want, current, [], str(current.get("location") or ""))
    else:
        body = copy.deepcopy(current)
        body.pop("etag", None)
        props = body.setdefault("properties", {})
        for k in ("provisioningState", "resourceGuid"):
            props.pop(k, None)
        for s in props.get("subnets") or []:
            s.pop("etag", None)
            (s.get("properties") or {}).pop("provisioningState", None)
    body["tags"] = tags
    return body


class _Taken(Exception):
    def __init__(self, lease: Lease):
        self.lease = lease


@dataclass
class Held:
    place: Place
    lease: Lease
    waited: float = 0.0
    waited_for: Lease | None = None  # the last live lease waited for
    took_over: Lease | None = None  # an expired lease replaced
    created: list[Change] = field(default_factory=list)  # the route table, created to hold the lease
    released: bool = False
    release_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"resource": str(self.place), **self.lease.to_dict(), "waited_seconds": round(self.waited, 3),
                "waited_for": self.waited_for.to_dict() if self.waited_for else None,
                "took_over": self.took_over.to_dict() if self.took_over else None, "released": self.released}


def acquire(
    client: ArmClient, want: Desired, spec: str, lock_timeout: float, location: str | None,
    say: Callable[[str], None] = lambda _m: None,
) -> Held:
    """Take the lease, waiting up to ``lock_timeout`` seconds for a live one; exit 3 (ServiceError) after."""
    from .reconcile import Outcome, _guarded

    place = place_for(want)
    start = time.monotonic()
    announced: str | None = None
    last: Lease | None = None  # the last live lease waited for
    while True:
        # --timeout bounds the apply once it holds the lease; --lock-timeout the wait before.
        client.deadline = max(client.deadline, time.monotonic() + client.settings.timeout)
        mine = Lease.new(spec, client.settings.timeout + MARGIN)
        held = Held(place, mine)

        def build(current: Any, n: int) -> dict[str, Any] | None:
            held.took_over, held.created = None, []
            if current is None:  # routed mode, no table yet: create it holding the lease
                create = Change("create", "route_table", place.name, None, {"tags": want.tags})
                held.created = [create]
                body = route_table_body(want, None, [create], location or "")
                body["tags"] = {**want.tags, TAG_LEASE: mine.raw}
                return body
            tags = dict(current.get("tags") or {})
            other = Lease.parse(tags.get(TAG_LEASE))
            if other is not None and other.live():
                raise _Taken(other)
            held.took_over = other
            return body_with_tags(want, place, current, {**tags, TAG_LEASE: mine.raw})

        try:
            _guarded(client, Outcome(), f"the apply lease on {place}", lambda n: place.read(client), build,
                     lambda body, etag: place.put(client, body, etag))
        except _Taken as t:
            waited = time.monotonic() - start
            last = t.lease
            if waited >= lock_timeout:
                raise ServiceError(
                    f"another apply holds the lease on {place}: {t.lease.describe()}; waited {waited:.0f}s "
                    f"(--lock-timeout / NESTNET_ARM_LOCK_TIMEOUT); if that apply is gone, `nestnet azure unlock {spec} "
                    "--force` clears it"
                ) from None
            if announced != t.lease.raw:
                say(f"waiting up to {lock_timeout:g}s for the apply lease on {place}: held by {t.lease.describe()}")
                announced = t.lease.raw
            time.sleep(min(POLL, max(lock_timeout - waited, 0.05)))
            continue
        held.waited = time.monotonic() - start
        held.waited_for = last
        if held.took_over is not None:
            say(f"the apply lease on {place} of {held.took_over.describe()} has expired (a killed apply?): taken over")
        elif announced:
            say(f"took the apply lease on {place} after waiting {held.waited:.1f}s")
        client.deadline = time.monotonic() + client.settings.timeout
        return held


def release(client: ArmClient, want: Desired, held: Held) -> None:
    """Remove the lease tag if it is still ours (a whole-resource PUT with If-Match, 412: again).
    Never raises: a lease that cannot be cleared expires by itself; ``release_note`` says so."""
    from .reconcile import Outcome, _guarded

    place = held.place
    client.deadline = max(client.deadline, time.monotonic() + RELEASE_GRACE)
    gone: list[Lease | None] = []

    def build(current: Any, n: int) -> dict[str, Any] | None:
        gone.clear()
        tags = dict((current or {}).get("tags") or {})
        if current is None or tags.get(TAG_LEASE) != held.lease.raw:
            gone.append(Lease.parse(tags.get(TAG_LEASE)))
            return None
        del tags[TAG_LEASE]
        return body_with_tags(want, place, current, tags)

    try:
        _guarded(client, Outcome(), f"the apply lease on {place}", lambda n: place.read(client), build,
                 lambda body, etag: place.put(client, body, etag))
    except (AzureError, ServiceError) as exc:
        held.release_note = (f"could not release the apply lease on {place} ({exc}); it expires at "
                             f"{_utc(held.lease.expires) if held.lease.expires else '?'}, or run `nestnet azure unlock SPEC`")
        return
    if gone:
        other = gone[0]
        held.release_note = (f"the apply lease on {place} was no longer this apply's at the end "
                             f"({'now held by ' + other.describe() if other else 'cleared by someone'})")
        return
    held.released = True


@contextmanager
def lease_held(
    client: ArmClient, want: Desired, spec: str, lock_timeout: float, location: str | None,
    say: Callable[[str], None] = lambda _m: None,
) -> Iterator[Held]:
    """Hold the lease for the body of the ``with``; released after it, also on an error, Ctrl-C or
    SIGTERM/SIGHUP (turned into SystemExit here so that the release runs)."""
    held = acquire(client, want, spec, lock_timeout, location, say)
    restore: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        def stop(signum: int, _frame: Any) -> None:
            raise SystemExit(128 + signum)

        for sig in (signal.SIGTERM, signal.SIGHUP):
            restore[sig] = signal.signal(sig, stop)
    try:
        yield held
    finally:
        try:
            release(client, want, held)
        finally:
            for sig, old in restore.items():
                signal.signal(sig, old)
        if held.release_note:
            say(held.release_note)


def unlock(client: ArmClient, want: Desired, *, force: bool, dry_run: bool) -> tuple[Place, Lease | None, bool]:
    """Clear the lease on the fabric's resource: (where, the lease found or None, whether cleared).
    A live lease only with ``force`` (AzureError otherwise: exit 1, nothing written)."""
    from .reconcile import Outcome, _guarded

    place = place_for(want)
    found: list[Lease | None] = []

    def build(current: Any, n: int) -> dict[str, Any] | None:
        tags = dict((current or {}).get("tags") or {})
        lease = Lease.parse(tags.get(TAG_LEASE))
        if found and lease is not None and (found[0] is None or lease.raw != found[0].raw):
            # A 412: someone wrote meanwhile; a lease taken since is not the one this unlock was for.
            raise AzureError(f"the apply lease on {place} changed while unlocking (now {lease.describe()}); "
                             "nothing was cleared, run unlock again")
        found[:] = [lease]
        if lease is None:
            return None
        if lease.live() and not force:
            raise AzureError(
                f"the apply lease on {place} is live: {lease.describe()}; nestnet does not clear a running apply's "
                "lease (if that apply is gone, run again with --force)"
            )
        if dry_run:
            return None
        del tags[TAG_LEASE]
        return body_with_tags(want, place, current, tags)

    wrote = _guarded(client, Outcome(), f"the apply lease on {place}", lambda n: place.read(client), build,
                     lambda body, etag: place.put(client, body, etag))
    return place, found[0] if found else None, wrote


def locked_apply(
    client: ArmClient, plan: Any, spec: str, lock_timeout: float, *, prune_foreign: bool = False,
    adopt: bool = False, say: Callable[[str], None] = lambda _m: None,
    show: Callable[[list[Change]], None] = lambda _c: None,
) -> tuple[Desired, Any, list[Change], Any, Held | None]:
    """`azure apply` (and rollout's Azure step): diff, take the lease, diff again under it, show,
    apply, release. Returns (want, the Observed the changes were computed from, the changes shown,
    the Outcome, the lease or None when there was nothing to do).

    The first diff runs the refusals and reality checks before any write, the lease's included;
    with nothing to change nothing is written, so no lease is taken. Under the lease Azure is read
    again: what is shown and written is against what the previous holder left.
    """
    from .reconcile import Outcome, apply, plan_changes

    want, obs, changes = plan_changes(client, plan, prune_foreign=prune_foreign, adopt=adopt)
    if not changes:
        show(changes)
        return want, obs, changes, Outcome(), None
    location = want.location or (obs.vnet or {}).get("location")
    with lease_held(client, want, spec, lock_timeout, location, say) as held:
        want, obs, changes = plan_changes(client, plan, prune_foreign=prune_foreign, adopt=adopt)
        shown = held.created + changes  # the route table the lease created, if any
        show(shown)
        outcome = apply(client, want, obs, changes, prune_foreign=prune_foreign, adopt=adopt)
        outcome.applied[:0] = held.created
        outcome.writes += len(held.created)
    return want, obs, shown, outcome, held
