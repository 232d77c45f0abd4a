"""Plans for AWS tests: the seed's fabric (two hosts in vm-subnet, a management subnet) with an
``aws:`` section, in each AWS mode."""

from __future__ import annotations

import copy
import json
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nestnet.clouds.aws.emulator import Emulator
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


@dataclass
class Ec2Endpoint:
    em: Emulator
    url: str
    ca: str

    def env(self, **extra: str) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.url, "AWS_CA_BUNDLE": self.ca, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", **extra}

    def client(self, region: str = "us-east-1", attempts: int = 5) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("ec2", region_name=region, endpoint_url=self.url, verify=self.ca,
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=Config(retries={"mode": "standard", "max_attempts": attempts}))

    def _call(self, method: str, path: str, doc: Any = None) -> Any:
        ctx = ssl.create_default_context(cafile=self.ca)
        data = None if doc is None else json.dumps(doc).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(req, context=ctx) as resp:  # noqa: S310 - our own HTTPS endpoint
            return json.loads(resp.read() or b"{}")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_emulator/stats")

    def inject(self, rates: dict[str, float], seed: int = 0) -> None:
        self._call("POST", "/_emulator/inject", {"rates": rates, "seed": seed})

    def reset(self) -> None:
        self._call("POST", "/_emulator/reset", {})


@dataclass
class Vpc:
    vpc: str
    subnets: dict[str, str]
    instances: dict[str, str]
    enis: dict[str, str]
    table: str


def make_vpc(client: Any, *, instance_type: str = "c8i.large", cidr: str = "10.0.0.0/16",
             subnets: dict[str, str] | None = None, hosts: dict[str, tuple[str, str]] | None = None) -> Vpc:
    """A VPC with Name-tagged subnets, one route table associated with all of them, and
    instances (Name-tagged, their primary ENI Name-tagged NAME-eni) at fixed addresses."""
    subnets = subnets or {"vm-subnet": "10.0.1.0/24", "mgmt-subnet": "10.0.2.0/24"}
    hosts = hosts or {"vme-kvm-vm1": ("vm-subnet", "10.0.1.10"), "vme-kvm-vm2": ("vm-subnet", "10.0.1.11")}

    def tags(kind: str, name: str) -> list[dict[str, Any]]:
        return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]

    vpc = client.create_vpc(CidrBlock=cidr, TagSpecifications=tags("vpc", "vme-vpc"))["Vpc"]["VpcId"]
    sn = {n: client.create_subnet(VpcId=vpc, CidrBlock=c, TagSpecifications=tags("subnet", n))["Subnet"]["SubnetId"]
          for n, c in subnets.items()}
    rt = client.create_route_table(VpcId=vpc, TagSpecifications=tags("route-table", "vme-rt"))["RouteTable"]["RouteTableId"]
    for s in sn.values():
        client.associate_route_table(RouteTableId=rt, SubnetId=s)
    inst, enis = {}, {}
    for name, (subnet, ip) in hosts.items():
        i = client.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType=instance_type,
                                 SubnetId=sn[subnet], PrivateIpAddress=ip,
                                 TagSpecifications=tags("instance", name))["Instances"][0]
        inst[name] = i["InstanceId"]
        eni = i["NetworkInterfaces"][0]["NetworkInterfaceId"]
        client.create_tags(Resources=[eni], Tags=[{"Key": "Name", "Value": f"{name}-eni"}])
        enis[name] = eni
    return Vpc(vpc, sn, inst, enis, rt)


def example_file(tmp_path: Path, mode: str = "prefix", name: str | None = None) -> Path:
    """examples/aws.yaml in ``mode`` (routed: the pool moved outside the VPC, as ``lab demo`` has it),
    written to ``tmp_path/<mode>.yaml``."""
    from nestnet.clouds.aws.lab import example_spec

    p = tmp_path / f"{mode}.yaml"
    p.write_text(yaml.safe_dump(example_spec(mode, name), sort_keys=False))
    return p
