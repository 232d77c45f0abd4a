"""Azure's forwarding rules for the model (DESIGN §3), a mixin of ``nestnet.model.engine.Model``
(the cloud seam's ``rules()``; ``Model(state)`` mixes them in for an Azure state):

- reserved addresses (first four, last) are never delivered; the route table of the *source*
  subnet, longest prefix match with user > system on ties; VnetLocal delivers by NIC ownership
  (primary/secondary IPs), VirtualAppliance to the NIC owning the next hop; the per-NIC
  source/destination check lifted only by IP forwarding; fake L2 (the fabric answers every ARP;
  frames with a foreign source MAC are dropped); internet egress only for NIC-owned sources
  (translated to the outbound address), replies only;
- network security groups (stateful per NIC) and public IPs: Azure delivers them 1:1 to the NIC's
  primary address (a Standard one only where an NSG allows it).

The methods use the model's indexes (``self.state``, ``owner_nic``, ``host_by_nic``, ...) and hand
packets back to it (``_host_in``) where they leave Azure.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Iterator

from ...model.engine import Drop, _Dropped, _Walk
from ...model.probe import ICMP
from .nsg import Direction, Nsg, decide
from ...model.state import INTERNET, INTERNET_IP, OUTBOUND_IP, OUTBOUND_NET, NicState, UserRoute

if TYPE_CHECKING:
    from ...model.engine import Model

    _Base = Model
else:
    _Base = object

AZURE = "azure"


class AzureRules(_Base):
    CLOUD = AZURE
    CLOUD_TITLE = "Azure"

    def _cloud_in(self, nic: NicState, pkt: list[IPv4Address], w: _Walk) -> str:
        return self._azure_in(nic, pkt, w)

    def _azure_route(self, subnet: str, dst: IPv4Address) -> tuple[str, IPv4Network, UserRoute | None]:
        """Route selection in the source subnet's table: ('user'|'vnet'|'internet'|'none', prefix, route)."""
        az = self.state.cloud
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
            for r in self.state.cloud.user_routes:
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
                raise _Dropped(self._dead_route(ur, dst))
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

    def _dead_route(self, ur: UserRoute, dst: IPv4Address) -> Drop:
        """A user route wins for ``dst`` and its next hop is no NIC's."""
        return Drop(f"azure:{ur.name}", f"Azure drops {dst}: user route {ur.name} points to {ur.next_hop_ip}, which no "
                    "NIC owns", "`nestnet azure apply`")

    def _nsgs(self, nic: NicState, direction: Direction, pkt: list[IPv4Address], w: _Walk) -> None:
        """Azure's network security groups on ``nic``'s way: inbound the subnet's then the NIC's,
        outbound the NIC's then the subnet's. Stateful per NIC: a reply of a flow the NIC let
        through (either way) passes without rules."""
        az = self.state.cloud
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
        rg = self.state.cloud.resource_group or "RG"
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
        rg = self.state.cloud.resource_group or "RG"
        if self.state.cloud.owned_by_nic:  # no IP forwarding in these modes: the NIC must own the address
            return f"`nestnet azure apply` (the ip configuration of {nic.name} that holds the address)"
        return f"`nestnet azure apply` or `az network nic update -g {rg} -n {nic.name} --ip-forwarding true`"

    def _unowned(self, nic: NicState, dst: IPv4Address) -> Drop:
        az = self.state.cloud
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
        pub = next((p for p in self.state.cloud.public_ips if p.nic == nic.name), None)
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
        nic = self.state.cloud.nics.get(pub.nic)
        where = f"azure:{pub.name}"
        if nic is None:
            raise _Dropped(Drop(where, f"public IP {pub.name} ({pub.address}) is on NIC {pub.nic}, unknown to the fabric", ""))
        host = self.host_by_nic.get(nic.name)
        private = host.ip if host is not None else min(nic.addresses)
        if pub.standard:
            sub = self.state.cloud.subnets.get(nic.subnet)
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
