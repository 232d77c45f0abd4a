"""Fixtures: nestnet's EC2 emulator over real HTTPS (moto's server behind it, in this process) and
plain boto3 clients of it.

moto keeps one state per process: the emulator is started once per test process and reset
before each test, so every test starts from an empty EC2."""

from __future__ import annotations

import json
import ssl
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest

from nestnet.clouds.aws.emulator import Emulator


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


@pytest.fixture(scope="session")
def _ec2_emulator(tmp_path_factory):
    em = Emulator(tmp_path_factory.mktemp("ec2")).start()
    try:
        yield em
    finally:
        em.stop()


@pytest.fixture
def ec2(_ec2_emulator) -> Ec2Endpoint:
    """The emulator, empty, its injections off and its route limit EC2's default."""
    ep = Ec2Endpoint(_ec2_emulator, _ec2_emulator.url, str(_ec2_emulator.ca_pem))
    ep.reset()
    _ec2_emulator.front.max_routes = 50
    return ep


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
