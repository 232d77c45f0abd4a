"""Read the current network namespace and the file tree into ``Observed``. Never writes."""

from __future__ import annotations

import json
import re
import subprocess
from ipaddress import IPv4Address
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import HostError
from . import files, nft, rtnl
from .model import Link, Observed

PROC_SYS = Path("/proc/sys")
BRIDGE_NF = ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables", "net.bridge.bridge-nf-call-arptables")


def run(argv: list[str], input: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, input=input)
    except FileNotFoundError as exc:
        raise HostError(f"{argv[0]} is not installed: {exc}") from None


def parse_links(data: list[dict]) -> dict[str, Link]:
    """``ip -d -j address show`` -> links by name (pure)."""
    out: dict[str, Link] = {}
    for d in data:
        info = d.get("linkinfo", {})
        addrs = frozenset(IPv4Address(a["local"]) for a in d.get("addr_info", []) if a.get("family") == "inet")
        nf = info.get("info_data", {}).get("nf_call_iptables") if info.get("info_kind") == "bridge" else None
        out[d["ifname"]] = Link(
            name=d["ifname"],
            kind=info.get("info_kind", ""),
            mac=d.get("address", ""),
            up="UP" in d.get("flags", []),
            alias=d.get("ifalias", ""),
            addrs=addrs,
            nf_call_iptables=nf,
        )
    return out


def links() -> dict[str, Link]:
    r = run(["ip", "-d", "-j", "address", "show"])
    if r.returncode != 0:
        raise HostError(f"ip address show: {r.stderr.strip()}")
    return parse_links(json.loads(r.stdout or "[]"))


def sysctl_path(key: str) -> Path:
    return PROC_SYS.joinpath(*files.sysctl_parts(key))


def sysctls(keys: Iterable[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for k in keys:
        try:
            out[k] = sysctl_path(k).read_text().strip()
        except FileNotFoundError:
            out[k] = None
    return out


def bridge_netfilter_sysctls() -> dict[str, str]:
    """br_netfilter, when loaded, sends bridged frames through the IPv4 forward hook of every
    table; nestnet turns that off (docs/decisions/0001)."""
    return {k: "0" for k in BRIDGE_NF if sysctl_path(k).exists()}


def nft_comment() -> str | None:
    """The comment of nestnet's table ("" if it has none), None if there is no table."""
    try:
        r = subprocess.run(["nft", "-t", "list", "table", nft.FAMILY, nft.TABLE], capture_output=True, text=True)
    except FileNotFoundError:
        return None  # no nft binary: nestnet cannot have loaded a table
    if r.returncode != 0:
        if "No such file or directory" in r.stderr:
            return None
        raise HostError(f"nft list table {nft.FAMILY} {nft.TABLE}: {r.stderr.strip()}")
    # nft 1.0.6 leaves table comments out of its JSON, so read the text.
    m = re.search(r'^\s*comment "([^"]*)"', r.stdout, re.M)
    return m.group(1) if m else ""


def routes() -> tuple[rtnl.KRoute, ...]:
    try:
        return tuple(rtnl.dump_routes())
    except OSError as exc:
        raise HostError(f"reading kernel routes: {exc}") from exc


def observe(root: Path, sysctl_keys: Iterable[str], want_files: Mapping[str, files.File]) -> Observed:
    return Observed(
        links=links(),
        routes=routes(),
        sysctl=sysctls(sysctl_keys),
        nft_comment=nft_comment(),
        files=files.read(root, want_files),
    )
