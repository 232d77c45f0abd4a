"""DHCP on the nested bridge: nestnet's dnsmasq against Debian's udhcpc, in throwaway namespaces."""

from __future__ import annotations

import os
import shutil
import signal
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


def _serving(n, root) -> list[int]:
    """Every dnsmasq (not its TCP children) in the namespace whose command line reads this
    root's config: read from /proc here, independent of nestnet's own recognition."""
    ns = os.stat(f"/run/netns/{n.name}")
    arg = f"--conf-file={root}/{dhcp.CONF}".encode()
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            net = os.stat(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        fields = stat.rsplit(b")", 1)[1].split()
        if b"(dnsmasq)" in stat and arg in cmd and fields[0] != b"Z" and (net.st_dev, net.st_ino) == (ns.st_dev, ns.st_ino):
            found[int(pid)] = int(fields[1])
    return sorted(p for p, parent in found.items() if parent not in found)


def _race(ns_name: str, plan, root, op) -> int:
    """``op`` in a process of its own (as a second `nestnet host` command would be); its pid."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            from nestnet import netns

            netns.run_in(ns_name, op, plan, "h0", root)
        except BaseException:  # noqa: BLE001 - the exit code says it
            code = 1
        os._exit(code)
    return pid


def test_remove_racing_apply_leaves_no_stray_dnsmasq_and_apply_works_after(ns, tmp_path):
    """Issue 20 item 4: `host remove` and `host apply` at once, several rounds; the host lock
    serialises them, and whatever order they ran in, at most one dnsmasq serves the config and
    the next apply converges (no "Address already in use")."""
    n = ns()
    root = tmp_path / "root"
    plan = plan_from(tmp_path)
    for _ in range(8):
        n.run(host.apply, plan, "h0", root)
        a = _race(n.name, plan, root, host.remove)
        b = _race(n.name, plan, root, host.apply)
        codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in (a, b)]
        assert codes == [0, 0]
        assert len(_serving(n, root)) <= 1
        n.run(host.apply, plan, "h0", root)
        assert len(_serving(n, root)) == 1 and n.run(host.diff, plan, "h0", root) == []
        n.run(host.remove, plan, "h0", root)
        assert _serving(n, root) == []


def test_a_stray_dnsmasq_no_pid_file_tracks_is_stopped(ns, tmp_path):
    """One started by hand with nestnet's config (or left by a race) is recognised by what it
    serves and stopped; the one apply starts serves alone."""
    n = ns()
    root = tmp_path / "root"
    plan = plan_from(tmp_path)
    n.run(host.apply, plan, "h0", root)
    first = _serving(n, root)
    (root / dhcp.PID).unlink()
    assert n.run(host.diff, plan, "h0", root) == []  # the pid file is not how it is recognised
    n.sh(*dhcp.argv(root)[:1], f"--conf-file={root}/{dhcp.CONF}", f"--pid-file={tmp_path}/stray.pid",
         "--port=0", "--dhcp-leasefile=/dev/null")  # DHCP on the same bridge fails: give it its own
    assert len(_serving(n, root)) == 2
    changes = n.run(host.diff, plan, "h0", root)
    assert [(c.kind, c.op) for c in changes] == [("service", "restart")] and "stopping 2" in changes[0].detail
    n.run(host.apply, plan, "h0", root)
    assert len(_serving(n, root)) == 1 and not set(first) & set(_serving(n, root))
    n.run(host.remove, plan, "h0", root)
    assert _serving(n, root) == []


def test_after_a_reboot_the_unit_started_dnsmasq_is_as_wanted(ns, tmp_path):
    """Issue 21 bug 1: after a reboot /run is empty and systemd started dnsmasq through
    nestnet's unit; what it runs with is judged by the process, so `host diff` wants nothing
    (it wanted `service restart` while the record of the start lived in /run)."""
    n = ns()
    root = tmp_path / "root"
    plan = plan_from(tmp_path)
    n.run(host.apply, plan, "h0", root)
    for pid in _serving(n, root):
        os.kill(pid, signal.SIGTERM)
    for _ in range(500):
        if not _serving(n, root):
            break
        time.sleep(0.02)
    shutil.rmtree(root / "run")  # a reboot: /run is a new tmpfs
    (root / "run").mkdir()
    # the unit's ExecStart (its ExecStartPre made /run/nestnet), with the test root's paths
    start = next(l for l in (root / dhcp.UNIT).read_text().splitlines() if l.startswith("ExecStart="))
    cmd = start.removeprefix("ExecStart=").replace("$$", "$")
    for top in ("/etc/nestnet/", "/run/nestnet/", "/var/lib/nestnet/"):
        cmd = cmd.replace(" " + top, f" {root}{top}").replace("=" + top, f"={root}{top}")
    assert str(root) in cmd
    (root / "run/nestnet").mkdir()
    unit = subprocess.Popen(["ip", "netns", "exec", n.name, "sh", "-c", "exec " + cmd],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            if _serving(n, root) == [unit.pid]:
                break
            time.sleep(0.02)
        assert _serving(n, root) == [unit.pid]  # exec: the unit's main PID is dnsmasq itself
        assert n.run(host.diff, plan, "h0", root) == []
    finally:
        unit.terminate()
        unit.wait()
