"""Azure behind the cloud seam: ``nestnet.clouds.azure`` (ARM reconciler, exports, the one ARM reader)
and the model's Azure data plane, wrapped as they are. Imports of the SDK-facing modules stay
lazy: ``check`` never loads them."""

from __future__ import annotations

import os
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Mapping

from .facts import reserved_addresses
from .plan import AzurePlan, build
from ...model.state import CloudState
from .dataplane import planned_state
from .. import register


class AzureCloud:
    name = "azure"
    export_formats = ("terraform", "az")

    def plan(self, fabric: Any, subnets: Any, hosts: Any, vms: Any, moved: Any) -> AzurePlan:
        return build(fabric, subnets, hosts, vms, moved)

    def client(self, plan: Any, env: Mapping[str, str] | None = None) -> Any:
        from .arm import ArmClient, settings_for

        # The spec's azure.cloud (endpoint and authority) and the environment, as for `azure diff`.
        return ArmClient(settings_for(plan, os.environ if env is None else env))

    def desired(self, plan: Any) -> Any:
        from .diff import desired

        return desired(plan)

    def read(self, client: Any, desired: Any) -> Any:
        from .reconcile import observe

        return observe(client, desired)

    def diff(self, client: Any, desired: Any, observed: Any, **options: Any) -> list[Any]:
        from .diff import diff

        return diff(desired, observed, client.table_id(desired.table) if desired.table else "", **options)

    def apply(self, client: Any, desired: Any, observed: Any, changes: list[Any], **options: Any) -> Any:
        from .reconcile import apply

        return apply(client, desired, observed, changes, **options)

    def export(self, plan: Any, fmt: str) -> str:
        from .export import az_script, terraform

        return {"terraform": terraform, "az": az_script}[fmt](plan)

    def planned_state(self, plan: Any) -> CloudState:
        return planned_state(plan)

    def observed_state(self, plan: Any, client: Any) -> CloudState:
        """Route table, subnet associations, NIC forwarding and the NSGs on subnets and NICs as ARM
        reports them (4 reads)."""
        from .dataplane import azure_state, with_nsgs

        az = plan.azure
        table = client.get_route_table(az.route_table) if az.route_table else None
        vnet = client.get_vnet(az.vnet)
        nics = {n["name"]: n for n in client.list_nics()}
        table_id = client.table_id(az.route_table) if az.route_table else ""
        state = azure_state(self.planned_state(plan), table, vnet, nics, table_id)
        if any(v.exposes for v in plan.vms.values()):  # exposed ports: the public IPs too (one more read)
            from .dataplane import with_public_ips

            state = with_public_ips(state, nics, client.list_public_ips())
        return with_nsgs(state, client.list_nsgs(), az.vnet, vnet, nics)

    def reserved(self, prefix: IPv4Network) -> tuple[IPv4Address, ...]:
        return reserved_addresses(prefix)

    def rules(self) -> type:
        from .rules import AzureRules

        return AzureRules

    def lab_fabric(self) -> Any:
        from . import sdn

        return sdn


AZURE = register(AzureCloud())
