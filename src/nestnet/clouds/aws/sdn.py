"""The VPC router in the lab: Azure's SDN namespace (``nestnet.clouds.azure.sdn``: routes, the
check per port, prefix delivery, translation to the internet for ENI-owned sources, a public IP's
1:1 translation), with EC2's internet on top (docs/decisions/0031):

- a subnet whose 0.0.0.0/0 goes to a NAT gateway: an ENI's own addresses get out, translated (what
  Azure's fabric already does);
- to an internet gateway: only the primary private address a public IPv4 address is on;
- neither (the subnet is not in ``aws.internet``): nobody.

One table more than Azure's, ``table inet fabinet``, drops the new internet-bound flows a port's
subnet does not let out; it is loaded whole when its text changes (signed as the NSG table is).
The fabric's configuration is Azure's plus that table's signature (``VpcConfig``), observed,
diffed and changed as Azure's is, so a second ``program`` changes nothing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields

from ...lab.sysio import nft, nft_json
from ...lab.topology import INET_PORT, Topology
from ...model.state import CloudState
from ...netns import run_in
from ..azure import lab as _azure_lab, sdn as _azure
from ..azure.lab import SdnChanges, SdnConfig, nsg_signature, with_faults
from ..azure.sdn import build
from .dataplane import NO_INTERNET

__all__ = ["INET_TABLE", "VpcChanges", "VpcConfig", "build", "desired", "diff", "observe", "program",
           "program_ns", "render_internet", "replug", "with_faults"]

INET_TABLE = "fabinet"
NAT_GATEWAY, INTERNET_GATEWAY = "nat-gateway", "internet-gateway"  # aws.internet's words (clouds/aws/spec.py)


@dataclass(frozen=True)
class VpcConfig(SdnConfig):
    """Azure's fabric configuration and the internet table's signature ("" none)."""

    inet_sig: str = ""
    inet_text: str = field(default="", compare=False)  # desired only: the table's text


@dataclass(frozen=True)
class VpcChanges(SdnChanges):
    inet_text: str | None = None  # the internet table to load ("" deletes it); None: unchanged

    def __bool__(self) -> bool:
        return super().__bool__() or self.inet_text is not None


def render_internet(topo: Topology, state: CloudState) -> str:
    """The ``table inet fabinet`` text for ``state``'s subnets, or "" when every subnet with a port
    is behind a NAT gateway (Azure's fabric already translates ENI-owned sources only). Who has a
    public IP is by node: an endpoint's ENI is named differently in the state and the topology."""
    public = {state.nics[p.nic].owner for p in state.public_ips if p.nic in state.nics}
    lines = []
    for n in topo.nics:
        sub = state.subnets.get(n.subnet)
        how = sub.internet if sub is not None else NO_INTERNET
        if how == NAT_GATEWAY:
            continue
        if how == INTERNET_GATEWAY and n.node in public:
            lines.append(f'\t\tiifname "{n.port}" oifname "{INET_PORT}" ip saddr != {n.ip} counter drop '
                         f'comment "{n.node}: its public IP is on {n.ip} only"')
        else:
            why = "no public IP" if how == INTERNET_GATEWAY else f"subnet {n.subnet} has no internet route"
            lines.append(f'\t\tiifname "{n.port}" oifname "{INET_PORT}" counter drop comment "{n.node}: {why}"')
    if not lines:
        return ""
    text = (f"table inet {INET_TABLE} {{\n\tchain forward {{\n\t\ttype filter hook forward priority filter; "
            "policy accept;\n\t\tct state established,related accept\n" + "\n".join(lines) + "\n\t}\n}\n")
    sig = hashlib.sha256(text.encode()).hexdigest()[:16]
    return text[:-2] + f"\tchain sig_{sig} {{\n\t}}\n}}\n"


def desired(topo: Topology, state: CloudState) -> VpcConfig:
    base = _azure_lab.desired(topo, state)
    text = render_internet(topo, state)
    return VpcConfig(**{f.name: getattr(base, f.name) for f in fields(base)}, inet_sig=nsg_signature(text),
                     inet_text=text)


def observe() -> VpcConfig:
    """Inside the SDN namespace: the configuration as it is now."""
    base = _azure.observe()
    tables = {(t.get("table", {}).get("family"), t.get("table", {}).get("name"))
              for t in nft_json("list", "tables")["nftables"]}
    sig = _azure._signature("inet", INET_TABLE) if ("inet", INET_TABLE) in tables else ""
    return VpcConfig(**{f.name: getattr(base, f.name) for f in fields(base)}, inet_sig=sig)


def diff(want: VpcConfig, have: VpcConfig) -> VpcChanges:
    base = _azure_lab.diff(want, have)
    return VpcChanges(**{f.name: getattr(base, f.name) for f in fields(base)},
                      inet_text=want.inet_text if want.inet_sig != have.inet_sig else None)


def apply_changes(ch: VpcChanges) -> None:
    _azure.apply_changes(ch)
    if ch.inet_text is not None:  # the whole table in one transaction (conntrack entries stay)
        nft(f"table inet {INET_TABLE}\ndelete table inet {INET_TABLE}\n{ch.inet_text}")


def program(topo: Topology, state: CloudState) -> VpcChanges:
    """Inside the SDN namespace: make it match ``state``; returns what changed."""
    ch = diff(desired(topo, state), observe())
    if ch:
        apply_changes(ch)
    return ch


def program_ns(topo: Topology, state: CloudState) -> VpcChanges:
    return run_in(topo.sdn_ns, program, topo, state)


def replug(topo: Topology, nodes: list[str], state: CloudState) -> None:
    """Inside the SDN namespace: Azure's replug (ports, their routes, the rules that name them),
    then the internet table as ``state`` wants it (it names ports, not devices: it stays)."""
    _azure.replug(topo, nodes, state)
    program(topo, state)
