"""The sysctl keys nestnet reads and writes, spelled once, and where a key lives. Pure.

Used by the plan (what a host wants), the model (what the kernel does with it), the doctor (what
it reads), the host reconciler and the lab (which write them).
"""

from __future__ import annotations

from pathlib import Path

PROC_SYS = Path("/proc/sys")
IP_FORWARD = "net.ipv4.ip_forward"


def conf(dev: str, knob: str) -> str:
    """A per-device IPv4 knob; ``dev`` may be ``all`` or ``default``."""
    return f"net.ipv4.conf.{dev}.{knob}"


def rp_filter(dev: str = "all") -> str:
    return conf(dev, "rp_filter")


def proxy_arp(dev: str) -> str:
    return conf(dev, "proxy_arp")


def proxy_arp_pvlan(dev: str) -> str:
    """Proxy ARP also for addresses routed back out of the device the request came in on."""
    return conf(dev, "proxy_arp_pvlan")


def parts(key: str) -> list[str]:
    """``net.ipv4.conf.eth1.100.rp_filter`` -> [net, ipv4, conf, eth1.100, rp_filter]."""
    p = key.split(".")
    if len(p) > 5 and p[0] == "net" and p[2] in ("conf", "neigh"):
        return [*p[:3], ".".join(p[3:-1]), p[-1]]
    return p


def path(key: str, root: Path = PROC_SYS) -> Path:
    """The file of ``key`` under /proc/sys (device names may hold dots: eth1.100)."""
    return root.joinpath(*parts(key))
