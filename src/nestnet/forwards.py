"""Inbound port forwards (``nested.mode: nat``) judged by the forwarding model. Pure.

A forward ``host_port -> VM:port`` works from an endpoint when all of these hold, each asked of
the same model ``check`` uses (a plan, a what-if, or a doctor's observation):
- the endpoint reaches the host and back (the cloud's side and the host's address);
- the host forwards at all (``ip_forward``), and its forward chain lets the DNATed packet in
  (endpoint -> VM, uplink -> bridge) and the VM's reply out (established);
- the host reaches the VM and back (its own route to the block, the bridge).
The DNAT itself is the firewall table's (host/nft.py, host/ufw.py), which ``host diff`` and the
doctor's drift check hold to the plan. Everything else inbound stays closed in nat mode: the
pairs endpoint -> VM fail in ``check`` as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .firewall import FwdPacket
from .model import Model, State
from .plan import Plan


@dataclass(frozen=True)
class ForwardResult:
    src: str  # the endpoint it was tried from
    vm: str
    port: int
    host_port: int
    proto: str
    ok: bool
    reason: str = ""

    def to_dict(self) -> dict:
        return {"src": self.src, "vm": self.vm, "port": self.port, "host_port": self.host_port,
                "proto": self.proto, "ok": self.ok, "reason": self.reason}


def dnat_ports(nft_json: str) -> frozenset[tuple[str, int]]:
    """(proto, port) of every DNAT rule in nestnet's table, from ``nft -j list ruleset``."""
    out = set()
    for item in json.loads(nft_json or "{}").get("nftables", []):
        rule = item.get("rule")
        if not rule or rule.get("table") != "nestnet":
            continue
        exprs = rule.get("expr", [])
        if not any("dnat" in e for e in exprs):
            continue
        for e in exprs:
            left = (e.get("match") or {}).get("left") or {}
            pay = left.get("payload") or {}
            if pay.get("field") == "dport" and isinstance(e["match"].get("right"), int):
                out.add((pay.get("protocol", ""), e["match"]["right"]))
    return frozenset(out)


def check(
    state: State, plan: Plan, sources: tuple[str, ...] | None = None, *,
    vms: tuple[str, ...] | None = None, dnat: frozenset[tuple[str, int]] | None = None,
) -> list[ForwardResult]:
    """Every forward of every VM (or ``vms``), from every endpoint (or ``sources``). ``dnat``: the
    DNAT rules observed on the host (doctor); None: as planned."""
    model = Model(state)
    srcs = tuple(plan.endpoints) if sources is None else sources
    out: list[ForwardResult] = []
    legs: dict[tuple[str, str], object] = {}

    def ping(a: str, b: str):
        if (a, b) not in legs:
            legs[(a, b)] = model.ping(a, b)
        return legs[(a, b)]

    for v in plan.vms.values():
        if not v.forwards or (vms is not None and v.name not in vms):
            continue
        h = state.hosts[v.host]
        for f in v.forwards:
            for src in srcs:
                sip = state.address_of(src)
                why = ""
                to_host = ping(src, v.host)
                if dnat is not None and (f.proto, f.host_port) not in dnat:
                    why = f"host {v.host} has no DNAT rule for {f.proto} port {f.host_port} (nestnet host apply adds it)"
                elif not to_host.ok:
                    why = f"{src} cannot reach host {v.host}: {to_host.reason}"
                elif not h.ip_forward:
                    why = f"host {v.host} does not forward (net.ipv4.ip_forward=0)"
                else:
                    drop = h.firewall.drop_reason(FwdPacket(sip, v.ip, h.l3_dev, h.bridge, False))
                    back = h.firewall.drop_reason(FwdPacket(v.ip, sip, h.bridge, h.l3_dev, True))
                    if drop or back:
                        what, _chain = drop or back  # type: ignore[misc]
                        why = f"host {v.host} drops the {'forwarded packet' if drop else 'reply'}: {what}"
                    else:
                        to_vm = ping(v.host, v.name)
                        if not to_vm.ok:
                            why = f"host {v.host} cannot reach {v.name}: {to_vm.reason}"
                out.append(ForwardResult(src, v.name, f.port, f.host_port, f.proto, not why, why))
    return out
