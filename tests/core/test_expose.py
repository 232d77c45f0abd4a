"""``vms[].expose`` (issue 26): spec checks, the plan, the one firewall policy's DNAT in nft and UFW,
and the rendered nftables table in real network namespaces: the internet reaches an exposed VM of a
routed-mode host through an emulated public IP (1:1 NAT to the NIC's address, as Azure does), the
replies are symmetric, and a port that is not exposed stays closed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from nestnet import netns
from nestnet.errors import SpecError
from nestnet.host import nft, ufw
from nestnet.plan import Expose, load

from .specs import seed, write

PUBLIC = "198.51.100.7"  # the host's emulated public IP (RFC 5737)
INTERNET = "203.0.113.10"


def expose_spec() -> dict:
    d = seed()
    d["hosts"][0]["public_ip"] = "kvm1-pip"
    d["vms"] = [{"name": "web1", "host": d["hosts"][0]["name"], "expose": [{"port": 80}, {"port": 53, "public_port": 5353, "proto": "udp"}]},
                {"name": "web2", "host": d["hosts"][1]["name"], "expose": [{"port": 80, "public_port": 8080}]}]
    return d


def test_expose_in_the_plan_and_the_one_policy(tmp_path):
    d = expose_spec()
    plan = load(write(tmp_path, d)).plan
    h1 = plan.hosts[d["hosts"][0]["name"]]
    assert plan.vms["web1"].exposes == (Expose(80, 80, "tcp"), Expose(53, 5353, "udp"))
    assert h1.public_ip == "kvm1-pip" and plan.hosts[d["hosts"][1]["name"]].public_ip is None
    assert plan.vms["web1"].to_dict()["expose"][1] == {"port": 53, "public_port": 5353, "proto": "udp"}
    ip = plan.vms["web1"].ip
    table = nft.render_table(plan, h1)
    assert f'iifname "{h1.l3_dev}" ip daddr {h1.ip} tcp dport 80 dnat ip to {ip}:80' in table
    assert f'iifname "{h1.l3_dev}" ip daddr {h1.ip} udp dport 5353 dnat ip to {ip}:53' in table
    assert f'iifname "{h1.l3_dev}" ct status dnat accept' in table
    seed_plan = load(write(tmp_path, seed(), "s.yaml")).plan  # nothing exposed: the table as before
    assert "dnat" not in nft.render_table(seed_plan, seed_plan.hosts[h1.name])
    nat, filt = ufw.blocks(plan, h1)
    assert f"-A PREROUTING -i {h1.l3_dev} -d {h1.ip} -p tcp --dport 80 -j DNAT --to-destination {ip}:80" in nat
    assert f"-i {h1.l3_dev} -m conntrack --ctstatus DNAT -j ACCEPT" in filt


@pytest.mark.parametrize("mutate, path, needle", [
    (lambda d: d["vms"][0]["expose"].append({"port": 22, "public_port": 22}), "vms[0].expose[2].public_port", "SSH port"),
    (lambda d: d["vms"][0]["expose"].append({"port": 81, "public_port": 80}), "vms[0].expose[2].public_port", "already taken"),
    (lambda d: d["vms"].append({"name": "web3", "host": d["hosts"][0]["name"], "expose": [{"port": 80}]}),
     "vms[2].expose[0].public_port", "VM 'web1'"),
    (lambda d: d["vms"][0]["expose"].append({"port": 0}), "vms[0].expose[2].port", "greater than or equal to 1"),
    (lambda d: d["vms"][0]["expose"].append({"port": 80, "public_port": 65536}), "vms[0].expose[2].public_port",
     "less than or equal to 65535"),
    (lambda d: d["vms"][0]["expose"].append({"port": 80, "proto": "icmp"}), "vms[0].expose[2].proto", "tcp"),
    (lambda d: d["hosts"][0].update(public_ip="my pip!"), "hosts[0].public_ip", "Azure public IP name"),
])
def test_bad_expose_is_bad_input(tmp_path, mutate, path, needle):
    d = expose_spec()
    mutate(d)
    spec = write(tmp_path, d)
    with pytest.raises(SpecError) as e:
        load(spec)
    assert e.value.problems[0].path == path and needle in e.value.problems[0].message, e.value.problems
    r = subprocess.run([sys.executable, "-m", "nestnet", "validate", str(spec)], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and path.split(".", 1)[1] in r.stderr


def _connect(ns: str, dst: str, port: int) -> str:
    """From ``ns`` (source: the internet's address): what a TCP connect and one line read get."""
    code = ("import socket,sys\ns=socket.socket();s.settimeout(2);s.bind((sys.argv[1],0))\n"
            "try:\n s.connect((sys.argv[2],int(sys.argv[3])));print(s.recv(100).decode().strip())\n"
            "except OSError as e:\n print('FAIL', type(e).__name__)\n")
    return netns.sh(ns, sys.executable, "-c", code, INTERNET, dst, str(port)).stdout.strip()


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/sbin/nft"), reason="needs root and nft")
def test_routed_mode_exposed_port_is_reachable_from_the_internet_and_others_are_not(tmp_path):
    """internet ── fabric (1:1 NAT public IP -> NIC address, as Azure) ── host (nestnet's rendered
    table) ── VM (routed mode: its own address, default via the host)."""
    d = expose_spec()
    plan = load(write(tmp_path, d)).plan
    h = plan.hosts[d["hosts"][0]["name"]]
    vm = plan.vms["web1"]
    tag = uuid.uuid4().hex[:6]
    inet, fab, host, guest = (f"nnx-{tag}-{n}" for n in ("inet", "fab", "host", "vm"))
    pids: list[int] = []
    try:
        for ns in (inet, fab, host, guest):
            netns.add(ns)
        def link(a: str, a_dev: str, b: str, b_dev: str) -> None:
            netns.sh(a, "ip", "link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", b)
            netns.sh(a, "ip", "link", "set", a_dev, "up")
            netns.sh(b, "ip", "link", "set", b_dev, "up")
        link(inet, "eth0", fab, "inet0")
        link(fab, "host0", host, h.l3_dev)
        link(host, h.bridge, guest, "eth0")
        netns.sh(inet, "ip", "addr", "add", f"{INTERNET}/24", "dev", "eth0")
        netns.sh(inet, "ip", "route", "add", "default", "via", "203.0.113.1")
        netns.sh(fab, "ip", "addr", "add", "203.0.113.1/24", "dev", "inet0")
        netns.sh(fab, "ip", "addr", "add", f"{h.gateway}/{h.prefix_len}", "dev", "host0")
        netns.sh(fab, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # Azure's public IP: 1:1 NAT to the NIC's primary private address (and back, by conntrack)
        netns.sh(fab, "nft", "-f", "-", input="\n".join([
            "table ip azure {",
            "chain pre { type nat hook prerouting priority dstnat; policy accept;",
            f"ip daddr {PUBLIC} dnat to {h.ip}", "}",
            "chain post { type nat hook postrouting priority srcnat; policy accept;",
            f'ip saddr {h.ip} oifname "inet0" snat to {PUBLIC}', "}", "}", ""]))
        netns.sh(host, "ip", "addr", "add", f"{h.ip}/{h.prefix_len}", "dev", h.l3_dev)
        netns.sh(host, "ip", "route", "add", "default", "via", str(h.gateway))
        netns.sh(host, "ip", "route", "add", f"{vm.ip}/32", "dev", h.bridge)
        netns.sh(host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        netns.sh(host, "sysctl", "-qw", f"net.ipv4.conf.{h.bridge}.proxy_arp=1")
        netns.sh(host, "nft", "-f", "-", input=nft.render_table(plan, h))
        netns.sh(guest, "ip", "addr", "add", f"{vm.ip}/32", "dev", "eth0")
        netns.sh(guest, "ip", "route", "add", str(vm.gateway), "dev", "eth0")
        netns.sh(guest, "ip", "route", "add", "default", "via", str(vm.gateway), "dev", "eth0", "onlink")
        server = ("import socket,sys\nl=socket.socket();l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                  "l.bind(('0.0.0.0',int(sys.argv[1])));l.listen()\nwhile True:\n c,a=l.accept();c.sendall(f'{sys.argv[1]} from {a[0]}\\n'.encode());c.close()\n")
        for port in (80, 81):  # the VM serves 81 too: only the policy keeps it closed
            pids.append(subprocess.Popen(["ip", "netns", "exec", guest, sys.executable, "-c", server, str(port)]).pid)
        deadline = time.monotonic() + 10
        while "80 from" not in (got := _connect(inet, PUBLIC, 80)) and time.monotonic() < deadline:
            time.sleep(0.2)
        # reached, and the VM saw the internet's own address (no masquerade): the reply went back by the host's conntrack
        assert got == f"80 from {INTERNET}"
        assert _connect(inet, PUBLIC, 81).startswith("FAIL")  # not exposed
        assert _connect(inet, str(vm.ip), 81).startswith("FAIL")  # the VM's own address is not on the internet
    finally:
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        for ns in (inet, fab, host, guest):
            netns.delete(ns)


def test_check_and_the_report_judge_exposed_ports_from_the_internet(tmp_path):
    """`check` walks the internet's connection through the host's public IP (issue 26); a what-if
    that stops the host forwarding fails it there; the report lists the ports with the verdicts."""
    import json

    spec = write(tmp_path, expose_spec())
    nn = [sys.executable, "-m", "nestnet"]
    r = subprocess.run([*nn, "check", str(spec), "--json"], capture_output=True, text=True)
    exp = json.loads(r.stdout)["exposed"]
    assert r.returncode == 0 and [(e["vm"], e["proto"], e["public_port"], e["ok"]) for e in exp] == [
        ("web1", "tcp", 80, True), ("web1", "udp", 5353, True), ("web2", "tcp", 8080, True)]
    host = expose_spec()["hosts"][0]["name"]
    r = subprocess.run([*nn, "check", str(spec), "--json", "--fault", f"ip-forward-off:{host}"], capture_output=True,
                       text=True)
    bad = [e for e in json.loads(r.stdout)["exposed"] if not e["ok"]]
    assert r.returncode == 1 and {e["vm"] for e in bad} == {"web1"} and all(e["dies_at"] == host for e in bad)
    out = tmp_path / "r.html"
    r = subprocess.run([*nn, "report", str(spec), "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    assert '<section id="exposed">' in html and "exposed: 3/3 ports ok" in html and "udp/5353 → 53" in html
