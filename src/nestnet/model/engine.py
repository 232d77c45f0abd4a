"""The forwarding rules: walk one ping (request and reply) hop by hop through a ``State``.

Every rule is a small function of the State and the packet, named after what it models:

- The cloud: its rules are a mixin of ``Model`` from the cloud's package (``Cloud.rules()``, e.g.
  the first cloud's ``rules`` module): what it delivers, by which route, which source/destination check,
  security groups, internet egress and public IPs. ``Model(state)`` is the model of the state's
  cloud (``CloudState.cloud``).
- Linux hosts: local delivery, ``ip_forward``, longest-prefix routing, ``rp_filter`` (strict:
  the route back to the source must leave by the incoming device; loose: some route must exist;
  a packet coming back with the host's own source address is a martian), the forward verdict of
  the firewall with conntrack (replies of a forwarded request are established), masquerade of
  new connections, proxy ARP on the nested bridge (needs forwarding, a route out another device
  and a source that passes rp_filter).
- Guests: a connected route for a prefix shorter than /32, the onlink route to the gateway, the
  default route; they answer ARP for their own address and never forward.
- Internet: reaches only the outbound address range (no route to 10/8): replies to translated
  sources only; and the public IPs on NICs (``Model.from_internet``): the cloud delivers them 1:1
  to the NIC's primary address, the host's DNAT of an exposed port takes it on to the VM, and the
  reply leaves by the same way back, as the public IP.

A ping is ok when the request reaches the destination node *and* its reply reaches the source.
Where a packet dies, the walk records the hop, the rule that dropped it and the fix; anomalies seen
on the way (a host sending its own block to the cloud, ...) are the root cause of a later loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network

from .. import sysctl
from ..firewall import FwdPacket
from ..plan import Route
from .probe import ICMP, Probe
from .state import (
    INTERNET,
    INTERNET_IP,
    NESTNET_CHAIN,
    GuestState,
    HostState,
    NicState,
    State,
    UserRoute,
)

MAX_HOPS = 32


@dataclass(frozen=True, slots=True)
class Drop:
    where: str  # the hop where the packet dies, e.g. "<cloud>:vme-kvm-vm2-vm-nic"
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
    what ``ping`` sends (ICMP echo by default; TCP/UDP to a port matter only to NSG rules).
    ``Model(state)`` is an instance of the model of the state's cloud: this class with the cloud's
    rules mixed in (``model_class``)."""

    CLOUD = ""  # the cloud's name where a hop is in it ("<cloud>:<NIC>"), from its rules
    CLOUD_TITLE = ""  # the cloud in words

    def __new__(cls, state: State, probe: Probe = ICMP) -> "Model":
        return super().__new__(model_class(state.cloud.cloud) if cls is Model else cls)

    def __init__(self, state: State, probe: Probe = ICMP):
        self.state = state
        self.probe = probe
        az = state.cloud
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
            w.hop(node, f"{pkt[0]} → {pkt[1]} to {self.CLOUD_TITLE} (the subnet gateway {e.gateway} answers ARP)")
            return self._cloud_in(s.cloud.nics[e.nic], pkt, w)
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
                Drop(f"{self.CLOUD}:{h.nic}",
                     f"{asker.name}'s ARP for {nh} leaks through {h.bridge} to {self.CLOUD_TITLE}, which answers; "
                     f"{self.CLOUD_TITLE} then "
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
                    Drop(h.name, f"{h.name} sends {dst} of its own block {h.block} to {self.CLOUD_TITLE}: route "
                                 f"`{h.block} dev {h.bridge}` is missing", f"`nestnet host apply` on {h.name}")
                )
            w.hop(h.name, f"{pkt[0]} → {dst} via {nh} dev {r.dev} to {self.CLOUD_TITLE}")
            nic = self.state.cloud.nics.get(h.nic)
            if nic is None:
                raise _Dropped(Drop(h.name, f"{h.name}'s NIC {h.nic} is unknown to {self.CLOUD_TITLE}", ""))
            return self._cloud_in(nic, pkt, w)
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

    # ---------------------------------------------------------------- the cloud (its rules' mixin)

    def _cloud_in(self, nic: NicState, pkt: list[IPv4Address], w: _Walk) -> str:
        """A packet handed to the cloud at ``nic``: the cloud's rules take it on."""
        raise NotImplementedError

    def _internet_out(self, pkt: list[IPv4Address], w: _Walk) -> str:
        """A packet from the internet node into the cloud."""
        raise NotImplementedError


_MODELS: dict[str, type[Model]] = {}


def model_class(cloud: str) -> type[Model]:
    """The model of ``cloud``: ``Model`` with the cloud's rules (``Cloud.rules()``) mixed in."""
    cls = _MODELS.get(cloud)
    if cls is None:
        from ..clouds import get

        cls = _MODELS[cloud] = type("Model", (get(cloud).rules(), Model), {"__module__": __name__})
    return cls
