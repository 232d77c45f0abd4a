"""The host reconciler against a real kernel, in throwaway namespaces, files under a temp root."""

from __future__ import annotations

import pytest

from nestnet import host
from nestnet.errors import HostError
from nestnet.host import ApplyError, lock, observe
from nestnet.plan import ROUTE_PROTO

pytestmark = pytest.mark.root


def routes(n, proto: int | None = ROUTE_PROTO) -> set[str]:
    out = n.sh("ip", "-N", "route", "show", "table", "all").stdout.splitlines()
    return {" ".join(line.split()) for line in out if proto is None or f"proto {proto} " in line + " "}


def owned_files(root) -> list[str]:
    """Files under root, bar the host lock: a runtime lock in /run stays (deleting a flock'd
    file lets two writers lock two files), as UFW's /run/ufw.lock does."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if (p.is_file() or p.is_symlink()) and str(p.relative_to(root)) != lock.LOCK)


def test_first_apply_then_nothing(ns, make_plan, root):
    n = ns()
    plan = make_plan()
    changes = n.run(host.apply, plan, "h0", root)
    assert {c.kind for c in changes} == {"link", "addr", "sysctl", "route", "nft", "file", "service"}
    assert routes(n) == {"10.0.1.48/28 via 10.0.1.11 dev eth1 proto 201", "10.0.1.16/28 dev nestbr0 proto 201 scope 253 linkdown"}
    assert n.sh("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    link = n.run(observe.links)["nestbr0"]
    assert link.mac == "02:6e:0a:00:01:0a" and link.up and link.kind == "bridge"
    assert "table inet nestnet" in n.sh("nft", "list", "tables").stdout
    assert "etc/iproute2/rt_protos.d/nestnet.conf" in owned_files(root)
    assert n.run(host.apply, plan, "h0", root) == []
    assert n.run(host.diff, plan, "h0", root) == []
    assert n.run(host.find_self, plan) == "h0"


def test_seed_done_when(ns, root):
    """The issue's 'done when', on examples/seed.yaml."""
    from pathlib import Path

    from nestnet.plan import load_plan

    plan = load_plan(Path(__file__).parents[2] / "examples" / "seed.yaml", write=False)
    n = ns()
    n.sh("ip", "route", "add", "10.0.2.0/24", "via", "10.0.1.1", "dev", "eth1")
    n.run(host.apply, plan, "vme-kvm-vm1", root)
    assert "10.0.1.48/28 via 10.0.1.11 dev eth1 proto 201" in routes(n)
    assert n.sh("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    assert (root / "etc/systemd/network/10-netplan-eth1.network.d/50-nestnet.conf").exists()
    assert n.run(host.diff, plan, "vme-kvm-vm1", root) == []
    assert "10.0.2.0/24 via 10.0.1.1 dev eth1" in routes(n, None)
    n.run(host.remove, plan, "vme-kvm-vm1", root)
    assert routes(n) == set()
    assert owned_files(root) == []
    assert "10.0.2.0/24 via 10.0.1.1 dev eth1" in routes(n, None)


def test_stale_owned_routes_go_foreign_stay(ns, make_plan, root):
    n = ns()
    n.sh("ip", "route", "add", "10.0.7.0/28", "via", "10.0.1.99", "dev", "eth1", "proto", str(ROUTE_PROTO))
    n.sh("ip", "route", "add", "10.0.8.0/28", "via", "10.0.1.99", "dev", "eth1", "proto", str(ROUTE_PROTO), "table", "100")
    n.sh("ip", "route", "add", "10.0.9.0/28", "via", "10.0.1.99", "dev", "eth1")  # foreign (proto boot)
    n.sh("ip", "route", "add", "10.0.1.48/28", "via", "10.0.1.99", "dev", "eth1", "table", "100")  # foreign, other table
    changes = n.run(host.apply, make_plan(), "h0", root)
    dels = {c.key for c in changes if c.kind == "route" and c.op == "del"}
    assert dels == {"10.0.7.0/28", "10.0.8.0/28 table 100"}
    allr = routes(n, None)
    assert "10.0.9.0/28 via 10.0.1.99 dev eth1" in allr
    assert "10.0.1.48/28 via 10.0.1.99 dev eth1 table 100" in allr
    assert not any(r.startswith(("10.0.7.0/28", "10.0.8.0/28")) for r in allr)


def test_owned_route_changed_is_replaced(ns, make_plan, root):
    n = ns()
    n.sh("ip", "route", "add", "10.0.1.48/28", "via", "10.0.1.99", "dev", "eth1", "proto", str(ROUTE_PROTO))
    changes = n.run(host.apply, make_plan(), "h0", root)
    assert [c.op for c in changes if c.key == "10.0.1.48/28"] == ["replace"]
    assert "10.0.1.48/28 via 10.0.1.11 dev eth1 proto 201" in routes(n)


def test_foreign_route_on_wanted_destination_is_an_error(ns, make_plan, root):
    n = ns()
    n.sh("ip", "route", "add", "10.0.1.48/28", "via", "10.0.1.99", "dev", "eth1")
    with pytest.raises(HostError, match=r"route 10.0.1.48/28 via 10.0.1.99 dev eth1 proto 3 is not nestnet's"):
        n.run(host.apply, make_plan(), "h0", root)
    assert "10.0.1.48/28 via 10.0.1.99 dev eth1" in routes(n, None)
    assert owned_files(root) == []


def test_remove_leaves_nothing_owned(ns, make_plan, root):
    n = ns()
    plan = make_plan()
    n.run(host.apply, plan, "h0", root)
    changes = n.run(host.remove, plan, "h0", root)
    assert {c.kind for c in changes} == {"service", "route", "nft", "link", "file"}
    assert routes(n) == set()
    assert owned_files(root) == []
    assert "nestnet" not in n.sh("nft", "list", "tables").stdout
    assert "nestbr0" not in n.run(observe.links)
    assert n.run(host.remove, plan, "h0", root) == []


def test_subnet_style(ns, make_plan, root):
    n = ns()
    plan = make_plan(guest_style="subnet")
    n.run(host.apply, plan, "h0", root)
    link = n.run(observe.links)["nestbr0"]
    assert str(next(iter(link.addrs))) == "10.0.1.10"
    assert n.sh("cat", "/proc/sys/net/ipv4/conf/nestbr0/proxy_arp").stdout.strip() == "1"
    assert n.sh("cat", "/proc/sys/net/ipv4/neigh/nestbr0/proxy_delay").stdout.strip() == "0"
    assert n.run(host.apply, plan, "h0", root) == []


def test_unknown_host_and_missing_uplink(ns, make_plan, root):
    from nestnet.errors import UsageError

    plan = make_plan()
    n = ns.bare()
    with pytest.raises(UsageError, match="'nope' is not in"):
        n.run(host.diff, plan, "nope", root)
    with pytest.raises(HostError, match="uplink 'eth1' does not exist"):
        n.run(host.diff, plan, "h0", root)
    with pytest.raises(HostError, match="none of the hosts"):
        n.run(host.find_self, plan)


def test_failure_midway_reports_and_rerun_converges(ns, make_plan, root):
    """A route write refused by the kernel: the error says what was done; fixing it and re-running converges."""
    n = ns()
    plan = make_plan(hosts=4)
    n.sh("ip", "link", "set", "eth1", "down")  # gateway routes via a down device are refused
    with pytest.raises(ApplyError) as ei:
        n.run(host.apply, plan, "h0", root)
    err = ei.value
    assert err.failed.kind == "route"
    assert "changes done" in str(err) and err.pending
    assert any(c.kind == "link" for c in err.done)
    n.sh("ip", "link", "set", "eth1", "up")
    assert n.run(host.apply, plan, "h0", root)
    assert n.run(host.diff, plan, "h0", root) == []


def test_a_rule_deleted_behind_nestnets_back_is_put_back(ns, make_plan, root):
    n = ns()
    plan = make_plan()
    n.run(host.apply, plan, "h0", root)
    handles = n.sh("nft", "-a", "list", "chain", "inet", "nestnet", "from_vms").stdout
    handle = [line.split("# handle ")[1] for line in handles.splitlines() if "ip daddr @fabric accept" in line][0]
    n.sh("nft", "delete", "rule", "inet", "nestnet", "from_vms", "handle", handle)
    assert [c.kind for c in n.run(host.diff, plan, "h0", root)] == ["nft"]
    n.run(host.apply, plan, "h0", root)
    assert "ip daddr @fabric accept" in n.sh("nft", "list", "chain", "inet", "nestnet", "from_vms").stdout
    assert n.run(host.diff, plan, "h0", root) == []


def test_find_self_several_and_dry_run(ns, make_plan, root):
    n = ns()
    plan = make_plan()
    changes = n.run(host.apply, plan, "h0", root, dry_run=True)
    assert changes and routes(n) == set() and owned_files(root) == []
    assert n.run(host.diff, plan, "h0", root) == changes
    n.sh("ip", "addr", "add", "10.0.1.11/24", "dev", "eth1")
    with pytest.raises(HostError, match=r"several hosts' IPs are local here \(h0, h1\)"):
        n.run(host.find_self, plan)
