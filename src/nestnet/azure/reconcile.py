"""observe -> diff -> apply against ARM, through the ``ArmClient`` seam.

Reads are three calls whatever the fabric's size (route table GET, VNet GET with its subnets,
NIC list of the resource group). Writes: one PUT of the whole route table with ``If-Match`` (on
412: re-read the table, recompute its changes, try again, a bounded number of times), one PUT
per subnet to (dis)associate and one per NIC whose forwarding is off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import AzureError
from .arm import ArmClient, EtagMismatch
from .diff import Change, Desired, Observed, desired, diff, nic_body, route_table_body, subnet_body

MAX_412_RETRIES = 5


def observe(client: ArmClient, want: Desired) -> Observed:
    table = client.get_route_table(want.table) if want.table else None
    vnet = client.get_vnet(want.vnet) if (want.subnets or want.unassociated or (want.table and not want.location)) else None
    nics = {n["name"]: n for n in client.list_nics()} if want.nics else {}
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


def plan_changes(client: ArmClient, plan: Any, *, prune_foreign: bool = False) -> tuple[Desired, Observed, list[Change]]:
    want = desired(plan)
    obs = observe(client, want)
    table_id = client.table_id(want.table) if want.table else ""
    return want, obs, diff(want, obs, table_id, prune_foreign=prune_foreign)


def apply(
    client: ArmClient,
    want: Desired,
    obs: Observed,
    changes: list[Change],
    *,
    prune_foreign: bool = False,
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
                fresh = diff(want, Observed(table, obs.vnet, obs.nics), table_id, prune_foreign=prune_foreign)
                table_changes = [c for c in fresh if c.kind in ("route_table", "route")]
                if not table_changes:
                    break
    subnets = {s["name"]: s for s in ((obs.vnet or {}).get("properties") or {}).get("subnets") or []}
    for c in changes:
        if c.kind == "subnet":
            s = subnets[c.name]
            client.put_subnet(want.vnet, c.name, subnet_body(s, table_id if c.action == "associate" else None))
        elif c.kind == "nic":
            nic = obs.nics[c.name]
            client.put_nic(c.name, nic_body(nic), nic.get("etag"))
        else:
            continue
        out.writes += 1
        out.applied.append(c)
    return out


def _location(obs: Observed) -> str:
    loc = (obs.vnet or {}).get("location")
    if not loc:
        raise AzureError("azure.location is not set and the virtual network's location is unknown; set azure.location")
    return str(loc)


def reconcile(client: ArmClient, plan: Any, *, prune_foreign: bool = False) -> tuple[list[Change], Outcome]:
    want, obs, changes = plan_changes(client, plan, prune_foreign=prune_foreign)
    return changes, apply(client, want, obs, changes, prune_foreign=prune_foreign)
