"""The host reconciler's pure diff as data, no root: tests/host/cases/<case>/ holds

    spec.yaml       a fabric (the host to program is named in observed.yaml)
    observed.yaml   the host's kernel and file state as ``observe`` would report it
    before.rules    (optional) UFW's /etc/ufw/before.rules as found on the host
    expected.txt    the changes ``nestnet host diff`` prints, one a line, in execution order
                    (or one line ``HostError: ...`` when nestnet must refuse)

observed.yaml (every key optional):

    host: h0
    adopt: false              # nestnet host apply --adopt
    base: applied | bare      # applied: what `host apply` left (a second run must change nothing);
                              # bare: only the uplink exists (the default)
    links: {NAME: {kind, mac, up, alias, addrs, nf_call_iptables} | null}   # over the base
    routes_removed: [DST, ...]                    # from the base
    routes: [{dst, dev, via, proto, table, metric}, ...]   # added to the base; proto: nestnet | NUMBER
    sysctl: {KEY: VALUE | null}                   # over the base
    nft: {FAMILY: COMMENT | null}                 # over the base's comments
    nft_rules: {FAMILY: COUNT}                    # over the base's rule counts
    files: {PATH: CONTENT | null}                 # over the base's files

Regenerate after an intended change with NESTNET_REGEN=1, then review the diff.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import yaml

from nestnet.errors import HostError
from nestnet.host import desired, dhcp, files, nft, ovsflows, ufw
from nestnet.host.rtnl import RT_TABLE_MAIN, KLink, KRoute
from nestnet.plan import ROUTE_PROTO, load_plan

CASES_DIR = Path(__file__).parent / "cases"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "observed.yaml").exists())


def applied(want: desired.Desired, ufw_text: str | None) -> desired.Observed:
    """What the kernel and the file tree report once ``host apply`` made ``want`` real."""
    h, b = want.host, want.bridge
    links = {h.uplink: KLink(h.uplink, "veth", "", True, "", frozenset({h.ip}), None)}
    if b.name != h.uplink:
        addrs = frozenset({b.address} if b.address else ()) | (frozenset({h.ip}) if b.has_uplink else frozenset())
        links[b.name] = KLink(b.name, "bridge" if b.type == "linux" else "openvswitch", b.mac, True,
                              "" if b.has_uplink else desired.ALIAS, addrs, 0 if b.type == "linux" else None)
    routes = tuple(
        KRoute(int(w.dst.network_address), w.dst.prefixlen, w.dev, int(w.via) if w.via else 0, ROUTE_PROTO,
               RT_TABLE_MAIN, 0)
        for w in want.routes.values()
    )
    ovs = b.type == "ovs"
    return desired.Observed(
        links=links,
        routes=routes,
        sysctl=dict(want.sysctl),
        nft_comments={f: nft.comment(dict(want.nft)) if f in want.nft else None for f in nft.FAMILIES},
        files=dict(want.files),
        nft_rules={f: nft.rule_count(body) for f, body in want.nft.items()},
        ovs_bridges=frozenset({b.name}) if ovs else frozenset(),
        ovs_flow_cookies=tuple(int(f.split(",", 1)[0].removeprefix("cookie="), 16) for f in ovsflows.flows(h))
        if ovs and b.has_uplink else (),
        ufw_rules=ufw.splice(ufw_text, *ufw.render_policy(want.policy, want.plan.name))
        if ufw_text is not None and h.firewall == "ufw" else ufw_text,
        dhcp=dhcp.Running(4242, want.dhcp_digest),  # its dnsmasq runs with the wanted config
    )


def bare(want: desired.Desired, ufw_text: str | None) -> desired.Observed:
    h = want.host
    uplink = KLink(h.uplink, "veth", "", True, "", frozenset({h.ip}), None)
    links = {h.uplink: uplink}
    if want.bridge.has_uplink:  # a bridge holding the uplink is the operator's: it exists already
        b = want.bridge
        links[b.name] = KLink(b.name, "bridge" if b.type == "linux" else "openvswitch", "02:00:00:00:00:01", True,
                              "", frozenset({h.ip}), 1 if b.type == "linux" else None)
    return desired.Observed(
        links=links, routes=(), sysctl={}, nft_comments={f: None for f in nft.FAMILIES}, files={},
        ovs_bridges=frozenset({want.bridge.name}) if want.bridge.type == "ovs" and want.bridge.has_uplink else frozenset(),
        ufw_rules=ufw_text,
    )


def _link(name: str, d: dict) -> KLink:
    return KLink(name, d.get("kind", ""), d.get("mac", ""), d.get("up", True), d.get("alias", ""),
                 frozenset(IPv4Address(a) for a in d.get("addrs", ())), d.get("nf_call_iptables"))


def _route(d: dict) -> KRoute:
    net = IPv4Network(d["dst"])
    proto = ROUTE_PROTO if d.get("proto", "nestnet") == "nestnet" else int(d["proto"])
    via = int(IPv4Address(d["via"])) if d.get("via") else 0
    return KRoute(int(net.network_address), net.prefixlen, d["dev"], via, proto, d.get("table", RT_TABLE_MAIN),
                  d.get("metric", 0))


def observed(want: desired.Desired, data: dict, ufw_text: str | None) -> desired.Observed:
    seen = (applied if data.get("base") == "applied" else bare)(want, ufw_text)
    links = dict(seen.links)
    for name, d in (data.get("links") or {}).items():
        if d is None:
            links.pop(name, None)
        else:
            links[name] = _link(name, d)
    gone = {IPv4Network(d) for d in data.get("routes_removed", ())}
    routes = tuple(r for r in seen.routes if r.net not in gone) + tuple(_route(d) for d in data.get("routes", ()))
    return replace(
        seen,
        links=links,
        routes=routes,
        sysctl={**seen.sysctl, **(data.get("sysctl") or {})},
        nft_comments={**seen.nft_comments, **(data.get("nft") or {})},
        nft_rules={**seen.nft_rules, **(data.get("nft_rules") or {})},
        files={**seen.files, **{p: None if c is None else files.File(c) for p, c in (data.get("files") or {}).items()}},
    )


def run_case(case: Path, tmp: Path) -> str:
    shutil.copy(case / "spec.yaml", tmp / "spec.yaml")
    plan = load_plan(tmp / "spec.yaml")
    data = yaml.safe_load((case / "observed.yaml").read_text()) or {}
    host = plan.hosts[data.get("host", next(iter(plan.hosts)))]
    rules = case / "before.rules"
    want = desired.desired(plan, host)
    seen = observed(want, data, rules.read_text() if rules.exists() else None)
    try:
        changes = desired.diff(want, seen, adopt=data.get("adopt", False))
    except HostError as exc:
        return f"HostError: {exc}\n"
    return "".join(f"{c}\n" for c in changes)


@pytest.mark.parametrize("case", CASES)
def test_case(case: str, tmp_path: Path) -> None:
    got = run_case(CASES_DIR / case, tmp_path)
    path = CASES_DIR / case / "expected.txt"
    if os.environ.get("NESTNET_REGEN"):
        path.write_text(got)
    assert path.exists(), f"{path} missing: run with NESTNET_REGEN=1 and review"
    assert got == path.read_text()


@pytest.mark.parametrize("case", [c for c in CASES if "applied" in c])
def test_applied_changes_nothing(case: str, tmp_path: Path) -> None:
    """Cases named *applied* are what `host apply` leaves: the second run changes nothing."""
    assert run_case(CASES_DIR / case, tmp_path) == ""
