"""``nestnet advise``: which of the cloud's modes fits what you need, every claim a tested rule.

The cloud-neutral part: the needs, a finding, the advice, the seed's trade-offs that hold in every
cloud (NAT hides nested VMs and their addresses) and the choice from the findings. Each cloud's
modes, limits and spec fragment are its package's ``advise`` module, reached through the seam
(``nestnet.clouds.advisor(name)``; the rules and their sources: docs/decisions/0014).

``not_served(plan, src, dst)`` is the same knowledge applied to one pair of a plan: the pairs a
mode cannot serve by design (``nestnet lab demo`` expects exactly those to fail).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

SEED = "seed, Alternative Solutions"
BLOCK_MIN_LEN, BLOCK_MAX_LEN = 16, 30  # nested.block_prefix_len's range in the spec


@dataclass(frozen=True)
class Needs:
    inbound: bool = True  # something outside a host opens connections to its nested VMs
    keep_source_ip: bool = True  # other machines see a nested VM's own address
    vms_per_host: int = 16
    hosts: int = 2
    max_routes: int | None = None  # the region's routes per route table (None: the cloud's default)


@dataclass(frozen=True)
class Finding:
    mode: str
    fits: bool  # False: this rule rules the mode out
    rule: str
    text: str
    source: str

    def to_dict(self) -> dict:
        return {"mode": self.mode, "fits": self.fits, "rule": self.rule, "text": self.text, "source": self.source}


@dataclass(frozen=True)
class Advice:
    needs: Needs  # as the cloud read them (its default route limit filled in)
    mode: str | None  # None: no mode fits
    findings: tuple[Finding, ...]
    why: str
    fragment: str = ""
    ruled_out: dict[str, list[str]] = field(default_factory=dict)
    modes: tuple[str, ...] = ()  # the cloud's modes, in the order they are shown

    def to_dict(self) -> dict:
        return {
            "needs": self.needs.__dict__,
            "mode": self.mode,
            "why": self.why,
            "modes": {
                m: {
                    "fits": m not in self.ruled_out,
                    "findings": [f.to_dict() for f in self.findings if f.mode == m],
                }
                for m in self.modes
            },
            "fragment": self.fragment,
        }


def advise(n: Needs, cloud: str | None = None, options: Mapping[str, str | None] | None = None) -> Advice:
    """The advice for ``n`` in ``cloud`` (the default cloud when None), with the cloud's own
    options of ``nestnet advise`` (``AdviseOption.dest`` -> value)."""
    from . import clouds

    return clouds.advisor(cloud or clouds.DEFAULT).advise(n, options or {})


# ---------------------------------------------------------------- shared by every cloud's rules


def block_prefix_len(vms_per_host: int) -> int | None:
    """The longest block prefix holding ``vms_per_host`` addresses; None when no allowed block does."""
    need = max(vms_per_host, 1)
    length = 32 - math.ceil(math.log2(need)) if need > 1 else BLOCK_MAX_LEN
    length = min(length, BLOCK_MAX_LEN)
    return length if length >= BLOCK_MIN_LEN else None


def nat_no_inbound(n: Needs) -> list[Finding]:
    if n.inbound:
        return [Finding("nat", False, "nat-no-inbound",
                        "NAT hides nested VMs behind their host's address: nothing outside the host can open a "
                        "connection to them, and you need inbound", SEED)]
    return [Finding("nat", True, "nat-no-inbound",
                    "nested VMs open every connection themselves, which NAT serves", SEED)]


def nat_hides_source(n: Needs) -> list[Finding]:
    if n.keep_source_ip:
        return [Finding("nat", False, "nat-hides-source",
                        "with NAT all nested traffic appears to come from the host's IP (source IP visibility "
                        "is lost), and you need the VM's own address seen", SEED)]
    return []


def ruled_out(findings: tuple[Finding, ...]) -> dict[str, list[str]]:
    """The modes some finding rules out, each with the rules that do, in the findings' order."""
    out: dict[str, list[str]] = {}
    for f in findings:
        if not f.fits:
            out.setdefault(f.mode, []).append(f.rule)
    return out


def choose(order: tuple[str, ...], out: Mapping[str, list[str]]) -> str | None:
    """The first mode of ``order`` (the cloud's preference) that nothing rules out."""
    return next((m for m in order if m not in out), None)


def none_fits(modes: tuple[str, ...], out: Mapping[str, list[str]]) -> str:
    """Why no mode fits: each mode with the rules ruling it out."""
    return "; ".join(f"{m}: {', '.join(out[m])}" for m in modes)


NAT_WHY = "nothing outside a host must reach its nested VMs or see their addresses: NAT is the simplest"


# ---------------------------------------------------------------- one pair of a plan


def design_rule(plan, src: str, dst: str) -> str:
    """``not_served``'s rule in words that hold for every pair it covers ("" when the pair
    should work): what ``check`` and the report print once for a whole group."""
    if not not_served(plan, src, dst):
        return ""
    if plan.mode == "nat":
        return ("NAT: a nested VM is reachable only from its own host and that host's VMs; inbound from elsewhere "
                "needs a port forward (vms[].forwards) or mode routed")
    return "egress: none: nested VMs' addresses are not translated for the internet (egress: masquerade-outside-vnet)"


def not_served(plan, src: str, dst: str) -> str:
    """Why ``plan``'s mode cannot serve ``src`` -> ``dst`` by design; "" when it should work.

    - nat: a nested VM is reachable only from its own host and that host's other VMs (the
      seed: "can't receive inbound connections from outside their KVM host");
    - routed with ``egress: none``: a nested VM's address is not translated for the internet
      (the cloud's default outbound access serves NIC addresses only; DESIGN §3.9).
    """
    vm = plan.vms.get(dst)
    if plan.mode == "nat" and vm is not None:
        own = src == vm.host or (src in plan.vms and plan.vms[src].host == vm.host)
        if not own:
            return f"nat: {dst} sits behind {vm.host}'s NAT; only {vm.host} and its VMs can reach it"
    if plan.mode == "routed" and plan.egress == "none" and src in plan.vms and dst == "internet":
        return f"egress: none: {src}'s address is not translated for the internet"
    return ""
