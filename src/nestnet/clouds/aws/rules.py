"""AWS's forwarding rules for the model: Azure's (``nestnet.clouds.azure.rules.AzureRules``) where
the VPC router behaves the same (docs/decisions/0031), with EC2's words and fixes: the
source/destination check instead of IP forwarding, ENI prefixes and secondary addresses instead of
ip configurations, routes to an ENI instead of VirtualAppliance next hops."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from dataclasses import replace

from ..azure.rules import AzureRules
from ...model.engine import Drop, _Dropped
from ...model.state import INTERNET_IP
from .dataplane import NO_INTERNET
from .faults import BLACKHOLE

# Azure's words where the rule is the same, and EC2's for them (the hop names, the check).
_WORDS = (("azure:", "aws:"), ("Azure drops", "AWS drops"), ("IP forwarding is off", "its source/destination check is on"),
          ("→ VirtualAppliance", "→ ENI at"), ("VNet", "VPC"), ("owned by NIC", "owned by ENI"),
          ("Azure translates only NIC addresses", "AWS's NAT gateway translates only ENI addresses"),
          ("Internet route: translates", "NAT gateway: translates"))


def _aws(text: str) -> str:
    for a, b in _WORDS:
        text = text.replace(a, b)
    return text


class AwsRules(AzureRules):
    CLOUD = "aws"
    CLOUD_TITLE = "AWS"

    def _cloud_in(self, nic: Any, pkt: list[IPv4Address], w: Any) -> str:
        start = len(w.hops)
        try:
            return super()._cloud_in(nic, pkt, w)
        except _Dropped as exc:
            d = exc.drop
            raise _Dropped(replace(d, where=_aws(d.where), why=_aws(d.why), root=_aws(d.root))) from None
        finally:
            w.hops[start:] = [_aws(h) if h.startswith("azure") else h for h in w.hops[start:]]

    def _azure_to_internet(self, pkt: list[IPv4Address], w: Any, nic: Any) -> str:
        """EC2's internet: through the subnet's NAT gateway (an ENI's own addresses, translated),
        or its internet gateway (only the primary address a public IPv4 address is on, 1:1), or
        none (VPC user guide "Enable internet access for a VPC using an internet gateway", "NAT
        gateways"; docs/decisions/0031). Replies take the way their request came."""
        src, dst = pkt
        sub = self.state.cloud.subnets.get(nic.subnet)
        how = sub.internet if sub is not None else NO_INTERNET
        if w.reply or not self.state.internet or dst != INTERNET_IP or how == "nat-gateway":
            return super()._azure_to_internet(pkt, w, nic)
        host = self.host_by_nic.get(nic.name)
        who = host.name if host is not None else nic.owner
        if how == "internet-gateway":
            pub = next((p for p in self.state.cloud.public_ips if p.nic == nic.name), None)
            primary = host.ip if host is not None else min(nic.addresses)
            if pub is None:
                raise _Dropped(Drop("aws:internet", f"AWS's internet gateway translates only addresses with a public "
                                    f"IPv4 address and {who}'s ENI {nic.name} has none",
                                    f"give {who} a public IP (aws.public_ips) or route {nic.subnet} through a NAT "
                                    f"gateway (aws.internet.{nic.subnet}: nat-gateway)"))
            if src != primary:
                fwd = f"; {host.name} forwarded it without masquerading" if host is not None else ""
                fix = (f"masquerade on {host.name} (`egress: masquerade-outside-vnet`, `nestnet host apply`)"
                       if host is not None else "")
                raise _Dropped(Drop("aws:internet", f"AWS's internet gateway translates only {primary}, the address "
                                    f"{who}'s public IP is on, not {src}{fwd}", fix))
            return super()._azure_to_internet(pkt, w, nic)
        raise _Dropped(Drop(f"aws:{nic.subnet}", f"AWS drops {src} → {dst}: the route table of subnet {nic.subnet} "
                            "has no route to an internet or NAT gateway",
                            f"route {nic.subnet}'s 0.0.0.0/0 to a NAT gateway and say so in aws.internet.{nic.subnet}"))

    def _nic_fix(self, nic: Any) -> str:
        if self.state.cloud.owned_by_nic:
            return f"`nestnet aws apply` (the prefix or secondary address of ENI {nic.name} that holds the address)"
        return (f"`nestnet aws apply` or `aws ec2 modify-network-interface-attribute --network-interface-id "
                f"{nic.name} --no-source-dest-check`")

    def _dead_route(self, ur: Any, dst: IPv4Address) -> Drop:
        owner = next((h for h in self.state.hosts.values() if ur.prefix == h.block), None)
        eni = f"ENI {owner.nic} of {owner.name}" if owner is not None else "the host's ENI"
        why = ("its target ENI is gone: a blackhole" if ur.next_hop_ip == BLACKHOLE
               else f"it points to {ur.next_hop_ip}, which no ENI owns")
        return Drop(f"aws:{ur.name}", f"AWS drops {dst}: route {ur.name} matches it and {why}",
                    f"`nestnet aws apply` (route {ur.prefix} → {eni})")

    def _unowned(self, nic: Any, dst: IPv4Address) -> Drop:
        st = self.state.cloud
        where = f"aws:{nic.subnet}"
        covering = [r for r in st.user_routes if dst in r.prefix]
        sub = st.subnets.get(nic.subnet)
        if covering and sub is not None and not sub.route_table:
            fix = (f"associate subnet {nic.subnet} with route table {st.route_table} (`aws ec2 "
                   f"replace-route-table-association`), or name the table it uses in aws.route_tables and "
                   f"`nestnet aws apply`" if st.route_table else
                   f"name {nic.subnet}'s route table in aws.route_tables, then `nestnet aws apply`")
            return Drop(where, f"AWS drops {dst} from {nic.subnet}: no ENI owns it and the route table of subnet "
                               f"{nic.subnet} has no route for it", fix)
        owner = next((h for h in self.state.hosts.values() if dst in h.block), None)
        if owner is not None and st.owned_by_nic:
            return Drop(where, f"AWS drops {dst} from {nic.subnet}: no ENI owns it (ENI {owner.nic} has no prefix "
                               f"or address for it; {owner.name}'s block is {owner.block})",
                        f"`nestnet aws apply` (prefix {owner.block} on ENI {owner.nic})")
        if owner is not None:
            return Drop(where, f"AWS drops {dst} from {nic.subnet}: no ENI owns it and the route table has no "
                               f"route for {owner.name}'s block {owner.block}",
                        f"`nestnet aws apply` (route {owner.block} → ENI {owner.nic})")
        return Drop(where, f"AWS drops {dst} from {nic.subnet}: no ENI owns it and no route covers it", "")
