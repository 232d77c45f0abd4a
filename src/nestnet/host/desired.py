"""Desired and observed host state in one shape, and the pure diff between them.

``desired(plan, host)`` and ``diff(want, seen)`` do no I/O: the reconciler observes the kernel
and the file tree into ``Observed`` (observe.py), diffs, prints the changes and executes exactly
that list (execute.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from socket import inet_ntoa
from typing import Any, Mapping, NamedTuple

from ..errors import HostError
from ..firewall import Policy, policy
from ..mobility import MOVE_PROTO
from ..plan import ROUTE_PROTO, ROUTE_PROTO_NAME, Host, Plan
from . import dhcp, files, nft, ovsflows, ufw
from .rtnl import RT_TABLE_MAIN, KLink, KRoute, RouteOp

ALIAS = "nestnet"  # ifalias of links nestnet created: what `remove` may delete


@dataclass(frozen=True)
class Change:
    """One write. ``action`` is what execute.py runs; it is not part of the printed change."""

    kind: str  # link | addr | sysctl | route | flows | nft | file | ufw | service
    op: str  # add | set | replace | del
    key: str
    detail: str = ""
    action: Any = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "op": self.op, "key": self.key, "detail": self.detail}

    def __str__(self) -> str:
        return f"{self.kind} {self.op} {self.key}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Bridge:
    name: str
    type: str  # linux | ovs
    mac: str
    address: IPv4Address | None  # /32 on the bridge (subnet guest style)
    has_uplink: bool


class WantedKernelRoute(NamedTuple):
    dst: IPv4Network
    dev: str
    via: IPv4Address | None
    dst_s: str  # text forms, made once: files and changes both print every route
    via_s: str | None


def want_routes(host: Host) -> dict[tuple[int, int], WantedKernelRoute]:
    out = {}
    for r in host.routes:
        net = r.dst.network_address
        via_s = inet_ntoa(r.via.packed) if r.via else None
        out[(int(net), r.dst.prefixlen)] = WantedKernelRoute(r.dst, r.dev, r.via, f"{inet_ntoa(net.packed)}/{r.dst.prefixlen}", via_s)
    return out


@dataclass(frozen=True)
class Desired:
    plan: Plan
    host: Host
    bridge: Bridge
    routes: Mapping[tuple[int, int], WantedKernelRoute]  # by (network as int, prefix length)
    sysctl: Mapping[str, str]
    nft: Mapping[str, str]  # family -> table text; families not here must have no nestnet table
    files: Mapping[str, files.File]  # path relative to root -> content
    policy: Policy  # the firewall policy the nft tables / UFW rules are rendered from

    @property
    def dhcp_digest(self) -> str:
        return dhcp.digest(self.files[dhcp.CONF].content)


@dataclass(frozen=True)
class Observed:
    links: Mapping[str, KLink]
    routes: tuple[KRoute, ...]
    sysctl: Mapping[str, str | None]  # None: the knob does not exist (yet)
    nft_comments: Mapping[str, str | None]  # family -> comment of nestnet's table there (None: no table)
    files: Mapping[str, files.File | None]
    nft_rules: Mapping[str, int] = field(default_factory=dict)  # family -> rules in nestnet's table
    ovs_bridges: frozenset[str] = frozenset()  # read only on hosts with bridge_type ovs
    ovs_flow_cookies: tuple[int, ...] = ()  # of nestnet's flows on an OVS bridge holding the uplink
    ufw_rules: str | None = None  # <root>/etc/ufw/before.rules, None if absent
    ufw_active: bool = False  # UFW enabled on this very system (root is /): reload after a change
    dhcp: dhcp.Running | None = None  # nestnet's dnsmasq, when it runs
    # other base chains in this namespace, and UFW's chains (hook ""): (family, table, chain, hook, policy)
    foreign_chains: tuple[tuple[str, str, str, str, str], ...] = ()
    ufw_enabled: bool | None = None  # ENABLED= of <root>/etc/ufw/ufw.conf; None: no such file


def desired(plan: Plan, host: Host, extra_sysctl: Mapping[str, str] | None = None) -> Desired:
    br = Bridge(host.bridge, host.bridge_type, files.bridge_mac(host), host.bridge_address, host.bridge_has_uplink)
    sysctl = dict(host.sysctl)
    sysctl.update(extra_sysctl or {})
    pol = policy(plan, host)
    tables = nft.tables(plan, host, pol)
    routes = want_routes(host)
    return Desired(
        plan=plan,
        host=host,
        bridge=br,
        routes=routes,
        sysctl=sysctl,
        nft=tables,
        files=files.render(plan, host, sysctl, nft.ruleset(tables) if tables else None, routes.values()),
        policy=pol,
    )


def _route_detail(w: WantedKernelRoute) -> str:
    return (f"via {w.via_s} " if w.via_s else "") + f"dev {w.dev} proto {ROUTE_PROTO_NAME}"


def _kroute_str(r: KRoute) -> str:
    s = f"{r.net}" + (f" via {r.gateway}" if r.via else "") + (f" dev {r.dev}" if r.dev else "")
    s += f" proto {r.proto}"
    if r.table != RT_TABLE_MAIN:
        s += f" table {r.table}"
    if r.metric:
        s += f" metric {r.metric}"
    return s


def diff(want: Desired, seen: Observed, adopt: bool = False) -> list[Change]:
    """The changes that turn ``seen`` into ``want``, in execution order.

    Raises ``HostError`` for what nestnet must not fix on its own: a missing uplink, a foreign
    device where the bridge should be, a foreign route on a wanted destination (with ``adopt``:
    only one that sends the packet elsewhere; one with the same next hop is taken over).
    """
    h = want.host
    if h.uplink not in seen.links:
        raise HostError(f"host {h.name}: uplink {h.uplink!r} does not exist here (hosts[].uplink in the spec)")
    _refuse_foreign_firewall(want, seen)
    changes: list[Change] = []
    changes += _diff_links(want, seen)
    changes += _diff_sysctl(want.sysctl, seen.sysctl)
    changes += _diff_routes(want, seen, adopt)
    changes += _diff_flows(want, seen)
    changes += _diff_nft(want.nft, seen.nft_comments, seen.nft_rules)
    changes += diff_files(want.files, seen.files)
    changes += _diff_ufw(want, seen)
    changes += _diff_dhcp(want, seen)
    return changes


def foreign_drops(seen: Observed) -> list[str]:
    """Other base chains that drop what nestnet's table accepts: policy drop at the forward hook
    (routed traffic) or the input hook (the VMs' DHCP and DNS), in the families IPv4 meets."""
    return [f"{fam} {table} {chain} ({hook})" for fam, table, chain, hook, policy in seen.foreign_chains
            if fam in ("ip", "inet") and hook in ("forward", "input") and policy == "drop"]


def _refuse_foreign_firewall(want: Desired, seen: Observed) -> None:
    """nftables runs every base chain on a hook: an accept in nestnet's table does not stop a
    drop in another (docs/decisions/0001). Refused, not worked around: making it pass would mean
    rules in a firewall that is not nestnet's."""
    h = want.host
    if h.firewall != "nftables":
        return
    drops = foreign_drops(seen)
    if not drops:
        return
    ufw_on = any(fam == "ip" and table == "filter" and chain.startswith("ufw-") for fam, table, chain, *_ in seen.foreign_chains)
    if ufw_on:
        raise HostError(
            f"host {h.name}: UFW is active here and its policy drop ({', '.join(drops)}) drops the nested VMs' "
            "routed traffic, DHCP and DNS whatever nestnet's nftables table accepts; set `firewall: ufw` for this "
            "host (hosts[].firewall) so nestnet writes its rules into UFW's"
        )
    raise HostError(
        f"host {h.name}: another firewall's chain has policy drop ({', '.join(drops)}); it drops the nested VMs' "
        "routed traffic, DHCP and DNS whatever nestnet's nftables table accepts; make that chain accept them or "
        "its policy accept (nestnet does not edit another firewall's chains)"
    )


def _diff_dhcp(want: Desired, seen: Observed) -> list[Change]:
    """dnsmasq runs with the wanted config, once: started, or restarted after its config changed
    or when more than one serves it (a stray one is stopped)."""
    d = want.dhcp_digest
    run = seen.dhcp
    if run is not None and run.digest == d and not run.strays:
        return []
    op = "start" if run is None else "restart"
    detail = f"DHCP + DNS on {want.host.bridge}, config {d}"
    if run is not None and run.strays:
        detail += f"; stopping {len(run.pids)} that serve this config (pids {', '.join(map(str, run.pids))})"
    return [Change("service", op, dhcp.UNIT_NAME, detail, ("start", d))]


def _diff_links(want: Desired, seen: Observed) -> list[Change]:
    b = want.bridge
    h = want.host
    out: list[Change] = []
    link = seen.links.get(b.name)
    exists = link is not None and (b.name in seen.ovs_bridges if b.type == "ovs" else link.kind == "bridge")
    if link is not None and not exists:
        raise HostError(
            f"host {h.name}: {b.name!r} exists as a {link.kind or 'plain'} device, not a {b.type} bridge; "
            "rename the bridge in the spec (hosts[].bridge) or remove the device"
        )
    if b.has_uplink and link is None:
        # The bridge that holds the uplink belongs to whoever built it (HPE VME, netplan).
        raise HostError(f"host {h.name}: bridge {b.name!r} holding the uplink does not exist; create it first")
    if link is None:
        if b.type == "linux":
            act: tuple = ("ip", ["link", "add", "name", b.name, "address", b.mac, "type", "bridge", *_NO_BRNF],
                          ["link", "set", "dev", b.name, "alias", ALIAS])
        else:
            act = ("ovs", b.name, b.mac)
        out.append(Change("link", "add", b.name, f"{b.type} bridge address {b.mac}", act))
    elif not b.has_uplink:
        # A bridge nestnet made keeps its MAC fixed. One built by hand (no nestnet alias) keeps
        # the MAC it has: changing it under running guests strands their ARP entries.
        if link.mac != b.mac and link.alias == ALIAS:
            act = ("ip", ["link", "set", "dev", b.name, "address", b.mac]) if b.type == "linux" else ("ovs-mac", b.name, b.mac)
            out.append(Change("link", "set", b.name, f"address {b.mac}", act))
        if b.type == "linux" and link.nf_call_iptables:
            out.append(Change("link", "set", b.name, "nf_call_iptables 0",
                              ("ip", ["link", "set", "dev", b.name, "type", "bridge", *_NO_BRNF])))
    if link is None or not link.up:
        out.append(Change("link", "set", b.name, "up", ("ip", ["link", "set", "dev", b.name, "up"])))
    if b.address is not None and (link is None or b.address not in link.addrs):
        out.append(Change("addr", "add", f"{b.address}/32", f"dev {b.name}",
                          ("ip", ["address", "add", f"{b.address}/32", "dev", b.name])))
    return out


_NO_BRNF = ("nf_call_iptables", "0", "nf_call_ip6tables", "0", "nf_call_arptables", "0")


def _diff_flows(want: Desired, seen: Observed, remove: bool = False) -> list[Change]:
    b = want.bridge
    if b.type != "ovs" or not b.has_uplink:
        return []
    flows = [] if remove else ovsflows.flows(want.host)
    cookies = sorted(int(f.split(",", 1)[0].removeprefix("cookie="), 16) for f in flows)
    if sorted(seen.ovs_flow_cookies) == cookies:
        return []
    op = "del" if remove else "replace" if seen.ovs_flow_cookies else "add"
    return [Change("flows", op, f"ovs {b.name} {ovsflows.MATCH}", f"{len(flows)} L2 guard flows",
                   ("ovs-flows", b.name, ovsflows.bundle(flows)))]


def _diff_sysctl(want: Mapping[str, str], seen: Mapping[str, str | None]) -> list[Change]:
    return [
        Change("sysctl", "set", k, f"{seen.get(k)} -> {v}", (k, v))
        for k, v in want.items()
        if seen.get(k) != v
    ]


def _del(r: KRoute) -> Change:
    key = str(r.net) if r.table == RT_TABLE_MAIN else f"{r.net} table {r.table}"
    return Change("route", "del", key, _kroute_str(r), RouteOp("del", r.net, r.dev, r.gateway, r.proto, r.table, r.metric))


def _same_hop(r: KRoute, w: WantedKernelRoute) -> bool:
    return r.dev == w.dev and r.via == (int(w.via) if w.via else 0)


def _diff_routes(want: Desired, seen: Observed, adopt: bool = False) -> list[Change]:
    h = want.host
    wanted = want.routes
    mine: dict[tuple[int, int], KRoute] = {}
    dels: list[Change] = []
    adopted: list[Change] = []
    for r in seen.routes:
        key = (r.dst, r.plen)
        # MOVE_PROTO: a moved VM's /32 into the move tunnel (host/move.py); nestnet's too, and
        # replaced by the planned route once apply runs again (after the cloud's apply: docs/decisions/0013)
        if r.proto in (ROUTE_PROTO, MOVE_PROTO):
            if r.table == RT_TABLE_MAIN and key in wanted:
                mine[key] = r
            else:
                dels.append(_del(r))
        elif r.table == RT_TABLE_MAIN and key in wanted:
            w = wanted[key]
            if adopt and _same_hop(r, w):
                adopted += _adopt(r, w)
                mine[key] = KRoute(r.dst, r.plen, w.dev, r.via, ROUTE_PROTO, r.table, 0)  # after the adoption
                continue
            why = (
                "it sends the packets elsewhere, so --adopt does not take it over"
                if adopt else "run with --adopt to take over a route with the same next hop"
            )
            raise HostError(
                f"host {h.name}: route {_kroute_str(r)} is not nestnet's and conflicts with the "
                f"wanted {w.dst_s} {_route_detail(w)} ({why}); delete it or change the plan"
            )
    adds: list[Change] = adopted
    for key, w in wanted.items():
        r = mine.get(key)
        if r is not None and r.dev == w.dev and r.via == (int(w.via) if w.via else 0) and r.metric == 0:
            continue
        detail = _route_detail(w)
        if r is None:
            adds.append(Change("route", "add", w.dst_s, detail, RouteOp("add", w.dst, w.dev, w.via, ROUTE_PROTO)))
            continue
        was = f"{detail} (was {_kroute_str(r)})"
        if r.metric != 0:  # replace matches on metric: drop the odd one and add ours
            dels.append(_del(r))
            adds.append(Change("route", "add", w.dst_s, was, RouteOp("add", w.dst, w.dev, w.via, ROUTE_PROTO)))
        else:
            adds.append(Change("route", "replace", w.dst_s, was, RouteOp("replace", w.dst, w.dev, w.via, ROUTE_PROTO)))
    return dels + adds


def _adopt(r: KRoute, w: WantedKernelRoute) -> list[Change]:
    """Take a foreign route with the same next hop into nestnet's protocol, with no gap.

    ``RTM_NEWROUTE`` with ``NLM_F_REPLACE`` swaps the kernel's entry matching (table, prefix,
    metric) in one step. A foreign route with another metric is not matched by that: nestnet's
    (metric 0, preferred) goes in first and the foreign one goes after it.
    """
    detail = f"{_route_detail(w)} (adopted from {_kroute_str(r)})"
    if r.metric == 0:
        return [Change("route", "replace", w.dst_s, detail, RouteOp("replace", w.dst, w.dev, w.via, ROUTE_PROTO))]
    return [Change("route", "add", w.dst_s, detail, RouteOp("add", w.dst, w.dev, w.via, ROUTE_PROTO)), _del(r)]


def _diff_nft(
    tables: Mapping[str, str], seen: Mapping[str, str | None], rules: Mapping[str, int] | None = None
) -> list[Change]:
    have = {f: c for f, c in seen.items() if c is not None}
    key = ", ".join(f"table {f} {nft.TABLE}" for f in sorted(set(tables) | set(have)))
    if not tables:
        return [Change("nft", "del", key, "", nft.delete_ruleset())] if have else []
    c = nft.comment(dict(tables))
    # Same comment = same text loaded; same rule count = nobody added or deleted a rule since.
    if have == {f: c for f in tables} and all((rules or {}).get(f) == nft.rule_count(b) for f, b in tables.items()):
        return []
    return [Change("nft", "replace" if have else "add", key, c, nft.ruleset(dict(tables)))]


def diff_files(want: Mapping[str, files.File], seen: Mapping[str, files.File | None]) -> list[Change]:
    out: list[Change] = []
    for path, f in want.items():
        if seen.get(path) != f:
            out.append(Change("file", "add" if seen.get(path) is None else "replace", "/" + path, f.describe(), (path, f)))
    for path, f in seen.items():
        if f is not None and path not in want:
            out.append(Change("file", "del", "/" + path, "", (path, None)))
    return out


def _diff_ufw(want: Desired, seen: Observed, remove: bool = False) -> list[Change]:
    h = want.host
    text = seen.ufw_rules
    if text is None:
        if h.firewall == "ufw" and not remove:
            raise HostError(f"host {h.name}: firewall is ufw but /{ufw.BEFORE_RULES} does not exist; install UFW first")
        return []
    if h.firewall == "ufw" and not remove and seen.ufw_enabled is False:
        # `ufw reload` loads nothing while UFW is disabled; enabling it is the operator's call
        # (its default deny incoming can cut SSH): refused before anything is written
        raise HostError(
            f"host {h.name}: firewall is ufw but UFW is not enabled (ENABLED=no in /{ufw.CONF}), so nothing nestnet "
            "writes into its before.rules would be loaded; enable it (`ufw allow <ssh port>/tcp` then `ufw enable`) "
            "and run host apply again, or set `firewall: nftables`"
        )
    try:
        new = ufw.splice(text, *ufw.render_policy(want.policy, want.plan.name, ufw.tunnel_peers(want.plan, h))) if h.firewall == "ufw" and not remove else ufw.strip(text)
    except ValueError as exc:
        raise HostError(f"host {h.name}: /{ufw.BEFORE_RULES}: {exc}") from None
    if new == text:
        return []
    out = [Change("file", "set", "/" + ufw.BEFORE_RULES, "nestnet's blocks", (ufw.BEFORE_RULES, files.File(new)))]
    if seen.ufw_active:
        out.append(Change("ufw", "reload", "ufw", "load the changed before.rules", ("ufw", "reload")))
    return out


def removal(want: Desired, seen: Observed) -> list[Change]:
    """What ``remove`` does: every owned route, the table, every owned file, a bridge nestnet made.

    Sysctls stay as they are (their old values are unknown); without the sysctl.d file they
    revert at the next boot.
    """
    out = [Change("service", "stop", dhcp.UNIT_NAME, "and forget its leases", ("remove", None))] if seen.dhcp is not None else []
    out += [_del(r) for r in seen.routes if r.proto in (ROUTE_PROTO, MOVE_PROTO)]
    out += _diff_flows(want, seen, remove=True)
    out += _diff_nft({}, seen.nft_comments)
    b = want.bridge
    link = seen.links.get(b.name)
    if link is not None and link.alias == ALIAS and not b.has_uplink:
        act = ("ovs-del", b.name) if b.type == "ovs" else ("ip", ["link", "del", "dev", b.name])
        out.append(Change("link", "del", b.name, "", act))
    out += diff_files({}, seen.files)
    out += _diff_ufw(want, seen, remove=True)
    return out
