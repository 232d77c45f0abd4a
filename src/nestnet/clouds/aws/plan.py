"""AWS's part of the Plan: what EC2 must hold for the fabric, by mode (pure).

    prefix        each host's /28 block as an IPv4 prefix of its ENI: EC2 delivers the block's
                  addresses to the ENI and they pass the source/destination check (no route,
                  no check turned off; DESIGN §5c)
    routed        the pool lies outside the VPC's CIDR blocks; a route per host block to its ENI
                  in the route table of every source subnet, and the ENI's source/destination
                  check off (EC2 drops forwarded packets otherwise)
    secondary-ip  each VM's address as a secondary private address of its host's ENI
    nat           nothing in EC2
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any, ClassVar, Mapping

from .spec import AwsSpec

PREFIX_MODES = ("prefix", "nic-prefix")  # Azure's "Prefix on NIC" is the same building block


@dataclass(frozen=True, slots=True)
class EniPrefix:
    host: str
    eni: str  # the ENI's reference: id or Name tag ("instance:REF" for an instance's primary ENI)
    prefix: IPv4Network

    def to_dict(self) -> dict[str, str]:
        return {"host": self.host, "eni": self.eni, "prefix": str(self.prefix)}


@dataclass(frozen=True, slots=True)
class EniRoute:
    table: str  # id or Name tag
    destination: IPv4Network
    host: str
    eni: str

    def to_dict(self) -> dict[str, str]:
        return {"table": self.table, "destination": str(self.destination), "host": self.host, "eni": self.eni}


@dataclass(frozen=True, slots=True)
class EniAddress:
    host: str
    eni: str
    ip: str
    vm: str

    def to_dict(self) -> dict[str, str]:
        return {"host": self.host, "eni": self.eni, "ip": self.ip, "vm": self.vm}


@dataclass(frozen=True, slots=True)
class AwsPlan:
    region: str
    vpc: str
    cidr_blocks: tuple[IPv4Network, ...]
    mode: str
    pool: IPv4Network
    max_routes: int
    instance_type: str | None
    subnet_ids: tuple[tuple[str, str], ...]  # (subnet name, id or Name tag)
    host_enis: tuple[tuple[str, str, str], ...]  # (host, ENI reference, primary address)
    prefixes: tuple[EniPrefix, ...] = ()
    routes: tuple[EniRoute, ...] = ()
    source_dest_check_off: tuple[str, ...] = ()  # ENI references
    addresses: tuple[EniAddress, ...] = ()
    table_refs: tuple[str, ...] = ()  # every route table aws.route_tables names
    route_tables_by_subnet: tuple[tuple[str, str], ...] = ()  # (subnet name, route table reference)
    internet: tuple[tuple[str, str], ...] = ()  # (subnet name, "nat-gateway" | "internet-gateway")
    public_ips: tuple[str, ...] = ()  # hosts and endpoints with a public IPv4 address on their primary ENI

    cloud_name: ClassVar[str] = "aws"
    # The Amazon DNS server: the VPC's base address plus two, also at 169.254.169.253 (VPC user
    # guide, "Amazon DNS server"); the hosts' forwarders ask the link-local one, the same in every VPC.
    resolver: ClassVar[IPv4Address] = IPv4Address("169.254.169.253")
    resolver_name: ClassVar[str] = "the Amazon VPC DNS server"

    @property
    def resolvers(self) -> tuple[IPv4Address, ...]:
        """Both addresses of the Amazon DNS server: 169.254.169.253 and the primary CIDR block's base plus two."""
        return (self.resolver, self.cidr_blocks[0].network_address + 2)

    def internal_domain(self, lab: str) -> str:
        # EC2's private hostnames (EC2 user guide, "EC2 instance hostname types": IP name):
        # ip-<private IPv4 address, dashed>.ec2.internal in us-east-1, .<region>.compute.internal elsewhere
        return "ec2.internal" if self.region == "us-east-1" else f"{self.region}.compute.internal"

    def internal_name(self, lab: str, name: str, ip: IPv4Address) -> str:
        return f"ip-{str(ip).replace('.', '-')}.{self.internal_domain(lab)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "vpc": self.vpc,
            "cidr_blocks": [str(c) for c in self.cidr_blocks],
            "max_routes": self.max_routes,
            "prefixes": [p.to_dict() for p in self.prefixes],
            "routes": [r.to_dict() for r in self.routes],
            "source_dest_check_off": list(self.source_dest_check_off),
            "secondary_ips": [a.to_dict() for a in self.addresses],
        }


def eni_ref(aws: AwsSpec, host: Any) -> str:
    inst = aws.instances.get(host.name)
    return f"instance:{inst}" if inst else host.nic


def aws_plan(aws: AwsSpec, plan: Any) -> AwsPlan:
    """From the ``aws:`` section and the cloud-neutral parts of a Plan."""
    return build(aws, plan.mode, plan.pool, plan.subnets, plan.hosts, plan.vms)


def build(aws: AwsSpec, mode: str, pool: IPv4Network, subnets: Mapping[str, Any], hosts: Mapping[str, Any],
          vms: Mapping[str, Any]) -> AwsPlan:
    """From the ``aws:`` section and the cloud-neutral parts of the plan (mode, pool, subnets,
    hosts and their blocks, VMs)."""
    enis = {h.name: eni_ref(aws, h) for h in hosts.values()}
    prefixes: list[EniPrefix] = []
    routes: list[EniRoute] = []
    off: list[str] = []
    addresses: list[EniAddress] = []
    if mode in PREFIX_MODES:
        prefixes = [EniPrefix(h.name, enis[h.name], h.block) for h in hosts.values()]
    elif mode == "routed":
        # Every source subnet's table, each once (several subnets may share a table).
        tables = list(dict.fromkeys(aws.route_tables[s.name] for s in subnets.values()
                                    if s.route_table and s.name in aws.route_tables))
        for h in hosts.values():
            for p in h.local_prefixes:
                routes += [EniRoute(t, p, h.name, enis[h.name]) for t in tables]
        off = list(dict.fromkeys(enis[h.name] for h in hosts.values()))
    elif mode == "secondary-ip":
        addresses = [EniAddress(vm.host, enis[vm.host], str(vm.ip), vm.name)
                     for vm in vms.values() if vm.ip is not None]
    return AwsPlan(
        region=aws.region,
        vpc=aws.vpc,
        cidr_blocks=tuple(IPv4Network(c) for c in aws.cidr_blocks),
        mode="prefix" if mode in PREFIX_MODES else mode,
        pool=pool,
        max_routes=aws.max_routes,
        instance_type=aws.instance_type,
        subnet_ids=tuple((s, aws.subnet_ids.get(s, s)) for s in subnets),
        host_enis=tuple((h.name, enis[h.name], str(h.ip)) for h in hosts.values()),
        prefixes=tuple(prefixes),
        routes=tuple(routes),
        source_dest_check_off=tuple(off),
        addresses=tuple(addresses),
        table_refs=tuple(dict.fromkeys(aws.route_tables.values())),
        route_tables_by_subnet=tuple(aws.route_tables.items()),
        internet=tuple(aws.internet.items()),
        public_ips=tuple(aws.public_ips),
    )
