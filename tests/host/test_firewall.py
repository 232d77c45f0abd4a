"""Firewall verdicts with real packets: fab (VNet endpoint + an outside address) <- eth1 - host - bridge -> VM."""

from __future__ import annotations

import re

import pytest

from nestnet import guest, host

pytestmark = pytest.mark.root

VNET_DST = "10.0.2.5"  # a VNet address (mgmt subnet)
OUTSIDE_DST = "192.0.2.1"  # outside the VNet: needs the egress masquerade


def fabric(ns, plan, root):
    fab = ns.bare()
    h = ns(peer_ns=fab.name)
    fab.sh("ip", "link", "set", "fab0", "up")
    fab.sh("ip", "addr", "add", "10.0.1.1/24", "dev", "fab0")
    fab.sh("ip", "addr", "add", f"{VNET_DST}/32", "dev", "lo")
    fab.sh("ip", "addr", "add", f"{OUTSIDE_DST}/32", "dev", "lo")
    fab.sh("ip", "route", "add", "10.0.1.16/28", "via", "10.0.1.10")
    h.sh("ip", "route", "add", "default", "via", "10.0.1.1")
    h.run(host.apply, plan, "h0", root)
    vm = ns.bare()
    h.sh("ip", "link", "add", "vm0p", "type", "veth", "peer", "name", "eth0")
    h.sh("ip", "link", "set", "eth0", "netns", vm.name)
    h.sh("ip", "link", "set", "vm0p", "master", "nestbr0", "up")
    for argv in guest.ip_commands(plan.vms["vm0"], "eth0"):
        vm.sh(*argv)
    return fab, h, vm


def ping(vm, dst: str, src: str | None = None) -> bool:
    argv = ["ping", "-c1", "-W1", dst] + (["-I", src] if src else [])
    return vm.sh(*argv, check=False).returncode == 0


def drops(h, chain: str) -> int:
    text = h.sh("nft", "list", "chain", "inet", "nestnet", chain).stdout
    return sum(int(n) for n in re.findall(r"counter packets (\d+) bytes \d+ drop", text))


def test_vnet_passes_outside_dropped_without_egress(ns, make_plan, root):
    plan = make_plan(egress="none")
    fab, h, vm = fabric(ns, plan, root)
    assert ping(vm, VNET_DST)
    assert ping(vm, "10.0.1.10")
    assert drops(h, "from_vms") == 0
    assert not ping(vm, OUTSIDE_DST)
    assert drops(h, "from_vms") == 1
    # from outside the VNet, a new connection to the VM is dropped too
    assert fab.sh("ping", "-c1", "-W1", "-I", OUTSIDE_DST, "10.0.1.20", check=False).returncode != 0
    assert drops(h, "to_vms") == 1
    assert fab.sh("ping", "-c1", "-W1", "-I", VNET_DST, "10.0.1.20", check=False).returncode == 0


def test_outside_passes_masqueraded_with_egress(ns, make_plan, root):
    plan = make_plan(egress="masquerade-outside-vnet")
    fab, h, vm = fabric(ns, plan, root)
    fab.sh("nft", "add table inet t; add chain inet t c { type filter hook input priority 0; }; add rule inet t c ip saddr 10.0.1.10 icmp type echo-request counter")
    assert ping(vm, OUTSIDE_DST)
    assert "packets 1" in fab.sh("nft", "list", "chain", "inet", "t", "c").stdout  # arrived from the host's IP
    assert ping(vm, VNET_DST)  # inside the VNet: not translated
    assert "packets 1" in fab.sh("nft", "list", "chain", "inet", "t", "c").stdout


def test_spoofed_source_is_dropped(ns, make_plan, root):
    plan = make_plan()
    fab, h, vm = fabric(ns, plan, root)
    vm.sh("ip", "addr", "add", "10.0.1.21/32", "dev", "eth0")  # inside the block, not this VM's
    vm.sh("ip", "addr", "add", "10.0.1.200/32", "dev", "eth0")  # outside the block
    assert ping(vm, VNET_DST)
    assert not ping(vm, VNET_DST, src="10.0.1.21")
    assert drops(h, "forward") == 1
    # outside the block altogether: dropped (here the kernel's rp_filter may get to it first)
    assert not ping(vm, VNET_DST, src="10.0.1.200")


def test_subnet_style_guest_reaches_its_own_subnet_by_proxy_arp(ns, make_plan, root):
    """A /24 guest ARPs for 10.0.1.1 directly; only the host's proxy ARP makes that work."""
    plan = make_plan(guest_style="subnet")
    fab, h, vm = fabric(ns, plan, root)
    assert vm.sh("ip", "-4", "addr", "show", "eth0").stdout.count("10.0.1.20/24") == 1
    assert ping(vm, "10.0.1.1")
    assert ping(vm, VNET_DST)
    h.sh("sysctl", "-w", "net.ipv4.conf.nestbr0.proxy_arp=0")
    vm.sh("ip", "neigh", "flush", "dev", "eth0")
    assert not ping(vm, "10.0.1.1")
    assert [c.key for c in h.run(host.diff, plan, "h0", root)] == ["net.ipv4.conf.nestbr0.proxy_arp"]
