"""Jobs that configure one node namespace each; every function here runs INSIDE its namespace.

What the lab does itself is what the cloud and cloud-init would do (the NIC's address and default
route, the endpoints, the internet); the KVM host's own configuration is nestnet's host
reconciler, and each nested VM gets exactly the ``ip`` guest config nestnet generates.
"""

from __future__ import annotations

from pathlib import Path

from ..guest import ip_commands
from ..plan import Plan
from ..host import apply as host_apply
from . import ovs
from .sysio import NO_IPV6, ip_batch, write_sysctls
from ..model.state import PUBLIC_STANDIN

EMULATED_PUBLIC = "203.0.113.0/24"  # where the ARM emulator draws public IPs first (emulator/referenced.py)
from .topology import INET_LINK_FABRIC, INET_LINK_PEER, INET_LINK_PREFIX, INTERNET_IP, NicPort, Topology



def _l3_lines(n: NicPort, dev: str) -> list[str]:
    return [f"addr add {n.ip}/{n.prefix_len} dev {dev}", f"route add default via {n.gateway} dev {dev}"]


def _nic_lines(n: NicPort, l3_dev: str | None = None) -> list[str]:
    """The NIC as the cloud's DHCP + cloud-init leave it: MAC (set at creation), address, default route.

    ``l3_dev``: a Linux bridge that holds the uplink and carries the address, as HPE VM Essentials
    or netplan build it before nestnet runs; it keeps the NIC's MAC.
    """
    lines = ["link set lo up", f"link set {n.ifname} up"]
    if l3_dev:
        lines += [
            f"link add {l3_dev} address {n.mac} type bridge",
            f"link set {n.ifname} master {l3_dev}",
            f"link set {l3_dev} up",
        ]
    return lines + _l3_lines(n, l3_dev or n.ifname)


def reconcile(plan: Plan, host_name: str, root: str, ovs_dir: str) -> None:
    """nestnet's host reconciler, pointed at the host's private OVS when it has one."""
    if plan.hosts[host_name].bridge_type == "ovs":
        ovs.use(Path(ovs_dir))
    host_apply(plan, host_name, root=root)


def host(plan: Plan, topo: Topology, nic: NicPort, root: str, ovs_dir: str, hand: str = "") -> None:
    """``hand``: "seed" = as the seed's manual procedure leaves it; "bare" = a fresh host (its
    VMs' bridge only); "" = configured by nestnet's host reconciler."""
    write_sysctls(NO_IPV6)
    # br_netfilter, when loaded on the machine, makes bridged frames cross the nft forward hook
    # in new namespaces; an Ubuntu KVM host has it off unless something loads it.
    write_sysctls({"net.bridge.bridge-nf-call-iptables": "0"}, missing_ok=True)
    h = plan.hosts[nic.node]
    is_ovs = h.bridge_type == "ovs"
    if is_ovs:
        ovs.start(Path(ovs_dir))
    if is_ovs and h.bridge_has_uplink:
        ovs.tx_checksum_off(nic.ifname)
        ip_batch(["link set lo up", f"link set {nic.ifname} up"])
        ovs.add_bridge(h.bridge, nic.mac, [nic.ifname])
        ip_batch([f"link set {h.bridge} up", *_l3_lines(nic, h.bridge)])
    else:
        ip_batch(_nic_lines(nic, h.bridge if h.bridge_has_uplink else None))
    Path(root).mkdir(parents=True, exist_ok=True)
    if hand == "seed":  # the seed's manual procedure instead of nestnet (lab up --as-seed)
        from .seedbuilt import configure

        configure(plan, h.name, root)
    elif hand == "bare":
        from .seedbuilt import configure_bare

        configure_bare(plan, h.name)
    else:
        reconcile(plan, h.name, root, ovs_dir)
    vm_ports(plan, topo, h.name)


def vm_ports(plan: Plan, topo: Topology, host_name: str) -> None:
    """Inside the host: each nested VM's port on the bridge, as libvirt plugs a guest's tap."""
    h = plan.hosts[host_name]
    is_ovs = h.bridge_type == "ovs"
    ports = [p for p in topo.vm_ports if p.host == h.name]
    lines = []
    for vp in ports:
        vm = plan.vms[vp.vm]
        lines.append(f"link add {vp.port} type veth peer name eth0 address {vm.mac} netns {topo.ns(vm.name)}")
        lines += [] if is_ovs else [f"link set {vp.port} master {h.bridge}"]
        lines.append(f"link set {vp.port} up")
    ip_batch(lines)
    if is_ovs:
        for vp in ports:
            ovs.tx_checksum_off(vp.port)
        ovs.add_ports(h.bridge, [vp.port for vp in ports])


def vm(plan: Plan, name: str, dhcp: bool = False) -> None:
    """``dhcp``: leave eth0 to the guest's DHCP client (lab/dhcpclient.py)."""
    write_sysctls(NO_IPV6)
    if plan.hosts[plan.vms[name].host].bridge_type == "ovs":
        ovs.tx_checksum_off("eth0")
    cmds = [] if dhcp else ip_commands(plan.vms[name], "eth0")
    ip_batch(["link set lo up", *(" ".join(c[1:]) for c in cmds)])


def endpoint(nic: NicPort) -> None:
    write_sysctls(NO_IPV6)
    ip_batch(_nic_lines(nic))


def internet() -> None:
    write_sysctls(NO_IPV6)
    # No route back into the VNet on purpose: only SNATed replies find their way.
    ip_batch(
        [
            "link set lo up",
            f"addr add {INTERNET_IP}/32 dev lo",
            f"addr add {INET_LINK_PEER}/{INET_LINK_PREFIX} dev eth0",
            "link set eth0 up",
            # the public IPs' stand-ins (model/state.py) are the cloud's, behind the fabric
            f"route add {PUBLIC_STANDIN} via {INET_LINK_FABRIC} src {INTERNET_IP}",
            f"route add {EMULATED_PUBLIC} via {INET_LINK_FABRIC} src {INTERNET_IP}",  # the ARM emulator's
        ]
    )
