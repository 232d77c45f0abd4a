"""Name services of the lab: the cloud's DNS (on each of its plan's ``resolvers``) inside the fabric, a web server on the lab's internet, and the resolv.conf each node's programs read.

- The cloud's DNS is a dnsmasq in the fabric namespace listening on the cloud's resolver addresses
  (on the fabric's ``lo``, reached like the cloud's virtual IP through each NIC's gateway). It answers only queries
  whose source the arriving NIC owns (an nft rule in the fabric's table): the conservative
  reading of the users' reports that nested guests cannot resolve through it (DESIGN 3.12, an
  ASSUMPTION recorded in docs/decisions/0011). It knows the VNet's names (every host and endpoint
  as ``<name>.<vnet suffix>``), the internet's name, and the private DNS zone's A records.
- The internet has a name (``www.example.com``) and a plain HTTP server (``python -m http.server``)
  at 203.0.113.10:80, started and ended by the lab by PID.
- Programs in a node read ``/etc/netns/<namespace>/resolv.conf`` (``ip netns exec`` mounts it over
  /etc/resolv.conf): the lab writes it for static guests from the guest config; DHCP guests' client
  writes it from what the host's DHCP server handed out.

Record sets of the zone come from the plan (``lab up`` with the cloud from the plan: as if
``nestnet <cloud> apply`` had run) or from the cloud API emulator's zone (``--<cloud> api``):
``write_zone`` + SIGHUP.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from importlib import import_module
from ipaddress import IPv4Address
from pathlib import Path
from typing import Mapping

from ..errors import LabError
from ..netns import run_in
from .. import clouds
from ..plan import Plan
from .topology import INTERNET_IP, Topology

INTERNET_NAME = "www.example.com"  # RFC 2606: reserved for examples, never a real site
INTERNET_DOMAIN = "example.com"
HTTP_PORT = 80
ETC_NETNS = Path("/etc/netns")


def __getattr__(name: str) -> IPv4Address:
    """``<CLOUD>_DNS``: a cloud package's DNS address (its plan module's constant of that name), by the
    name this module gave the default cloud's before the seam (tests and scripts ask it so)."""
    for cloud in clouds.PACKAGES:
        if name == f"{cloud.upper()}_DNS":
            found: IPv4Address | None = getattr(import_module(f"{clouds.__name__}.{cloud}.plan"), name, None)
            if found is not None:
                return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def vnet_suffix(plan: Plan) -> str:
    """The domain the cloud's DNS gives the network's VMs in the lab (the cloud plan's own words)."""
    return plan.cloud.internal_domain(plan.name)


def internal_name(plan: Plan, name: str, ip: IPv4Address) -> str:
    """What the cloud's DNS calls the host or endpoint ``name`` at ``ip``."""
    return plan.cloud.internal_name(plan.name, name, ip)


def vnet_names(plan: Plan) -> dict[str, IPv4Address]:
    """What the cloud's DNS knows without any zone: every NIC's VM by name, and the internet's name."""
    out = {internal_name(plan, h.name, h.ip): h.ip for h in plan.hosts.values()}
    out |= {internal_name(plan, e.name, e.ip): e.ip for e in plan.endpoints.values()}
    out[INTERNET_NAME] = INTERNET_IP
    return out


def zone_records(plan: Plan) -> dict[str, IPv4Address]:
    """The A records the cloud's ``apply`` keeps in the private zone: one per nested VM."""
    zone = getattr(plan.cloud, "private_dns_zone", None)
    return {f"{v.name}.{zone}": v.ip for v in plan.vms.values()} if zone else {}


def hosts_text(records: Mapping[str, IPv4Address]) -> str:
    return "".join(f"{ip} {name}\n" for name, ip in sorted(records.items()))


def _dir(plan: Plan) -> Path:
    from .core import state_dir

    return state_dir(plan.name) / "dns"


def _pid_file(plan: Plan) -> str:
    """The DNS server's PID file: named after the cloud (``<cloud>-dns.pid``, as running labs have it)."""
    return f"{plan.cloud.cloud_name}-dns.pid"


def write_zone(plan: Plan, records: Mapping[str, IPv4Address]) -> None:
    """The cloud's DNS answers ``records`` for the private zone from now on (dnsmasq re-reads on HUP)."""
    d = _dir(plan)
    tmp = d / ".zone.hosts.tmp"
    tmp.write_text(hosts_text(records))
    os.replace(tmp, d / "zone.hosts")
    try:
        pid = int((d / _pid_file(plan)).read_text())
        os.kill(pid, signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        pass


def start(plan: Plan, topo: Topology, zone: Mapping[str, IPv4Address]) -> None:
    """The cloud's DNS in the fabric and the web server on the internet (both ended by ``lab down``,
    which ends every process of the lab's namespaces by PID)."""
    d = _dir(plan)
    (d / "www").mkdir(parents=True, exist_ok=True)
    (d / "www" / "index.html").write_text(f"nestnet lab {plan.name}: the internet\n")
    (d / "vnet.hosts").write_text(hosts_text(vnet_names(plan)))
    (d / "zone.hosts").write_text(hosts_text(zone))
    domains = [vnet_suffix(plan), INTERNET_DOMAIN, *([z] if (z := getattr(plan.cloud, "private_dns_zone", None)) else [])]
    cmd = [
        "ip", "netns", "exec", topo.sdn_ns, "dnsmasq",
        "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
        *(f"--listen-address={ip}" for ip in topo.resolvers), "--bind-interfaces",
        f"--addn-hosts={d / 'vnet.hosts'}", f"--addn-hosts={d / 'zone.hosts'}",
        *(f"--local=/{dom}/" for dom in domains),  # authoritative for these: unknown names NXDOMAIN
        f"--pid-file={d / _pid_file(plan)}", f"--log-facility={d / _pid_file(plan).replace('.pid', '.log')}",
        "--log-queries",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        name = plan.cloud.resolver_name.removeprefix("the ")  # the resolver in words, without its article
        raise LabError(f"the lab's {name} did not start: {(r.stderr or r.stdout).strip()}")
    log = open(d / "http.log", "w")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", topo.internet_ns, sys.executable, "-m", "http.server", str(HTTP_PORT),
         "--bind", str(INTERNET_IP), "--directory", str(d / "www")],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()
    (d / "http.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 15
    while not run_in(topo.internet_ns, _listening, str(INTERNET_IP), HTTP_PORT):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"the lab's web server did not start: see {d / 'http.log'}")
        time.sleep(0.05)


def _listening(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((ip, port)) == 0


def write_resolv(ns: str, text: str) -> None:
    d = ETC_NETNS / ns
    d.mkdir(parents=True, exist_ok=True)
    (d / "resolv.conf").write_text(text)


def remove_resolv(prefix: str) -> None:
    """``lab down``: the lab's /etc/netns/<namespace>/ directories, nothing else there."""
    import shutil

    if not ETC_NETNS.is_dir():
        return
    for d in ETC_NETNS.iterdir():
        if d.name.startswith(prefix):
            shutil.rmtree(d, ignore_errors=True)
