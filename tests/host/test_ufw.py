"""firewall: ufw — the same policy as iptables rules in marked blocks of UFW's before.rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nestnet import host
from nestnet.host import ufw

from .test_firewall import OUTSIDE_DST, VNET_DST, fabric, ping

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not Path("/etc/ufw/before.rules").exists(), reason="UFW is not installed"),
]


@pytest.fixture
def ufw_root(root):
    (root / "etc/ufw").mkdir(parents=True)
    shutil.copy("/etc/ufw/before.rules", root / ufw.BEFORE_RULES)
    return root


def test_ufw_rules_written_loaded_and_removed(ns, make_plan, ufw_root):
    stock = (ufw_root / ufw.BEFORE_RULES).read_text()
    plan = make_plan(firewall="ufw", egress="none")
    fab, h, vm = fabric(ns, plan, ufw_root)
    assert "nestnet" not in h.sh("nft", "list", "tables").stdout  # no nftables table on a UFW host
    text = (ufw_root / ufw.BEFORE_RULES).read_text()
    assert ufw.strip(text) == stock and text.count(ufw.BEGIN) == 1  # egress none: no nat section
    # Load it as UFW would, under UFW's "default deny routed", in the host's namespace.
    h.sh("iptables-restore", "--test", input=text)
    h.sh("iptables", "-N", "ufw-logging-deny")  # made by UFW's own framework, not before.rules
    h.sh("iptables-restore", "--noflush", input=text)
    h.sh("iptables", "-P", "FORWARD", "DROP")
    h.sh("iptables", "-A", "FORWARD", "-j", "ufw-before-forward")
    assert ping(vm, VNET_DST)
    assert not ping(vm, OUTSIDE_DST)
    vm.sh("ip", "addr", "add", "10.0.1.21/32", "dev", "eth0")
    assert not ping(vm, VNET_DST, src="10.0.1.21")
    assert h.run(host.apply, plan, "h0", ufw_root) == []
    changes = h.run(host.remove, plan, "h0", ufw_root)
    assert "/etc/ufw/before.rules" in [c.key for c in changes]
    assert (ufw_root / ufw.BEFORE_RULES).read_text() == stock


def test_ufw_masquerade_section(make_plan):
    plan = make_plan(firewall="ufw")
    nat, _ = ufw.blocks(plan, plan.hosts["h0"])
    text = ufw.splice(Path("/etc/ufw/before.rules").read_text(), nat, "")
    assert text.index("*nat") < text.index("*filter")
    assert "-A nestnet-masq -d 10.0.0.0/16 -j RETURN\n-A nestnet-masq -j MASQUERADE" in nat
