"""nestnet's firewall policy for one host, as data: derived once from the Plan. Pure.

    policy(plan, host) -> Policy
        ──host/nft.py──▶ the ``table inet nestnet`` text (nftables hosts)
        ──host/ufw.py──▶ iptables rules in UFW's before.rules (UFW hosts)
        ──model/state.py (Policy.flat)──▶ the FwRule list ``check`` judges packets with
        ──doctor.ufw_view──▶ recognises the UFW rules by the chain names below

What it says (docs/decisions/0001): nestnet's forward chain has policy *accept* and judges only
traffic from or to its own nested block. Anti-spoofing first (unless the bridge holds the uplink,
where L2 guards do it): only the host's VMs' addresses come from the bridge, the block never
comes from elsewhere. Then from the block only to the routed prefixes (VNet + pool + blocks:
``Plan.routed_prefixes``), established/related, and out of the uplink when masquerading; to the
block only from them or established/related. Masquerade: the block leaving ``out``, except
towards them (``outside-vnet``) or always (``all``). SSH: no rule here may touch the host's own sessions
(host/guard.py refuses a rendered table that could).

Rules name their address sets and devices symbolically ("block", "vms", "routed"; "bridge",
"out") so each renderer can write them its own way (an nft set, one iptables rule per prefix,
a tuple of networks for the model).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .plan import Host, Plan

Verdict = Literal["accept", "drop"]
Nets = Literal["block", "vms", "routed"]
Dev = Literal["bridge", "out"]

# nftables: nestnet's own table (every family it has one in) and its chains.
TABLE = "nestnet"
FAMILY = "inet"
FAMILIES = ("inet", "bridge")
# UFW: nestnet's chains are hooked into this chain of UFW's before.rules; each is named
# UFW_PREFIX + the nft chain name with '-' for '_' (from_vms -> nestnet-from-vms).
UFW_HOOK = "ufw-before-forward"
UFW_INPUT = "ufw-before-input"  # DHCP and DNS for the nested VMs (UFW denies incoming by default)
UFW_PREFIX = "nestnet-"
UFW_SPOOF = UFW_PREFIX + "spoof"
UFW_MASQ = UFW_PREFIX + "masq"
FORWARD_CHAIN = "nestnet"  # the model's name for nestnet's forward chain (findings, fixes)


# What a rule matches addresses against: networks, or single addresses (a host's VMs: thousands
# of /32 networks would cost more to build and compare than the set).
Addresses = tuple[IPv4Network, ...] | frozenset[IPv4Address]


def _in(ip: IPv4Address, nets: Addresses | None, negate: bool) -> bool:
    if nets is None:
        return True
    found = ip in nets if isinstance(nets, frozenset) else any(ip in n for n in nets)
    return found != negate


@dataclass(frozen=True, slots=True)
class FwdPacket:
    """What a forward chain sees of a packet."""

    src: IPv4Address
    dst: IPv4Address
    iif: str
    oif: str
    established: bool  # part of a connection conntrack has seen (a reply)
    dnat: bool = False  # its destination was rewritten by the host's DNAT (an exposed port)


@dataclass(frozen=True, slots=True)
class FwRule:
    """One flattened forward rule (``None`` matches anything; ``*_not`` negates the match)."""

    verdict: Verdict
    src: Addresses | None = None
    src_not: bool = False
    dst: Addresses | None = None
    iif: str | None = None
    iif_not: bool = False
    oif: str | None = None
    established: bool = False  # matches only established/related packets
    why: str = ""  # for people: what the rule is for
    dnat: bool = False  # matches only packets the host DNATed (ct status dnat)

    def matches(self, pkt: FwdPacket) -> bool:
        return (
            (not self.established or pkt.established)
            and (not self.dnat or pkt.dnat)
            and (self.iif is None or ((pkt.iif == self.iif) != self.iif_not))
            and (self.oif is None or pkt.oif == self.oif)
            and _in(pkt.src, self.src, self.src_not)
            and _in(pkt.dst, self.dst, False)
        )


@dataclass(frozen=True, slots=True)
class MasqRule:
    """Masquerade (to the outgoing device's address) for new connections matching every field."""

    src: tuple[IPv4Network, ...]
    oif: str
    dst_not: tuple[IPv4Network, ...] = ()  # except towards these

    def matches(self, src: IPv4Address, dst: IPv4Address, oif: str) -> bool:
        return oif == self.oif and _in(src, self.src, False) and not any(dst in n for n in self.dst_not)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of the policy, with symbolic sets and devices."""

    verdict: Verdict
    src: Nets | None = None
    src_not: bool = False
    dst: Nets | None = None
    iif: Dev | None = None
    iif_not: bool = False
    oif: Dev | None = None
    established: bool = False
    ipv6: bool = False  # matches any IPv6 packet (nftables only: UFW and the model are IPv4)
    why: str = ""
    dnat: bool = False  # only packets the host DNATed (its exposed ports)


@dataclass(frozen=True, slots=True)
class SubChain:
    """Rules for the packets whose source (``enter="src"``) or destination is in the block."""

    name: str  # the nft chain; UFW's is ufw_chain(name)
    enter: Literal["src", "dst"]
    rules: tuple[Rule, ...]  # ends with the drop of everything else


def ufw_chain(name: str) -> str:
    return UFW_PREFIX + name.replace("_", "-")


@dataclass(frozen=True, slots=True)
class Policy:
    host: str
    bridge: str  # the nested bridge
    out: str  # the device that carries the host's VNet address (masquerade goes out of it)
    block: IPv4Network
    routed: tuple[IPv4Network, ...]  # where nested traffic goes without NAT (Plan.routed_prefixes)
    vms: tuple[IPv4Address, ...]  # the host's VMs, in plan order
    anti_spoof: bool  # False when the bridge holds the uplink: the L2 guards do it
    masquerade: Literal["none", "outside-vnet", "all"]
    ssh_port: int  # must stay reachable: no rule may drop it (host/guard.py)
    # What lives here when VMs moved in or out (docs/decisions/0013): the block without the
    # addresses that moved away, plus those that moved in. Empty: just the block.
    here: tuple[IPv4Network, ...] = ()

    @property
    def local(self) -> tuple[IPv4Network, ...]:
        """The prefixes the policy judges as this host's ("block" in the rules)."""
        return self.here or (self.block,)
    host_ip: IPv4Address | None = None  # where its DNS forwarder answers the VMs: the bridge's address
    # nat mode's inbound port forwards: (proto, host port, VM address, VM port), DNAT on ``out``
    forwards: tuple[tuple[str, int, IPv4Address, int], ...] = ()
    # exposed ports (any mode): (proto, public port, VM address, VM port), DNAT of ``nic_ip`` (the
    # NIC's primary address, where the cloud's public IP is 1:1 NATed) on ``out``
    exposes: tuple[tuple[str, int, IPv4Address, int], ...] = ()
    nic_ip: IPv4Address | None = None

    @property
    def services_in(self) -> tuple[tuple[str, int, IPv4Address | None], ...]:
        """(proto, port, destination) the host serves its VMs on the bridge: DHCP, DNS."""
        return (("udp", 67, None), ("udp", 53, self.host_ip), ("tcp", 53, self.host_ip))

    @property
    def egress(self) -> bool:
        """The block may leave by ``out`` to anywhere (it is masqueraded there)."""
        return self.masquerade != "none"

    def nets(self, which: Nets) -> Addresses:
        if which == "block":
            return self.local
        if which == "routed":
            return self.routed
        return frozenset(self.vms)

    def dev(self, which: Dev) -> str:
        return self.bridge if which == "bridge" else self.out

    @property
    def guards(self) -> tuple[Rule, ...]:
        """Anti-spoofing, ahead of everything: a nested VM sends only from its own address; the
        block never arrives from outside the bridge."""
        if not self.anti_spoof:
            return ()
        br = self.bridge
        return (
            Rule("drop", iif="bridge", src="vms", src_not=True,
                 why=f"anti-spoofing: only its VMs' addresses may come from {br}"),
            Rule("drop", iif="bridge", ipv6=True, why=f"anti-spoofing: no IPv6 from {br}"),
            Rule("drop", iif="bridge", iif_not=True, src="block",
                 why=f"anti-spoofing: its block may only come from {br}"),
        )

    @property
    def chains(self) -> tuple[SubChain, SubChain]:
        egress = (Rule("accept", oif="out"),) if self.egress else ()
        to = f" or out of {self.out}" if self.egress else ""
        return (
            SubChain("from_vms", "src", (
                Rule("accept", established=True),
                Rule("accept", dst="routed"),
                *egress,
                Rule("drop", why=f"its block may go only to the VNet and nested blocks{to}"),
            )),
            SubChain("to_vms", "dst", (
                Rule("accept", established=True),
                Rule("accept", src="routed"),
                *((Rule("accept", iif="out", dnat=True, why="exposed ports, DNATed from the public IP"),)
                  if self.exposes else ()),
                Rule("drop", why="its block may be reached only from the VNet and nested blocks"),
            )),
        )

    def flat(self) -> tuple[FwRule, ...]:
        """The whole forward chain as one list of concrete rules (IPv4), as the model reads it."""
        out = [self._concrete(r) for r in self.guards if not r.ipv6]
        for sub in self.chains:
            for r in sub.rules:
                out.append(self._concrete(r, enter=sub.enter))
        return tuple(out)

    def _concrete(self, r: Rule, enter: str | None = None) -> FwRule:
        src = self.nets(r.src) if r.src else None
        dst = self.nets(r.dst) if r.dst else None
        if enter == "src":
            src = self.local
        elif enter == "dst":
            dst = self.local
        return FwRule(
            r.verdict, src, r.src_not, dst,
            self.dev(r.iif) if r.iif else None, r.iif_not,
            self.dev(r.oif) if r.oif else None, r.established, r.why, r.dnat,
        )

    def masquerade_rules(self) -> tuple[MasqRule, ...]:
        if self.masquerade == "outside-vnet":
            return (MasqRule(self.local, self.out, self.routed),)
        if self.masquerade == "all":
            return (MasqRule(self.local, self.out),)
        return ()


def policy_for(
    host: "Host", routed: tuple[IPv4Network, ...], vm_ips: tuple[IPv4Address, ...],
    forwards: tuple[tuple[str, int, IPv4Address, int], ...] = (),
    exposes: tuple[tuple[str, int, IPv4Address, int], ...] = (),
) -> Policy:
    """``routed``: the plan's ``routed_prefixes`` (computed once per plan by callers doing many
    hosts); ``vm_ips``: the host's VMs' addresses in plan order."""
    return Policy(
        host=host.name,
        bridge=host.bridge,
        out=host.l3_dev,
        block=host.block,
        routed=routed,
        vms=vm_ips,
        anti_spoof=not host.bridge_has_uplink,
        masquerade=host.masquerade,
        ssh_port=host.ssh_port,
        here=host.local_prefixes if (host.away or host.here) else (),
        host_ip=host.bridge_address or host.ip,
        forwards=forwards,
        exposes=exposes,
        nic_ip=host.ip,
    )


def policy(plan: "Plan", host: "Host") -> Policy:
    vms = [plan.vms[v] for v in host.vms]
    fwd = tuple((f.proto, f.host_port, v.ip, f.port) for v in vms for f in v.forwards)
    exp = tuple((e.proto, e.public_port, v.ip, e.port) for v in vms for e in v.exposes)
    return policy_for(host, plan.routed_prefixes, tuple(v.ip for v in vms), fwd, exp)
