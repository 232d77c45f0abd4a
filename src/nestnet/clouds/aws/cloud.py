"""AWS behind the cloud seam. boto3 is imported only by the control plane's calls."""

from __future__ import annotations

import os
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Mapping, cast

from .. import ApplyOptions, Cloud, LabFabric, register
from .plan import AwsPlan, build
from .validate import reserved

if TYPE_CHECKING:
    from .. import FaultKind

    from ...mobility import Move
    from ...model.engine import Model
    from ...model.state import CloudState
    from ...plan import VM, Host, Plan, Subnet
    from ...validate import ResolvedSpec
    from .desired import Change, Observed
    from .ec2 import Ec2Client
    from .reconcile import Outcome


def aws_of(plan: Plan) -> AwsPlan:
    from .. import refuse_other

    refuse_other(plan, "aws")
    return cast(AwsPlan, plan.cloud)


class AwsCloud:
    """``Cloud[Ec2Client, AwsPlan, Observed, Change, Outcome]``."""

    name: str = "aws"
    export_formats: tuple[str, ...] = ("terraform", "aws-cli")

    def plan(
        self, fabric: ResolvedSpec, subnets: Mapping[str, Subnet], hosts: Mapping[str, Host],
        vms: Mapping[str, VM], moved: tuple[Move, ...],
    ) -> AwsPlan:
        return build(fabric.spec.aws, fabric.spec.nested.mode, fabric.pool, subnets, hosts, vms)

    def client(self, plan: Plan, env: Mapping[str, str] | None = None) -> "Ec2Client":
        from .ec2 import Ec2Client

        return Ec2Client(aws_of(plan).region, os.environ if env is None else env)

    def desired(self, plan: Plan) -> AwsPlan:
        return aws_of(plan)

    def read(self, client: "Ec2Client", desired: AwsPlan) -> "Observed":
        from .reconcile import observe

        return observe(client, desired)

    # ``options.adopt`` means nothing on EC2, whose routes have no names to take over
    def diff(self, client: "Ec2Client", desired: AwsPlan, observed: "Observed",
             options: ApplyOptions = ApplyOptions()) -> list["Change"]:
        from .desired import diff

        return diff(desired, observed, prune_foreign=options.prune_foreign)

    def apply(self, client: "Ec2Client", desired: AwsPlan, observed: "Observed", changes: list["Change"],
              options: ApplyOptions = ApplyOptions()) -> "Outcome":
        from .reconcile import apply

        return apply(client, desired, observed, changes, prune_foreign=options.prune_foreign)

    def export(self, plan: Plan, fmt: str) -> str:
        from .export import aws_cli, terraform

        return {"terraform": terraform, "aws-cli": aws_cli}[fmt](aws_of(plan), plan.name)

    def planned_state(self, plan: Plan) -> "CloudState":
        from .dataplane import planned_state

        return planned_state(plan)  # type: ignore[no-any-return]

    def observed_state(self, plan: Plan, client: "Ec2Client") -> "CloudState":
        from .dataplane import observed_state
        from .reconcile import observe

        return observed_state(plan, observe(client, aws_of(plan)))  # type: ignore[no-any-return]

    def reserved(self, prefix: IPv4Network) -> tuple[IPv4Address, ...]:
        return reserved(prefix)

    def rules(self) -> type[Model]:
        from .rules import AwsRules

        return AwsRules

    def lab_fabric(self) -> LabFabric[object]:
        # The VPC router in the lab: Azure's SDN namespace programmed from AWS's CloudState (routes
        # to ENIs, prefixes, the check per ENI) with EC2's internet on top (docs/decisions/0031).
        from . import sdn

        return cast("LabFabric[object]", sdn)  # the module is the fabric (its functions)

    def fault_kinds(self) -> Mapping[str, "FaultKind"]:
        from .faults import FAULT_KINDS

        return FAULT_KINDS


AWS: Cloud[Ec2Client, AwsPlan, Observed, Change, Outcome] = register(AwsCloud())
