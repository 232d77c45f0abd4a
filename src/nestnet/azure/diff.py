"""Desired Azure state from the Plan, the diff against observed ARM JSON, and the PUT bodies.

Pure: no I/O, no SDK. ``diff`` returns the changes ``nestnet azure diff`` prints and ``apply``
executes; the bodies are built from those changes and the observed JSON, so what is written is
exactly what was shown. Ownership: routes whose name starts with the plan's route prefix, and
the tags on the table. Foreign routes are kept unless ``prune_foreign``; NIC forwarding is only
ever turned on (other things on the NIC may rely on it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any, Mapping

from ..errors import AzureError

TAG_OWNER = "managed-by"
TAG_FABRIC = "nestnet-fabric"


@dataclass(frozen=True)
class WantRoute:
    name: str
    address_prefix: str
    next_hop_ip: str
    next_hop_type: str = "VirtualAppliance"

    def props(self) -> dict[str, str]:
        return {
            "addressPrefix": self.address_prefix,
            "nextHopType": self.next_hop_type,
            "nextHopIpAddress": self.next_hop_ip,
        }


@dataclass(frozen=True)
class Desired:
    fabric: str
    vnet: str
    table: str | None
    location: str | None
    route_prefix: str
    max_routes: int
    routes: tuple[WantRoute, ...]
    subnets: tuple[str, ...]  # to associate with the table
    unassociated: tuple[str, ...]  # plan subnets that must not carry nestnet's table
    nics: tuple[str, ...]  # need IP forwarding

    @property
    def tags(self) -> dict[str, str]:
        return {TAG_OWNER: "nestnet", TAG_FABRIC: self.fabric}


def desired(plan: Any) -> Desired:
    az = plan.azure
    # Only routed mode uses the table; other modes leave whatever exists alone.
    table = az.route_table if plan.mode == "routed" else None
    if az.routes and not table:
        raise AzureError(f"{plan.source or 'spec'}: azure.route_table is not set, but the plan has Azure routes")
    return Desired(
        fabric=plan.name,
        vnet=az.vnet,
        table=table,
        location=az.location,
        route_prefix=az.route_prefix,
        max_routes=az.max_routes,
        routes=tuple(WantRoute(r.name, str(r.address_prefix), str(r.next_hop_ip), r.next_hop_type) for r in az.routes),
        subnets=tuple(az.subnet_associations),
        unassociated=tuple(s for s in plan.subnets if s not in az.subnet_associations) if table else (),
        nics=tuple(az.nic_ip_forwarding),
    )


@dataclass(frozen=True)
class Observed:
    """ARM's answers as REST JSON: the route table (None if missing), the VNet, the NICs by name."""

    table: Mapping[str, Any] | None
    vnet: Mapping[str, Any] | None
    nics: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    action: str  # create | tag | add | update | delete | associate | dissociate | enable-ip-forwarding
    kind: str  # route_table | route | subnet | nic
    name: str
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "kind": self.kind, "name": self.name,
                "before": dict(self.before) if self.before is not None else None,
                "after": dict(self.after) if self.after is not None else None}

    def __str__(self) -> str:
        if self.kind == "route":
            if self.before and self.after:
                return f"{self.action} route {self.name}: {_hop(self.before)} => {_hop(self.after)}"
            return f"{self.action} route {self.name}: {_hop(self.after or self.before)}"
        what = f"{self.action} {self.kind.replace('_', ' ')} {self.name}"
        return f"{what}: {_hop(self.after)}" if self.after else what


def _hop(d: Mapping[str, Any] | None) -> str:
    if not d:
        return "-"
    if "addressPrefix" in d:
        return f"{d['addressPrefix']} -> {d.get('nextHopType')} {d.get('nextHopIpAddress') or ''}".rstrip()
    return ", ".join(f"{k}={v}" for k, v in d.items())


def _props(route: Mapping[str, Any]) -> dict[str, str]:
    p = route.get("properties") or {}
    out = {"addressPrefix": str(p.get("addressPrefix")), "nextHopType": str(p.get("nextHopType"))}
    if p.get("nextHopIpAddress"):
        out["nextHopIpAddress"] = str(p["nextHopIpAddress"])
    return out


def _same_route(have: Mapping[str, str], want: WantRoute) -> bool:
    # Compare on the chosen fields only, prefixes as networks (ARM may normalise the text).
    try:
        same_net = ip_network(have["addressPrefix"], strict=False) == ip_network(want.address_prefix)
    except ValueError:
        same_net = False
    return (
        same_net
        and have["nextHopType"].lower() == want.next_hop_type.lower()
        and have.get("nextHopIpAddress") == want.next_hop_ip
    )


def owned(name: str, prefix: str) -> bool:
    return name.lower().startswith(prefix.lower())


def diff(want: Desired, obs: Observed, table_id: str, *, prune_foreign: bool = False) -> list[Change]:
    """The changes that make ARM match ``want``; raises AzureError for what nestnet must not do."""
    refusals: list[str] = []
    changes: list[Change] = []
    if want.table:
        changes += _table_changes(want, obs.table, prune_foreign, refusals)
    changes += _subnet_changes(want, obs.vnet, table_id, refusals)
    for nic in want.nics:
        have = obs.nics.get(nic)
        if have is None:
            refusals.append(f"network interface {nic!r} was not found in the resource group")
        elif not (have.get("properties") or {}).get("enableIPForwarding"):
            changes.append(Change("enable-ip-forwarding", "nic", nic, {"enableIPForwarding": False}, {"enableIPForwarding": True}))
    if refusals:
        raise AzureError("refusing to change anything: " + "; ".join(refusals))
    return changes


def _table_changes(
    want: Desired, table: Mapping[str, Any] | None, prune_foreign: bool, refusals: list[str]
) -> list[Change]:
    assert want.table
    out: list[Change] = []
    have: dict[str, Mapping[str, Any]] = {}
    if table is None:
        out.append(Change("create", "route_table", want.table, None, {"tags": want.tags}))
    else:
        tags = table.get("tags") or {}
        if tags.get(TAG_FABRIC) not in (None, want.fabric):
            refusals.append(
                f"route table {want.table!r} is tagged for nestnet fabric {tags[TAG_FABRIC]!r}, not {want.fabric!r}"
            )
        if any(tags.get(k) != v for k, v in want.tags.items()):
            out.append(Change("tag", "route_table", want.table, dict(tags), {**tags, **want.tags}))
        have = {r["name"].lower(): r for r in (table.get("properties") or {}).get("routes") or []}
    wanted = {r.name.lower(): r for r in want.routes}
    kept_foreign: list[Mapping[str, Any]] = []
    for key, r in have.items():
        if owned(r["name"], want.route_prefix):
            if key not in wanted:
                out.append(Change("delete", "route", r["name"], _props(r), None))
        elif prune_foreign:
            out.append(Change("delete", "route", r["name"], _props(r), None))
        else:
            kept_foreign.append(r)
    for key, w in wanted.items():
        if key not in have:
            out.append(Change("add", "route", w.name, None, w.props()))
        elif not _same_route(_props(have[key]), w):
            out.append(Change("update", "route", w.name, _props(have[key]), w.props()))
    wanted_nets = {ip_network(w.address_prefix): w.name for w in want.routes}
    for r in kept_foreign:
        try:
            net = ip_network(_props(r)["addressPrefix"], strict=False)
        except ValueError:
            continue
        if net in wanted_nets:
            refusals.append(
                f"foreign route {r['name']!r} in {want.table!r} already covers {net}, which nestnet routes as "
                f"{wanted_nets[net]!r} (remove it, or run with --prune-foreign)"
            )
    total = len(kept_foreign) + len(want.routes)
    if total > want.max_routes:
        refusals.append(
            f"route table {want.table!r} would hold {total} routes ({len(want.routes)} nestnet, "
            f"{len(kept_foreign)} foreign), over max_routes {want.max_routes}"
        )
    return out


def _subnet_changes(
    want: Desired, vnet: Mapping[str, Any] | None, table_id: str, refusals: list[str]
) -> list[Change]:
    if not want.subnets and not want.unassociated:
        return []
    if vnet is None:
        refusals.append(f"virtual network {want.vnet!r} was not found")
        return []
    subnets = {s["name"]: s for s in (vnet.get("properties") or {}).get("subnets") or []}
    out: list[Change] = []
    for name in want.subnets:
        s = subnets.get(name)
        if s is None:
            refusals.append(f"subnet {name!r} was not found in virtual network {want.vnet!r}")
            continue
        current = ((s.get("properties") or {}).get("routeTable") or {}).get("id")
        if current and current.lower() == table_id.lower():
            continue
        if current:
            refusals.append(
                f"subnet {name!r} is associated with another route table ({current.rsplit('/', 1)[-1]!r}); "
                "nestnet does not replace it"
            )
            continue
        out.append(Change("associate", "subnet", name, {"routeTable": None}, {"routeTable": want.table}))
    for name in want.unassociated:
        s = subnets.get(name)
        current = (((s or {}).get("properties") or {}).get("routeTable") or {}).get("id")
        if current and current.lower() == table_id.lower():
            out.append(Change("dissociate", "subnet", name, {"routeTable": want.table}, {"routeTable": None}))
    return out


# -- bodies for the writes: built from the observed JSON plus exactly the listed changes --------

_READONLY = ("etag", "provisioningState", "resourceGuid", "subnets")


def route_table_body(
    want: Desired, table: Mapping[str, Any] | None, changes: list[Change], location: str
) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(dict(table)) if table else {"location": location, "properties": {}}
    body.pop("etag", None)
    props = body.setdefault("properties", {})
    for k in _READONLY:
        props.pop(k, None)
    for c in changes:
        if c.kind == "route_table" and c.after:
            body["tags"] = dict(c.after["tags"]) if c.action == "create" else dict(c.after)
    routes = [
        {"name": r["name"], "properties": {k: v for k, v in (r.get("properties") or {}).items() if k != "provisioningState"}}
        for r in props.get("routes") or []
    ]
    by_name = {r["name"].lower(): i for i, r in enumerate(routes)}
    dropped: set[int] = set()
    for c in changes:
        if c.kind != "route":
            continue
        i = by_name.get(c.name.lower())
        if c.action == "delete" and i is not None:
            dropped.add(i)
        elif c.action == "update" and i is not None and c.after:
            routes[i] = {"name": routes[i]["name"], "properties": dict(c.after)}
        elif c.action == "add" and c.after:
            routes.append({"name": c.name, "properties": dict(c.after)})
    props["routes"] = [r for i, r in enumerate(routes) if i not in dropped]
    return body


def subnet_body(subnet: Mapping[str, Any], table_id: str | None) -> dict[str, Any]:
    body = copy.deepcopy(dict(subnet))
    body.pop("etag", None)
    props = body.setdefault("properties", {})
    props.pop("provisioningState", None)
    if table_id:
        props["routeTable"] = {"id": table_id}
    else:
        props.pop("routeTable", None)
    return body


def nic_body(nic: Mapping[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(dict(nic))
    body.pop("etag", None)
    props = body.setdefault("properties", {})
    props.pop("provisioningState", None)
    props["enableIPForwarding"] = True
    return body
