"""The spec's ``aws:`` section: where the fabric lives in EC2.

EC2 names resources by id (``vpc-…``, ``subnet-…``, ``rtb-…``, ``eni-…``, ``i-…``); people name
them with the ``Name`` tag. Every reference here takes either: an id is used as it is, anything
else is looked up by its ``Name`` tag in the VPC (exactly one match, or nestnet stops before any
write). The core's ``subnets[].name`` is the subnet's Name tag (or ``aws.subnet_ids`` maps it to an
id); a host's ``nic`` is its ENI (id or Name tag), or ``aws.instances`` names its instance, whose
primary ENI (device index 0) is then the host's.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

try:  # the spec's shared base (specbase.py once the cloud seam has moved it there)
    from ...specbase import _Model
except ImportError:  # pragma: no cover - before that move
    from ...spec import _Model  # type: ignore[no-redef]

# AWS Region names: us-east-1, eu-west-3, ap-southeast-5, us-gov-west-1, cn-north-1, ...
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
ID_PREFIXES = ("vpc-", "subnet-", "rtb-", "eni-", "i-")
# A Name tag value: up to 256 Unicode characters (EC2 user guide, "Tag restrictions"); nestnet
# keeps it to printable characters without quotes, so it can stand in a shell script and HCL.
NAME_RE = re.compile(r"^[^\"'`$\\\s][^\"'`$\\]{0,254}[^\"'`$\\\s]?$")


def _region(v: str) -> str:
    if not REGION_RE.match(v):
        raise ValueError("not an AWS Region name (e.g. us-east-1, eu-west-3)")
    return v


def _ref(v: str) -> str:
    if not NAME_RE.match(v):
        raise ValueError("expected an EC2 id (vpc-…, rtb-…, eni-…, i-…) or a Name tag without quotes, '$' or '\\'")
    return v


Ref = Annotated[str, AfterValidator(_ref)]


class AwsSpec(_Model):
    region: Annotated[str, AfterValidator(_region)]
    vpc: Ref
    cidr_blocks: list[str] = Field(min_length=1)  # the VPC's IPv4 CIDR blocks, compared with EC2 before any write
    # subnet name -> its route table (id or Name tag): the tables `routed` mode writes to
    route_tables: dict[str, Ref] = Field(default_factory=dict)
    subnet_ids: dict[str, Ref] = Field(default_factory=dict)  # subnet name -> subnet id, when not its Name tag
    instances: dict[str, Ref] = Field(default_factory=dict)  # host name -> instance (id or Name tag)
    # The hosts' instance type, for the addresses per ENI before any write (default: each
    # instance's own type, as EC2 reports it)
    instance_type: str | None = None
    max_routes: int = Field(50, ge=1, le=1000)  # EC2's default quota of routes per table is 50
    # subnet name -> how its route table reaches the internet: "nat-gateway" (0.0.0.0/0 to a NAT
    # gateway: an ENI's own addresses leave translated) or "internet-gateway" (0.0.0.0/0 to the
    # VPC's internet gateway: only a primary address with a public IPv4 address); a subnet not
    # named has no internet (docs/decisions/0031)
    internet: dict[str, Literal["nat-gateway", "internet-gateway"]] = Field(default_factory=dict)
    # hosts and endpoints whose primary ENI has a public IPv4 address (auto-assigned or an Elastic IP)
    public_ips: list[str] = Field(default_factory=list)

    @property
    def private_dns_zone(self) -> str | None:
        """What the core asks every cloud section: nestnet keeps no DNS records on AWS (yet)."""
        return None


SECTION = AwsSpec
