"""The forwarding rules: walk one ping (request and reply) hop by hop through a ``State``.

Every rule is a small function of the State and the packet, named after what it models:

- Azure (DESIGN §3): reserved addresses (first four, last) are never delivered; the route table
  of the *source* subnet, longest prefix match with user >
  system on ties; VnetLocal delivers by NIC ownership (primary/secondary IPs), VirtualAppliance to
  the NIC owning the next hop; the per-NIC source/destination check lifted only by IP forwarding;
  fake L2 (the fabric answers every ARP; frames with a foreign source MAC are dropped); internet
  egress only for NIC-owned sources (translated to the outbound address), replies only.
- Linux hosts: local delivery, ``ip_forward``, longest-prefix routing, ``rp_filter`` (strict:
  the route back to the source must leave by the incoming device; loose: some route must exist;
  a packet coming back with the host's own source address is a martian), the forward verdict of
  the firewall with conntrack (replies of a forwarded request are established), masquerade of
  new connections, proxy ARP on the nested bridge (needs forwarding, a route out another device
  and a source that passes rp_filter).
- Guests: a connected route for a prefix shorter than /32, the onlink route to the gateway, the
  default route; they answer ARP for their own address and never forward.
- Internet: reaches only the outbound address range (no route to 10/8): replies to translated
  sources only; and the public IPs on NICs (``Model.from_internet``): Azure delivers them 1:1 to
  the NIC's primary address (a Standard one only where an NSG allows it), the host's DNAT of an
  exposed port takes it on to the VM, and the reply leaves by the same way back, as the public IP.

A ping is ok when the request reaches the destination node *and* its reply reaches the source.
Where a packet dies, the walk records the hop, the rule that dropped it and the fix; anomalies seen
on the way (a host sending its own block to Azure, ...) are the root cause of a later loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Iterator

from .. import sysctl
from ..firewall import FwdPacket
from ..plan import Route
from .nsg import ICMP, Direction, Nsg, Probe, decide
from .state import (
    INTERNET,
    INTERNET_IP,
    NESTNET_CHAIN,
    OUTBOUND_IP,
    OUTBOUND_NET,
    GuestState,
    HostState,
    NicState,
    State,
    UserRoute,
)

MAX_HOPS = 32
AZURE = "azure"


@dataclass(frozen=True, slots=True)
class Drop:
    where: str  # the hop where the packet dies, e.g. "azure:vme-kvm-vm2-vm-nic"
    why: str  # the rule, in words, naming the broken thing
    fix: str
    root: str = ""  # where the cause is when it is not ``where`` (a loop's origin): groups by cause

    def __str__(self) -> str:
        return f"{self.why} → {self.fix}" if self.fix else self.why


@dataclass(frozen=True, slots=True)
class Leg:
    """One direction of a ping: delivered to ``reached`` or dropped."""

    src: IPv4Address
    dst: IPv4Address
    hops: tuple[str, ...]
    reached: str | None
    drop: Drop | None


@dataclass(frozen=True, slots=True)
class PairResult:
    src: str
    dst: str
    ok: bool
    reason: str = ""
    hops: tuple[str, ...] = ()
    dies_at: str = ""
    fix: str = ""  # the drop's fix alone (``reason`` ends with it), for reports
    # Non-empty: the verdict depends on a race the model cannot decide (which of two ARP answers
    # arrives first); ``ok`` is then False (it does not reliably work) and this names the race.
    intermittent: str = ""
    root: str = ""  # where the cause is (``dies_at`` unless a loop started elsewhere): groups by cause

    def to_dict(self) -> dict:
        d = {
            "src": self.src,
            "dst": self.dst,
            "ok": self.ok,
            "reason": self.reason,
            "hops": list(self.hops),
            "dies_at": self.dies_at,
            "fix": self.fix,
        }
        if self.intermittent:
            d["intermittent"] = self.intermittent
        return d


@dataclass
class _Flow:
    """Per-ping memory: NAT bindings (node, original, translated) and conntrack entries."""

    nat: list[tuple[str, IPv4Address, IPv4Address]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # nodes whose conntrack saw the request
    # ARP races met on the way: (host, asker, address) -> who answers first ("host" or "vm"),
    # preset by ``Model.ping`` to walk each outcome; ``races`` says what each one is, in order met.
    arp: dict[tuple[str, str, IPv4Address], str] = field(default_factory=dict)
    races: dict[tuple[str, str, IPv4Address], str] = field(default_factory=dict)
    # destination NAT of the request: (node, original destination, translated one); the reply's
    # source is translated back there (conntrack)
    dnat: list[tuple[str, IPv4Address, IPv4Address]] = field(default_factory=list)
    dport: int | None = None  # the request's destination port (a TCP/UDP probe; DNAT may change it)


@dataclass
class _Walk:
    flow: _Flow
    reply: bool
    hops: list[str] = field(default_factory=list)
    anomalies: list[Drop] = field(default_factory=list)
    visited: set = field(default_factory=set)

    def hop(self, where: str, what: str) -> None:
        self.hops.append(f"{where}: {what}")


def _flip(met: dict, i: int) -> dict:
    """The races met before the i-th as taken, the i-th answered by the other side."""
    keys = list(met)[: i + 1]
    pre = {k: met[k] for k in keys}
    pre[keys[i]] = "vm" if met[keys[i]] == "host" else "host"
    return pre


class _Dropped(Exception):
    def __init__(self, drop: Drop):
        self.drop = drop


class Model:
    """A State with the indexes the rules need (route lookup tables, address owners). ``probe``:
    what ``ping`` sends (ICMP echo by default; TCP/UDP to a port matter only to NSG rules)."""

    def __init__(self, state: State, probe: Probe = ICMP):
        self.state = state
        self.probe = probe
        az = state.azure
        self.owner_nic: dict[IPv4Address, NicState] = {}
        for nic in az.nics.values():
            for a in nic.addresses:
                self.owner_nic[a] = nic
        self.nic_addresses = frozenset(self.owner_nic)
        self.guest_by_ip = {g.ip: g for g in state.guests.values()}
        self.guests_of: dict[str, list[GuestState]] = {h: [] for h in state.hosts}
        for g in state.guests.values():
            self.guests_of.setdefault(g.host, []).append(g)
        self.host_by_nic = {h.nic: h for h in state.hosts.values()}
        self.reserved = {a: sub.name for sub in az.subnets.values() for a in sub.reserved}  # the cloud's
        self._tables: dict[str, dict[int, dict[int, Route]]] = {}
        self._lens: dict[str, list[int]] = {}
        self._user: dict[int, dict[int, list[UserRoute]]] = {}
        self._user_lens: list[int] = []
        self.tags = az.tags
        self.public = {p.address: p for p in az.public_ips}

    # ---------------------------------------------------------------- lookups

    def host_route(self, h: HostState, dst: IPv4Address) -> Route | None:
        """Longest prefix match over the host's kernel routes (first route wins per prefix)."""
        table = self._tables.get(h.name)
        if table is None:
            table = {}
            for r in h.routes:
                table.setdefault(r.dst.prefixlen, {}).setdefault(int(r.dst.network_address), r)
            self._tables[h.name] = table
            self._lens[h.name] = sorted(table, reverse=True)
        d = int(dst)
        for plen in self._lens[h.name]:
            r = table[plen].get(d & (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF)
            if r is not None:
                return r
        return None

    # ---------------------------------------------------------------- a ping

    # At most this many outcomes of ARP races are walked per ping (each race doubles them).
    MAX_OUTCOMES = 16

    def ping(self, src: str, dst: str) -> PairResult:
        """One pair's verdict. Where two nodes answer one ARP request (a host by proxy and the
        VM itself), the asker keeps the first answer, which is a race: every outcome is walked,
        and when they disagree the pair is *intermittent* (not ok, and not certainly failing)."""
        first, met = self._ping(src, dst, {})
        if not met:
            return first
        outcomes = [first]
        todo = [_flip(met, i) for i in range(len(met))]
        tried = {tuple(sorted(met.items()))}
        races = dict(met)
        while todo and len(outcomes) < self.MAX_OUTCOMES:
            preset = todo.pop()
            r, met = self._ping(src, dst, preset)
            if tuple(sorted(met.items())) in tried:
                continue
            tried.add(tuple(sorted(met.items())))
            outcomes.append(r)
            races.update({k: v for k, v in met.items() if k not in races})
            todo += [_flip(met, i) for i in range(len(preset), len(met))]
        if all(o.ok == first.ok for o in outcomes):
            return first
        bad = next(o for o in outcomes if not o.ok)
        why = "ARP race: " + "; ".join(self._race_words(k) for k in races)
        return replace(bad, reason=f"{src} → {dst}: intermittent ({why}); when it fails: {bad.reason}",
                       intermittent=why)

    def from_internet(self, dst: str, public: IPv4Address) -> PairResult:
        """The internet's connection to ``public`` on the probe's port: ok when it reaches ``dst``
        (an exposed VM, through its host's DNAT) and the reply comes back from ``public``."""
        flow = _Flow(dport=self.probe.port)
        fwd = self._leg(INTERNET, INTERNET_IP, public, flow, reply=False)
        head = f"{INTERNET} → {dst} via {public}" + ("" if self.probe.port is None else f" {self.probe}")
        hops = [f"request {head}", *fwd.hops]
        if fwd.drop is not None:
            return PairResult(INTERNET, dst, False, f"{head}: {fwd.drop}", tuple(hops), fwd.drop.where, fwd.drop.fix,
                              root=fwd.drop.root or fwd.drop.where)
        if fwd.reached != dst:
            why = f"{head}: {public} is answered by {fwd.reached}, not {dst}"
            if fwd.reached in self.state.hosts:
                why += f" (no DNAT of {self.probe} to {dst} on {fwd.reached})"
            return PairResult(INTERNET, dst, False, why, tuple(hops), fwd.reached or "")
        back = self._leg(dst, fwd.dst, fwd.src, flow, reply=True)
        hops += [f"reply {dst} → {INTERNET}", *back.hops]
        if back.drop is not None:
            return PairResult(INTERNET, dst, False, f"reply {dst} → {INTERNET}: {back.drop}", tuple(hops),
                              back.drop.where, back.drop.fix, root=back.drop.root or back.drop.where)
        if back.reached != INTERNET or back.dst != INTERNET_IP or back.src != public:
            why = (f"reply {dst} → {INTERNET}: reaches {back.reached} from {back.src}, not the internet from {public} "
                   "(asymmetric: the client drops it)")
            return PairResult(INTERNET, dst, False, why, tuple(hops), back.reached or "")
        return PairResult(INTERNET, dst, True, "", tuple(hops))

    def _race_words(self, key: tuple[str, str, IPv4Address]) -> str:
        h, asker, ip = key
        vm = self.guest_by_ip[ip].name
        return f"{h} (by proxy) and {vm} both answer {asker}'s ARP for {ip}, and {asker} keeps the first answer"

    def _ping(self, src: str, dst: str, arp: dict) -> tuple[PairResult, dict]:
        """One outcome: ARP races decided by ``arp`` (others: the host first); also returns every
        race met with the answer taken, in the order met."""
        s = self.state
        flow = _Flow(arp=dict(arp))
        a, b = s.address_of(src), s.address_of(dst)
        fwd = self._leg(src, a, b, flow, reply=False)
        hops = [f"request {src} → {dst}", *fwd.hops]
        if fwd.drop is not None:
            return (PairResult(src, dst, False, f"{src} → {dst}: {fwd.drop}", tuple(hops), fwd.drop.where,
                               fwd.drop.fix, root=fwd.drop.root or fwd.drop.where), flow.races)
        if fwd.reached != dst:
            why = f"{src} → {dst}: {b} is answered by {fwd.reached}, not {dst}"
            return PairResult(src, dst, False, why, tuple(hops), fwd.reached or ""), flow.races
        back = self._leg(dst, fwd.dst, fwd.src, flow, reply=True)
        hops += [f"reply {dst} → {src}", *back.hops]
        if back.drop is not None:
            why = f"reply {dst} → {src}: {back.drop}"
            return (PairResult(src, dst, False, why, tuple(hops), back.drop.where, back.drop.fix,
                               root=back.drop.root or back.drop.where), flow.races)
        if back.reached != src or back.dst != a:
            why = f"reply {dst} → {src}: reaches {back.reached} as {back.dst}, not {src} at {a}"
            return PairResult(src, dst, False, why, tuple(hops), back.reached or ""), flow.races
        return PairResult(src, dst, True, "", tuple(hops)), flow.races

    def _leg(self, node: str, src: IPv4Address, dst: IPv4Address, flow: _Flow, reply: bool) -> Leg:
        w = _Walk(flow, reply)
        pkt = [src, dst]
        try:
            reached = self._originate(node, pkt, w)
        except _Dropped as exc:
            drop = exc.drop
            if w.anomalies and w.anomalies[0] != drop:
                a = w.anomalies[0]
                drop = Drop(drop.where, f"{drop.why}; cause: {a.why}", a.fix or drop.fix, a.where)
            return Leg(pkt[0], pkt[1], tuple(w.hops), None, drop)
        return Leg(pkt[0], pkt[1], tuple(w.hops), reached, None)

    # ---------------------------------------------------------------- senders

    def _originate(self, node: str, pkt: list[IPv4Address], w: _Walk) -> str:
        s = self.state
        if node in s.hosts:
            return self._host_out(s.hosts[node], pkt, w)
        if node in s.guests:
            return self._guest_out(s.guests[node], pkt, w)
        if node in s.endpoints:
            e = s.endpoints[node]
            w.hop(node, f"{pkt[0]} → {pkt[1]} to Azure (the subnet gateway {e.gateway} answers ARP)")
            return self._azure_in(s.azure.nics[e.nic], pkt, w)
        return self._internet_out(pkt, w)

    def _guest_out(self, g: GuestState, pkt: list[IPv4Address], w: _Walk) -> str:
        dst = pkt[1]
        h = self.state.hosts.get(g.host)
        connected = IPv4Network(f"{g.ip}/{g.prefix_len}", strict=False)
        if g.prefix_len < 32 and dst in connected:
            nh = dst
        elif g.onlink and dst == g.gateway:
            nh = dst
        elif g.onlink or g.gateway in connected:
            nh = g.gateway
        else:
            raise _Dropped(
                Drop(g.name, f"{g.name} has no route to {dst}: its gateway {g.gateway} is not on-link",
                     f"give {g.name} nestnet's guest config (`nestnet vm config`)")
            )
        if h is None:
            raise _Dropped(Drop(g.name, f"{g.name} sits on unknown host {g.host}", ""))
        w.hop(g.name, f"{pkt[0]} → {dst} via {nh} on eth0 (ARP for {nh})")
        return self._bridge_deliver(h, nh, pkt, w, asker=g)

    def _bridge_deliver(self, h: HostState, nh: IPv4Address, pkt: list[IPv4Address], w: _Walk,
                        asker: GuestState) -> str:
        """A guest's frame on ``h``'s nested bridge: who answers the guest's ARP for ``nh``.

        When the host proxy-answers for a sibling VM's address too (its route to the block
        leaves by another device), its reply wins: the bridge answers before the frame has
        crossed the sibling's veth, and Linux keeps the first answer (neigh locktime).
        """
        if nh in h.local_addresses:
            w.hop(h.name, f"answers ARP for its own {nh} on {h.bridge}")
            return self._host_in(h, h.bridge, pkt, w)
        sibling = next((o for o in self.guests_of.get(h.name, ()) if o.ip == nh and o.name != asker.name), None)
        if sibling is not None:
            if self._proxy_arp_refusal(h, nh, asker.ip) is None:
                # Both answer (proxy_delay is 0): a race, each outcome walked by ``ping``.
                key = (h.name, asker.name, nh)
                first = w.flow.races.setdefault(key, w.flow.arp.get(key, "host"))
                if first == "host":
                    if self.host_route(h, nh).dev != h.bridge:
                        w.anomalies.append(Drop(h.name, f"{h.name} answers ARP for its own VM {sibling.name} ({nh}) "
                                                f"by proxy: its route to {nh} does not use {h.bridge}",
                                                f"`nestnet host apply` on {h.name}"))
                    w.hop(h.name, f"answers ARP for {nh} on {h.bridge} by proxy, before {sibling.name} does")
                    return self._host_in(h, h.bridge, pkt, w)
                w.hop(h.bridge, f"{sibling.name} answers ARP for {nh} before {h.name}'s proxy answer; bridged to it")
                return self._guest_in(sibling, pkt, w)
            w.hop(h.bridge, f"{sibling.name} answers ARP for {nh}; bridged to it")
            return self._guest_in(sibling, pkt, w)
        if h.bridge_has_uplink and not h.l2_guards:
            raise _Dropped(
                Drop(f"azure:{h.nic}",
                     f"{asker.name}'s ARP for {nh} leaks through {h.bridge} to Azure, which answers; Azure then "
                     f"drops its frames: their source MAC {asker.mac or '(the VM’s)'} is not the NIC {h.nic}'s",
                     f"add nestnet's L2 guards on {h.name} (`nestnet host apply`)")
            )
        why = self._proxy_arp_refusal(h, nh, asker.ip)
        if why is None:
            w.hop(h.name, f"answers ARP for {nh} on {h.bridge} (proxy ARP)")
            return self._host_in(h, h.bridge, pkt, w)
        raise _Dropped(Drop(f"{h.name}:{h.bridge}", f"{asker.name} gets no ARP answer for {nh} on {h.bridge}: {why[0]}",
                            why[1]))

    def _proxy_arp_refusal(self, h: HostState, tip: IPv4Address, sip: IPv4Address) -> tuple[str, str] | None:
        """Why ``h`` does not proxy-answer ARP for ``tip`` on its bridge (None: it answers)."""
        # As the kernel's arp_process: proxy_arp answers for addresses routed out another device,
        # proxy_arp_pvlan for those routed back out the bridge itself; either needs forwarding.
        fix = "`nestnet host apply`"
        if not h.proxy_arp and not h.proxy_arp_pvlan:
            return (f"proxy ARP is off on {h.name}'s {h.bridge}",
                    f"{fix} or `sysctl -w {sysctl.proxy_arp(h.bridge)}=1` on {h.name}")
        if not h.ip_forward:
            return (f"{h.name} has {sysctl.IP_FORWARD}=0 (proxy ARP answers only when forwarding)",
                    f"{fix} or `sysctl -w {sysctl.IP_FORWARD}=1` on {h.name}")
        r = self.host_route(h, tip)
        if r is None:
            return f"{h.name} has no route to {tip}", fix
        if r.dev == h.bridge and not h.proxy_arp_pvlan:
            return (f"{h.name} routes {tip} back out {h.bridge} and proxy_arp_pvlan is off (proxy ARP alone answers "
                    "only for other devices)", f"`sysctl -w {sysctl.proxy_arp_pvlan(h.bridge)}=1` on {h.name}")
        if r.dev != h.bridge and not h.proxy_arp:
            return (f"proxy ARP is off on {h.name}'s {h.bridge}",
                    f"{fix} or `sysctl -w {sysctl.proxy_arp(h.bridge)}=1` on {h.name}")
        rp = self._rp_refusal(h, h.bridge, sip)
        if rp is not None:
            return rp
        return None

    def _rp_refusal(self, h: HostState, in_dev: str, src: IPv4Address) -> tuple[str, str] | None:
        if src in h.local_addresses:
            return (f"{h.name} sees its own address {src} as the source of a packet coming in on {in_dev} (martian)",
                    "`nestnet host apply`")
        if h.rp_filter == 0:
            return None
        back = self.host_route(h, src)
        if back is None:
            return (f"{h.name} has rp_filter={h.rp_filter} and no route back to {src}", "`nestnet host apply`")
        if h.rp_filter == 1 and back.dev != in_dev:
            return (
                f"{h.name} has rp_filter=1 (strict) and its route back to {src} leaves by {back.dev}, not {in_dev}",
                f"`nestnet host apply` or `sysctl -w {sysctl.rp_filter()}=2` on {h.name}",
            )
        return None

    def _host_out(self, h: HostState, pkt: list[IPv4Address], w: _Walk, r: Route | None = None) -> str:
        """Out of ``h``: its own packet (``r`` None: route it here) or one it forwards by ``r``."""
        dst = pkt[1]
        forwarded = r is not None
        r = r or self.host_route(h, dst)
        if r is None:
            raise _Dropped(Drop(h.name, f"{h.name} has no route to {dst}", "`nestnet host apply`"))
        nh = r.via or dst
        # NAT rules see only a connection's first packet: the request.
        if forwarded and not w.reply and any(m.matches(pkt[0], dst, r.dev) for m in h.masquerade):
            w.flow.nat.append((h.name, pkt[0], h.ip))
            w.hop(h.name, f"masquerades {pkt[0]} as {h.ip}")
            pkt[0] = h.ip
        if r.dev == h.l3_dev and not (h.bridge_has_uplink and nh in self.guest_by_ip
                                      and self.guest_by_ip[nh].host == h.name):
            if dst in h.block and dst not in h.away:
                w.anomalies.append(
                    Drop(h.name, f"{h.name} sends {dst} of its own block {h.block} to Azure: route "
                                 f"`{h.block} dev {h.bridge}` is missing", f"`nestnet host apply` on {h.name}")
                )
            w.hop(h.name, f"{pkt[0]} → {dst} via {nh} dev {r.dev} to Azure")
            nic = self.state.azure.nics.get(h.nic)
            if nic is None:
                raise _Dropped(Drop(h.name, f"{h.name}'s NIC {h.nic} is unknown to Azure", ""))
            return self._azure_in(nic, pkt, w)
        if r.dev == h.bridge:
            g = self.guest_by_ip.get(nh)
            if g is not None and g.host != h.name:  # it moved (an exception): this host must send it on
                raise _Dropped(Drop(f"{h.name}:{h.bridge}",
                                    f"{h.name} routes {dst} to {h.bridge} but {g.name} lives on {g.host}: "
                                    f"{h.name} lacks the /32 that sends it there",
                                    f"`nestnet host apply` on {h.name}"))
            if g is None:
                raise _Dropped(Drop(f"{h.name}:{h.bridge}",
                                    f"{h.name} routes {dst} to {h.bridge} but no VM there answers ARP for {nh}",
                                    f"check the VM owning {dst} runs on {h.name}"))
            w.hop(h.name, f"{pkt[0]} → {dst} dev {h.bridge} to {g.name}")
            return self._guest_in(g, pkt, w)
        raise _Dropped(Drop(h.name, f"{h.name} routes {dst} to {r.dev}, which leads nowhere in this fabric",
                            "`nestnet host apply`"))

    # ---------------------------------------------------------------- receivers

    def _loop_guard(self, w: _Walk, key: tuple) -> None:
        if key in w.visited or len(w.hops) > MAX_HOPS:
            raise _Dropped(Drop(str(key[0]), f"routing loop: the packet comes back to {key[0]} and dies when its TTL runs out",
                                "`nestnet host apply`"))
        w.visited.add(key)

    def _denat(self, node: str, pkt: list[IPv4Address], w: _Walk) -> None:
        if not w.reply:
            return
        for where, orig, new in w.flow.nat:
            if where == node and pkt[1] == new:
                w.hop(node, f"conntrack translates {new} back to {orig}")
                pkt[1] = orig
                return

    def _host_in(self, h: HostState, dev: str, pkt: list[IPv4Address], w: _Walk) -> str:
        self._loop_guard(w, (h.name, dev, pkt[0], pkt[1]))
        self._denat(h.name, pkt, w)
        if not w.reply and dev == h.l3_dev and pkt[1] == h.ip and w.flow.dport is not None:
            rule = next((d for d in h.dnat if d[0] == self.probe.protocol and d[1] == w.flow.dport), None)
            if rule is not None:  # an exposed port: prerouting's DNAT, before routing
                w.flow.dnat.append((h.name, pkt[1], rule[2]))
                w.hop(h.name, f"DNAT {self.probe.protocol} {h.ip}:{rule[1]} to {rule[2]}:{rule[3]}")
                pkt[1], w.flow.dport = rule[2], rule[3]
        src, dst = pkt
        if dst in h.local_addresses:
            rp = self._rp_refusal(h, dev, src)
            if rp is not None:
                raise _Dropped(Drop(h.name, rp[0], rp[1]))
            w.hop(h.name, f"delivered ({dst} is local)")
            return h.name
        if not h.ip_forward:
            raise _Dropped(Drop(h.name, f"{h.name} does not forward {src} → {dst}: {sysctl.IP_FORWARD}=0",
                                f"`nestnet host apply` or `sysctl -w {sysctl.IP_FORWARD}=1` on {h.name}"))
        r = self.host_route(h, dst)
        if r is None:
            raise _Dropped(Drop(h.name, f"{h.name} has no route to {dst}", "`nestnet host apply`"))
        rp = self._rp_refusal(h, dev, src)
        if rp is not None:
            raise _Dropped(Drop(h.name, rp[0], rp[1]))
        established = w.reply and h.name in w.flow.seen
        dnated = any(n == h.name for n, _o, _t in w.flow.dnat)
        dropped = h.firewall.drop_reason(FwdPacket(src, dst, dev, r.dev, established, dnated and not w.reply))
        if dropped is not None:
            why, chain = dropped
            fix = (f"`nestnet host apply` on {h.name}" if chain == NESTNET_CHAIN
                   else f"on {h.name}, remove that drop policy or let {h.block} through it (`nft list ruleset`)")
            raise _Dropped(Drop(h.name, f"{h.name}'s firewall drops forwarded {src} → {dst} ({dev} → {r.dev}): {why}",
                                fix))
        if not w.reply:
            w.flow.seen.add(h.name)
        w.hop(h.name, f"forwards {src} → {dst}")
        if w.reply:
            self._undnat(h.name, pkt, w)
        return self._host_out(h, pkt, w, r)

    def _undnat(self, node: str, pkt: list[IPv4Address], w: _Walk) -> None:
        """A reply's source back to what its request was sent to (conntrack of a DNAT)."""
        for where, orig, new in w.flow.dnat:
            if where == node and pkt[0] == new:
                w.hop(node, f"conntrack translates the source {new} back to {orig}")
                pkt[0] = orig
                return

    def _guest_in(self, g: GuestState, pkt: list[IPv4Address], w: _Walk) -> str:
        if pkt[1] == g.ip:
            w.hop(g.name, "delivered")
            return g.name
        raise _Dropped(Drop(g.name, f"{g.name} receives a packet for {pkt[1]} and does not forward", ""))

    # ---------------------------------------------------------------- Azure

    def _azure_route(self, subnet: str, dst: IPv4Address) -> tuple[str, IPv4Network, UserRoute | None]:
        """Route selection in the source subnet's table: ('user'|'vnet'|'internet'|'none', prefix, route)."""
        az = self.state.azure
        best: tuple[int, int, str, IPv4Network, UserRoute | None] | None = None
        # (prefix length, user beats system on ties)
        for n in az.address_space:
            if dst in n:
                cand = (n.prefixlen, 0, "vnet", n, None)
                best = cand if best is None or cand[:2] > best[:2] else best
        zero = IPv4Network("0.0.0.0/0")
        cand0 = (0, 0, "internet", zero, None)
        best = cand0 if best is None or cand0[:2] > best[:2] else best
        for n in az.none_routes:  # system routes to None; a VNet prefix of equal length wins
            if dst in n and n.prefixlen > best[0]:
                best = (n.prefixlen, 0, "none", n, None)
        sub = az.subnets.get(subnet)
        if sub is not None and sub.route_table:
            for r in self._user_routes_for(dst):
                cand = (r.prefix.prefixlen, 1, "user", r.prefix, r)
                if cand[:2] > best[:2]:
                    best = cand
        return best[2], best[3], best[4]

    def _user_routes_for(self, dst: IPv4Address) -> Iterator[UserRoute]:
        """User routes covering ``dst``, longest prefix first (indexed: tables hold 1,000 routes)."""
        if not self._user:
            for r in self.state.azure.user_routes:
                self._user.setdefault(r.prefix.prefixlen, {}).setdefault(int(r.prefix.network_address), []).append(r)
            self._user_lens = sorted(self._user, reverse=True)
        d = int(dst)
        for plen in self._user_lens:
            yield from self._user[plen].get(d & (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF, ())

    def _azure_in(self, nic: NicState, pkt: list[IPv4Address], w: _Walk) -> str:
        self._loop_guard(w, (AZURE, nic.name, pkt[0], pkt[1]))
        src, dst = pkt
        where = f"azure:{nic.name}"
        if not nic.ip_forwarding and src not in nic.addresses:
            raise _Dropped(Drop(where, f"Azure drops at {nic.name}: IP forwarding is off and {src} is not one of its "
                                       "addresses", self._nic_fix(nic)))
        reserved_in = self.reserved.get(dst)
        if reserved_in is not None:
            raise _Dropped(Drop(f"azure:{reserved_in}", f"Azure drops {dst}: it is reserved in subnet {reserved_in} "
                                "(the first four and the last address of every subnet)",
                                f"give the node owning {dst} an address outside Azure's reserved ones"))
        self._nsgs(nic, "Outbound", pkt, w)
        kind, prefix, ur = self._azure_route(nic.subnet, dst)
        if kind == "user":
            assert ur is not None
            target = self.owner_nic.get(ur.next_hop_ip)
            w.hop("azure", f"{nic.subnet} route table: {ur.name} {prefix} → VirtualAppliance {ur.next_hop_ip}")
            if target is None:
                raise _Dropped(Drop(f"azure:{ur.name}", f"Azure drops {dst}: user route {ur.name} points to "
                                    f"{ur.next_hop_ip}, which no NIC owns", "`nestnet azure apply`"))
            return self._azure_out(target, pkt, w)
        if kind == "none":
            raise _Dropped(Drop(f"azure:{nic.subnet}", f"Azure drops {dst} from {nic.subnet}: its system route {prefix} "
                                "has next hop None (outside the VNet's address space)",
                                f"add {dst}'s network to the VNet's address space (or peer it), or a user route for it"))
        if kind == "vnet":
            target = self.owner_nic.get(dst)
            if target is None:
                raise _Dropped(self._unowned(nic, dst))
            w.hop("azure", f"{nic.subnet}: {dst} is in the VNet ({prefix}), owned by NIC {target.name}")
            return self._azure_out(target, pkt, w)
        return self._azure_to_internet(pkt, w, nic)

    def _nsgs(self, nic: NicState, direction: Direction, pkt: list[IPv4Address], w: _Walk) -> None:
        """Azure's network security groups on ``nic``'s way: inbound the subnet's then the NIC's,
        outbound the NIC's then the subnet's. Stateful per NIC: a reply of a flow the NIC let
        through (either way) passes without rules."""
        az = self.state.azure
        sub = az.subnets.get(nic.subnet)
        attached = [("NIC", nic.name, nic.nsg), ("subnet", nic.subnet, sub.nsg if sub is not None else None)]
        if direction == "Inbound":
            attached.reverse()
        attached = [a for a in attached if a[2]]
        if not attached:
            return
        key = f"nsg:{nic.name}"
        if w.reply and key in w.flow.seen:
            w.hop("azure", f"{nic.name}: reply of an allowed flow (NSGs are stateful)")
            return
        src, dst = pkt
        for what, name, nsg_name in attached:
            assert nsg_name is not None
            nsg = az.nsgs.get(nsg_name)
            if nsg is None:  # attached but unknown (not read): Azure would know it; we cannot judge
                raise _Dropped(Drop(f"azure:{nsg_name}", f"{what} {name} has NSG {nsg_name}, whose rules are unknown",
                                    "read the NSGs too (`--azure` or `--nsgs FILE`)"))
            rule = decide(nsg, direction, src, dst, self.tags, self.probe, w.reply)
            if rule.access == "Deny":
                flow = "" if self.probe == ICMP else f" {self.probe}{' reply' if w.reply else ''}"
                raise _Dropped(Drop(f"azure:{nsg_name}",
                                    f"Azure drops {src} → {dst}{flow} ({direction.lower()}, {what} {name}): NSG {nsg_name} "
                                    f"rule {rule.name} (priority {rule.priority}, Deny)",
                                    self._nsg_fix(nsg, rule, direction, src, dst)))
            w.hop("azure", f"NSG {nsg_name} ({what} {name}) {direction.lower()}: {rule.name} allows")
        if not w.reply:
            w.flow.seen.add(key)

    def _nsg_fix(self, nsg: Nsg, rule, direction: Direction, src: IPv4Address, dst: IPv4Address) -> str:
        rg = self.state.azure.resource_group or "RG"
        if not rule.default:
            flow = "" if self.probe == ICMP else f" {self.probe}"
            return (f"remove or narrow the rule (`az network nsg rule delete -g {rg} --nsg-name {nsg.name} "
                    f"-n {rule.name}`), or allow {src} → {dst}{flow} with a priority number below {rule.priority}")
        used = {r.priority for r in nsg.rules if r.direction == direction}
        prio = next((p for p in range(100, 4097) if p not in used), 4096)
        p = self.probe
        what = "'*'" if p.port is None else f"{p.protocol.capitalize()} --destination-port-ranges {p.port}"
        return (f"`az network nsg rule create -g {rg} --nsg-name {nsg.name} -n allow-{src}-{dst} --priority {prio} "
                f"--direction {direction} --access Allow --protocol {what} --source-address-prefixes {src} "
                f"--destination-address-prefixes {dst}`")

    def _nic_fix(self, nic: NicState) -> str:
        rg = self.state.azure.resource_group or "RG"
        if self.state.azure.owned_by_nic:  # no IP forwarding in these modes: the NIC must own the address
            return f"`nestnet azure apply` (the ip configuration of {nic.name} that holds the address)"
        return f"`nestnet azure apply` or `az network nic update -g {rg} -n {nic.name} --ip-forwarding true`"

    def _unowned(self, nic: NicState, dst: IPv4Address) -> Drop:
        az = self.state.azure
        where = f"azure:{nic.subnet}"
        covering = [r for r in az.user_routes if dst in r.prefix]
        sub = az.subnets.get(nic.subnet)
        if covering and sub is not None and not sub.route_table:
            rt = az.route_table or "nestnet's route table"
            return Drop(where, f"Azure drops {dst} from {nic.subnet}: no NIC owns it and subnet {nic.subnet} is not "
                               f"associated with route table {rt}, which has user route {covering[0].name}",
                        f"`nestnet azure apply` or `az network vnet subnet update --name {nic.subnet} "
                        f"--route-table {rt}`")
        owner = next((h for h in self.state.hosts.values() if dst in h.block), None)
        if owner is not None and az.owned_by_nic:
            return Drop(where, f"Azure drops {dst} from {nic.subnet}: no NIC owns it (no ip configuration of "
                               f"{owner.nic} holds it; {owner.name}'s block is {owner.block})",
                        f"`nestnet azure apply` (the ip configuration of {owner.nic} for {owner.block})")
        if owner is not None:
            return Drop(where, f"Azure drops {dst} from {nic.subnet}: no NIC owns it and the route table has no "
                               f"user route for {owner.name}'s block {owner.block}",
                        "`nestnet azure apply` (route "
                        f"{owner.block} → VirtualAppliance {owner.ip})")
        return Drop(where, f"Azure drops {dst} from {nic.subnet}: no NIC owns it and no user route covers it", "")

    def _azure_out(self, target: NicState, pkt: list[IPv4Address], w: _Walk) -> str:
        dst = pkt[1]
        if not target.ip_forwarding and dst not in target.addresses:
            raise _Dropped(Drop(f"azure:{target.name}", f"Azure drops at {target.name}: IP forwarding is off and {dst} "
                                "is not one of its addresses", self._nic_fix(target)))
        self._nsgs(target, "Inbound", pkt, w)
        s = self.state
        h = self.host_by_nic.get(target.name)
        if h is not None:
            return self._host_in(h, h.l3_dev, pkt, w)
        ep = s.endpoints.get(target.owner)
        if ep is not None:
            if dst == ep.ip:
                w.hop(ep.name, "delivered")
                return ep.name
            raise _Dropped(Drop(ep.name, f"{ep.name} receives a packet for {dst} and does not forward", ""))
        raise _Dropped(Drop(f"azure:{target.name}", f"NIC {target.name} belongs to nothing in this fabric", ""))

    def _azure_to_internet(self, pkt: list[IPv4Address], w: _Walk, nic: NicState) -> str:
        if w.reply and any(n == AZURE for n, _o, _t in w.flow.dnat):
            self._undnat(AZURE, pkt, w)  # the reply of a connection to a public IP leaves as that IP
            if pkt[0] in self.public:
                w.hop(INTERNET, "delivered")
                return INTERNET
        src, dst = pkt
        if not self.state.internet or dst != INTERNET_IP:
            raise _Dropped(Drop("internet", f"nothing answers {dst} on the internet side", ""))
        if src not in self.nic_addresses:
            via = self.host_by_nic.get(nic.name)
            who = f"; {via.name} forwarded it without masquerading" if via is not None else ""
            fix = (f"masquerade on {via.name} (`egress: masquerade-outside-vnet`, `nestnet host apply`)"
                   if via is not None else "")
            raise _Dropped(Drop("azure:internet", f"Azure translates only NIC addresses for internet egress and {src} "
                                f"is none{who}", fix))
        # a NIC with a public IP sends as that IP; any other by Azure's default outbound address
        pub = next((p for p in self.state.azure.public_ips if p.nic == nic.name), None)
        host = self.host_by_nic.get(nic.name)
        out = pub.address if pub is not None and (host is None or src == host.ip) else OUTBOUND_IP
        w.flow.nat.append((AZURE, src, out))
        w.flow.seen.add(AZURE)
        w.hop("azure", f"Internet route: translates {src} to {out}" + (f" (public IP {pub.name})" if out != OUTBOUND_IP else ""))
        pkt[0] = out
        w.hop(INTERNET, "delivered")
        return INTERNET

    def _internet_out(self, pkt: list[IPv4Address], w: _Walk) -> str:
        dst = pkt[1]
        pub = self.public.get(dst)
        if pub is not None and not w.reply:
            return self._public_in(pub, pkt, w)
        if dst not in OUTBOUND_NET and dst not in self.public:
            raise _Dropped(Drop(INTERNET, f"the internet has no route to {dst} (no inbound path into the VNet)", ""))
        w.hop(INTERNET, f"{pkt[0]} → {dst} to Azure")
        if not (w.reply and AZURE in w.flow.seen):
            raise _Dropped(Drop("azure:internet", "Azure accepts only replies from the internet", ""))
        self._denat(AZURE, pkt, w)
        target = self.owner_nic.get(pkt[1])
        if target is None:
            raise _Dropped(Drop("azure:internet", f"no NIC owns {pkt[1]}", ""))
        return self._azure_out(target, pkt, w)

    def _public_in(self, pub, pkt: list[IPv4Address], w: _Walk) -> str:
        """The internet's packet for a public IP: Azure hands it 1:1 to the NIC's primary private
        address; NSGs judge it there, after the translation (docs/decisions/0027)."""
        w.hop(INTERNET, f"{pkt[0]} → {pkt[1]} to Azure")
        nic = self.state.azure.nics.get(pub.nic)
        where = f"azure:{pub.name}"
        if nic is None:
            raise _Dropped(Drop(where, f"public IP {pub.name} ({pub.address}) is on NIC {pub.nic}, unknown to the fabric", ""))
        host = self.host_by_nic.get(nic.name)
        private = host.ip if host is not None else min(nic.addresses)
        if pub.standard:
            sub = self.state.azure.subnets.get(nic.subnet)
            if not nic.nsg and not (sub is not None and sub.nsg):
                raise _Dropped(Drop(where, f"Azure drops {pkt[0]} → {pub.address} {self.probe}: public IP {pub.name} is "
                                    "Standard SKU, closed to inbound unless an NSG allows it, and neither NIC "
                                    f"{nic.name} nor subnet {nic.subnet} has an NSG",
                                    f"attach an NSG allowing {self.probe} from Internet to {nic.name} or {nic.subnet}"))
        w.flow.dnat.append((AZURE, pub.address, private))
        w.flow.seen.add(AZURE)
        w.hop("azure", f"public IP {pub.name}: {pub.address} → {private} (NIC {nic.name})")
        pkt[1] = private
        return self._azure_out(nic, pkt, w)
