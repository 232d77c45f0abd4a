"""Pure parts of the host reconciler: no root, no kernel."""

from __future__ import annotations

import pytest

from nestnet import sysctl
from nestnet.errors import HostError
from nestnet.host import desired, files, guard, nft, ufw


def test_lockout_guard_reads_input_and_output_chains():
    ok = 'table inet t {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 22 accept\n\t\tcounter drop\n\t}\n}\n'
    assert guard.drops_ssh(ok, 22) is None
    assert guard.drops_ssh(ok, 2222) == "input"  # the session is on another port
    bad = 'table inet t {\n\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n\t\tip daddr 10.0.0.0/8 drop\n\t}\n}\n'
    assert guard.drops_ssh(bad, 22) == "output"
    arp_only = 'table bridge t {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tiifname "eth1" arp saddr ip 10.0.1.16/28 counter drop\n\t}\n}\n'
    assert guard.drops_ssh(arp_only, 22) is None


def test_lockout_guard_refuses_before_anything_changes(make_plan, monkeypatch):
    plan = make_plan()
    want = desired.desired(plan, plan.hosts["h0"])
    body = 'table inet nestnet {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 22 accept\n\t}\n}\n'
    change = desired.Change("nft", "replace", "table inet nestnet", "", body)
    monkeypatch.setenv("SSH_CONNECTION", "10.0.2.5 50000 10.0.1.10 22")
    guard.refuse_lockout(want, [change])
    monkeypatch.setenv("SSH_CONNECTION", "10.0.2.5 50000 10.0.1.10 2222")
    with pytest.raises(HostError, match="could drop the SSH session on port 2222"):
        guard.refuse_lockout(want, [change])




def test_sysctl_keys_with_dotted_interfaces():
    assert sysctl.parts("net.ipv4.conf.eth1.100.proxy_arp") == ["net", "ipv4", "conf", "eth1.100", "proxy_arp"]
    assert files._sysctl_key("net.ipv4.conf.eth1.100.proxy_arp") == "net/ipv4/conf/eth1.100/proxy_arp"
    assert files._sysctl_key("net.ipv4.ip_forward") == "net.ipv4.ip_forward"
    assert files._sysctl_key("net.bridge.bridge-nf-call-iptables") == "-net.bridge.bridge-nf-call-iptables"


def test_ufw_splice_strip_round_trip():
    stock = "# head\n*filter\n:ufw-before-forward - [0:0]\n-A ufw-before-forward -p icmp -j ACCEPT\nCOMMIT\n"
    text = ufw.splice(stock, "", f"{ufw.BEGIN}\n-A ufw-before-forward -j DROP\n{ufw.END}\n")
    assert text.index("-j DROP") < text.index("-p icmp")  # ahead of UFW's own forward rules
    assert ufw.strip(text) == stock
    assert ufw.splice(text, "", f"{ufw.BEGIN}\n{ufw.END}\n").count(ufw.BEGIN) == 1
    with pytest.raises(ValueError):
        ufw.splice("*nat\nCOMMIT\n", "", "")


def test_routed_prefixes_cover_blocks_outside_the_vnet(make_plan):
    plan = make_plan()
    assert [str(n) for n in plan.routed_prefixes] == ["10.0.0.0/16"]


def test_diff_is_data(make_plan):
    """A desired state against an empty observation: every kind of change, in execution order."""
    from nestnet.host.rtnl import KLink

    plan = make_plan(guest_style="subnet")
    want = desired.desired(plan, plan.hosts["h0"])
    seen = desired.Observed({"eth1": KLink("eth1", "veth", "", True, "", frozenset(), None)}, (), {}, {}, {})
    kinds = [c.kind for c in desired.diff(want, seen)]
    assert kinds == sorted(kinds, key=["link", "addr", "sysctl", "route", "nft", "file", "service"].index)
    assert {"link", "addr", "sysctl", "route", "nft", "file", "service"} == set(kinds)
