"""What the lab builds for a Plan, as pure data: namespace names, fabric ports, MACs.

No I/O here: ``Topology.from_plan(plan)`` is a pure function, so names and addresses can be
tested without root, and ``lab down`` can find everything from the lab's name alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from ..errors import UsageError
from ..model.state import INTERNET, INTERNET_IP, OUTBOUND_IP, OUTBOUND_NET
from ..plan import Plan

NS_PREFIX = "nn-"
SDN_NODE = "fabric"  # the namespace that plays the cloud's SDN: nn-<lab>.fabric (its name on the system)
RESERVED = (SDN_NODE, INTERNET)

# The emulated internet: the fabric reaches it through the Internet system route (0.0.0.0/0).
# Its address (INTERNET_IP) and the link to it are the model's, which the lab must match.
INET_LINK_FABRIC = str(OUTBOUND_IP)  # the fabric's public (SNAT) address
INET_LINK_PEER = str(OUTBOUND_NET[254])
INET_LINK_PREFIX = OUTBOUND_NET.prefixlen
INET_PORT = "pinet"
SINK = "vnetsink"  # every unowned VNet address routes here: ARP answered, traffic dropped
ROUTE_TABLE_ID = 100  # the Linux table that plays nestnet's route table in the cloud


def ns_prefix(lab: str) -> str:
    return f"{NS_PREFIX}{lab}."


def ns_name(lab: str, node: str) -> str:
    # '.' never appears in node names, so "<lab>.<node>" cannot collide across labs/nodes.
    return f"{ns_prefix(lab)}{node}"


def port_name(ip: IPv4Address) -> str:
    """The fabric's port for the NIC whose primary address is ``ip`` (<= 15 chars, no dots)."""
    return "n" + ip.packed.hex()


def nic_mac(ip: IPv4Address) -> str:
    """A stable, locally administered MAC for a cloud NIC, from its primary address."""
    b = ip.packed
    return f"02:00:{b[0]:02x}:{b[1]:02x}:{b[2]:02x}:{b[3]:02x}"


@dataclass(frozen=True, slots=True)
class NicPort:
    """One cloud NIC: its port in the fabric namespace and its end in the node namespace."""

    node: str
    nic: str  # the cloud's NIC name (hosts) or the endpoint's name
    port: str  # interface name in the fabric namespace
    ifname: str  # interface name in the node namespace
    mac: str
    ip: IPv4Address  # primary address
    prefix_len: int
    gateway: IPv4Address
    subnet: str
    secondary: tuple[IPv4Address, ...] = ()
    ovs: bool = False  # the node side sits in an OVS bridge (userspace datapath)

    @property
    def ips(self) -> tuple[IPv4Address, ...]:
        return (self.ip, *self.secondary)


@dataclass(frozen=True, slots=True)
class VMPort:
    vm: str
    host: str
    port: str  # the host-side veth, enslaved to the host's bridge


@dataclass(frozen=True, slots=True)
class Topology:
    lab: str
    address_space: tuple[IPv4Network, ...]
    gateways: tuple[IPv4Address, ...]
    nics: tuple[NicPort, ...]
    vm_ports: tuple[VMPort, ...]
    resolvers: tuple[IPv4Address, ...] = ()  # where the cloud's DNS answers (the fabric's lo)

    @classmethod
    def from_plan(cls, plan: Plan) -> Topology:
        for node in plan.node_names:
            if node in RESERVED:
                raise UsageError(f"{plan.source or plan.name}: node name {node!r} is reserved in the lab; rename it")
        secondary: dict[str, list[IPv4Address]] = {}
        for s in getattr(plan.cloud, "secondary_ips", ()):
            secondary.setdefault(s.nic, []).append(s.ip)
        nics = [
            NicPort(
                h.name, h.nic, port_name(h.ip), h.uplink, nic_mac(h.ip), h.ip, h.prefix_len, h.gateway, h.subnet,
                tuple(secondary.get(h.nic, ())), h.bridge_type == "ovs" and h.bridge_has_uplink,
            )
            for h in plan.hosts.values()
        ]
        nics += [
            NicPort(e.name, e.name, port_name(e.ip), "eth0", nic_mac(e.ip), e.ip, e.prefix_len, e.gateway, e.subnet)
            for e in plan.endpoints.values()
        ]
        vm_ports = []
        for h in plan.hosts.values():
            # named by the VM's address, not its index on the host: a VM that moves keeps its port
            vm_ports += [VMPort(vm, h.name, "vn" + plan.vms[vm].ip.packed.hex()) for vm in h.vms]
        return cls(
            lab=plan.name,
            address_space=plan.address_space,
            gateways=tuple(sorted({s.gateway for s in plan.subnets.values()})),
            nics=tuple(nics),
            vm_ports=tuple(vm_ports),
            resolvers=tuple(plan.cloud.resolvers),
        )

    def ns(self, node: str) -> str:
        return ns_name(self.lab, node)

    @property
    def sdn_ns(self) -> str:
        return self.ns(SDN_NODE)

    @property
    def internet_ns(self) -> str:
        return self.ns(INTERNET)

    def nic_of_ip(self, ip: IPv4Address) -> NicPort | None:
        for n in self.nics:
            if ip in n.ips:
                return n
        return None
