"""DHCP on the nested bridge: nestnet's dnsmasq against Debian's udhcpc, in throwaway namespaces."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from nestnet import host
from nestnet.host import dhcp
from nestnet.lab.dhcpclient import HOOK, parse_lease
from nestnet.plan import load_plan

from .conftest import spec_text

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not (shutil.which("dnsmasq") or os.path.exists(dhcp.DNSMASQ)) or not shutil.which("udhcpc"),
                       reason="needs dnsmasq-base and udhcpc (scripts/system-deps)"),
]


def plan_from(tmp_path, name="dhcptest", dynamic=False, extra_vms=(), **kw):
    text = spec_text(name, **kw)
    if dynamic:
        text = text.replace("nested:\n", "nested:\n  dhcp: {dynamic: true}\n")
    for vm in extra_vms:
        text = text.replace("endpoints:", f"  - {vm}\nendpoints:")
    d = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}"
    d.mkdir()
    (d / "nestnet.yaml").write_text(text)
    return load_plan(d / "nestnet.yaml")


@pytest.fixture
def guest(ns, tmp_path):
    """``guest(host_ns, mac)`` -> a function that runs one DHCP exchange from a new namespace
    plugged into the host's bridge with that MAC and returns the lease (None: no lease)."""
    hook = tmp_path / "hook.sh"
    hook.write_text(HOOK)
    hook.chmod(0o755)

    def make(h, mac: str, bridge: str = "nestbr0"):
        g = ns.bare()
        port = f"vp{g.name[-6:].replace('-', '')}"[:15]
        h.sh("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "address", mac, "netns", g.name)
        h.sh("ip", "link", "set", port, "master", bridge)
        h.sh("ip", "link", "set", port, "up")
        leases = tmp_path / g.name
        leases.mkdir()

        def ask(tries: int = 6):
            env = {**os.environ, "NESTNET_APPLY": "0", "NESTNET_LEASE_DIR": str(leases), "NESTNET_RESOLV": "/dev/null"}
            g.sh("ip", "link", "set", "eth0", "up")
            r = subprocess.run(
                ["ip", "netns", "exec", g.name, "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", str(tries), "-T", "1",
                 "-A", "1", "-s", str(hook), "-O", "staticroutes", "-O", "search"],
                env=env, capture_output=True, text=True,
            )
            f = leases / "eth0.lease"
            return parse_lease(f.read_text()) if r.returncode == 0 and f.exists() else None

        return ask

    return make


def test_onlink_static_lease_options_and_second_apply_changes_nothing(ns, tmp_path, guest):
    n = ns()
    plan = plan_from(tmp_path)
    changes = n.run(host.apply, plan, "h0", tmp_path / "root")
    assert any(c.kind == "service" and c.op == "start" for c in changes)
    lease = guest(n, plan.vms["vm0"].mac)()
    assert lease is not None
    assert lease["ip"] == "10.0.1.20" and lease["mask"] == "32"
    # RFC 3442: the host on link, then the default via the host
    assert lease["staticroutes"].split() == ["10.0.1.10/32", "0.0.0.0", "0.0.0.0/0", "10.0.1.10"]
    assert lease["router"] == "10.0.1.10" and lease["dns"] == "10.0.1.10" and lease["serverid"] == "10.0.1.10"
    assert n.run(host.apply, plan, "h0", tmp_path / "root") == []
    # the lease is on record in the host's lease file, by MAC
    leases = (tmp_path / "root" / dhcp.LEASES).read_text()
    assert f"{plan.vms['vm0'].mac} 10.0.1.20 " in leases


def test_subnet_style_gets_the_subnet_mask_and_router_and_search(ns, tmp_path, guest):
    n = ns()
    plan = plan_from(tmp_path, guest_style="subnet")
    text = (Path(plan.source).read_text()).replace("route_table: rt,", "route_table: rt, private_dns_zone: nested.example.net,")
    Path(plan.source).write_text(text)
    plan = load_plan(plan.source)
    n.run(host.apply, plan, "h0", tmp_path / "root")
    lease = guest(n, plan.vms["vm0"].mac)()
    assert lease is not None
    assert (lease["ip"], lease["mask"], lease["router"], lease["staticroutes"]) == ("10.0.1.20", "24", "10.0.1.10", "")
    assert lease["search"] == "nested.example.net" and lease["domain"] == "nested.example.net"


def test_unknown_mac_gets_nothing_unless_dynamic_and_never_a_planned_address(ns, tmp_path, guest):
    n = ns()
    plan = plan_from(tmp_path)
    n.run(host.apply, plan, "h0", tmp_path / "root")
    assert guest(n, "52:54:00:aa:bb:01")(tries=2) is None
    dyn = plan_from(tmp_path, dynamic=True)
    runs = dyn.hosts["h0"].dhcp_ranges
    assert runs and all(not (a <= dyn.vms["vm0"].ip <= z) for a, z in runs)
    changes = n.run(host.apply, dyn, "h0", tmp_path / "root")
    assert [c.op for c in changes if c.kind == "service"] == ["restart"]
    got = set()
    for i in range(3):
        lease = guest(n, f"52:54:00:aa:bb:1{i}")()
        assert lease is not None, (tmp_path / "root" / dhcp.LOG).read_text()
        got.add(lease["ip"])
    planned = {str(v.ip) for v in dyn.vms.values()} | {str(h.ip) for h in dyn.hosts.values()}
    assert len(got) == 3 and not got & planned
    assert all(any(a <= IPv4Address(ip) <= z for a, z in runs) for ip in got)


def test_new_vm_restarts_with_its_lease_and_remove_stops_it(ns, tmp_path, guest):
    n = ns()
    root = tmp_path / "root"
    plan = plan_from(tmp_path)
    n.run(host.apply, plan, "h0", root)
    first = n.run(dhcp.observe, root)
    more = plan_from(tmp_path, extra_vms=["{name: vm9, host: h0, ip: 10.0.1.25}"])
    changes = n.run(host.apply, more, "h0", root)
    # the new VM's address joins the firewall's set too; the DHCP part is the config and a restart
    assert {(c.kind, c.op, c.key) for c in changes} - {("nft", "replace", "table inet nestnet"),
                                                        ("file", "replace", "/etc/nestnet/firewall.nft")} == {
        ("file", "replace", f"/{dhcp.CONF}"), ("service", "restart", dhcp.UNIT_NAME)
    }
    assert [c.kind for c in changes][-1] == "service"  # after the config it reads is written
    second = n.run(dhcp.observe, root)
    assert second is not None and second.pid != first.pid and not Path(f"/proc/{first.pid}").exists()
    lease = guest(n, more.vms["vm9"].mac)()
    assert lease is not None and lease["ip"] == "10.0.1.25"
    unit = (root / dhcp.UNIT).read_text()
    assert "--keep-in-foreground" in unit and (root / dhcp.UNIT_LINK).readlink() == Path(f"/{dhcp.UNIT}")
    n.run(host.remove, more, "h0", root)
    assert n.run(dhcp.observe, root) is None and not Path(f"/proc/{second.pid}").exists()
    assert not (root / dhcp.CONF).exists() and not (root / dhcp.LEASES).exists()
    assert n.run(host.remove, more, "h0", root) == []


def test_a_killed_dnsmasq_is_started_again(ns, tmp_path):
    n = ns()
    root = tmp_path / "root"
    plan = plan_from(tmp_path)
    n.run(host.apply, plan, "h0", root)
    pid = n.run(dhcp.observe, root).pid
    os.kill(pid, 9)
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.02)
    changes = n.run(host.diff, plan, "h0", root)
    assert [(c.kind, c.op) for c in changes] == [("service", "start")]
    n.run(host.apply, plan, "h0", root)
    assert n.run(dhcp.observe, root) is not None
