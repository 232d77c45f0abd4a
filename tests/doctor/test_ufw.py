"""A UFW host: nestnet's rules in UFW's iptables chains, read back through iptables-nft, count as
nestnet's firewall (and UFW's own "default deny routed" as planned); without them, the doctor
names the missing rules. Loaded with iptables-restore in a throwaway namespace, as UFW would."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from nestnet import netns
from nestnet.doctor import diagnose, ufw_view
from nestnet.firewall import policy
from nestnet.host import ufw
from nestnet.model import from_plan, observe_host

from .conftest import spec, write
from .test_pure import _routes, _sysctl

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not Path("/etc/ufw/before.rules").exists() or not shutil.which("iptables-restore"),
                       reason="UFW / iptables-nft not installed"),
]


@pytest.fixture
def ns():
    name = f"nndoc-ufw{os.getpid() % 100000}"
    netns.add(name)
    try:
        yield name
    finally:
        netns.delete(name)


def _load(ns: str, text: str) -> str:
    """``text`` loaded as UFW does, FORWARD policy drop; the ruleset as ``nft -j`` shows it."""
    netns.sh(ns, "iptables", "-N", "ufw-logging-deny")  # made by UFW's framework, not before.rules
    netns.sh(ns, "iptables-restore", "--noflush", input=text)
    netns.sh(ns, "iptables", "-P", "FORWARD", "DROP")
    netns.sh(ns, "iptables", "-A", "FORWARD", "-j", "ufw-before-forward")
    return netns.sh(ns, "nft", "-j", "list", "ruleset").stdout


@pytest.mark.parametrize("masquerade", ["masquerade-outside-vnet", "none"])
def test_nestnets_ufw_rules_count_as_its_firewall(tmp_path: Path, ns: str, masquerade: str):
    s = spec()
    s["host_defaults"]["firewall"] = "ufw"
    s["nested"]["egress"] = masquerade
    plan = write(tmp_path, s)[1]
    h, host = from_plan(plan).hosts["h1"], plan.hosts["h1"]
    nat, filt = ufw.blocks(plan, host)
    ruleset = _load(ns, ufw.splice(Path("/etc/ufw/before.rules").read_text(), nat, filt))
    raw = observe_host(_routes(h), _sysctl(h), ruleset)
    assert raw.foreign_drops == ("ip filter FORWARD",) and not raw.nestnet_forward  # what observe_host sees
    seen = ufw_view(raw, ruleset, policy(plan, host))
    assert seen.nestnet_forward and not seen.foreign_drops
    assert seen.nestnet_masquerade == (masquerade != "none")
    d = diagnose(plan, "h1", seen)
    assert d.healthy, (d.findings, [p.reason for p in d.problems][:3])
    # egress none: the VMs' internet pairs fail by design, and only those
    assert {(p.src, p.dst) for p in d.pairs} == ({("v1", "internet"), ("v1b", "internet")} if masquerade == "none" else set())


def test_stock_ufw_without_nestnets_rules_is_named(tmp_path: Path, ns: str):
    s = spec()
    s["host_defaults"]["firewall"] = "ufw"
    plan = write(tmp_path, s)[1]
    h, host = from_plan(plan).hosts["h1"], plan.hosts["h1"]
    ruleset = _load(ns, Path("/etc/ufw/before.rules").read_text())
    d = diagnose(plan, "h1", ufw_view(observe_host(_routes(h), _sysctl(h), ruleset), ruleset, policy(plan, host)))
    assert any("forward rules are not loaded (its chains in UFW's before.rules" in f for f in d.findings), d.findings
    assert any("ip filter FORWARD has policy drop" in f for f in d.findings), d.findings
    assert any("masquerade rule is missing" in f for f in d.findings), d.findings
    assert any(p.src == "v1" and p.dst == "v2" for p in d.pairs)


@pytest.mark.parametrize("host_name", ["h1", "h2"])
def test_ufw_rules_with_a_moved_vm_count_as_its_firewall(tmp_path: Path, ns: str, host_name: str):
    """v1b (in h1's block) lives on h2: h1 judges its block without it, h2 its block plus it, one
    iptables rule per prefix (a /32 among them); the doctor still recognises them as nestnet's."""
    s = spec()
    s["host_defaults"]["firewall"] = "ufw"
    s["vms"][1]["host"] = "h2"
    plan = write(tmp_path, s)[1]
    assert [m.vm for m in plan.moves] == ["v1b"]
    h, host = from_plan(plan).hosts[host_name], plan.hosts[host_name]
    nat, filt = ufw.blocks(plan, host)
    assert ("-s 10.0.1.131/32" in nat) == (host_name == "h2")
    ruleset = _load(ns, ufw.splice(Path("/etc/ufw/before.rules").read_text(), nat, filt))
    seen = ufw_view(observe_host(_routes(h), _sysctl(h), ruleset), ruleset, policy(plan, host))
    assert seen.nestnet_forward and seen.nestnet_masquerade and not seen.foreign_drops
    d = diagnose(plan, host_name, seen)
    assert d.healthy, (d.findings, [p.reason for p in d.problems][:3])


def test_real_ufw_with_nestnets_rules_is_healthy_ipv6_drop_does_not_count(tmp_path: Path, ns: str):
    """Issue 21 bug 3: UFW enabled for real (IPv4 and IPv6 tables, both FORWARD chains policy
    drop) with nestnet's blocks in before.rules: UFW's ``ip6 filter FORWARD`` drop sees only
    IPv6 and must not break the IPv4 pairs."""
    from host.ufwlive import enable, ufw_root

    s = spec()
    s["host_defaults"]["firewall"] = "ufw"
    plan = write(tmp_path, s)[1]
    h, host = from_plan(plan).hosts["h1"], plan.hosts["h1"]
    root = ufw_root(tmp_path / "root")
    rules = root / ufw.BEFORE_RULES
    rules.write_text(ufw.splice(rules.read_text(), *ufw.blocks(plan, host)))
    enable(ns, root)
    ruleset = netns.sh(ns, "nft", "-j", "list", "ruleset").stdout
    raw = observe_host(_routes(h), _sysctl(h), ruleset)
    assert raw.foreign_drops == ("ip filter FORWARD",)  # the ip6 one is IPv6's only
    d = diagnose(plan, "h1", ufw_view(raw, ruleset, policy(plan, host)))
    assert d.healthy, (d.findings, [p.reason for p in d.problems][:3])


def test_ufw_disabled_fix_is_enabling_it_not_a_reload(tmp_path: Path, ns: str):
    """Issue 21 bug 4: with UFW disabled `ufw reload` loads nothing; the fix named is `ufw enable`."""
    s = spec()
    s["host_defaults"]["firewall"] = "ufw"
    plan = write(tmp_path, s)[1]
    h, host = from_plan(plan).hosts["h1"], plan.hosts["h1"]
    ruleset = netns.sh(ns, "nft", "-j", "list", "ruleset").stdout  # disabled: no UFW tables at all
    seen = ufw_view(observe_host(_routes(h), _sysctl(h), ruleset), ruleset, policy(plan, host))
    off = diagnose(plan, "h1", seen, ufw_enabled=False)
    assert any("UFW is not enabled" in f and "`ufw enable`" in f for f in off.findings), off.findings
    assert not any("ufw reload" in f for f in off.findings)
    on = diagnose(plan, "h1", seen, ufw_enabled=True)  # enabled, rules not loaded: a reload loads them
    assert any("`ufw reload`" in f for f in on.findings), on.findings
