"""The fault vocabulary shared by ``nestnet check --fault`` (what-ifs on the model) and
``nestnet lab fault`` (breaking the emulated fabric for real). One list, so the two can be
compared pair by pair.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError
from .names import unknown

# kind -> (what the target names, what breaks)
FAULT_KINDS: dict[str, tuple[str, str]] = {
    "nic-forwarding-off": ("host", "IP forwarding off on the host's Azure NIC"),
    "no-route-table": ("subnet", "the subnet is not associated with nestnet's route table"),
    "no-user-route": ("host", "the Azure user route for the host's block is missing"),
    "no-nic-prefix": ("host", "the prefix ip configuration of the host's Azure NIC is missing (nic-prefix mode)"),
    "ip-forward-off": ("host", "net.ipv4.ip_forward=0 in the host's kernel"),
    "no-host-routes": ("host", "every kernel route nestnet owns on the host is gone (own block's too)"),
    "firewall-deny-routed": ("host", "forward policy drop, without nestnet's rules"),
    "rp-filter-strict": ("host", "rp_filter=1 (strict) on the host"),
    "no-proxy-arp": ("host", "proxy ARP off on the host's nested bridge (proxy_arp and proxy_arp_pvlan)"),
    "no-masquerade": ("host", "the host does not masquerade nested traffic leaving the VNet"),
}


@dataclass(frozen=True, order=True)
class Fault:
    kind: str
    target: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"


def parse_fault(text: str, plan) -> Fault:  # plan: nestnet.plan.Plan
    kind, sep, target = text.partition(":")
    if kind not in FAULT_KINDS or not sep or not target:
        kinds = ", ".join(f"{k}:{v[0].upper()}" for k, v in FAULT_KINDS.items())
        raise UsageError(f"fault {text!r}: expected one of {kinds}")
    what = FAULT_KINDS[kind][0]
    names = plan.hosts if what == "host" else plan.subnets
    if target not in names:
        raise UsageError(
            f"fault {text!r}: {target!r} is not a {what} of {plan.name}{unknown(target, names)}"
        )
    return Fault(kind, target)


def parse_faults(texts, plan) -> tuple[Fault, ...]:
    return tuple(sorted({parse_fault(t, plan) for t in texts}))
