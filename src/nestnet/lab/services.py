"""``lab services``: does every nested VM get what a booting VM needs, for real?

For each VM, inside its namespace:
- dhcp: a fresh DHCP exchange with its host (udhcpc, record only) leases the plan's address,
  and eth0 holds that address;
- dns: through the VM's own resolver configuration, a VNet name (an endpoint, else a host), the
  internet's name and, with a private zone, another nested VM's name (FQDN and short, through the
  search domain) resolve to the right addresses;
- http: a GET by name to the lab's internet web server answers;
- forwards: every NAT port forward of the VM answers on its host's address and port, from an
  endpoint (lab/forwards: TCP connect; see ``check``'s model for the same question offline).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from ..errors import LabError
from ..plan import Plan
from . import dhcpclient, dns
from .core import require_up, resolv_paths, state_dir
from .topology import Topology

# Runs inside a VM namespace (ip netns exec mounts its resolv.conf): resolve, then GET by name.
PROBE = r"""
import json, socket, sys, urllib.request
names, url = json.loads(sys.argv[1]), sys.argv[2]
out = {"names": {}, "http": False}
for n in names:
    try:
        out["names"][n] = socket.gethostbyname(n)
    except OSError:
        out["names"][n] = None
try:
    with urllib.request.urlopen(url, timeout=5) as r:
        out["http"] = r.status == 200 and b"nestnet lab" in r.read()
except Exception:
    pass
print(json.dumps(out))
"""

CONNECT = r"""
import json, socket, sys
out = []
for ip, port in json.loads(sys.argv[1]):
    s = socket.socket()
    s.settimeout(2)
    try:
        out.append(s.connect_ex((ip, port)) == 0)
    finally:
        s.close()
print(json.dumps(out))
"""


@dataclass
class VMServices:
    dhcp_ok: bool
    ip: str | None
    dns_ok: bool
    http_ok: bool
    forwards: list[tuple[int, bool]] = field(default_factory=list)
    names: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # name -> (want, got)

    @property
    def ok(self) -> bool:
        return self.dhcp_ok and self.dns_ok and self.http_ok and all(ok for _, ok in self.forwards)

    def to_dict(self) -> dict:
        return {
            "dhcp": {"ok": self.dhcp_ok, "ip": self.ip},
            "dns": {"ok": self.dns_ok},
            "http": {"ok": self.http_ok},
            "forwards": [{"port": p, "ok": ok} for p, ok in self.forwards],
        }


def expected_names(plan: Plan, vm: str) -> dict[str, IPv4Address]:
    """The names ``vm`` must resolve, and to what (pure)."""
    out: dict[str, IPv4Address] = {}
    if plan.endpoints:
        e = next(iter(plan.endpoints.values()))
        out[dns.internal_name(plan, e.name, e.ip)] = e.ip
    else:
        h = next(iter(plan.hosts.values()))
        out[dns.internal_name(plan, h.name, h.ip)] = h.ip
    out[dns.INTERNET_NAME] = dns.INTERNET_IP
    zone = getattr(plan.cloud, "private_dns_zone", None)
    if zone:
        others = [v for v in plan.vms.values() if v.name != vm] or [plan.vms[vm]]
        other = others[0]
        out[f"{other.name}.{zone}"] = other.ip
        if zone in plan.vms[vm].search:
            out[other.name] = other.ip  # short, through the search domain
    return out


def _eth0_addrs(plan: Plan, topo: Topology, vm: str) -> set[str]:
    r = subprocess.run(["ip", "-n", topo.ns(vm), "-j", "-4", "addr", "show", "dev", "eth0"], capture_output=True, text=True)
    if r.returncode != 0:
        return set()
    return {a["local"] for link in json.loads(r.stdout or "[]") for a in link.get("addr_info", [])}


def forward_targets(plan: Plan, vm: str) -> list[tuple[str, int, int]]:
    """(host address, host port, guest port) of every NAT forward of ``vm``."""
    v = plan.vms[vm]
    return [(str(plan.hosts[v.host].ip), f.host_port, f.port) for f in getattr(v, "forwards", ()) if f.proto == "tcp"]


def run(plan: Plan) -> dict[str, VMServices]:
    require_up(plan)
    topo = Topology.from_plan(plan)
    vms = list(plan.vms)
    leases = dhcpclient.run(plan, topo, vms, state_dir(plan.name), apply=False, resolv=resolv_paths(plan))
    url = f"http://{dns.INTERNET_NAME}/"
    want = {v: expected_names(plan, v) for v in vms}
    probes = {
        v: subprocess.Popen(
            ["ip", "netns", "exec", topo.ns(v), sys.executable, "-c", PROBE, json.dumps(list(want[v])), url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for v in vms
    }
    src = next(iter(plan.endpoints), None)
    fwd = {v: forward_targets(plan, v) for v in vms}
    conns = None
    if src is not None and any(fwd.values()):
        targets = [[ip, hp] for v in vms for ip, hp, _ in fwd[v]]
        conns = subprocess.Popen(
            ["ip", "netns", "exec", topo.ns(src), sys.executable, "-c", CONNECT, json.dumps(targets)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
    results = {}
    for v in vms:
        out, err = probes[v].communicate(timeout=120)
        if probes[v].returncode != 0:
            raise LabError(f"probing {v}: {err.strip().splitlines()[-1:] or 'no output'}")
        got = json.loads(out)
        lease = leases[v]
        ip = lease.get("ip") if lease else None
        planned = str(plan.vms[v].ip)
        names = {n: (str(a), got["names"].get(n)) for n, a in want[v].items()}
        results[v] = VMServices(
            dhcp_ok=ip == planned and planned in _eth0_addrs(plan, topo, v),
            ip=ip,
            dns_ok=all(w == g for w, g in names.values()),
            http_ok=bool(got["http"]),
            names=names,
        )
    oks: list[bool] = []
    if conns is not None:
        out, err = conns.communicate(timeout=120)
        oks = json.loads(out) if conns.returncode == 0 else []
    i = 0
    for v in vms:
        for _, _hp, port in fwd[v]:
            results[v].forwards.append((port, oks[i] if i < len(oks) else False))
            i += 1
    return results
