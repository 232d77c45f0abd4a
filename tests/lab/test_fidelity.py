"""The lab fails the way Azure fails (DESIGN §3): each test builds a fabric and asserts real pings."""

from __future__ import annotations

import subprocess

import pytest

from nestnet import lab
from nestnet.faults import Fault
from nestnet.lab.topology import Topology

from .conftest import red, seed

pytestmark = pytest.mark.root


def test_nic_forwarding_off_breaks_nested_vms_across_hosts_but_not_the_hosts(make_lab):
    plan = make_lab(seed())
    assert red(plan) == set()
    lab.apply_fault(plan, Fault("nic-forwarding-off", "hostb"))
    broken = red(plan)
    assert {("vma", "vmb"), ("vmb", "vma")} <= broken
    assert ("hosta", "hostb") not in broken and ("hostb", "hosta") not in broken
    # hostb's own VM still reaches hostb: nothing crosses hostb's NIC
    assert ("vmb", "hostb") not in broken


def test_subnet_without_route_table_reaches_hosts_not_nested_vms(make_lab):
    spec = seed()
    spec["subnets"][1]["route_table"] = False
    plan = make_lab(spec)
    assert red(plan) == {("mgmt", "vma"), ("mgmt", "vmb"), ("vma", "mgmt"), ("vmb", "mgmt")}


def test_subnet_guest_style_needs_proxy_arp_for_same_subnet_destinations(make_lab):
    spec = seed()
    spec["nested"]["guest_style"] = "subnet"
    plan = make_lab(spec)
    assert red(plan) == set()
    lab.apply_fault(plan, Fault("no-proxy-arp", "hosta"))
    broken = red(plan)
    # same /24 as the guest: it ARPs for them itself, and nobody on the bridge answers
    for other in ("hostb", "vmb"):
        assert ("vma", other) in broken and (other, "vma") in broken
    # its own host, another subnet and the internet go through the gateway: still fine
    for ok in ("hosta", "mgmt", "internet"):
        assert ("vma", ok) not in broken


def test_nested_vm_bridged_onto_the_uplink_without_guards_cannot_send(make_lab):
    spec = seed()
    spec["vms"] = [v for v in spec["vms"] if v["host"] != "hosta"]
    plan = make_lab(spec)
    topo = Topology.from_plan(plan)
    host, rogue = topo.ns("hosta"), topo.ns("rogue")  # under the lab's prefix: lab down removes it
    nic = next(n for n in topo.nics if n.node == "hosta")

    def ip(ns: str, *args: str) -> None:
        subprocess.run(["ip", "-n", ns, *args], check=True)

    subprocess.run(["ip", "netns", "add", rogue], check=True)
    # HPE-style bridge holding the uplink, no L2 guards: the guest's frames reach Azure as they are
    ip(host, "addr", "flush", "dev", "eth1")
    ip(host, "link", "add", "brup", "address", nic.mac, "type", "bridge")
    ip(host, "link", "set", "eth1", "master", "brup")
    ip(host, "link", "add", "vnr", "type", "veth", "peer", "name", "eth0", "netns", rogue)
    ip(host, "link", "set", "vnr", "master", "brup", "up")
    ip(host, "link", "set", "brup", "up")
    ip(host, "addr", "add", f"{nic.ip}/24", "dev", "brup")
    ip(host, "route", "replace", "default", "via", str(nic.gateway))
    ip(rogue, "link", "set", "eth0", "address", "52:54:00:00:01:15", "up")
    ip(rogue, "addr", "add", "10.0.1.21/24", "dev", "eth0")
    ip(rogue, "route", "add", "default", "via", str(nic.gateway))

    def ping(ns: str, dst: str) -> bool:
        return subprocess.run(["ip", "netns", "exec", ns, "ping", "-c1", "-W1", dst], capture_output=True).returncode == 0

    assert ping(host, "10.0.1.11"), "the host itself (the NIC's MAC) still gets through the same bridge"
    assert not ping(rogue, "10.0.1.11"), "the guest's own source MAC must be dropped by the fabric"
    counter = subprocess.run(
        ["ip", "netns", "exec", topo.sdn_ns, "nft", "list", "counter", "netdev", "fabricmac", "macdrop"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "packets 0 " not in counter


@pytest.mark.parametrize("egress", ["masquerade-outside-vnet", "none"])
def test_nested_vms_reach_the_internet_only_with_egress_masquerade(make_lab, egress):
    spec = seed()
    spec["nested"]["egress"] = egress
    plan = make_lab(spec)
    expected = set() if egress != "none" else {("vma", "internet"), ("vmb", "internet")}
    assert red(plan) == expected


def test_private_ranges_outside_the_vnet_die_in_azure_not_on_the_internet(make_lab):
    """Azure's default None routes (10/8, 172.16/12, 192.168/16, 100.64/10 outside the VNet): a nested
    VM's packet to 192.168.5.5, masqueraded by its host, is dropped by the fabric; nothing of it
    leaves towards the internet. The model says the same, naming the route."""
    import json
    from ipaddress import IPv4Address

    from nestnet.lab.topology import INET_PORT
    from nestnet.model import Model, from_plan
    from nestnet.model.engine import _Flow

    plan = make_lab(seed())
    topo = Topology.from_plan(plan)

    def tx_to_internet() -> int:
        out = subprocess.run(["ip", "-n", topo.sdn_ns, "-s", "-j", "link", "show", INET_PORT],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out)[0]["stats64"]["tx"]["packets"]

    def ping(dst: str) -> bool:
        return subprocess.run(["ip", "netns", "exec", topo.ns("vma"), "ping", "-c2", "-i0.2", "-W1", dst],
                              capture_output=True).returncode == 0

    before = tx_to_internet()
    assert not ping("192.168.5.5") and not ping("100.64.1.1")
    assert tx_to_internet() == before, "the fabric sent a None-route destination to the internet"
    assert ping("203.0.113.10") and tx_to_internet() > before  # the counter does count internet traffic
    vma = plan.vms["vma"]
    leg = Model(from_plan(plan))._leg("vma", vma.ip, IPv4Address("192.168.5.5"), _Flow(), reply=False)
    assert leg.drop is not None and "192.168.0.0/16 has next hop None" in leg.drop.why
