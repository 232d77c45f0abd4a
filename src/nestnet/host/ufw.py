"""The firewall for hosts that manage it with UFW (``firewall: ufw``). Pure text.

The same policy as nestnet's nftables table (nft.py), written as iptables-restore rules in two
marked blocks of ``/etc/ufw/before.rules``: nestnet's chains hooked into ``ufw-before-forward``
(an ACCEPT there is final, so UFW's ``default deny routed`` stays in force for everything else)
ahead of UFW's own, and, when masquerading, a ``*nat`` section (UFW's documented place for NAT). Only the text between
nestnet's markers is nestnet's; the rest of the file is left byte for byte.
"""

from __future__ import annotations

from ..plan import Host, Plan
from .nft import fabric_prefixes

BEGIN = "# BEGIN nestnet"
END = "# END nestnet"
BEFORE_RULES = "etc/ufw/before.rules"


def blocks(plan: Plan, host: Host) -> tuple[str, str]:
    """(nat section, filter rules) for ``host``, each between markers."""
    br, out, block = host.bridge, host.l3_dev, host.block
    fabric = fabric_prefixes(plan)
    f = [
        f"{BEGIN} forward rules (fabric {plan.name}, host {host.name}); `nestnet host apply` rewrites them",
        ":nestnet-spoof - [0:0]",
        ":nestnet-from-vms - [0:0]",
        ":nestnet-to-vms - [0:0]",
    ]
    if not host.bridge_has_uplink:
        f.append(f"-A ufw-before-forward -i {br} -j nestnet-spoof")
        f += [f"-A nestnet-spoof -s {plan.vms[v].ip}/32 -j RETURN" for v in host.vms]
        f.append("-A nestnet-spoof -j DROP")
        f.append(f"-A ufw-before-forward ! -i {br} -s {block} -j DROP")
    f += [
        f"-A ufw-before-forward -s {block} -j nestnet-from-vms",
        f"-A ufw-before-forward -d {block} -j nestnet-to-vms",
        "-A nestnet-from-vms -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        *(f"-A nestnet-from-vms -d {n} -j ACCEPT" for n in fabric),
    ]
    if host.masquerade != "none":
        f.append(f"-A nestnet-from-vms -o {out} -j ACCEPT")
    f += [
        "-A nestnet-from-vms -j DROP",
        "-A nestnet-to-vms -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        *(f"-A nestnet-to-vms -s {n} -j ACCEPT" for n in fabric),
        "-A nestnet-to-vms -j DROP",
        END,
    ]
    nat = ""
    if host.masquerade != "none":
        n = [f"{BEGIN} masquerade (fabric {plan.name}, host {host.name})", "*nat", ":POSTROUTING ACCEPT [0:0]"]
        if host.masquerade == "outside-vnet":
            n.append(":nestnet-masq - [0:0]")
            n.append(f"-A POSTROUTING -o {out} -s {block} -j nestnet-masq")
            n += [f"-A nestnet-masq -d {p} -j RETURN" for p in fabric]
            n.append("-A nestnet-masq -j MASQUERADE")
        else:
            n.append(f"-A POSTROUTING -o {out} -s {block} -j MASQUERADE")
        n += ["COMMIT", END]
        nat = "\n".join(n) + "\n"
    return nat, "\n".join(f) + "\n"


def strip(text: str) -> str:
    """``text`` without nestnet's blocks."""
    out: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        if line.startswith(BEGIN):
            inside = True
        elif inside and line.startswith(END):
            inside = False
        elif not inside:
            out.append(line)
    return "".join(out)


def splice(text: str, nat: str, filt: str) -> str:
    """``text`` (a before.rules) with nestnet's blocks: the nat section first, the filter rules
    right after ``*filter``'s chain declarations, ahead of UFW's own forward rules (the stock file
    accepts every forwarded ICMP echo request). Raises ValueError without a ``*filter`` section."""
    lines = strip(text).splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "*filter")
        commit = next(i for i in range(start, len(lines)) if lines[i].strip() == "COMMIT")
    except StopIteration:
        raise ValueError("no *filter section ending in COMMIT") from None
    decls = [i for i in range(start, commit) if lines[i].startswith(":")]
    lines.insert(decls[-1] + 1 if decls else start + 1, filt)
    if nat:
        lines.insert(start, nat)
    return "".join(lines)
