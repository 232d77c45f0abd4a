"""DHCP and DNS for the nested VMs on the host's bridge: one dnsmasq (Debian's dnsmasq-base)
that nestnet owns (docs/decisions/0011).

- DHCP: a static lease of each planned VM's address by its planned MAC; with
  ``nested.dhcp.dynamic`` (or ``hosts[].dhcp_dynamic``) also the free runs of the block the Plan
  computed. ``onlink`` guests get a /32 with a classless static route (option 121) to the host,
  on link, and the default via it; ``subnet`` guests the subnet's mask and the host as router.
  Both get the host as name server and the search domains.
- DNS: a forwarder on the host's bridge address, to the cloud's resolver (``plan.cloud.resolver``),
  which it asks from the host's own address (the cloud's resolver does not answer nested addresses).

Files (rendered under the host root like every persistent file): the config, a systemd unit and
its ``wants`` link, so it starts at boot. The running process is recognised by what it serves,
not by a pid file: a ``dnsmasq`` in this network namespace whose command line reads this root's
config. What it was started with is in its own environment: whoever starts it (the unit, or
nestnet) puts the digest of the config file it is about to read there (``NESTNET_DNSMASQ_CONF``),
so ``/proc/PID/environ`` says which config it runs with, also after a reboot (no record in /run).
A changed config means a restart, an unchanged one nothing; a second one (a stray of a race, or
one started by hand with this config) is stopped. Under systemd (root ``/``) the unit is
(re)started; anywhere else (a lab namespace, a test root) nestnet runs dnsmasq itself, which
daemonises into the current namespace.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from ..errors import HostError
from ..plan import Host, Plan

CONF = "etc/nestnet/dnsmasq.conf"
UNIT_NAME = "nestnet-dnsmasq.service"
UNIT = f"etc/systemd/system/{UNIT_NAME}"
UNIT_LINK = f"etc/systemd/system/multi-user.target.wants/{UNIT_NAME}"
PID = "run/nestnet/dnsmasq.pid"
ENV = "NESTNET_DNSMASQ_CONF"  # in dnsmasq's environment: the digest of the config it read at start
LEASES = "var/lib/nestnet/dnsmasq.leases"
LOG = "var/log/nestnet/dnsmasq.log"  # only when nestnet runs dnsmasq itself (no journal)
FILES = (CONF, UNIT, UNIT_LINK)
DNSMASQ = "/usr/sbin/dnsmasq"
TAG = "nestnet"
LEASE_TIME = "12h"


def _mask(prefix_len: int) -> str:
    return str(IPv4Address((0xFFFFFFFF << (32 - prefix_len)) & 0xFFFFFFFF))


def gateway(host: Host) -> IPv4Address:
    """The address the host's VMs use as gateway and name server: the bridge's (the shared
    gateway in the shared style), else the host's own."""
    return host.bridge_address or host.ip


def render_conf(plan: Plan, host: Host) -> str:
    """The dnsmasq config for ``host`` (no header; paths of state files come on the command line)."""
    br = host.bridge
    gw = gateway(host)
    onlink = plan.guest_style != "subnet"
    # Which addresses DHCP may hand out on this bridge: the block (onlink, shared) or the host's
    # subnet (subnet style, whose guests carry the subnet's mask). The bridge's own address is a
    # /32, so the network is declared with shared-network.
    if onlink:
        net, plen = host.block.network_address, host.block.prefixlen
    else:
        net, plen = plan.subnets[host.subnet].prefix.network_address, host.prefix_len
    mask = _mask(plen)
    netw = IPv4Network((int(net), plen))
    out = [
        f"# DHCP and DNS for the nested VMs on {br} (docs/decisions/0011)",
        f"interface={br}",
        "except-interface=lo",
        # binds the bridge's addresses only, also when the bridge appears after dnsmasq starts
        "bind-dynamic",
        f"# DNS: forward to {plan.cloud.resolver_name}, asked from this host's own address",
        "no-resolv",
        "no-hosts",
        f"server={plan.cloud.resolver}",
        "cache-size=1000",
        "# DHCP",
        "dhcp-authoritative",
        f"shared-network={br},{net}",
        f"dhcp-range=set:{TAG},{net},static,{mask},{LEASE_TIME}",
    ]
    out += [f"dhcp-range=set:{TAG},{a},{z},{mask},{LEASE_TIME}" for a, z in host.dhcp_ranges]
    vms = [plan.vms[n] for n in host.vms]
    # a VM that moved in from another block (docs/decisions/0013): its own /32 network here
    for v in vms:
        if v.ip not in netw:
            out += [f"shared-network={br},{v.ip}", f"dhcp-range=set:{TAG},{v.ip},static,255.255.255.255,{LEASE_TIME}"]
    out += [f"dhcp-host={v.mac},{v.ip},{v.name},{LEASE_TIME}" for v in vms]
    opt = f"dhcp-option=tag:{TAG},"
    if onlink:
        out += [
            opt + "option:netmask,255.255.255.255",
            # RFC 3442: the gateway on link, then the default via it; clients with 121 ignore option 3
            opt + f"option:classless-static-route,{gw}/32,0.0.0.0,0.0.0.0/0,{gw}",
        ]
    out.append(opt + f"option:router,{gw}")
    out.append(opt + f"option:dns-server,{gw}")
    search = plan.dns_search
    if search:
        out.append(opt + f"option:domain-search,{','.join(search)}")
        out.append(opt + f"option:domain-name,{search[0]}")
    return "\n".join(out) + "\n"


def argv(root: Path | str, foreground: bool = False) -> list[str]:
    r = str(root).rstrip("/")
    args = [
        DNSMASQ,
        f"--conf-file={r}/{CONF}",
        f"--pid-file={r}/{PID}",
        f"--dhcp-leasefile={r}/{LEASES}",
    ]
    return args + (["--keep-in-foreground"] if foreground else [f"--log-facility={r}/{LOG}"])


def unit(header: str) -> str:
    return (
        header
        + "[Unit]\nDescription=nestnet's DHCP and DNS for nested VMs\n"
        "After=network.target systemd-networkd.service\n\n"
        "[Service]\nType=simple\n"
        "ExecStartPre=/bin/mkdir -p /run/nestnet /var/lib/nestnet\n"
        # the digest of the config dnsmasq is about to read goes into its environment (exec:
        # the same PID), so what it runs with is read from /proc/PID/environ ($$ is systemd's $)
        f"ExecStart=/bin/sh -c 'exec env {ENV}=$$(sha256sum /{CONF} | cut -c1-16) "
        f"{' '.join(argv('/', foreground=True))}'\n"
        "Restart=on-failure\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def digest(conf: str) -> str:
    return hashlib.sha256(conf.encode()).hexdigest()[:16]


def files(plan: Plan, host: Host, header: str, file_cls: type) -> dict[str, object]:
    conf = header + render_conf(plan, host)
    return {
        CONF: file_cls(conf),
        UNIT: file_cls(unit(header)),
        UNIT_LINK: file_cls(link=f"/{UNIT}"),
    }


# --------------------------------------------------------------------------------------------
# Observe (reads only)


@dataclass(frozen=True)
class Running:
    pid: int  # the one that serves (the lowest PID when there are several)
    digest: str | None  # of the config it was started with (None: not started by nestnet)
    strays: tuple[int, ...] = ()  # further ones serving the same config: a race's leftovers

    @property
    def pids(self) -> tuple[int, ...]:
        return (self.pid, *self.strays)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:  # gone, or not ours to read
        return None


def _env(pid: int) -> str | None:
    for item in (_read(f"/proc/{pid}/environ") or b"").split(b"\0"):
        if item.startswith(ENV.encode() + b"="):
            return item[len(ENV) + 1 :].decode(errors="replace")
    return None


def processes(root: Path) -> dict[int, int]:
    """pid -> parent pid of every dnsmasq in this network namespace reading ``root``'s config."""
    conf_arg = f"--conf-file={str(root).rstrip('/')}/{CONF}".encode()
    try:
        here = os.stat("/proc/self/ns/net")
    except OSError:
        return {}
    out: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = _read(f"/proc/{name}/stat")
        if stat is None or b"(dnsmasq)" not in stat:
            continue
        cmdline = _read(f"/proc/{name}/cmdline") or b""
        if conf_arg not in cmdline.split(b"\0"):
            continue
        try:
            ns = os.stat(f"/proc/{name}/ns/net")
        except OSError:
            continue
        fields = stat.rsplit(b")", 1)[1].split()
        if (ns.st_dev, ns.st_ino) == (here.st_dev, here.st_ino) and fields[0] != b"Z":
            out[int(name)] = int(fields[1])
    return out


def observe(root: Path) -> Running | None:
    """The dnsmasq that serves this root's config here, if one runs (its TCP children aside)."""
    procs = processes(root)
    tops = sorted(p for p, parent in procs.items() if parent not in procs)
    if not tops:
        return None
    return Running(tops[0], _env(tops[0]), tuple(tops[1:]))


# --------------------------------------------------------------------------------------------
# Execute (called by execute.py for Change(kind="service"))


def _systemd(root: Path) -> bool:
    return root.resolve() == Path("/") and Path("/run/systemd/system").is_dir()


def _run(args: list[str], env: dict[str, str] | None = None) -> None:
    try:
        r = subprocess.run(args, capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise HostError(f"{args[0]} is not installed (Debian/Ubuntu: apt-get install dnsmasq-base)") from None
    if r.returncode != 0:
        raise HostError(f"{' '.join(args[:3])}: {(r.stderr or r.stdout).strip()}")


def stop(root: Path, forget: bool = False) -> None:
    """Stop it, and any other one serving this config; ``forget``: also delete its leases and log."""
    if _systemd(root):
        _run(["systemctl", "stop", UNIT_NAME])
    pids = list(processes(root))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    # gone from /proc (reaped), as before: its sockets are closed by then
    _wait(lambda: not any(Path(f"/proc/{p}").exists() for p in pids), f"dnsmasq {', '.join(map(str, pids))} to stop")
    for rel in (PID, *((LEASES, LOG) if forget else ())):
        (root / rel).unlink(missing_ok=True)


def start(root: Path, dig: str) -> None:
    """(Re)start dnsmasq with the config on disk, the digest of what it reads in its environment."""
    stop(root)
    for rel in (PID, LEASES, LOG):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
    if _systemd(root):
        _run(["systemctl", "daemon-reload"])
        _run(["systemctl", "start", UNIT_NAME])
        _wait(lambda: observe(root) is not None, f"{UNIT_NAME} to start dnsmasq")
    else:
        # dnsmasq daemonises after its pid file is written, or exits non-zero
        _run(argv(root), env={**os.environ, ENV: digest((root / CONF).read_text())})
    if observe(root) is None:
        raise HostError(f"dnsmasq did not stay up; see /{LOG} or journalctl -u {UNIT_NAME}")


def _wait(cond, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise HostError(f"timed out waiting for {what}")
        time.sleep(0.02)
