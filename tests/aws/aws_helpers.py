"""Plans for AWS tests: the seed's fabric (two hosts in vm-subnet, a management subnet) with an
``aws:`` section, in each AWS mode."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from nestnet.clouds.aws.plan import AwsPlan, aws_plan
from nestnet.clouds.aws.spec import AwsSpec

AWS = {"region": "us-east-1", "vpc": "vme-vpc", "cidr_blocks": ["10.0.0.0/16"],
       "route_tables": {"vm-subnet": "vme-rt", "mgmt-subnet": "vme-rt"}}
ROUTED_POOL = "100.64.0.0/24"  # outside the VPC: routes to ENIs, as EC2 allows them


def seed_data(mode: str = "prefix") -> dict[str, Any]:
    from importlib import resources

    data = yaml.safe_load(resources.files("nestnet").joinpath("examples/seed.yaml").read_text())
    data = copy.deepcopy(data)
    for h in data["hosts"]:
        h["nic"] = f"{h['name']}-eni"
    if mode == "routed":
        data["nested"]["pool"] = ROUTED_POOL
        data["hosts"][0]["block"] = "100.64.0.16/28"
        data["hosts"][1]["block"] = "100.64.0.48/28"
        data["vms"][0]["ip"] = "100.64.0.20"
        data["vms"][1]["ip"] = "100.64.0.50"
        # Until the spec has `aws:` (clouds-seam), the Azure section stands in for the core's
        # address checks: its space holds the VPC and the pool.
        data["azure"]["address_space"] = ["10.0.0.0/16", ROUTED_POOL]
    data["nested"]["mode"] = {"prefix": "nic-prefix"}.get(mode, mode)
    return data


def plan_for(tmp_path: Path, mode: str = "prefix", data: dict[str, Any] | None = None,
             aws: dict[str, Any] | None = None) -> AwsPlan:
    from nestnet.plan import load_plan

    spec = tmp_path / f"{mode}.yaml"
    spec.write_text(yaml.safe_dump(data or seed_data(mode), sort_keys=False))
    return aws_plan(AwsSpec.model_validate(aws or AWS), load_plan(spec))
