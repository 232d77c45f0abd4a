"""The fault vocabulary shared by ``nestnet check --fault`` (what-ifs on the model) and
``nestnet lab fault`` (breaking the emulated fabric for real). One list per cloud, so the two can
be compared pair by pair: the cloud's own kinds (its route table, its NICs: ``Cloud.fault_kinds``
through the cloud seam), then the host kinds, which are the same on every cloud.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError
from .names import unknown

# kind -> (what the target names, what breaks): the host side, the same in every cloud
HOST_KINDS: dict[str, tuple[str, str]] = {
    "ip-forward-off": ("host", "net.ipv4.ip_forward=0 in the host's kernel"),
    "no-host-routes": ("host", "every kernel route nestnet owns on the host is gone (own block's too)"),
    "firewall-deny-routed": ("host", "forward policy drop, without nestnet's rules"),
    "rp-filter-strict": ("host", "rp_filter=1 (strict) on the host"),
    "no-proxy-arp": ("host", "proxy ARP off on the host's nested bridge (proxy_arp and proxy_arp_pvlan)"),
    "no-masquerade": ("host", "the host does not masquerade nested traffic leaving the VNet"),
}


def fault_kinds(cloud: str | None = None) -> dict[str, tuple[str, str]]:
    """Every kind a plan of ``cloud`` (default: the default cloud) takes: kind -> (what the target
    names, what breaks); the cloud's kinds first."""
    from .clouds import get

    own = (get(cloud) if cloud else get()).fault_kinds()
    return {**{k: (v.target, v.text) for k, v in own.items()}, **HOST_KINDS}


def __getattr__(name: str) -> dict[str, tuple[str, str]]:
    # FAULT_KINDS: the default cloud's kinds (asked for lazily: the cloud package registers on first use)
    if name == "FAULT_KINDS":
        return fault_kinds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True, order=True)
class Fault:
    kind: str
    target: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"


def parse_fault(text: str, plan) -> Fault:  # plan: nestnet.plan.Plan
    from .clouds import get

    cloud = get(plan.cloud.cloud_name)
    kinds = fault_kinds(cloud.name)
    kind, sep, target = text.partition(":")
    if kind not in kinds or not sep or not target:
        listed = ", ".join(f"{k}:{v[0].upper()}" for k, v in kinds.items())
        raise UsageError(f"fault {text!r}: expected one of {listed}")
    what = kinds[kind][0]
    names = plan.hosts if what == "host" else plan.subnets
    if target not in names:
        raise UsageError(
            f"fault {text!r}: {target!r} is not a {what} of {plan.name}{unknown(target, names)}"
        )
    own = cloud.fault_kinds().get(kind)
    if own is not None and own.modes and plan.mode not in own.modes:
        raise UsageError(f"fault {text!r}: means nothing in nested.mode {plan.mode} of {plan.name} "
                         f"(only in {own.modes[0]} mode)")
    return Fault(kind, target)


def parse_faults(texts, plan) -> tuple[Fault, ...]:
    return tuple(sorted({parse_fault(t, plan) for t in texts}))
