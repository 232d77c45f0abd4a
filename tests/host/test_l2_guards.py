"""bridge_has_uplink: the L2 guards of DESIGN 3.4, on a Linux bridge (nft bridge table) and on
OVS (flows with nestnet's cookie)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from nestnet import guest, host
from nestnet.host import ovsflows

from .test_firewall import VNET_DST, ping

pytestmark = pytest.mark.root
needs_ovs = pytest.mark.skipif(not shutil.which("ovs-vswitchd"), reason="Open vSwitch is not installed")


def _counter(text: str, rule: str) -> int:
    m = re.search(re.escape(rule) + r" counter packets (\d+)", text)
    assert m, text
    return int(m.group(1))


def test_linux_bridge_holding_the_uplink(ns, make_plan, root):
    fab = ns.bare()
    h = ns(peer_ns=fab.name)
    fab.sh("ip", "link", "set", "fab0", "up")
    fab.sh("ip", "addr", "add", "10.0.1.1/24", "dev", "fab0")
    fab.sh("ip", "addr", "add", f"{VNET_DST}/32", "dev", "lo")
    fab.sh("ip", "route", "add", "10.0.1.16/28", "via", "10.0.1.10")
    # the host's uplink sits in bridge "mgmt", which carries the host's address
    h.sh("ip", "addr", "flush", "dev", "eth1")
    h.sh("ip", "link", "add", "mgmt", "type", "bridge")
    h.sh("ip", "link", "set", "eth1", "master", "mgmt")
    h.sh("ip", "link", "set", "mgmt", "up")
    h.sh("ip", "addr", "add", "10.0.1.10/24", "dev", "mgmt")
    h.sh("ip", "route", "add", "default", "via", "10.0.1.1")
    plan = make_plan(bridge_has_uplink=True)
    h.run(host.apply, plan, "h0", root)
    assert h.run(host.apply, plan, "h0", root) == []
    assert "10.0.1.48/28 via 10.0.1.11 dev mgmt proto 201" in h.sh("ip", "-N", "route").stdout.replace("  ", " ")
    vm = ns.bare()
    h.sh("ip", "link", "add", "vm0p", "type", "veth", "peer", "name", "eth0")
    h.sh("ip", "link", "set", "eth0", "netns", vm.name)
    h.sh("ip", "link", "set", "vm0p", "master", "mgmt", "up")
    for argv in guest.ip_commands(plan.vms["vm0"], "eth0"):
        vm.sh(*argv)
    assert h.sh("ping", "-c1", "-W1", "10.0.1.20", check=False).returncode == 0  # the host ARPs for the VM
    assert ping(vm, "10.0.1.10")
    assert ping(vm, VNET_DST)  # routed by the host, out through the same bridge
    rules = h.sh("nft", "list", "table", "bridge", "nestnet").stdout
    assert _counter(rules, 'oifname "eth1"') > 0  # the VM's ARP broadcast never reached the uplink
    assert _counter(rules, 'oifname "eth1" arp daddr ip 10.0.1.16/28') > 0  # nor the host's ARP for the VM
    h.run(host.remove, plan, "h0", root)
    assert "nestnet" not in h.sh("nft", "list", "tables").stdout
    assert "mgmt" in h.sh("ip", "link", "show", "mgmt").stdout  # not nestnet's bridge: kept


@needs_ovs
def test_ovs_bridge_holding_the_uplink(ns, ovs, make_plan, root):
    n = ns()
    ovs(n.name)
    n.sh("ip", "addr", "flush", "dev", "eth1")
    subprocess.run(["ovs-vsctl", "add-br", "mgmt", "--", "set", "bridge", "mgmt", "datapath_type=netdev",
                    "--", "add-port", "mgmt", "eth1"], check=True)
    n.sh("ip", "link", "set", "mgmt", "up")
    n.sh("ip", "addr", "add", "10.0.1.10/24", "dev", "mgmt")
    plan = make_plan(bridge_has_uplink=True, bridge_type="ovs")
    changes = n.run(host.apply, plan, "h0", root)
    assert [c.op for c in changes if c.kind == "flows"] == ["add"]
    dump = n.sh("ovs-ofctl", "dump-flows", "mgmt", ovsflows.MATCH, "--no-stats").stdout
    assert "arp_spa=10.0.1.16/28 actions=drop" in dump and "actions=LOCAL" in dump
    assert n.run(host.apply, plan, "h0", root) == []
    n.run(host.remove, plan, "h0", root)
    assert n.sh("ovs-ofctl", "dump-flows", "mgmt", ovsflows.MATCH, "--no-stats").stdout.strip() == ""
    assert "actions=NORMAL" in n.sh("ovs-ofctl", "dump-flows", "mgmt").stdout  # the owner's flow stays
    assert "mgmt" in subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split()
