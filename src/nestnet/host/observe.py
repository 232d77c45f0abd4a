"""Read the current network namespace and the file tree into ``Observed``. Never writes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Iterable, Mapping

from .. import sysctl
from ..errors import HostError
from . import dhcp, files, nft, ovsflows, rtnl, ufw
from .desired import Observed
from .rtnl import KLink

BRIDGE_NF = ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables", "net.bridge.bridge-nf-call-arptables")


def run(argv: list[str], input: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, input=input)
    except FileNotFoundError as exc:
        raise HostError(f"{argv[0]} is not installed: {exc}") from None


def links() -> dict[str, KLink]:
    try:
        return {k.name: k for k in rtnl.dump_links()}
    except OSError as exc:
        raise HostError(f"reading links: {exc}") from exc


def sysctls(keys: Iterable[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for k in keys:
        try:
            out[k] = sysctl.path(k).read_text().strip()
        except FileNotFoundError:
            out[k] = None
    return out


def bridge_netfilter_sysctls() -> dict[str, str]:
    """br_netfilter, when loaded, sends bridged frames through the IPv4 forward hook of every
    table; nestnet turns that off (docs/decisions/0001)."""
    return {k: "0" for k in BRIDGE_NF if sysctl.path(k).exists()}


def _root_hint(exc: OSError) -> str:
    """As `lab up` says it: reading the kernel's firewall needs root (netlink answers EPERM)."""
    import errno

    return " (this needs root: run it with sudo)" if exc.errno in (errno.EPERM, errno.EACCES) else ""


def nft_comments() -> dict[str, str | None]:
    """family -> comment of nestnet's table there ("" if it has none, None if no table)."""
    try:
        return {f: rtnl.nft_table_comment(f, nft.TABLE) for f in nft.FAMILIES}
    except OSError as exc:
        raise HostError(f"reading nestnet's nftables tables: {exc}{_root_hint(exc)}") from exc


def routes() -> tuple[rtnl.KRoute, ...]:
    try:
        return tuple(rtnl.dump_routes())
    except OSError as exc:
        raise HostError(f"reading kernel routes: {exc}{_root_hint(exc)}") from exc


def nft_rules(comments: Mapping[str, str | None]) -> dict[str, int]:
    try:
        return {f: rtnl.nft_rule_count(f, nft.TABLE) for f, c in comments.items() if c is not None}
    except OSError as exc:
        raise HostError(f"reading nestnet's nftables rules: {exc}{_root_hint(exc)}") from exc


def ovs_bridges() -> frozenset[str]:
    r = run(["ovs-vsctl", "--timeout=5", "list-br"])
    if r.returncode != 0:
        raise HostError(f"ovs-vsctl list-br: {r.stderr.strip()} (is Open vSwitch running?)")
    return frozenset(r.stdout.split())


def ovs_flow_cookies(bridge: str) -> tuple[int, ...]:
    r = run(["ovs-ofctl", "dump-flows", bridge, ovsflows.MATCH, "--no-stats"])
    if r.returncode != 0:
        raise HostError(f"ovs-ofctl dump-flows {bridge}: {r.stderr.strip()}")
    return tuple(ovsflows.parse_cookies(r.stdout))


def observe(
    root: Path, sysctl_keys: Iterable[str], want_files: Mapping[str, files.File], ovs: bool = False, flows_on: str | None = None
) -> Observed:
    bridges = ovs_bridges() if ovs else frozenset()
    return Observed(
        links=links(),
        routes=routes(),
        sysctl=sysctls(sysctl_keys),
        nft_comments=(comments := nft_comments()),
        nft_rules=nft_rules(comments),
        files=files.read(root, want_files),
        ovs_bridges=bridges,
        ovs_flow_cookies=ovs_flow_cookies(flows_on) if flows_on in bridges else (),
        ufw_rules=_read(root / ufw.BEFORE_RULES),
        ufw_active=root.resolve() == Path("/") and bool(ufw_on := ufw.enabled(_read(root / ufw.CONF))),
        ufw_enabled=ufw_on if root.resolve() == Path("/") else ufw.enabled(_read(root / ufw.CONF)),
        dhcp=dhcp.observe(root),
        foreign_chains=foreign_chains(),
    )


def foreign_chains() -> tuple[tuple[str, str, str, str, str], ...]:
    """(family, table, chain, hook, policy) of every base chain here that is not nestnet's, and
    of UFW's chains (hook "")."""
    r = run(["nft", "-j", "list", "chains"])
    if r.returncode != 0:
        raise HostError(f"nft list chains: {r.stderr.strip()}")
    out = []
    for item in json.loads(r.stdout or '{"nftables": []}')["nftables"]:
        c = item.get("chain")
        if c and c["table"] != nft.TABLE and ("hook" in c or c["name"].startswith("ufw-")):
            # UFW's own (regular) chains come along with an empty hook: how UFW is recognised
            out.append((c["family"], c["table"], c["name"], c.get("hook", ""), c.get("policy", "")))
    return tuple(out)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
