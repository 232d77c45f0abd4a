"""Azure as ARM reports it, in the model's shape: the one reader of ARM JSON for the data plane.

``azure_state(planned, table, vnet, nics, table_id)`` puts ARM's user routes, subnet associations
and NIC IP forwarding into the planned ``nestnet.model.state.CloudState``. Pure: the caller does
the reads (``doctor --azure`` through ``ArmClient``: 3 GETs; the lab from the emulator's
resources). The same JSON shapes as the SDK's ``as_dict()`` and the REST API (``properties``).
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Mapping

from ..model.state import CloudState, UserRoute


def _props(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("properties") or {}


def _ipv4_net(text: str) -> IPv4Network | None:
    """A route's prefix; None for what the model does not route (service tags, IPv6)."""
    try:
        return IPv4Network(text, strict=False)
    except ValueError:
        return None


def user_routes(table: Mapping[str, Any] | None) -> tuple[UserRoute, ...]:
    """The table's VirtualAppliance routes (what nestnet writes; the model routes only those)."""
    return tuple(
        UserRoute(r["name"], net, IPv4Address(p["nextHopIpAddress"]))
        for r in _props(table).get("routes") or []
        if (p := _props(r)).get("nextHopType", "").lower() == "virtualappliance" and p.get("nextHopIpAddress")
        and (net := _ipv4_net(p.get("addressPrefix", ""))) is not None
    )


def associated_subnets(vnet: Mapping[str, Any] | None, table_id: str) -> frozenset[str]:
    """Subnets of ``vnet`` whose route table is ``table_id`` (ARM ids compare case-insensitively)."""
    return frozenset(
        s["name"] for s in _props(vnet).get("subnets") or []
        if table_id and (_props(s).get("routeTable") or {}).get("id", "").lower() == table_id.lower()
    )


def azure_state(
    planned: CloudState,
    table: Mapping[str, Any] | None,
    vnet: Mapping[str, Any] | None,
    nics: Mapping[str, Mapping[str, Any]],
    table_id: str,
) -> CloudState:
    """The planned CloudState with ARM's routes, associations and NIC forwarding in place.

    ``nics``: NIC name -> NIC resource. A NIC ARM does not list does not forward (it does not
    exist; endpoints' NICs, whose names the spec does not give, never forward in the plan)."""
    associated = associated_subnets(vnet, table_id)
    return replace(
        planned,
        user_routes=user_routes(table),
        subnets={k: replace(s, route_table=k in associated) for k, s in planned.subnets.items()},
        nics={
            k: replace(n, ip_forwarding=k in nics and bool(_props(nics[k]).get("enableIPForwarding")))
            for k, n in planned.nics.items()
        },
    )
