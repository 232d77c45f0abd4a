"""The SDN namespace (nn-<lab>.fabric): Azure's SDN emulated with Linux routing, proxy ARP and nftables.

``build(topo)`` runs once inside the SDN namespace: ports, gateways, system routes, the static
nft rules. ``program(topo, state)`` makes the parts that Azure's configuration decides (route
table, subnet associations, NIC IP forwarding) match a ``CloudState``: it observes, diffs and
changes only what differs, so a second call changes nothing. Call it from outside the namespace
with ``program_ns`` (it forks into the SDN namespace).
"""

from __future__ import annotations

from ipaddress import IPv4Network

from ...netns import run_in
from .plan import AZURE_DNS
from .lab import NSG_TABLE, PIP_TABLE, CloudState, SdnChanges, SdnConfig, RouteKey, desired, diff, system_routes, with_faults  # noqa: F401 - with desired: the lab fabric (nestnet.clouds.LabFabric)
from ...lab.ovs import tx_checksum_off
from ...lab.sysio import ip_batch, ip_json, nft, nft_json, write_sysctls
from ...lab.topology import (
    INET_LINK_FABRIC,
    INET_LINK_PREFIX,
    INET_PORT,
    INTERNET,
    ROUTE_TABLE_ID,
    SINK,
    Topology,
)

RULE_PREF = 100
PREFIX_PROTO = 77  # the main table's routes that deliver NIC prefixes carry it (observe finds them by it)
TABLE = "fabric"  # table inet fabric + table netdev fabricmac

# Every port answers ARP for anything it can route (proxy_arp), also back out the same port
# (proxy_arp_pvlan: a host asking for its own nested block), without the 0.8 s random delay.
PORT_SYSCTLS = {"proxy_arp": "1", "proxy_arp_pvlan": "1", "rp_filter": "0", "send_redirects": "0"}


def _q(s: str) -> str:
    return f'"{s}"'


def render_nft(topo: Topology) -> str:
    """The fabric's static nft rules; the ``ipfwd`` set is filled by ``program``."""
    ports = [n.port for n in topo.nics]
    nics = ", ".join(_q(p) for p in ports)
    nic_ips = ", ".join(f"{_q(n.port)} . {ip}" for n in topo.nics for ip in n.ips)
    addrs = ", ".join(str(ip) for n in topo.nics for ip in n.ips)
    macs = ", ".join(f"{_q(n.port)} . {n.mac}" for n in topo.nics)
    resolvers = ", ".join(str(ip) for ip in topo.resolvers)
    return f"""\
table inet {TABLE}
delete table inet {TABLE}
table netdev {TABLE}mac
delete table netdev {TABLE}mac
table inet {TABLE} {{
	set nics {{ type ifname; elements = {{ {nics} }} }}
	set nic_ips {{ type ifname . ipv4_addr; elements = {{ {nic_ips} }} }}
	set nic_addrs {{ type ipv4_addr; elements = {{ {addrs} }} }}
	set ipfwd {{ type ifname; }}
	set prefix_ips {{ type ifname . ipv4_addr; }}
	set prefix_addrs {{ type ipv4_addr; }}
	counter srcchk {{ }}
	counter dstchk {{ }}
	counter inetdrop {{ }}
	counter inetin {{ }}
	counter dnsdrop {{ }}
	chain input {{
		type filter hook input priority filter; policy accept;
		# Azure DNS answers only sources the arriving NIC owns (ASSUMPTION, docs/decisions/0011)
		ip daddr {{ {resolvers} }} iifname != @nics counter name dnsdrop drop
		ip daddr {{ {resolvers} }} iifname . ip saddr != @nic_ips iifname . ip saddr != @prefix_ips counter name dnsdrop drop
	}}
	chain forward {{
		type filter hook forward priority filter; policy accept;
		# source check: a NIC sends only from its own IPs, unless IP forwarding is on
		iifname @nics iifname != @ipfwd iifname . ip saddr != @nic_ips iifname . ip saddr != @prefix_ips counter name srcchk drop
		# destination check: a NIC receives only for its own IPs, unless IP forwarding is on
		oifname @nics oifname != @ipfwd oifname . ip daddr != @nic_ips oifname . ip daddr != @prefix_ips counter name dstchk drop
		# default outbound access translates NIC-owned addresses only
		# (a NIC prefix's addresses as a secondary address's, as the model: ASSUMPTION, decision 0028)
		oifname "{INET_PORT}" ip saddr != @nic_addrs ip saddr != @prefix_addrs counter name inetdrop drop
		# what a public IP's DNAT let in (lab/azure.py: render_public_ips); else replies only
		iifname "{INET_PORT}" ct status dnat accept
		iifname "{INET_PORT}" ct state != {{ established, related }} counter name inetin drop
	}}
	chain postrouting {{
		type nat hook postrouting priority srcnat; policy accept;
		oifname "{INET_PORT}" ip saddr @nic_addrs snat ip to {INET_LINK_FABRIC}
		oifname "{INET_PORT}" ip saddr @prefix_addrs snat ip to {INET_LINK_FABRIC}
	}}
}}
table netdev {TABLE}mac {{
	set nic_macs {{ type ifname . ether_addr; elements = {{ {macs} }} }}
	counter macdrop {{ }}
	chain ingress {{
		type filter hook ingress devices = {{ {nics} }} priority -500; policy accept;
		# no MAC learning in Azure: a frame whose source MAC is not the NIC's is dropped
		iifname . ether saddr != @nic_macs counter name macdrop drop
	}}
}}
"""


def _route_line(verb: str, r: RouteKey) -> str:
    dst, kind, via, dev = r
    if kind == "blackhole":
        return f"route {verb} blackhole {dst} table {ROUTE_TABLE_ID}"
    # onlink: the next hop is a NIC's /32 in the main table, not a prefix of this table
    hop = f" via {via} onlink" if via else ""
    return f"route {verb} {dst}{hop} dev {dev} table {ROUTE_TABLE_ID}"


def build(topo: Topology) -> None:
    """Inside the SDN namespace: ports, gateways, system routes and the static rules."""
    defaults = {f"net.ipv4.conf.{k}.{s}": v for k in ("all", "default") for s, v in PORT_SYSCTLS.items()}
    write_sysctls({"net.ipv4.ip_forward": "1", **defaults})
    lines = [f"addr add {gw}/32 dev lo" for gw in topo.gateways]
    lines += [f"addr add {ip}/32 dev lo" for ip in topo.resolvers]  # the cloud DNS's addresses (lab/dns.py)
    lines += [f"link add {SINK} type ifb", f"link set {SINK} up"]
    for n in topo.nics:
        lines += [
            f"link add {n.port} type veth peer name {n.ifname} address {n.mac} netns {topo.ns(n.node)}",
            f"link set {n.port} up",
        ]
    lines += [
        f"link add {INET_PORT} type veth peer name eth0 netns {topo.ns(INTERNET)}",
        f"addr add {INET_LINK_FABRIC}/{INET_LINK_PREFIX} dev {INET_PORT}",
        f"link set {INET_PORT} up",
    ]
    # Azure's system routes in the main table: what a subnet without the route table sees.
    for dst, kind, via, dev in system_routes(topo).values():
        if kind == "blackhole":  # next hop None
            lines.append(f"route add blackhole {dst}")
            continue
        lines.append(f"route add {dst}" + (f" via {via}" if via else "") + f" dev {dev}")
    ip_batch(lines)
    port_sysctls = {f"net.ipv4.conf.{n.port}.{s}": v for n in topo.nics for s, v in PORT_SYSCTLS.items()}
    port_sysctls |= {f"net.ipv4.neigh.{n.port}.proxy_delay": "0" for n in topo.nics}
    write_sysctls(port_sysctls)
    for n in topo.nics:
        if n.ovs:
            tx_checksum_off(n.port)
    nft(render_nft(topo))


def replug(topo: Topology, nodes: list[str], state: CloudState) -> None:
    """Inside the SDN namespace: the NICs of ``nodes`` plugged anew into fresh namespaces of
    theirs (the old ones, and with them both ends of each veth, are gone): the ports, their
    sysctls and routes; then the rules that name them and Azure's configuration as ``state`` says."""
    ports = [x for x in topo.nics if x.node in nodes]
    names = {n.port for n in ports}
    lines = []
    for n in ports:
        lines += [
            f"link add {n.port} type veth peer name {n.ifname} address {n.mac} netns {topo.ns(n.node)}",
            f"link set {n.port} up",
        ]
    for dst, kind, via, dev in system_routes(topo).values():
        if dev in names and kind != "blackhole":
            lines.append(f"route replace {dst}" + (f" via {via}" if via else "") + f" dev {dev}")
    ip_batch(lines)
    ps = {f"net.ipv4.conf.{n.port}.{k}": v for n in ports for k, v in PORT_SYSCTLS.items()}
    write_sysctls({**ps, **{f"net.ipv4.neigh.{n.port}.proxy_delay": "0" for n in ports}})
    # a netdev chain's hook on a device that went away is gone with it: load the rules again,
    # then refill what program() keeps in them (the IP forwarding set) and the routes via the ports
    nft(render_nft(topo))
    program(topo, state)


def observe() -> SdnConfig:
    """Inside the SDN namespace: the dynamic configuration as it is now."""
    table = set()
    # "table all" then filter: showing a table that holds no route yet is an error.
    for r in ip_json("route", "show", "table", "all"):
        if r.get("table") != str(ROUTE_TABLE_ID):
            continue
        dst = r["dst"]
        dst = "0.0.0.0/0" if dst == "default" else str(IPv4Network(dst))
        if r.get("type") == "blackhole":
            table.add((dst, "blackhole", None, None))
        else:
            table.add((dst, "unicast", r.get("gateway"), r.get("dev")))
    rules = {
        r["iif"]
        for r in ip_json("rule", "show")
        if r.get("priority") == RULE_PREF and r.get("table") == str(ROUTE_TABLE_ID) and "iif" in r
    }
    ipfwd: set[str] = set()
    for item in nft_json("list", "set", "inet", TABLE, "ipfwd")["nftables"]:
        if "set" in item:
            ipfwd.update(item["set"].get("elem", []))
    prefix_ips: set[tuple[str, str]] = set()
    for item in nft_json("list", "set", "inet", TABLE, "prefix_ips")["nftables"]:
        if "set" in item:
            for e in item["set"].get("elem", []):
                port, addr = e["concat"]
                prefix_ips.add((port, addr))
    delivered = {
        (str(IPv4Network(r["dst"])), "unicast", r.get("gateway"), r.get("dev"))
        for r in ip_json("route", "show", "table", "main", "proto", str(PREFIX_PROTO))
    }
    tables = {(t.get("table", {}).get("family"), t.get("table", {}).get("name"))
              for t in nft_json("list", "tables")["nftables"]}
    sig, pip_sig = (_signature(family, name) if (family, name) in tables else ""
                    for family, name in (("inet", NSG_TABLE), ("ip", PIP_TABLE)))
    return SdnConfig(frozenset(table), frozenset(rules), frozenset(ipfwd), sig, pip_sig=pip_sig,
                     delivered=frozenset(delivered), prefix_ips=frozenset(prefix_ips))


def _signature(family: str, name: str) -> str:
    """The signature chain's name (``sig_<hash>``) of a table nestnet loads whole."""
    for item in nft_json("list", "table", family, name)["nftables"]:
        chain = item.get("chain", {}).get("name", "")
        if chain.startswith("sig_"):
            return chain[4:]
    return ""


def apply_changes(ch: SdnChanges) -> None:
    lines = [_route_line("del", r) for r in ch.del_routes]
    lines += [_route_line("add", r) for r in ch.add_routes]
    lines += [f"route del {d} table main proto {PREFIX_PROTO}" for d, _, _, _ in ch.del_delivered]
    lines += [f"route add {d} via {via} onlink dev {dev} table main proto {PREFIX_PROTO}"
              for d, _, via, dev in ch.add_delivered]
    lines += [f"rule del pref {RULE_PREF} iif {p} lookup {ROUTE_TABLE_ID}" for p in ch.del_rules]
    lines += [f"rule add pref {RULE_PREF} iif {p} lookup {ROUTE_TABLE_ID}" for p in ch.add_rules]
    ip_batch(lines)
    cmds = []
    if ch.del_ipfwd:
        cmds.append(f"delete element inet {TABLE} ipfwd {{ {', '.join(_q(p) for p in ch.del_ipfwd)} }}")
    if ch.add_ipfwd:
        cmds.append(f"add element inet {TABLE} ipfwd {{ {', '.join(_q(p) for p in ch.add_ipfwd)} }}")
    if ch.del_prefix_ips:  # prefix_addrs follows prefix_ips (one NIC per address: ARM refuses overlaps)
        cmds.append(f"delete element inet {TABLE} prefix_ips {{ {', '.join(f'{_q(p)} . {a}' for p, a in ch.del_prefix_ips)} }}")
        cmds.append(f"delete element inet {TABLE} prefix_addrs {{ {', '.join(a for _, a in ch.del_prefix_ips)} }}")
    if ch.add_prefix_ips:
        cmds.append(f"add element inet {TABLE} prefix_ips {{ {', '.join(f'{_q(p)} . {a}' for p, a in ch.add_prefix_ips)} }}")
        cmds.append(f"add element inet {TABLE} prefix_addrs {{ {', '.join(a for _, a in ch.add_prefix_ips)} }}")
    if ch.nsg_text is not None:  # the whole NSG table in one transaction (conntrack entries stay)
        cmds.append(f"table inet {NSG_TABLE}\ndelete table inet {NSG_TABLE}\n{ch.nsg_text}")
    if ch.pip_text is not None:
        cmds.append(f"table ip {PIP_TABLE}\ndelete table ip {PIP_TABLE}\n{ch.pip_text}")
    if cmds:
        nft("\n".join(cmds) + "\n")


def program(topo: Topology, state: CloudState) -> SdnChanges:
    """Inside the SDN namespace: make it match ``state``; returns what changed."""
    ch = diff(desired(topo, state), observe())
    if ch:
        apply_changes(ch)
    return ch


def program_ns(topo: Topology, state: CloudState) -> SdnChanges:
    return run_in(topo.sdn_ns, program, topo, state)
