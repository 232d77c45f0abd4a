"""``host apply --adopt``: a hand-built route with the same next hop becomes nestnet's in one
netlink replace; one that sends packets elsewhere is still refused, with the reason."""

from __future__ import annotations

import pytest

from nestnet import host
from nestnet.errors import HostError
from nestnet.plan import ROUTE_PROTO

from .test_reconcile import owned_files, routes

pytestmark = pytest.mark.root


def test_same_next_hop_is_adopted_atomically_and_then_stable(ns, make_plan, root):
    n = ns()
    plan = make_plan()
    # What the seed's manual procedure leaves: `ip route add` (proto boot), the bridge by hand.
    n.sh("ip", "link", "add", "nestbr0", "type", "bridge")
    n.sh("ip", "link", "set", "nestbr0", "up")
    n.sh("ip", "route", "add", "10.0.1.48/28", "via", "10.0.1.11", "dev", "eth1")
    n.sh("ip", "route", "add", "10.0.1.16/28", "dev", "nestbr0", "metric", "100")
    with pytest.raises(HostError, match=r"proto 3 (metric 100 )?is not nestnet's.*run with --adopt"):
        n.run(host.apply, plan, "h0", root)
    pending = n.run(host.diff, plan, "h0", root, adopt=True)
    route_changes = [(c.op, c.key) for c in pending if c.kind == "route"]
    # the same-metric route is replaced in place; the odd-metric one gets ours first, then goes
    assert sorted(route_changes) == [("add", "10.0.1.16/28"), ("del", "10.0.1.16/28"), ("replace", "10.0.1.48/28")]
    assert route_changes.index(("add", "10.0.1.16/28")) < route_changes.index(("del", "10.0.1.16/28"))
    assert all("adopted from" in c.detail for c in pending if c.kind == "route" and c.op != "del")
    applied = n.run(host.apply, plan, "h0", root, adopt=True)
    assert [(c.op, c.key) for c in applied if c.kind == "route"] == route_changes
    # (a bridge without ports has no carrier: its route may show linkdown)
    assert {r.removesuffix(" linkdown") for r in routes(n)} == {
        f"10.0.1.48/28 via 10.0.1.11 dev eth1 proto {ROUTE_PROTO}",
        f"10.0.1.16/28 dev nestbr0 proto {ROUTE_PROTO} scope 253",
    }
    assert not any(r.startswith(("10.0.1.48/28", "10.0.1.16/28")) and f"proto {ROUTE_PROTO}" not in r
                   for r in routes(n, None))
    assert n.run(host.apply, plan, "h0", root) == []
    assert n.run(host.apply, plan, "h0", root, adopt=True) == []


def test_replace_leaves_no_gap(ns, make_plan, root):
    """The kernel swaps the entry: a reader that polls the route table never sees it missing."""
    n = ns()
    plan = make_plan()
    n.sh("ip", "route", "add", "10.0.1.48/28", "via", "10.0.1.11", "dev", "eth1")
    # `ip monitor` shows every route message: an adoption is one RTM_NEWROUTE, no deletion.
    import subprocess
    import time

    mon = subprocess.Popen(["ip", "netns", "exec", n.name, "ip", "monitor", "route"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        n.run(host.apply, plan, "h0", root, adopt=True)
        time.sleep(0.3)
    finally:
        mon.terminate()
    out = mon.communicate()[0]
    lines = [ln for ln in out.splitlines() if "10.0.1.48/28" in ln]
    assert len(lines) == 1 and not lines[0].startswith("Deleted") and f"proto {ROUTE_PROTO}" in lines[0], out


def test_different_next_hop_is_refused_with_the_reason(ns, make_plan, root):
    n = ns()
    n.sh("ip", "route", "add", "10.0.1.48/28", "via", "10.0.1.99", "dev", "eth1")
    with pytest.raises(HostError, match=r"proto 3 is not nestnet's .*sends the packets elsewhere"):
        n.run(host.apply, make_plan(), "h0", root, adopt=True)
    assert "10.0.1.48/28 via 10.0.1.99 dev eth1" in routes(n, None)
    assert owned_files(root) == []
