"""Azure as the seed document's manual procedure leaves it, written through the ARM API.

The seed builds its route table by hand (``az network route-table create`` + one
``az network route-table route create`` per host, named ``to-kvm-vm1-nested``), associates the
subnets and turns IP forwarding on in Terraform. ``build(client, plan)`` writes exactly that
through the ``ArmClient`` seam, so a lab (``lab up --as-seed --azure api``) or a test starts
from the fabric a new user already has: working, but owned by nobody nestnet knows. The table
carries no nestnet tags; the route names do not have nestnet's prefix.
"""

from __future__ import annotations

from typing import Any

from .arm import ArmClient
from .diff import nic_body, subnet_body, Change


def route_name(host: str) -> str:
    """The seed's naming: host ``vme-kvm-vm1`` -> route ``to-kvm-vm1-nested``."""
    return f"to-{host.removeprefix('vme-')}-nested"


def routes(plan: Any) -> list[dict[str, Any]]:
    return [
        {"name": route_name(h.name), "properties": {
            "addressPrefix": str(h.block), "nextHopType": "VirtualAppliance", "nextHopIpAddress": str(h.ip)}}
        for h in plan.hosts.values()
    ]


def build(client: ArmClient, plan: Any) -> int:
    """Write the hand-built fabric of ``plan``; returns the number of writes."""
    az = plan.azure
    writes = 0
    table = client.get_route_table(az.route_table)
    body = {"location": az.location or (client.get_vnet(az.vnet).get("location") or "eastus"),
            "properties": {"routes": routes(plan)}}
    client.put_route_table(az.route_table, body, table.get("etag") if table else None)
    writes += 1
    table_id = client.table_id(az.route_table)
    vnet = client.get_vnet(az.vnet)
    for s in (vnet.get("properties") or {}).get("subnets") or []:
        if s["name"] in az.subnet_associations:
            client.put_subnet(az.vnet, s["name"], subnet_body(s, table_id))
            writes += 1
    nics = {n["name"]: n for n in client.list_nics()}
    for h in plan.hosts.values():
        nic = nics[h.nic]
        if not (nic.get("properties") or {}).get("enableIPForwarding"):
            change = Change("enable-ip-forwarding", "nic", h.nic)
            client.put_nic(h.nic, nic_body(nic, [change]), nic.get("etag"))
            writes += 1
    # The other VMs of the VNet (the mgmt VM) have NICs too: Terraform made them.
    subnets = {s["name"]: s for s in (client.get_vnet(az.vnet).get("properties") or {}).get("subnets") or []}
    for e in plan.endpoints.values():
        name = f"{e.name}-nic"
        if name in nics or e.subnet not in subnets:
            continue
        client.put_nic(name, {"location": body["location"], "properties": {"ipConfigurations": [{
            "name": "ipconfig1", "properties": {
                "primary": True, "privateIPAllocationMethod": "Static", "privateIPAddress": str(e.ip),
                "privateIPAddressVersion": "IPv4", "subnet": {"id": subnets[e.subnet]["id"]}}}]}}, None)
        writes += 1
    return writes
