"""TEMPORARY stand-in for ``nestnet.host.apply`` until the host reconciler lands (then deleted).

Configures the current namespace as the reference prototype's up.sh does: nested bridge, the
plan's routes (protocol nestnet), sysctls, masquerade in ``table inet nestnet``. Same signature
as the real reconciler, so switching is one import.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import LabError
from ..plan import ROUTE_PROTO, Plan
from .sysio import ip_batch, ip_json, nft, write_sysctls


def apply(plan: Plan, host_name: str, root: str | Path = "/", dry_run: bool = False) -> list[str]:
    h = plan.hosts[host_name]
    if h.bridge_has_uplink or h.bridge_type != "linux":
        raise LabError(f"host {h.name}: the lab's host shim handles linux bridges without the uplink only")
    b = h.ip.packed
    have = {link["ifname"] for link in ip_json("link", "show")}
    lines = [] if h.bridge in have else [f"link add {h.bridge} type bridge"]
    lines += [
        f"link set {h.bridge} address 02:01:{b[0]:02x}:{b[1]:02x}:{b[2]:02x}:{b[3]:02x}",
        f"link set {h.bridge} up",
    ]
    if h.bridge_address:
        lines.append(f"addr replace {h.bridge_address}/32 dev {h.bridge}")
    for r in h.routes:
        via = f" via {r.via}" if r.via else ""
        lines.append(f"route replace {r.dst}{via} dev {r.dev} proto {ROUTE_PROTO}")
    space = ", ".join(str(s) for s in plan.address_space)
    match = {"outside-vnet": f"ip saddr {h.block} ip daddr != {{ {space} }} ", "all": f"ip saddr {h.block} "}
    rules = f"{match[h.masquerade]}masquerade" if h.masquerade in match else ""
    changes = [*lines, f"nft masquerade: {rules or 'none'}"]
    if dry_run:
        return changes
    ip_batch(lines)
    write_sysctls(dict(h.sysctl))
    nft(
        "table inet nestnet\ndelete table inet nestnet\n"
        "table inet nestnet {\n chain postrouting {\n  type nat hook postrouting priority srcnat; policy accept;\n"
        f"  {rules}\n }}\n}}\n"
    )
    return changes
