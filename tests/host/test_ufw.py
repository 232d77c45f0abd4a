"""firewall: ufw — the same policy as iptables rules in marked blocks of UFW's before.rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nestnet import host
from nestnet.errors import HostError
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


def test_nftables_mode_with_ufw_active_is_refused_naming_ufw_and_the_fix(ns, make_plan, root):
    """Issue 21 bug 2: UFW enabled for real (ip filter INPUT and FORWARD policy drop): an
    nftables-mode apply would report success while UFW drops the VMs' traffic; it is refused
    before anything is written, naming UFW and `firewall: ufw`."""
    from .ufwlive import enable, ufw_root

    n = ns()
    r = ufw_root(root)
    enable(n.name, r)
    def files() -> list[Path]:  # bar the host lock's /run (tests/host/test_reconcile.owned_files)
        return sorted(p for p in r.rglob("*") if not p.is_relative_to(r / "run"))

    before = files()
    with pytest.raises(HostError) as e:
        n.run(host.apply, make_plan(), "h0", r)
    msg = str(e.value)
    assert "UFW is active" in msg and "ip filter FORWARD (forward)" in msg and "ip filter INPUT (input)" in msg
    assert "`firewall: ufw`" in msg and "\n" not in msg and "ip6" not in msg
    assert files() == before and "nestnet" not in n.sh("nft", "list", "tables").stdout


def test_nftables_mode_with_a_foreign_forward_drop_is_refused(ns, make_plan, root):
    """The same for any chain with policy drop at forward (iptables-nft, as Docker sets it)."""
    n = ns()
    n.sh("iptables", "-P", "FORWARD", "DROP")
    with pytest.raises(HostError, match=r"another firewall's chain has policy drop \(ip filter FORWARD \(forward\)\)"):
        n.run(host.apply, make_plan(), "h0", root)
    n.sh("iptables", "-P", "FORWARD", "ACCEPT")  # accept policy, no drop: nestnet's table judges alone
    assert n.run(host.apply, make_plan(), "h0", root)


def test_ufw_mode_with_ufw_disabled_is_refused_then_loaded_once_enabled(ns, make_plan, root):
    """Issue 21 bug 4: with UFW disabled nothing nestnet writes into before.rules is loaded:
    apply refuses (naming `ufw enable`, never enabling it itself); once enabled it writes, and
    UFW loads nestnet's chains."""
    from .ufwlive import enable, ufw, ufw_root

    n = ns()
    r = ufw_root(root)
    plan = make_plan(firewall="ufw")
    stock = (r / "etc/ufw/before.rules").read_text()
    with pytest.raises(HostError) as e:
        n.run(host.apply, plan, "h0", r)
    assert "UFW is not enabled" in str(e.value) and "`ufw enable`" in str(e.value)
    assert (r / "etc/ufw/before.rules").read_text() == stock and not (r / "etc/nestnet").exists()
    enable(n.name, r)
    assert n.run(host.apply, plan, "h0", r)
    ufw(n.name, r, "reload")  # what apply runs itself when the root is /
    assert "nestnet-" in n.sh("iptables", "-S", "ufw-before-forward").stdout
    assert n.run(host.diff, plan, "h0", r) == []
