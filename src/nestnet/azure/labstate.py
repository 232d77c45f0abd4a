"""The emulated fabric's Azure state, read from the ARM emulator: the lab's ``--azure api`` seam.

The lab programs its ``fab`` namespace from an ``nestnet.lab.azure.AzureState`` (user routes,
associated subnets, forwarding NICs). Here that state comes from what the emulator holds, so
the lab's pings turn green only once ``nestnet azure apply`` has written it. Pure over the
emulator's resources; ``fabric_state_from_emulator`` only reads its state file.

Secondary ip configurations are not part of ``AzureState``: the lab's topology takes them from
the plan, so in secondary-ip mode the lab delivers nested VM addresses whatever the emulator holds.
"""

from __future__ import annotations

import json
import sys
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .emulator import DEFAULT_SUBSCRIPTION, NET, STATE_FILE

if TYPE_CHECKING:
    from .emulator import Arm


def fabric_state_from_resources(resources: Mapping[str, Mapping[str, Any]], plan: Any) -> Any:
    """The AzureState the emulator's resources give the plan's VNet, route table and NICs."""
    from ..lab.azure import AzureState

    az = plan.azure
    root = f"/subscriptions/{az.subscription_id or DEFAULT_SUBSCRIPTION}/resourceGroups/{az.resource_group}/providers/{NET}"
    table_id = f"{root}/routeTables/{az.route_table}".lower() if az.route_table else ""
    table = resources.get(table_id) if table_id else None
    routes: dict[IPv4Network, IPv4Address] = {}
    for r in ((table or {}).get("properties") or {}).get("routes") or []:
        p = r.get("properties") or {}
        # The lab models VirtualAppliance user routes (what nestnet writes); others are ignored.
        if p.get("nextHopType") == "VirtualAppliance" and p.get("nextHopIpAddress"):
            routes[IPv4Network(p["addressPrefix"])] = IPv4Address(p["nextHopIpAddress"])
    vnet = resources.get(f"{root}/virtualNetworks/{az.vnet}".lower()) or {}
    associated = frozenset(
        s["name"]
        for s in (vnet.get("properties") or {}).get("subnets") or []
        if table_id and ((s.get("properties") or {}).get("routeTable") or {}).get("id", "").lower() == table_id
    )
    nic_root = f"{root}/networkInterfaces/".lower()
    forwarding = frozenset(
        r["name"]
        for k, r in resources.items()
        if k.startswith(nic_root) and (r.get("properties") or {}).get("enableIPForwarding")
    )
    return AzureState(user_routes=routes, associated_subnets=associated, ip_forwarding_nics=forwarding)


def fabric_state_from_emulator(state_dir: str | Path, plan: Any) -> Any:
    """Read ``STATE_DIR/state.json`` (as the emulator last wrote it) and return the AzureState."""
    path = Path(state_dir) / STATE_FILE
    resources = json.loads(path.read_text())["resources"] if path.exists() else {}
    return fabric_state_from_resources(resources, plan)


def lab_programmer(plan: Any) -> Callable[["Arm"], None]:
    """An ``Arm.on_change`` hook that makes the running lab's fabric namespace match the emulator.

    Runs in the emulator's request thread after each accepted write; a failure is reported on
    stderr and does not fail the ARM request (the write did happen, as it would in Azure).
    """
    from ..lab import fabric
    from ..lab.topology import Topology

    topo = Topology.from_plan(plan)

    def program(arm: "Arm") -> None:
        try:
            fabric.program_ns(topo, fabric_state_from_resources(arm.resources, plan))
        except Exception as exc:  # keep serving: the lab may have been torn down under us
            print(f"nestnet azure emulator: programming lab {plan.name} failed: {exc}", file=sys.stderr, flush=True)

    return program
