"""AWS behind the cloud seam. boto3 is imported only by the control plane's calls."""

from __future__ import annotations

import os
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any, Mapping

from ...errors import UsageError
from .. import register
from .plan import AwsPlan, build
from .validate import reserved

if TYPE_CHECKING:
    from ...model.state import CloudState
    from .desired import Change, Observed
    from .ec2 import Ec2Client
    from .reconcile import Outcome

def aws_of(plan: Any) -> AwsPlan:
    part = getattr(plan, "cloud", None)
    if not isinstance(part, AwsPlan):
        raise UsageError(f"{getattr(plan, 'source', '') or 'spec'}: not an AWS spec (it has no aws: section)")
    return part


class AwsCloud:
    name = "aws"
    export_formats = ("terraform", "aws-cli")

    def plan(self, fabric: Any, subnets: dict[str, Any], hosts: dict[str, Any], vms: dict[str, Any],
             moved: tuple[Any, ...]) -> AwsPlan:
        return build(fabric.spec.aws, fabric.spec.nested.mode, fabric.pool, subnets, hosts, vms)

    def client(self, plan: Any, env: Mapping[str, str] | None = None) -> "Ec2Client":
        from .ec2 import Ec2Client

        return Ec2Client(aws_of(plan).region, os.environ if env is None else env)

    def desired(self, plan: Any) -> AwsPlan:
        return aws_of(plan)

    def read(self, client: "Ec2Client", desired: AwsPlan) -> "Observed":
        from .reconcile import observe

        return observe(client, desired)

    # ``options``: the seam's ApplyOptions (prune_foreign; adopt means nothing on EC2, whose routes
    # have no names to take over)
    def diff(self, client: "Ec2Client", desired: AwsPlan, observed: "Observed", options: Any = None) -> list["Change"]:
        from .desired import diff

        return diff(desired, observed, prune_foreign=bool(getattr(options, "prune_foreign", False)))

    def apply(self, client: "Ec2Client", desired: AwsPlan, observed: "Observed", changes: list["Change"],
              options: Any = None) -> "Outcome":
        from .reconcile import apply

        return apply(client, desired, observed, changes, prune_foreign=bool(getattr(options, "prune_foreign", False)))

    def export(self, plan: Any, fmt: str) -> str:
        from .export import aws_cli, terraform

        return {"terraform": terraform, "aws-cli": aws_cli}[fmt](aws_of(plan), plan.name)

    def planned_state(self, plan: Any) -> "CloudState":
        from .dataplane import planned_state

        return planned_state(plan)  # type: ignore[no-any-return]

    def observed_state(self, plan: Any, client: Any) -> "CloudState":
        from .dataplane import observed_state
        from .reconcile import observe

        return observed_state(plan, observe(client, aws_of(plan)))  # type: ignore[no-any-return]

    def reserved(self, prefix: IPv4Network) -> tuple[IPv4Address, ...]:
        return reserved(prefix)

    def rules(self) -> type:
        from .rules import AwsRules

        return AwsRules

    def lab_fabric(self) -> Any:
        # The VPC router in the lab: the same SDN namespace as Azure's fabric, programmed from
        # AWS's CloudState (routes to ENIs, prefixes, the check per ENI; docs/decisions/0031).
        from ..azure import sdn

        return sdn


AWS = register(AwsCloud())
