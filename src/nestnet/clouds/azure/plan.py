"""Azure's part of the Plan (``plan.azure``): the resource names and what nestnet writes to ARM -
routes to the hosts' blocks, subnet associations, NIC IP forwarding, secondary IP configurations.
Pure; built by ``nestnet.plan.build_plan`` through the cloud seam (``AzureCloud.plan``)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, NamedTuple

from ...mobility import Move, route_name

if TYPE_CHECKING:
    from ...plan import VM, Host, Plan, Subnet
    from ...validate import ResolvedSpec

# Azure DNS (the virtual public IP every VM reaches): the hosts' forwarders ask it, from the
# host's own address, for their nested VMs (docs/decisions/0011).
AZURE_DNS = IPv4Address("168.63.129.16")


class AzureRoute(NamedTuple):
    name: str
    address_prefix: IPv4Network
    next_hop_ip: IPv4Address
    next_hop_type: str = "VirtualAppliance"

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "address_prefix": str(self.address_prefix),
            "next_hop_type": self.next_hop_type,
            "next_hop_ip": str(self.next_hop_ip),
        }


class SecondaryIP(NamedTuple):
    nic: str
    name: str  # the ip configuration's name
    ip: IPv4Address
    subnet: str

    def to_dict(self) -> dict[str, str]:
        return {"nic": self.nic, "name": self.name, "ip": str(self.ip), "subnet": self.subnet}


class NicPrefix(NamedTuple):
    """A host's block as one ip configuration of its NIC (nic-prefix mode: Azure's "Prefix on NIC",
    ``privateIPAddressPrefixLength: 28``; docs/decisions/0028)."""

    nic: str
    name: str  # the ip configuration's name
    prefix: IPv4Network
    subnet: str

    def to_dict(self) -> dict[str, str]:
        return {"nic": self.nic, "name": self.name, "prefix": str(self.prefix), "subnet": self.subnet}


@dataclass(frozen=True, slots=True)
class AzurePlan:
    subscription_id: str | None
    resource_group: str
    location: str | None
    vnet: str
    address_space: tuple[IPv4Network, ...]
    route_table: str | None
    route_prefix: str  # routes nestnet owns are named <route_prefix><host>
    max_routes: int
    max_ip_configs: int  # per NIC (secondary-ip mode)
    routes: tuple[AzureRoute, ...]
    subnet_associations: tuple[str, ...]
    nic_ip_forwarding: tuple[str, ...]
    secondary_ips: tuple[SecondaryIP, ...]
    cloud: str = "public"  # azure.cloud; arm_endpoint / authority_host override it
    arm_endpoint: str | None = None
    authority_host: str | None = None
    private_dns_zone: str | None = None
    nic_prefixes: tuple[NicPrefix, ...] = ()  # nic-prefix mode: one per host

    # what the core reads of any cloud's plan (nestnet.clouds.CloudPlan)
    cloud_name: ClassVar[str] = "azure"  # its key in the plan's JSON, and `plan.azure`
    resolver: ClassVar[IPv4Address] = AZURE_DNS
    resolver_name: ClassVar[str] = "Azure DNS"
    resolvers: ClassVar[tuple[IPv4Address, ...]] = (AZURE_DNS,)  # one virtual IP in every VNet

    def internal_domain(self, lab: str) -> str:
        # Azure-provided name resolution: VMs by name under the VNet's internal suffix
        # (``<id>.<x>.internal.cloudapp.net``; the lab's is named after the fabric)
        return f"{lab}.internal.cloudapp.net"

    def internal_name(self, lab: str, name: str, ip: IPv4Address) -> str:
        return f"{name}.{self.internal_domain(lab)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "location": self.location,
            "vnet": self.vnet,
            "address_space": [str(n) for n in self.address_space],
            "route_table": self.route_table,
            "route_prefix": self.route_prefix,
            "max_routes": self.max_routes,
            "max_ip_configs": self.max_ip_configs,
            "routes": [r.to_dict() for r in self.routes],
            "subnet_associations": list(self.subnet_associations),
            "nic_ip_forwarding": list(self.nic_ip_forwarding),
            "secondary_ips": [s.to_dict() for s in self.secondary_ips],
            **({"nic_prefixes": [x.to_dict() for x in self.nic_prefixes]} if self.nic_prefixes else {}),
            "private_dns_zone": self.private_dns_zone,
        }


def build(
    fabric: ResolvedSpec, subnets: Mapping[str, Subnet], hosts: Mapping[str, Host], vms: Mapping[str, VM],
    moved: tuple[Move, ...],
) -> AzurePlan:
    """Azure's part of the Plan (the cloud seam's ``plan``): the routes to the hosts' blocks and the
    moved VMs, the associations, NIC forwarding and secondary IP configurations of the mode."""
    az, mode = fabric.spec.azure, fabric.spec.nested.mode
    aroutes: tuple[AzureRoute, ...] = ()
    assoc: tuple[str, ...] = ()
    fwd: tuple[str, ...] = ()
    if mode == "routed":
        aroutes = tuple(AzureRoute(f"{az.route_prefix}{h.name}", h.block, h.ip) for h in hosts.values())
        aroutes += tuple(AzureRoute(route_name(az.route_prefix, m.vm), IPv4Network(m.ip), hosts[m.host].ip) for m in moved)
        assoc = tuple(s.name for s in subnets.values() if s.route_table)
        fwd = tuple(h.nic for h in hosts.values())
    secondary: tuple[SecondaryIP, ...] = ()
    if mode == "secondary-ip":
        secondary = tuple(
            SecondaryIP(hosts[v.host].nic, f"{az.route_prefix}{v.name}", v.ip, hosts[v.host].subnet)
            for v in vms.values()
        )
    prefixes: tuple[NicPrefix, ...] = ()
    if mode == "nic-prefix":
        prefixes = tuple(NicPrefix(h.nic, f"{az.route_prefix}{h.name}", h.block, h.subnet) for h in hosts.values())
    return AzurePlan(
        subscription_id=az.subscription_id,
        resource_group=az.resource_group,
        location=az.location,
        vnet=az.vnet,
        address_space=fabric.address_space,
        route_table=az.route_table,
        route_prefix=az.route_prefix,
        max_routes=az.max_routes,
        max_ip_configs=az.max_ip_configs,
        routes=aroutes,
        subnet_associations=assoc,
        nic_ip_forwarding=fwd,
        secondary_ips=secondary,
        cloud=az.cloud,
        arm_endpoint=az.arm_endpoint,
        authority_host=az.authority_host,
        private_dns_zone=az.private_dns_zone,
        nic_prefixes=prefixes,
    )


def azure_plan(plan: Plan) -> AzurePlan:
    """``plan.azure``, typed."""
    cp = plan.cloud
    assert isinstance(cp, AzurePlan), f"not an Azure plan: {cp.cloud_name}"
    return cp
