"""Azure behind the cloud seam: ``nestnet.clouds.azure`` (ARM reconciler, exports, the one ARM reader)
and the model's Azure data plane, wrapped as they are. Imports of the SDK-facing modules stay
lazy: ``check`` never loads them."""

from __future__ import annotations

import os
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Mapping, cast

from .. import ApplyOptions, Cloud, FaultKind, LabFabric, register
from ...model.state import CloudState
from .dataplane import planned_state
from .facts import reserved_addresses
from .plan import AzurePlan, azure_plan, build

if TYPE_CHECKING:

    from ...mobility import Move
    from ...model.engine import Model
    from ...plan import VM, Host, Plan, Subnet
    from ...validate import ResolvedSpec
    from .arm import ArmClient
    from .diff import Change, Desired, Observed
    from .reconcile import Outcome


class AzureCloud:
    """``Cloud[ArmClient, Desired, Observed, Change, Outcome]``."""

    name: str = "azure"
    export_formats: tuple[str, ...] = ("terraform", "az")

    def plan(
        self, fabric: ResolvedSpec, subnets: Mapping[str, Subnet], hosts: Mapping[str, Host],
        vms: Mapping[str, VM], moved: tuple[Move, ...],
    ) -> AzurePlan:
        return build(fabric, subnets, hosts, vms, moved)

    def client(self, plan: Plan, env: Mapping[str, str] | None = None) -> ArmClient:
        from .arm import ArmClient, settings_for

        # The spec's azure.cloud (endpoint and authority) and the environment, as for `azure diff`.
        return ArmClient(settings_for(plan, os.environ if env is None else env))

    def desired(self, plan: Plan) -> Desired:
        from .diff import desired

        return desired(plan)

    def read(self, client: ArmClient, desired: Desired) -> Observed:
        from .reconcile import observe

        return observe(client, desired)

    def diff(self, client: ArmClient, desired: Desired, observed: Observed,
             options: ApplyOptions = ApplyOptions()) -> list[Change]:
        from .diff import diff

        return diff(desired, observed, client.table_id(desired.table) if desired.table else "",
                    prune_foreign=options.prune_foreign, adopt=options.adopt)

    def apply(self, client: ArmClient, desired: Desired, observed: Observed, changes: list[Change],
              options: ApplyOptions = ApplyOptions()) -> Outcome:
        from .reconcile import apply

        return apply(client, desired, observed, changes, prune_foreign=options.prune_foreign, adopt=options.adopt)

    def export(self, plan: Plan, fmt: str) -> str:
        from .export import az_script, terraform

        return {"terraform": terraform, "az": az_script}[fmt](plan)

    def planned_state(self, plan: Plan) -> CloudState:
        return planned_state(plan)

    def observed_state(self, plan: Plan, client: ArmClient) -> CloudState:
        """Route table, subnet associations, NIC forwarding and the NSGs on subnets and NICs as ARM
        reports them (4 reads)."""
        from .dataplane import azure_state, with_nsgs

        az = azure_plan(plan)
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

    def rules(self) -> type[Model]:
        from .rules import AzureRules

        return AzureRules

    def lab_fabric(self) -> LabFabric[object]:
        from . import sdn

        return cast("LabFabric[object]", sdn)  # the module is the fabric (its functions)

    def fault_kinds(self) -> Mapping[str, FaultKind]:
        from .faults import FAULT_KINDS

        return FAULT_KINDS


AZURE: Cloud[ArmClient, Desired, Observed, Change, Outcome] = register(AzureCloud())
