"""Exposed ports (``vms[].expose``) judged by the forwarding model: the internet's connection to
the host's public IP on ``public_port`` reaches the VM's ``port`` and the reply comes back from the
public IP. Pure.

Each verdict is one walk of ``Model.from_internet`` (docs/decisions/0027): the cloud's 1:1 delivery of
the public IP to the NIC's primary address (a Standard SKU one only where an NSG allows it), the
NSGs on the way (they see the NIC's private address and the public port), the host's DNAT and
forward chain, the VM, and the reply back through the host's and the cloud's conntrack. The same
walk answers for a port that is *not* exposed (``reach``): it ends at the host, not the VM.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from .model import INTERNET, Model, PairResult, Probe, State
from .plan import Plan


@dataclass(frozen=True)
class ExposeResult:
    vm: str
    host: str
    proto: str
    public_port: int
    port: int
    public_ip: str  # the public IP's name
    address: IPv4Address | None  # its address in the state (a stand-in for a plan's)
    ok: bool
    reason: str = ""
    dies_at: str = ""

    def to_dict(self) -> dict:
        return {"vm": self.vm, "host": self.host, "proto": self.proto, "public_port": self.public_port,
                "port": self.port, "public_ip": self.public_ip,
                "address": str(self.address) if self.address else None, "ok": self.ok, "reason": self.reason,
                "dies_at": self.dies_at}

    def __str__(self) -> str:
        at = f"{self.public_ip} ({self.address})" if self.address else self.public_ip
        return f"internet → {self.vm}:{self.port} via {at} {self.proto}/{self.public_port}"


def public_ip_of(state: State, host: str):
    """The public IP on ``host``'s NIC in ``state`` (None: it has none)."""
    nic = state.hosts[host].nic
    return next((p for p in state.cloud.public_ips if p.nic == nic), None)


def reach(state: State, vm: str, proto: str, public_port: int) -> PairResult:
    """Does the internet's ``proto`` connection to ``vm``'s host's public IP on ``public_port``
    reach ``vm`` (and its reply come back)? For any port, exposed or not."""
    host = state.guests[vm].host
    pub = public_ip_of(state, host)
    if pub is None:
        nic = state.hosts[host].nic
        why = f"{INTERNET} → {vm}: host {host}'s NIC {nic} has no public IP"
        cloud = state.cloud.cloud
        return PairResult(INTERNET, vm, False, why, (), f"{cloud}:{nic}", f"`nestnet {cloud} apply`")
    return Model(state, Probe(proto, public_port)).from_internet(vm, pub.address)


def check(state: State, plan: Plan, *, vms: tuple[str, ...] | None = None) -> list[ExposeResult]:
    """Every exposed port of every VM of ``plan`` (or of ``vms``), judged in ``state``."""
    out: list[ExposeResult] = []
    for v in plan.vms.values():
        if not v.exposes or (vms is not None and v.name not in vms) or v.name not in state.guests:
            continue
        pub = public_ip_of(state, v.host)
        for e in v.exposes:
            r = reach(state, v.name, e.proto, e.public_port)
            name = pub.name if pub is not None else (plan.hosts[v.host].public_ip or "(none)")
            out.append(ExposeResult(v.name, v.host, e.proto, e.public_port, e.port, name,
                                    pub.address if pub is not None else None, r.ok, r.reason, r.dies_at))
    return out
