"""observe -> diff -> apply against ARM, through the ``ArmClient`` seam.

Reads are three calls whatever the fabric's size (route table GET, VNet GET with its subnets,
NIC list of the resource group). Writes, each guarded by ``If-Match`` with the etag of the read
its body was built from:

- one PUT of the whole route table, built from the observed table;
- one PUT per subnet to (dis)associate and one PUT per NIC that changes, each built from a GET
  of that subnet / NIC made just before it (nestnet does not own them: everything else on them
  is kept as ARM last showed it).

On 412 (someone wrote in between) the resource is read again and only nestnet's change is
re-applied to the fresh copy, a bounded number of times. When ARM says "busy" (429, 409
AnotherOperationInProgress, 5xx, an operation canceled by another one) nestnet waits as told or
backs off, reads again and retries until the client's deadline, then stops with one line (exit 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from .facts import name_key
from .errors import AzureError
from .arm import ArmBusy, ArmClient, EtagMismatch
from .diff import Change, Desired, Observed, desired, diff, nic_body, nic_write_order, route_table_body, subnet_body

MAX_412_RETRIES = 5


def observe(client: ArmClient, want: Desired) -> Observed:
    table = client.get_route_table(want.table) if want.table else None
    # The VNet always: its region and address space are checked against the spec before any write.
    vnet = client.get_vnet(want.vnet) if (want.table or want.nics or want.managed_nics or want.subnets) else None
    # Secondary ip configurations need every NIC of the group: an address may be on any of them.
    nics = {n["name"]: n for n in client.list_nics()} if (want.nics or want.managed_nics or want.public_ips) else {}
    if want.public_ips and vnet is None:
        vnet = client.get_vnet(want.vnet)
    # Exposed ports: the group's public IPs and NSGs (two more reads, whatever the fabric's size);
    # the public IPs also when a NIC holds one named like nestnet's (it may be stale: publicip._stale).
    from .publicip import holds_own

    exposing = bool(want.public_ips) or holds_own(want, nics)
    pips = {p["name"]: p for p in client.list_public_ips()} if exposing else {}
    nsgs = tuple(client.list_nsgs_raw()) if exposing else ()
    return Observed(table, vnet, nics, pips, nsgs)


@dataclass
class Outcome:
    applied: list[Change] = field(default_factory=list)
    writes: int = 0
    retries_412: int = 0
    busy_retries: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": [c.to_dict() for c in self.applied],
            "writes": self.writes,
            "retries_412": self.retries_412,
            "busy_retries": self.busy_retries,
        }


def plan_changes(
    client: ArmClient, plan: Any, *, prune_foreign: bool = False, adopt: bool = False
) -> tuple[Desired, Observed, list[Change]]:
    want = desired(plan)
    obs = observe(client, want)
    table_id = client.table_id(want.table) if want.table else ""
    from . import privatedns  # nested VMs' A records, when the spec names a private DNS zone

    return want, obs, diff(want, obs, table_id, prune_foreign=prune_foreign, adopt=adopt) + privatedns.plan_changes(client, plan)


def _guarded(
    client: ArmClient,
    out: Outcome,
    what: str,
    read: Callable[[int], Any],
    build: Callable[[Any, int], dict[str, Any] | None],
    put: Callable[[dict[str, Any], str | None], Any],
) -> bool:
    """Read, build the body from that read, PUT it with If-Match on the read's etag.

    ``read(n)``/``build(current, n)`` get the number of the try (0: the first); ``build`` returns
    None when nothing is left to do on the fresh copy. 412: read again and rebuild (at most
    MAX_412_RETRIES times). Busy: wait (Retry-After or back-off), read again, rebuild, until the
    client's deadline. Returns whether a PUT succeeded.
    """
    tries = busy = 0
    while True:
        current = read(tries + busy)
        body = build(current, tries + busy)
        if body is None:
            return False
        etag = (current or {}).get("etag") if isinstance(current, dict) else None
        try:
            put(body, etag)
            out.writes += 1
            return True
        except ArmBusy as exc:
            # Not counted as a write: ARM did not take it (counted in busy_retries).
            client.wait_busy(exc, busy)  # counted in client.busy_retries
            busy += 1
        except EtagMismatch:
            out.writes += 1
            if tries == MAX_412_RETRIES:
                raise AzureError(
                    f"{what} kept changing under nestnet ({MAX_412_RETRIES + 1} tries); nothing of it was lost, "
                    "try again later"
                ) from None
            tries += 1
            out.retries_412 += 1


def apply(
    client: ArmClient,
    want: Desired,
    obs: Observed,
    changes: list[Change],
    *,
    prune_foreign: bool = False,
    adopt: bool = False,
) -> Outcome:
    """Execute ``changes`` (as computed by ``diff`` from ``obs``)."""
    out = Outcome()
    busy_before = client.busy_retries
    table_changes = [c for c in changes if c.kind in ("route_table", "route")]
    table_id = client.table_id(want.table) if want.table else ""
    if not want.table_leaving:
        _apply_table(client, want, obs, table_changes, out, table_id, prune_foreign, adopt)
    for c in changes:
        if c.kind == "subnet" and _write_subnet(client, out, want, c, table_id):
            out.applied.append(c)
    from . import publicip

    if any(c.kind == "public_ip" and c.action == "create" for c in changes):  # before the NICs naming them
        publicip.apply(client, want, obs, changes, out, want.location or _location(obs))
    _apply_nics(client, want, obs, changes, out, table_id, prune_foreign, adopt)
    if want.table_leaving:  # routed -> nic-prefix: every prefix is in place before its route goes
        _apply_table(client, want, obs, table_changes, out, table_id, prune_foreign, adopt)
    publicip.apply_rules(client, want, changes, out)
    publicip.apply_deletes(client, obs, changes, out)
    out.busy_retries = client.busy_retries - busy_before
    from . import privatedns

    dns = privatedns.apply(client, want.fabric, changes)
    out.writes += len(dns)
    out.applied += dns
    return out


def _apply_table(client: ArmClient, want: Desired, obs: Observed, table_changes: list[Change], out: Outcome,
                 table_id: str, prune_foreign: bool, adopt: bool) -> None:
    """The route table's one If-Match PUT, built from the table the diff was shown for."""
    if table_changes and want.table:
        table_name = want.table
        location = want.location or _location(obs)

        def read_table(n: int) -> Any:
            # The first PUT is built from the table the diff was shown for; later ones from a fresh GET.
            return obs.table if n == 0 else client.get_route_table(table_name)

        written: list[Change] = []  # what the body of the last PUT tried carries

        def build_table(table: Any, n: int) -> dict[str, Any] | None:
            todo = table_changes
            if n:
                # Re-computed on the fresh table: what is written (and reported) may differ from
                # what was shown, e.g. another writer's new nestnet route is deleted.
                fresh = diff(want, replace(obs, table=table), table_id, prune_foreign=prune_foreign, adopt=adopt)
                todo = [c for c in fresh if c.kind in ("route_table", "route")]
            written[:] = todo
            return route_table_body(want, table, todo, location) if todo else None

        if _guarded(client, out, f"route table {table_name!r}", read_table, build_table,
                    lambda body, etag: client.put_route_table(table_name, body, etag)):
            out.applied += written


def _write_subnet(client: ArmClient, out: Outcome, want: Desired, c: Change, table_id: str) -> bool:
    """(Dis)associate one subnet: GET it, change only ``routeTable``, PUT with its etag. Returns
    whether it was written (not when someone else did it meanwhile)."""

    def build(subnet: Any, n: int) -> dict[str, Any] | None:
        current = (((subnet or {}).get("properties") or {}).get("routeTable") or {}).get("id")
        ours = bool(current) and name_key(current) == name_key(table_id)
        if c.action == "associate":
            if ours:
                return None  # someone did it meanwhile
            if current:
                raise AzureError(
                    f"subnet {c.name!r} was associated with route table {current.rsplit('/', 1)[-1]!r} while nestnet "
                    "was working; nestnet does not replace it"
                )
            return subnet_body(subnet, table_id)
        return subnet_body(subnet, None) if ours else None

    return _guarded(client, out, f"subnet {c.name!r} of {want.vnet!r}", lambda n: client.get_subnet(want.vnet, c.name),
                    build, lambda body, etag: client.put_subnet(want.vnet, c.name, body, etag))


def _apply_nics(
    client: ArmClient, want: Desired, obs: Observed, changes: list[Change], out: Outcome, table_id: str,
    prune_foreign: bool, adopt: bool = False,
) -> None:
    """One etag-guarded PUT per NIC that changes, in an order where freed addresses go first."""
    pending = {n: [c for c in changes if c.target_nic == n] for n in {c.target_nic for c in changes} if n}
    for nic, deletes_only in nic_write_order(changes):
        first = [c for c in pending[nic] if c.action == "delete"] if deletes_only else pending[nic]
        written: list[Change] = []

        def build(have: Any, n: int, nic: str = nic, deletes_only: bool = deletes_only,
                  first: list[Change] = first, written: list[Change] = written) -> dict[str, Any] | None:
            todo = first
            if n:
                # Someone else wrote the NIC: redo only this NIC's part of the diff on the fresh copy.
                nics = {n: v for n, v in obs.nics.items() if name_key(n) != name_key(nic)}
                fresh = diff(want, replace(obs, nics={**nics, nic: have}), table_id,
                             prune_foreign=prune_foreign, adopt=adopt)
                todo = [c for c in fresh if c.target_nic == nic and (c.action == "delete" or not deletes_only)]
            written[:] = todo
            # nic_body applies each change idempotently to the NIC as just read.
            return nic_body(have, todo) if todo else None

        if _guarded(client, out, f"network interface {nic!r}", lambda n, nic=nic: client.get_nic(nic), build,
                    lambda body, etag, nic=nic: client.put_nic(nic, body, etag)):
            # A NIC written twice (deletions first) repeats them in its second body: listed once.
            out.applied += [c for c in written if c not in out.applied]


def _location(obs: Observed) -> str:
    loc = (obs.vnet or {}).get("location")
    if not loc:
        raise AzureError("azure.location is not set and the virtual network's location is unknown; set azure.location")
    return str(loc)


def reconcile(
    client: ArmClient, plan: Any, *, prune_foreign: bool = False, adopt: bool = False
) -> tuple[list[Change], Outcome]:
    want, obs, changes = plan_changes(client, plan, prune_foreign=prune_foreign, adopt=adopt)
    return changes, apply(client, want, obs, changes, prune_foreign=prune_foreign, adopt=adopt)
