"""Checking every ordered pair fast: nodes that behave alike are traced once per class pair.

A host's *signature* is its state (and the cloud's state about it: NIC, user routes for its block)
rewritten relative to itself: its own address becomes SELF, its block BLOCK, its subnet's gateway
GW, its routes to the other hosts' blocks a per-relation summary ("via the peer's IP on the
uplink" for same-subnet peers, "via GW" for others). Hosts of one subnet with equal signatures
behave alike towards every other class, so one representative pair per (source class,
destination class, same host or not) decides all its member pairs. Anything that singles out a
specific other node (a route to one peer's block only, a user route pointing at another host, a
literal prefix covering part of the pool) makes the nodes involved singletons: correctness first,
speed where the fabric is regular. tests/check/test_classes.py compares the class verdicts with
brute force on random faulted fabrics.

VM classes are (host class, guest signature); endpoints and the internet are singletons.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Callable, Collection, Hashable, Iterator

from .engine import Model, PairResult
from .probe import ICMP, Probe
from ..firewall import Addresses
from ..plan import Route
from .state import INTERNET, Firewall, HostState, PlannedRoutes, State



@dataclass(frozen=True, slots=True)
class NodeClass:
    key: Hashable
    kind: str  # host | vm | endpoint | internet
    host_class: Hashable | None  # for host and vm classes: the class of the host(s)
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClassPair:
    """All ordered pairs (src in ``src``, dst in ``dst``) with the given host relation."""

    src: NodeClass
    dst: NodeClass
    same_host: bool | None  # None: not both on hosts
    count: int
    ok: bool
    rep: tuple[str, str]


class _Signer:
    """Computes class keys; records nodes whose identity matters (``special``)."""

    def __init__(self, state: State):
        self.s = state
        self.block_owner = {h.block: h.name for h in state.hosts.values()}
        self.ip_owner: dict[IPv4Address, str] = {}
        for h in state.hosts.values():
            self.ip_owner[h.ip] = h.name
        for g in state.guests.values():
            self.ip_owner[g.ip] = g.name
        for e in state.endpoints.values():
            self.ip_owner[e.ip] = e.name
        self.subnet_prefixes = {n: s.prefix for n, s in state.cloud.subnets.items()}
        self.special: set[str] = set()
        self.hosts_in_subnet: dict[str, list[HostState]] = {}
        for h in state.hosts.values():
            self.hosts_in_subnet.setdefault(h.subnet, []).append(h)
        self.user_by_prefix: dict[IPv4Network, list] = {}
        self.user_by_hop: dict[IPv4Address, list] = {}
        for r in state.cloud.user_routes:
            self.user_by_prefix.setdefault(r.prefix, []).append(r)
            self.user_by_hop.setdefault(r.next_hop_ip, []).append(r)
        self._uniform_cache: dict[IPv4Network, bool] = {}
        self._kinds: dict[int, tuple] = {}  # id(network) -> (network, its kind)
        self._literal_nets: dict[int, tuple] = {}  # id(tuple of networks) -> (tuple, signature)
        self._nsg_literals(state)
        # a public IP on a NIC can decide its internet pairs (a cloud's rules may let only those out)
        self.public_nics = frozenset(p.nic for p in state.cloud.public_ips)
        for r in state.cloud.user_routes:  # the cloud's foreign routes touch every class alike unless partial
            if self.block_owner.get(r.prefix) is None:
                self.literal_net(r.prefix)
            owner = self.ip_owner.get(r.next_hop_ip)
            if owner is not None and self.block_owner.get(r.prefix) != owner:
                self.special.add(owner)
                if r.prefix in self.block_owner:
                    self.special.add(self.block_owner[r.prefix])

    def _nsg_literals(self, state: State) -> None:
        """A node a rule of an attached NSG names by address (not by service tag or 0/0) is special."""
        az = state.cloud
        attached = {s.nsg for s in az.subnets.values()} | {n.nsg for n in az.nics.values()}
        nets = set()
        for name in attached - {None}:
            nsg = az.nsgs.get(name)  # type: ignore[arg-type]
            for r in nsg.rules if nsg is not None else ():
                for p in (*r.sources, *r.destinations):
                    try:
                        n = IPv4Network(p.strip(), strict=False)
                    except ValueError:
                        continue
                    if n.prefixlen:
                        nets.add(n)
        for n in nets:
            self.special.update(owner for ip, owner in self.ip_owner.items() if ip in n)

    # ---- symbols relative to one host

    def addr(self, h: HostState, a: IPv4Address | None) -> Hashable:
        if a is None:
            return None
        if a == h.ip:
            return "SELF"
        if a == h.gateway:
            return "GW"
        owner = self.ip_owner.get(a)
        if owner is not None:
            self.special.add(owner)
            return ("node", owner)
        return str(a)

    def literal_net(self, n: IPv4Network) -> Hashable:
        """A prefix written literally; nodes it covers only partly lose their anonymity."""
        ok = self._uniform_cache.get(n)
        if ok is None:
            ok = True
            pool = self.s.pool
            if pool is not None and n.overlaps(pool) and not n.supernet_of(pool):
                ok = False
                for h in self.s.hosts.values():
                    if h.block.overlaps(n):
                        self.special.add(h.name)
            for sub, prefix in self.subnet_prefixes.items():
                if n.overlaps(prefix) and not n.supernet_of(prefix):
                    for h in self.hosts_in_subnet.get(sub, ()):
                        if h.ip in n:
                            self.special.add(h.name)
            self._uniform_cache[n] = ok
        return str(n)

    def _kind(self, n: IPv4Network) -> tuple[str | None, frozenset[str], IPv4Address | None]:
        """What ``n`` is, whoever looks: (owner of the block it is, subnets whose prefix it is,
        node address if a /32 of one). Cached by identity: the same objects recur in every host."""
        c = self._kinds.get(id(n))
        if c is None or c[0] is not n:
            node = n.network_address if n.prefixlen == 32 and n.network_address in self.ip_owner else None
            subnets = frozenset(k for k, p in self.subnet_prefixes.items() if p == n)
            c = self._kinds[id(n)] = (n, (self.block_owner.get(n), subnets, node))
        return c[1]

    def net(self, h: HostState, n: IPv4Network) -> Hashable:
        owner, subnets, node = self._kind(n)
        if owner == h.name:  # its own block
            return "BLOCK"
        if h.subnet in subnets:
            return "SUBNET"
        if owner is not None:
            self.special.add(owner)
            return ("block", owner)
        if node is not None:
            return self.addr(h, node)
        return self.literal_net(n)

    def nets(self, h: HostState, ns: Addresses | None, vm_ips: frozenset) -> Hashable:
        if ns is None:
            return None
        if isinstance(ns, frozenset):  # single addresses
            return "OWN_VMS" if ns and ns == vm_ips else tuple(sorted(str(self.addr(h, a)) for a in ns))
        hit = self._literal_nets.get(id(ns))
        if hit is not None and hit[0] is ns:  # e.g. the fabric prefixes every host's rules share
            return hit[1]
        if ns and all(n.prefixlen == 32 and n.network_address in vm_ips for n in ns) and len(ns) == len(vm_ips):
            return "OWN_VMS"
        out = tuple(sorted((str(self.net(h, n)) for n in ns)))
        if all(n.prefixlen < 32 and self._kind(n) == (None, frozenset(), None) for n in ns):
            self._literal_nets[id(ns)] = (ns, out)  # the same for every host
        return out

    def dev(self, h: HostState, d: str | None) -> Hashable:
        return {h.uplink: "UPLINK", h.bridge: "BRIDGE"}.get(d or "", d)

    # ---- signatures

    def _planned_routes(self, h: HostState) -> tuple[tuple, list] | None:
        """(peer signature, other route keys) of a host whose nestnet routes are the plan's, read
        from the plan's rule (``Host.routes_to_peers``) in O(1) instead of O(hosts); None when
        the rule does not apply (then ``host_key`` walks the routes)."""
        pr = h.owned_routes
        if not isinstance(pr, PlannedRoutes):
            return None
        ph = pr.host
        if ph.exception_routes:  # /32s for moved VMs besides the rule: walk them all
            return None
        if (ph.name, ph.l3_dev, ph.gateway, ph.block, ph.bridge) != (h.name, h.l3_dev, h.gateway, h.block, h.bridge):
            return None
        own = Route(ph.block, ph.bridge)
        routes = []
        for r in (own, *h.other_routes):
            owner = self.block_owner.get(r.dst)
            if owner is not None and owner != h.name:
                return None  # a route to a peer's block besides the plan's: walk them all
            routes.append((r == own, str(self.net(h, r.dst)), self.dev(h, r.dev), str(self.addr(h, r.via))))
        same = len(self.hosts_in_subnet[h.subnet]) - 1
        others = len(self.s.hosts) - 1 - same
        dev = self.dev(h, h.l3_dev)
        peer_sig = (
            (dev, "PEER_IP") if ph.routes_to_peers and same else None,
            (dev, self.addr(h, h.gateway)) if ph.routes_to_peers and others else None,
        )
        return peer_sig, routes

    def _walked_routes(self, h: HostState) -> tuple[tuple, list]:
        s = self.s
        peers: dict[str, tuple] = {}
        routes = []
        for r in h.routes:
            owner = self.block_owner.get(r.dst)
            if owner is not None and owner != h.name:
                if owner in peers:  # a second route to the same prefix: the first wins
                    continue
                via = "PEER_IP" if r.via == s.hosts[owner].ip else self.addr(h, r.via)
                peers[owner] = (self.dev(h, r.dev), via)
            else:
                owned = r in h.owned_routes
                routes.append((owned, str(self.net(h, r.dst)), self.dev(h, r.dev), str(self.addr(h, r.via))))
        by_rel: dict[bool, set] = {True: set(), False: set()}
        for p in s.hosts.values():
            if p.name != h.name:
                by_rel[p.subnet == h.subnet].add(peers.get(p.name))
        if all(len(v) <= 1 for v in by_rel.values()):
            peer_sig = tuple(next(iter(by_rel[rel]), None) for rel in (True, False))
        else:  # routes to some peers only: this host and those peers are singled out
            peer_sig = ("host", h.name)
            counts: dict = {}
            for cat in peers.values():
                counts[cat] = counts.get(cat, 0) + 1
            common = max(counts, key=counts.__getitem__) if counts else None
            for p in s.hosts.values():
                if p.name != h.name and peers.get(p.name) != common:
                    self.special.add(p.name)
        return peer_sig, routes

    def host_key(self, h: HostState, vm_ips: frozenset) -> Hashable:
        s = self.s
        peer_sig, routes = self._planned_routes(h) or self._walked_routes(h)
        az = s.cloud
        nic = az.nics.get(h.nic)
        nic_sig = None
        if nic is not None:
            # a NIC prefix by what it is to the host ("BLOCK": its own block), not address by
            # address: each host's differ, and naming them would make every host special
            extra = nic.addresses - {h.ip} - {a for p in nic.prefixes for a in p}
            nic_sig = (
                nic.ip_forwarding,
                nic.nsg,
                "OWN_VMS" if extra and extra == vm_ips else tuple(sorted(str(self.addr(h, a)) for a in extra)),
                tuple(sorted(str(self.net(h, p)) for p in nic.prefixes)),
                nic.name in self.public_nics,
            )
        own_routes = tuple(sorted(str(self.addr(h, r.next_hop_ip)) for r in self.user_by_prefix.get(h.block, ())))
        pointing = tuple(sorted(str(self.net(h, r.prefix)) for r in self.user_by_hop.get(h.ip, ()) if r.prefix != h.block))
        return (
            h.subnet,
            h.prefix_len,
            self.addr(h, h.gateway),
            h.bridge_has_uplink,
            h.l2_guards,
            self.addr(h, h.bridge_address),
            h.ip_forward,
            h.rp_filter,
            h.proxy_arp,
            self.firewall(h, h.firewall, vm_ips),
            tuple((self.nets(h, m.src, vm_ips), self.dev(h, m.oif), self.nets(h, m.dst_not, vm_ips)) for m in h.masquerade),
            tuple(sorted(routes)),
            peer_sig,
            nic_sig,
            own_routes,
            pointing,
        )

    def firewall(self, h: HostState, fw: Firewall, vm_ips: frozenset) -> Hashable:
        return tuple(
            (
                c.policy,
                c.name,
                tuple(
                    (r.verdict, self.nets(h, r.src, vm_ips), r.src_not, self.nets(h, r.dst, vm_ips),
                     self.dev(h, r.iif), r.iif_not, self.dev(h, r.oif), r.established)
                    for r in c.rules
                ),
            )
            for c in fw.chains
        )


def node_classes(state: State) -> tuple[list[NodeClass], dict[str, str]]:
    """The classes and each host-bound node's host (VMs: their host; hosts: themselves)."""
    signer = _Signer(state)
    vms_of: dict[str, list] = {h: [] for h in state.hosts}
    for g in state.guests.values():
        vms_of.setdefault(g.host, []).append(g)
    host_keys: dict[str, Hashable] = {}
    for h in state.hosts.values():
        vm_ips = frozenset(g.ip for g in vms_of.get(h.name, ()))
        host_keys[h.name] = signer.host_key(h, vm_ips)
    guest_sigs = {}
    for g in state.guests.values():
        h = state.hosts.get(g.host)
        if h is None or g.ip not in h.block:
            guest_sigs[g.name] = ("vm", g.name)
            continue
        gw = "HOST_IP" if g.gateway == h.ip else signer.addr(h, g.gateway)
        if g.prefix_len < 32:
            signer.literal_net(IPv4Network(f"{g.ip}/{g.prefix_len}", strict=False))
        guest_sigs[g.name] = (g.prefix_len, g.onlink, gw)
    # Identity matters for special hosts: each becomes its own class.
    for name in signer.special:
        if name in host_keys:
            host_keys[name] = ("host", name)
        elif name in state.guests:
            guest_sigs[name] = ("vm", name)
    host_of: dict[str, str] = {}
    groups: dict[tuple, list[str]] = {}
    for name, key in host_keys.items():
        groups.setdefault(("host", key), []).append(name)
        host_of[name] = name
    for g in state.guests.values():
        hk = host_keys.get(g.host, ("orphan", g.host))
        groups.setdefault(("vm", hk, guest_sigs[g.name]), []).append(g.name)
        host_of[g.name] = g.host
    classes = [
        NodeClass(key, key[0], key[1], tuple(members)) for key, members in groups.items()
    ]
    classes += [NodeClass(("endpoint", e), "endpoint", None, (e,)) for e in state.endpoints]
    if state.internet:
        classes.append(NodeClass(("internet",), "internet", None, (INTERNET,)))
    return classes, host_of


class Reachability:
    """Every ordered pair's verdict (can a ping go and come back), by class; concrete pairs are
    produced on demand. What ``nestnet check`` reports."""

    def __init__(self, state: State, model: Model, class_pairs: list[ClassPair], host_of: dict[str, str]):
        self.state = state
        self.model = model
        self.class_pairs = class_pairs
        self._host_of = host_of
        self._verdicts: dict | None = None
        self._class_of: dict[str, Hashable] = {}
        total = sum(c.count for c in class_pairs)
        ok = sum(c.count for c in class_pairs if c.ok)
        self.summary = {"pairs": total, "ok": ok, "failed": total - ok}

    @property
    def all_ok(self) -> bool:
        return self.summary["failed"] == 0

    def _members(self, cp: ClassPair) -> Iterator[tuple[str, str]]:
        for a in cp.src.members:
            for b in cp.dst.members:
                if a == b:
                    continue
                if cp.same_host is not None and (self._host_of[a] == self._host_of[b]) != cp.same_host:
                    continue
                yield a, b

    def failed_involving(self, nodes: Collection[str]) -> list[tuple[ClassPair, list[tuple[str, str]]]]:
        """Each failed class pair with its member pairs that have one of ``nodes`` at either end,
        found without enumerating the class pair (O(len(nodes) x class size))."""
        out = []
        for cp in self.class_pairs:
            if cp.ok:
                continue
            src, dst = set(cp.src.members), set(cp.dst.members)
            found = {(a, b) for a in nodes if a in src for b in cp.dst.members}
            found |= {(a, b) for b in nodes if b in dst for a in cp.src.members}
            pairs = [
                (a, b) for a, b in found
                if a != b and (cp.same_host is None or (self._host_of[a] == self._host_of[b]) == cp.same_host)
            ]
            if pairs:
                out.append((cp, pairs))
        return out

    def ok(self, a: str, b: str) -> bool:
        """One pair's verdict, read from its class pair (nothing traced)."""
        if self._verdicts is None:
            self._class_of = {m: c.key for cp in self.class_pairs for c in (cp.src, cp.dst) for m in c.members}
            self._verdicts = {(cp.src.key, cp.dst.key, cp.same_host): cp.ok for cp in self.class_pairs}
        ha, hb = self._host_of.get(a), self._host_of.get(b)
        same = None if ha is None or hb is None else ha == hb
        return self._verdicts[(self._class_of[a], self._class_of[b], same)]

    def pairs(self, include_ok: bool = False) -> Iterator[PairResult]:
        """Concrete pairs in node order; failed ones re-traced for their exact reason and hops."""
        order = {n: i for i, n in enumerate((*self.state.node_names, INTERNET))}
        chosen = [cp for cp in self.class_pairs if include_ok or not cp.ok]
        items = sorted(
            ((a, b, cp.ok) for cp in chosen for a, b in self._members(cp)),
            key=lambda t: (order[t[0]], order[t[1]]),
        )
        for a, b, ok in items:
            yield PairResult(a, b, True) if ok else self.model.ping(a, b)


def reachability(state: State, probe: Probe = ICMP) -> Reachability:
    """``probe``: what every pair sends (one for all pairs, so the classes stay those of the state)."""
    model = Model(state, probe)
    classes, host_of = node_classes(state)
    # per host: how many members of each class sit on it
    on_host: dict[Hashable, dict[str, int]] = {}
    for c in classes:
        if c.host_class is None:
            continue
        counts: dict[str, int] = {}
        for m in c.members:
            counts[host_of[m]] = counts.get(host_of[m], 0) + 1
        on_host[c.key] = counts
    cache: dict[tuple[str, str], bool] = {}

    def verdict(a: str, b: str) -> bool:
        if (a, b) not in cache:
            cache[(a, b)] = model.ping(a, b).ok
        return cache[(a, b)]

    out: list[ClassPair] = []
    for x in classes:
        if x.kind == "internet":
            continue  # a destination only: nothing opens a path in from the internet
        for y in classes:
            if x.host_class is not None and y.host_class is not None:
                out += _host_bound(x, y, on_host, host_of, verdict)
                continue
            n = len(x.members) * len(y.members) - (len(x.members) if x is y else 0)
            if n:
                a = x.members[0]
                b = next(m for m in y.members if m != a)
                out.append(ClassPair(x, y, None, n, verdict(a, b), (a, b)))
    return Reachability(state, model, out, host_of)


def _host_bound(
    x: NodeClass, y: NodeClass, on_host: dict, host_of: dict[str, str], verdict: Callable[[str, str], bool]
) -> list[ClassPair]:
    cx, cy = on_host[x.key], on_host[y.key]
    same = sum(n * cy.get(h, 0) for h, n in cx.items()) - (sum(cx.values()) if x is y else 0)
    total = sum(cx.values()) * sum(cy.values()) - (sum(cx.values()) if x is y else 0)
    out = []
    if same:
        h = next(h for h, n in cx.items() if cy.get(h, 0) - (1 if x is y else 0) > 0 and n)
        a = next(m for m in x.members if host_of[m] == h)
        b = next(m for m in y.members if host_of[m] == h and m != a)
        out.append(ClassPair(x, y, True, same, verdict(a, b), (a, b)))
    if total - same:
        ha = next(h for h in cx if any(hb != h for hb in cy))
        hb = next(h for h in cy if h != ha)
        a = next(m for m in x.members if host_of[m] == ha)
        b = next(m for m in y.members if host_of[m] == hb)
        out.append(ClassPair(x, y, False, total - same, verdict(a, b), (a, b)))
    return out

