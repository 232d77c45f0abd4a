"""observe -> diff -> apply against ARM, through the ``ArmClient`` seam.

Reads are three calls whatever the fabric's size (route table GET, VNet GET with its subnets,
NIC list of the resource group). Writes: one PUT of the whole route table with ``If-Match`` (on
412: re-read the table, recompute its changes, try again, a bounded number of times), one PUT
per subnet to (dis)associate and one PUT per NIC that changes (forwarding off, or secondary ip
configurations to add, re-address or delete), also ``If-Match``-guarded with the same retry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import AzureError
from .arm import ArmClient, EtagMismatch
from .diff import Change, Desired, Observed, desired, diff, nic_body, nic_write_order, route_table_body, subnet_body

MAX_412_RETRIES = 5


def observe(client: ArmClient, want: Desired) -> Observed:
    table = client.get_route_table(want.table) if want.table else None
    vnet = client.get_vnet(want.vnet) if (want.subnets or want.unassociated or (want.table and not want.location)) else None
    # Secondary ip configurations need every NIC of the group: an address may be on any of them.
    nics = {n["name"]: n for n in client.list_nics()} if (want.nics or want.managed_nics) else {}
    return Observed(table, vnet, nics)


@dataclass
class Outcome:
    applied: list[Change] = field(default_factory=list)
    writes: int = 0
    retries_412: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": [c.to_dict() for c in self.applied],
            "writes": self.writes,
            "retries_412": self.retries_412,
        }


def plan_changes(
    client: ArmClient, plan: Any, *, prune_foreign: bool = False, adopt: bool = False
) -> tuple[Desired, Observed, list[Change]]:
    want = desired(plan)
    obs = observe(client, want)
    table_id = client.table_id(want.table) if want.table else ""
    return want, obs, diff(want, obs, table_id, prune_foreign=prune_foreign, adopt=adopt)


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
    table_changes = [c for c in changes if c.kind in ("route_table", "route")]
    table_id = client.table_id(want.table) if want.table else ""
    if table_changes and want.table:
        table = obs.table
        for attempt in range(MAX_412_RETRIES + 1):
            location = want.location or _location(obs)
            body = route_table_body(want, table, table_changes, location)
            etag = table.get("etag") if table else None
            try:
                client.put_route_table(want.table, body, etag)
                out.writes += 1
                out.applied += table_changes
                break
            except EtagMismatch:
                out.writes += 1
                if attempt == MAX_412_RETRIES:
                    raise AzureError(
                        f"route table {want.table!r} kept changing under nestnet ({MAX_412_RETRIES + 1} tries); "
                        "try again later"
                    ) from None
                # Someone else wrote the table: read it again and redo only the table part.
                out.retries_412 += 1
                table = client.get_route_table(want.table)
                fresh = diff(want, Observed(table, obs.vnet, obs.nics), table_id, prune_foreign=prune_foreign, adopt=adopt)
                table_changes = [c for c in fresh if c.kind in ("route_table", "route")]
                if not table_changes:
                    break
    subnets = {s["name"]: s for s in ((obs.vnet or {}).get("properties") or {}).get("subnets") or []}
    for c in changes:
        if c.kind == "subnet":
            s = subnets[c.name]
            client.put_subnet(want.vnet, c.name, subnet_body(s, table_id if c.action == "associate" else None))
            out.writes += 1
            out.applied.append(c)
    _apply_nics(client, want, obs, changes, out, table_id, prune_foreign)
    return out


def _apply_nics(
    client: ArmClient, want: Desired, obs: Observed, changes: list[Change], out: Outcome, table_id: str,
    prune_foreign: bool,
) -> None:
    """One etag-guarded PUT per NIC that changes, in an order where freed addresses go first."""
    current = dict(obs.nics)  # each NIC as last read or written
    pending = {n: [c for c in changes if c.target_nic == n] for n in {c.target_nic for c in changes} if n}
    for nic, deletes_only in nic_write_order(changes):
        todo = [c for c in pending[nic] if c.action == "delete"] if deletes_only else pending[nic]
        for attempt in range(MAX_412_RETRIES + 1):
            if not todo:
                break
            have = current[nic]
            try:
                current[nic] = client.put_nic(nic, nic_body(have, todo), have.get("etag"))
                out.writes += 1
                break
            except EtagMismatch:
                out.writes += 1
                if attempt == MAX_412_RETRIES:
                    raise AzureError(
                        f"network interface {nic!r} kept changing under nestnet ({MAX_412_RETRIES + 1} tries); "
                        "try again later"
                    ) from None
                # Someone else wrote the NIC: read it again and redo only this NIC's part.
                out.retries_412 += 1
                current[nic] = client.get_nic(nic)
                fresh = diff(want, Observed(obs.table, obs.vnet, current), table_id, prune_foreign=prune_foreign)
                todo = [c for c in fresh if c.target_nic == nic and (c.action == "delete" or not deletes_only)]
        if not deletes_only:
            out.applied += pending[nic]


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
