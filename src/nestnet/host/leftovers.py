"""What the seed's manual procedure leaves on a host, and how to retire it (read-only).

Once nestnet owns a host, these duplicate or fight it: routes persisted by hand in netplan YAML
or systemd-networkd files (networkd's ``ManageForeignRoutes`` and netplan re-create them with
proto boot on the next ``netplan apply``), UFW's routed policy left at ACCEPT (``ufw default
allow routed``: every forwarded packet passes, whatever nestnet's firewall judges), NAT rules
saved by iptables-persistent, and the seed's ``net.ipv4.ip_forward=1`` line in
/etc/sysctl.conf. ``find(root, plan, host)`` reads files under ``root`` only and returns one
line per leftover with the way to retire it.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Network, ip_network
from pathlib import Path

from ..plan import Plan


def _read(p: Path) -> str | None:
    try:
        return p.read_text(errors="replace")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None


def _nets(text: str, pattern: str) -> list[IPv4Network]:
    out = []
    for m in re.finditer(pattern, text, re.M):
        try:
            out.append(ip_network(m.group(1), strict=False))
        except ValueError:
            continue
    return out


def find(root: str | Path, plan: Plan, host: str) -> list[str]:
    root = Path(root)
    h = plan.hosts[host]
    wanted = {r.dst for r in h.routes}
    out: list[str] = []
    for p in sorted((root / "etc/netplan").glob("*.yaml")):
        text = _read(p) or ""
        hits = sorted({n for n in _nets(text, r"^\s*-?\s*to:\s*\"?([0-9./]+)") if n in wanted}, key=str)
        if hits:
            out.append(f"/{p.relative_to(root)} persists {', '.join(map(str, hits))} by hand: delete those routes "
                       "there (nestnet's networkd drop-in persists them with its protocol), then `netplan generate`")
    for p in sorted((root / "etc/systemd/network").glob("*.network")):
        if "nestnet" in p.name:
            continue
        text = _read(p) or ""
        hits = sorted({n for n in _nets(text, r"^\s*Destination\s*=\s*([0-9./]+)") if n in wanted}, key=str)
        if hits:
            out.append(f"/{p.relative_to(root)} persists {', '.join(map(str, hits))} by hand: delete those [Route] "
                       "sections (nestnet's drop-in persists them with its protocol)")
    ufw = _read(root / "etc/default/ufw") or ""
    if re.search(r'^\s*DEFAULT_FORWARD_POLICY\s*=\s*"?ACCEPT"?', ufw, re.M):
        out.append("/etc/default/ufw: DEFAULT_FORWARD_POLICY=\"ACCEPT\" (`ufw default allow routed`) forwards everything; "
                   "nestnet's firewall forwards exactly the fabric's traffic: run `ufw default deny routed` "
                   "(UFW active) or set DEFAULT_FORWARD_POLICY=\"DROP\"")
    rules = _read(root / "etc/iptables/rules.v4") or ""
    nat = [ln.strip() for ln in rules.splitlines() if ln.startswith("-A ") and ("MASQUERADE" in ln or "FORWARD" in ln)]
    if nat:
        out.append(f"/etc/iptables/rules.v4 (iptables-persistent) holds {len(nat)} NAT/forward rule(s) by hand "
                   f"({nat[0]}{' ...' if len(nat) > 1 else ''}): nestnet's table does the masquerade and the "
                   "forwarding; delete them there and live (`iptables -t nat -D POSTROUTING ...`), then "
                   "`netfilter-persistent save`")
    conf = _read(root / "etc/sysctl.conf") or ""
    lines = [ln.strip() for ln in conf.splitlines() if re.match(r"^\s*net\.ipv4\.ip_forward\s*=", ln)]
    if lines:
        out.append(f"/etc/sysctl.conf: {lines[0]!r} from the manual set-up; /etc/sysctl.d/60-nestnet.conf sets "
                   "forwarding now: delete the line")
    return out
