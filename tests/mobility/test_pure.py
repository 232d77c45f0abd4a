"""VM mobility without root: exceptions in the plan, the hosts' routes and firewall, check and
its failures, vm move (both kinds), the shared gateway, the libvirt hook, the gap arithmetic."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import yaml

from nestnet.errors import SpecError
from nestnet.firewall import policy
from nestnet.guest import ip_commands
from nestnet.host import desired as host_desired
from nestnet.host import files, libvirt_hook, move, nft, ufw
from nestnet.lab.migrate import parse_ping
from nestnet.mobility import SHARED_GATEWAY, SHARED_GATEWAY_MAC, local_prefixes
from nestnet.model import Model, from_plan
from nestnet.model.classes import reachability as check
from nestnet.plan import Route, load_plan

from .specs import mobile

N = IPv4Network
A = IPv4Address


def write(tmp_path: Path, spec: dict, name: str = "spec.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(spec, sort_keys=False))
    return p


def nestnet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nestnet", *args], capture_output=True, text=True)


def test_exception_in_the_plan(tmp_path):
    plan = load_plan(write(tmp_path, mobile(moved_to="kvm2")))
    (m,) = plan.moves
    assert (m.vm, m.ip, m.host, m.owner) == ("web1", A("10.0.1.130"), "kvm2", "kvm1")
    routes = {r.name: (r.address_prefix, r.next_hop_ip) for r in plan.azure.routes}
    assert routes["nestnet-web1.32"] == (N("10.0.1.130/32"), A("10.0.1.11"))  # wins over the /28 by length
    assert routes["nestnet-kvm1"] == (N("10.0.1.128/28"), A("10.0.1.10"))
    # a /32 on every host: delivered locally on the new one, sent to it by all others (the old one too)
    assert Route(N("10.0.1.130/32"), "nestbr0") in plan.hosts["kvm2"].routes
    for h in ("kvm1", "kvm3"):
        assert Route(N("10.0.1.130/32"), "eth0", A("10.0.1.11")) in plan.hosts[h].routes
    assert plan.hosts["kvm1"].away == (A("10.0.1.130"),) and plan.hosts["kvm2"].here == (A("10.0.1.130"),)
    assert plan.hosts["kvm1"].local_prefixes == (N("10.0.1.128/31"), N("10.0.1.131/32"), N("10.0.1.132/30"), N("10.0.1.136/29"))
    assert plan.hosts["kvm2"].local_prefixes == local_prefixes(N("10.0.1.144/28"), [], [A("10.0.1.130")])
    assert plan.hosts["kvm3"].local_prefixes == (N("10.0.1.160/28"),)
    assert plan.to_dict()["exceptions"] == [{"vm": "web1", "ip": "10.0.1.130", "host": "kvm2", "block_of": "kvm1"}]
    assert any("outside its block" in w.message for w in plan.warnings)


def test_no_exception_at_home(tmp_path):
    plan = load_plan(write(tmp_path, mobile()))
    assert plan.moves == () and len(plan.azure.routes) == 3
    assert all(r.dst.prefixlen == 28 for h in plan.hosts.values() for r in h.routes)


def test_exceptions_count_against_max_routes(tmp_path):
    spec = mobile(moved_to="kvm2")
    spec["azure"]["max_routes"] = 3
    path = write(tmp_path, spec)
    with pytest.raises(SpecError) as exc:
        load_plan(path, write=False)
    assert "3 host blocks + 1 VMs outside their block need 4 routes, more than azure.max_routes=3" in str(exc.value)
    r = nestnet("plan", str(path))
    assert r.returncode == 2 and "max_routes=3" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not path.with_suffix(".lock").exists()  # refused before any write


def test_exceptions_need_routed_mode(tmp_path):
    with pytest.raises(SpecError, match="only routed mode can carry it"):
        load_plan(write(tmp_path, mobile(moved_to="kvm2", mode="nat")), write=False)


def test_pin_outside_the_pool_is_still_refused(tmp_path):
    spec = mobile()
    spec["vms"][0]["ip"] = "10.0.1.20"
    r = nestnet("validate", str(write(tmp_path, spec)))
    assert r.returncode == 2 and "outside the nested pool 10.0.1.128/25" in r.stderr


def test_shared_gateway_guest_and_hosts(tmp_path):
    plan = load_plan(write(tmp_path, mobile()))
    vm = plan.vms["web1"]
    assert (vm.gateway, vm.prefix_len) == (SHARED_GATEWAY, 32)
    cmds = [" ".join(c) for c in ip_commands(vm)]
    assert "ip route replace default via 169.254.1.1 dev eth0 onlink" in cmds
    for h in plan.hosts.values():  # the same address and MAC on every host's bridge
        assert h.bridge_address == SHARED_GATEWAY
        assert files.bridge_mac(h) == SHARED_GATEWAY_MAC
    # other styles keep their per-host gateway and MAC
    onlink = load_plan(write(tmp_path, mobile(guest_style="onlink"), "o.yaml"))
    assert onlink.vms["web1"].gateway == A("10.0.1.10")
    assert files.bridge_mac(onlink.hosts["kvm1"]) != files.bridge_mac(onlink.hosts["kvm2"])


def test_firewall_judges_where_the_vm_lives(tmp_path):
    plan = load_plan(write(tmp_path, mobile(moved_to="kvm2")))
    old, new = plan.hosts["kvm1"], plan.hosts["kvm2"]
    old_nft, new_nft = nft.render_policy(policy(plan, old)), nft.render_policy(policy(plan, new))
    assert "ip saddr { 10.0.1.128/31, 10.0.1.131/32, 10.0.1.132/30, 10.0.1.136/29 } jump from_vms" in old_nft
    assert "ip daddr { 10.0.1.130/32, 10.0.1.144/28 } jump to_vms" in new_nft
    assert "elements = { 10.0.1.130, 10.0.1.146 }" in new_nft  # the anti-spoofing set of VMs
    _, rules = ufw.render_policy(policy(plan, new), plan.name)
    assert "-A ufw-before-forward -d 10.0.1.130/32 -j nestnet-to-vms" in rules
    # without exceptions the table text is exactly as before
    home = load_plan(write(tmp_path, mobile(), "h.yaml"))
    assert "ip saddr 10.0.1.128/28 jump from_vms" in nft.render_policy(policy(home, home.hosts["kvm1"]))


def test_check_proves_the_exception_and_its_failures(tmp_path):
    plan = load_plan(write(tmp_path, mobile(moved_to="kvm2")))
    state = from_plan(plan)
    res = check(state)
    assert res.summary == {"pairs": 49, "ok": 49, "failed": 0}
    model = Model(state)
    assert model.ping("mgmt-vm", "web1").ok and model.ping("web3", "web1").ok and model.ping("kvm1", "web1").ok
    # Azure without the /32: traffic reaches the old host, whose /32 sends it back to Azure: a loop
    az = state.azure
    no32 = dataclasses.replace(state, cloud=dataclasses.replace(
        az, user_routes=tuple(r for r in az.user_routes if r.prefix.prefixlen != 32)))
    bad = Model(no32).ping("mgmt-vm", "web1")
    assert not bad.ok
    # the old host without its forward-away /32: it delivers into its own bridge, where web1 is not
    kvm1 = state.hosts["kvm1"]
    lost = dataclasses.replace(state, hosts={**state.hosts, "kvm1": dataclasses.replace(
        kvm1, owned_routes=tuple(r for r in kvm1.owned_routes if r.dst.prefixlen != 32))})
    r = Model(lost).ping("kvm1", "web1")
    assert not r.ok and "web1 lives on kvm2" in r.reason and r.fix == "`nestnet host apply` on kvm1"


def test_check_cli_on_an_exception(tmp_path):
    r = nestnet("check", str(write(tmp_path, mobile(moved_to="kvm3"))), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["summary"] == {"pairs": 49, "ok": 49, "failed": 0, "by_design": 0}


def test_plan_shows_exceptions(tmp_path):
    path = write(tmp_path, mobile(moved_to="kvm2"))
    r = nestnet("plan", str(path))
    assert r.returncode == 0 and "Exceptions" in r.stdout and "nestnet-web1.32" in r.stdout
    r = nestnet("plan", str(path), "--json")
    doc = json.loads(r.stdout)
    assert doc == json.loads(json.dumps(load_plan(path, write=False).to_dict()))
    assert {"dst": "10.0.1.130/32", "via": "10.0.1.11", "dev": "eth0"} in doc["hosts"]["kvm3"]["routes"]
    assert doc["exceptions"] == [{"vm": "web1", "ip": "10.0.1.130", "host": "kvm2", "block_of": "kvm1"}]


def test_vm_move_keeps_the_address(tmp_path):
    path = write(tmp_path, mobile())
    path.write_text("# my fabric\n" + path.read_text())
    r = nestnet("vm", "move", str(path), "web1", "--to", "kvm2", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ip"] == "10.0.1.130" and doc["exception"]["host"] == "kvm2" and not doc["guest_config_changed"]
    text = path.read_text()
    assert text.startswith("# my fabric\n")
    plan = load_plan(path, write=False)
    assert plan.vms["web1"].host == "kvm2" and [m.vm for m in plan.moves] == ["web1"]
    # and back home: no exception left
    assert nestnet("vm", "move", str(path), "web1", "--to", "kvm1").returncode == 0
    assert load_plan(path, write=False).moves == ()


def test_vm_move_renumber(tmp_path):
    path = write(tmp_path, mobile())
    r = nestnet("vm", "move", str(path), "web1", "--to", "kvm3", "--renumber")
    assert r.returncode == 0, r.stderr
    plan = load_plan(path, write=False)
    ip = plan.vms["web1"].ip
    assert ip in plan.hosts["kvm3"].block and plan.moves == ()
    assert f"ip addr replace {ip}/32 dev eth0" in r.stdout and "guest config changed" in r.stdout
    assert f"web1: {ip}" in path.with_suffix(".lock").read_text()


def test_vm_move_refusals_change_nothing(tmp_path):
    spec = mobile()
    spec["azure"]["max_routes"] = 3
    path = write(tmp_path, spec)
    nestnet("plan", str(path))
    before = (path.read_text(), path.with_suffix(".lock").read_text())
    for args, expected in (
        (["web1", "--to", "kvm2"], "max_routes=3"),
        (["web1", "--to", "nope"], "no host named 'nope'"),
        (["nope", "--to", "kvm2"], "no VM named 'nope'"),
        (["web1", "--to", "kvm1"], "already lives on kvm1"),
    ):
        r = nestnet("vm", "move", str(path), *args)
        assert r.returncode == 2 and expected in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert (path.read_text(), path.with_suffix(".lock").read_text()) == before


def test_move_steps_render(tmp_path):
    plan = load_plan(write(tmp_path, mobile(moved_to="kvm2")))
    assert move.tunnel_lines(plan.hosts["kvm1"])[0] == (
        "link add nnmove0 address 02:6d:0a:00:01:0a type vxlan id 4242 local 10.0.1.10 dstport 4789 nolearning dev eth0"
    )
    ip_lines, fdb = move.forward_lines(plan, "kvm1", "web1")
    assert fdb == ["fdb replace 02:6d:0a:00:01:0b dev nnmove0 dst 10.0.1.11 self permanent"]
    assert ip_lines == [
        "neigh replace 10.0.1.130 lladdr 02:6d:0a:00:01:0b dev nnmove0 nud permanent",
        "route replace 10.0.1.130/32 dev nnmove0 proto 202 src 10.0.1.10",
    ]


DOMAIN = """<domain type='kvm'><name>{name}</name><devices>
<interface type='bridge'><mac address='{mac}'/><source bridge='nestbr0'/></interface>
</devices></domain>"""


def test_hook_rendering_and_steps(tmp_path):
    spec = mobile(moved_to="kvm2")
    spec["hosts"][1]["migration_hook"] = True
    plan = load_plan(write(tmp_path, spec))
    kvm2 = plan.hosts["kvm2"]
    want = host_desired.desired(plan, kvm2)
    hook = want.files[libvirt_hook.HOOK_PATH]
    assert hook.executable and hook.content.startswith("#!/bin/sh\n# Managed by nestnet")
    assert 'out=$(nestnet -q host hook /etc/nestnet/nestnet.yaml --host kvm2 -- "$1" "$2" "$3" 2>&1)' in hook.content
    assert "logger -t nestnet-hook" in hook.content  # libvirt keeps nothing a hook prints
    assert hook.content.endswith("exit 0\n")  # a failure never aborts a guest's start or migration
    assert "migrate/begin|started/begin|stopped/end) ;;" in hook.content
    assert subprocess.run(["sh", "-n"], input=hook.content, text=True).returncode == 0
    # opt-in: a host without migration_hook gets no hook file
    assert libvirt_hook.HOOK_PATH not in host_desired.desired(plan, plan.hosts["kvm1"]).files
    # which VM: by the domain's MAC, else by its name
    xml = DOMAIN.format(name="libvirt-name", mac=plan.vms["web1"].mac.upper())
    assert libvirt_hook.vm_of(plan, "libvirt-name", xml) == "web1"
    assert libvirt_hook.vm_of(plan, "web3", "") == "web3"
    assert libvirt_hook.vm_of(plan, "other", "<not xml") is None
    steps = libvirt_hook.steps
    assert steps(plan, "kvm2", "web1", "migrate", "begin") == ("arrive",)
    assert steps(plan, "kvm2", "web1", "started", "begin") == ("arrive",)
    assert steps(plan, "kvm1", "web1", "stopped", "end") == ("depart",)
    assert steps(plan, "kvm2", "web1", "stopped", "end") == ()  # stopped where it lives: a plain stop
    assert steps(plan, "kvm1", "web1", "migrate", "begin") == ()  # spec not moved here: nothing
    assert steps(plan, "kvm2", "web1", "prepare", "begin") == ()
    assert steps(plan, "kvm2", None, "migrate", "begin") == ()


def test_hook_file_round_trip(tmp_path):
    """The executable bit is part of the file: written 0755, read back equal (no endless diff)."""
    from nestnet.host.execute import write_file

    f = files.File("#!/bin/sh\n# Managed by nestnet (fabric x, host y).\nexit 0\n", executable=True)
    write_file(tmp_path / libvirt_hook.HOOK_PATH, f)
    seen = files.read(tmp_path, {})
    assert seen[libvirt_hook.HOOK_PATH] == f


@pytest.mark.parametrize(
    "out, sent, lost, gap",
    [
        ("".join(f"64 bytes from x: icmp_seq={i} ttl=63\n" for i in range(1, 21)) + "20 packets transmitted, 20 received", 20, 0, 0.0),
        ("".join(f"64 bytes from x: icmp_seq={i} ttl=63\n" for i in [*range(1, 11), *range(15, 21)])
         + "20 packets transmitted, 16 received", 20, 4, 0.2),
        # the last request was still in flight when ping stopped: not counted
        ("".join(f"64 bytes from x: icmp_seq={i} ttl=63\n" for i in range(1, 10)) + "10 packets transmitted, 9 received", 9, 0, 0.0),
        ("20 packets transmitted, 0 received", 20, 20, 1.0),
    ],
)
def test_parse_ping(out, sent, lost, gap):
    p = parse_ping("a", "b", out)
    assert (p.sent, p.lost) == (sent, lost) and p.gap_s == pytest.approx(gap)


def test_parse_ping_of_busybox_counts_from_zero():
    """busybox ping (inside a libvirt guest) numbers its requests from 0 and says so in its own words."""
    seqs = [*range(0, 10), *range(14, 20)]
    out = "".join(f"64 bytes from 10.0.2.5: seq={i} ttl=61 time=0.000 ms\n" for i in seqs)
    out += "\n--- 10.0.2.5 ping statistics ---\n20 packets transmitted, 16 packets received, 20% packet loss\n"
    p = parse_ping("web1", "mgmt-vm", out, first_seq=0)
    assert (p.sent, p.lost) == (20, 4) and p.gap_s == pytest.approx(0.2)
    # read as iputils' (from 1), the same output would lose the first request and miscount
    assert parse_ping("web1", "mgmt-vm", out).sent != 20 or parse_ping("web1", "mgmt-vm", out).lost != 4


def test_virsh_migrate_goes_over_the_new_hosts_uplink(tmp_path):
    from nestnet.lab.livemigrate import virsh_migrate_argv

    spec = mobile(moved_to="kvm2")
    plan = load_plan(write(tmp_path, spec))
    ip = plan.hosts["kvm2"].ip
    argv = virsh_migrate_argv(plan, "web1", "kvm2")
    assert argv[:2] == ["virsh", "migrate"] and "--live" in argv and "--undefinesource" in argv
    # the libvirt connection and QEMU's stream both to the uplink address, never a name
    assert f"qemu+tcp://{ip}/system" in argv and argv[argv.index("--migrateuri") + 1] == f"tcp://{ip}"


def test_hook_script_logs_to_the_journal_and_never_fails(tmp_path):
    """The rendered hook, run by sh with a `nestnet` and a `logger` of the test's own on PATH
    (the script sets PATH itself, so it is rewritten to the test's directory): what nestnet says
    goes to the journal, a failure too, at priority err, and the hook still exits 0."""
    spec = mobile(moved_to="kvm2")
    spec["hosts"][1]["migration_hook"] = True
    plan = load_plan(write(tmp_path, spec))
    text = libvirt_hook.render(plan, plan.hosts["kvm2"], "# header\n")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "logger").write_text(f'#!/bin/sh\necho "logger $*" >> {tmp_path}/journal\n/bin/cat >> {tmp_path}/journal\n')
    for rc in (0, 3):
        (bin_ / "nestnet").write_text(f'#!/bin/sh\necho "kvm2: web1 arrive ($3 $4)"\nexit {rc}\n')
        for f in bin_.iterdir():
            f.chmod(0o755)
        script = text.replace(f"PATH={libvirt_hook.PATH}", f"PATH={bin_}")
        (tmp_path / "journal").write_text("")
        r = subprocess.run(["sh", "-s", "web1", "migrate", "begin"], input=script, text=True, capture_output=True)
        assert r.returncode == 0
        journal = (tmp_path / "journal").read_text()
        assert "logger -t nestnet-hook" in journal and "kvm2: web1 arrive" in journal
        assert ("-p user.err" in journal) == (rc != 0)
        # phases the hook ignores call nothing
        (tmp_path / "journal").write_text("")
        r = subprocess.run(["sh", "-s", "web1", "prepare", "begin"], input=script, text=True, capture_output=True)
        assert r.returncode == 0 and (tmp_path / "journal").read_text() == ""


def test_libvirt_downtime_is_read_from_domjobinfo():
    from nestnet.lab.livemigrate import downtime_s

    info = "Job type:         Completed\nOperation:        Incoming migration\nTotal downtime:   307          ms\n" \
           "Downtime w/o network: 306          ms\n"
    assert downtime_s(info) == pytest.approx(0.307)
    assert downtime_s("Job type: None\n") is None


def test_hook_applies_a_staged_departure_in_shell_first(tmp_path):
    """stopped/end: the lines `host stage-departure` wrote go to `ip -batch` before nestnet starts,
    only when staged after the spec was copied (a stale file is ignored)."""
    import os
    import time

    from nestnet.host.move import STAGED_DIR

    spec = mobile(moved_to="kvm2")
    spec["hosts"][0]["migration_hook"] = True
    plan = load_plan(write(tmp_path, spec))
    text = libvirt_hook.render(plan, plan.hosts["kvm1"], "# header\n")
    bin_, staged, etc = tmp_path / "bin", tmp_path / "staged", tmp_path / "etc"
    for d in (bin_, staged, etc):
        d.mkdir()
    (bin_ / "logger").write_text(f'#!/bin/sh\necho "logger $*" >> {tmp_path}/journal\n/bin/cat >> {tmp_path}/journal\n')
    (bin_ / "ip").write_text(f'#!/bin/sh\necho "ip $*" >> {tmp_path}/calls\n')
    (bin_ / "nestnet").write_text(f'#!/bin/sh\necho "nestnet $*" >> {tmp_path}/calls\n')
    for f in bin_.iterdir():
        f.chmod(0o755)
    spec_copy = etc / "nestnet.yaml"
    script = (text.replace(f"PATH={libvirt_hook.PATH}", f"PATH={bin_}")
              .replace(f"/{STAGED_DIR}/", f"{staged}/").replace(libvirt_hook.SPEC_PATH, str(spec_copy)))
    assert script != text

    def run(age: float) -> list[str]:
        (tmp_path / "calls").write_text("")
        spec_copy.write_text("spec")
        (staged / "web1.ip").write_text("route replace 10.0.1.20/32 dev nnmove0\n")
        t = time.time()
        os.utime(spec_copy, (t, t))
        os.utime(staged / "web1.ip", (t + age, t + age))
        r = subprocess.run(["sh", "-s", "web1", "stopped", "end"], input=script, text=True, capture_output=True)
        assert r.returncode == 0
        return (tmp_path / "calls").read_text().splitlines()

    calls = run(+5)
    assert calls[0] == f"ip -batch {staged}/web1.ip" and calls[1].startswith("nestnet -q host hook")
    assert run(-5)[0].startswith("nestnet -q host hook")  # staged before the spec changed: not used


def test_ufw_hosts_with_the_hook_take_the_move_tunnel_from_the_other_hosts(tmp_path):
    """UFW denies incoming by default: a migration_hook host on UFW accepts the move tunnel (VXLAN,
    udp/4789) from every other host, on its uplink; without the hook nothing is opened."""
    from nestnet.mobility import MOVE_PORT

    spec = mobile(moved_to="kvm2")
    for h in spec["hosts"]:
        h["firewall"] = "ufw"
    spec["hosts"][1]["migration_hook"] = True
    plan = load_plan(write(tmp_path, spec))
    kvm2 = plan.hosts["kvm2"]
    _, rules = ufw.blocks(plan, kvm2)
    others = [h for h in plan.hosts.values() if h.name != "kvm2"]
    for h in others:
        assert f"-A ufw-before-input -i {kvm2.uplink} -s {h.ip} -p udp --dport {MOVE_PORT} -j ACCEPT" in rules
    assert f"--dport {MOVE_PORT}" not in ufw.blocks(plan, plan.hosts["kvm1"])[1]
    # what host apply writes carries the same rules
    want = host_desired.desired(plan, kvm2)
    assert ufw.tunnel_peers(plan, kvm2) == tuple(str(h.ip) for h in others) and want is not None
