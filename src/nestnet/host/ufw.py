"""The firewall for hosts that manage it with UFW (``firewall: ufw``). Pure text.

The same policy as nestnet's nftables table (nft.py), written as iptables-restore rules in two
marked blocks of ``/etc/ufw/before.rules``: nestnet's chains hooked into ``ufw-before-forward``
(an ACCEPT there is final, so UFW's ``default deny routed`` stays in force for everything else)
ahead of UFW's own, and, when masquerading, a ``*nat`` section (UFW's documented place for NAT). Only the text between
nestnet's markers is nestnet's; the rest of the file is left byte for byte.
"""

from __future__ import annotations

from ..firewall import UFW_HOOK, UFW_INPUT, UFW_MASQ, UFW_SPOOF, Policy, Rule, policy, ufw_chain
from ..mobility import MOVE_PORT
from ..plan import Host, Plan

BEGIN = "# BEGIN nestnet"
END = "# END nestnet"
BEFORE_RULES = "etc/ufw/before.rules"
CONF = "etc/ufw/ufw.conf"


def enabled(conf: str | None) -> bool | None:
    """``ENABLED=yes`` in a ufw.conf text (UFW starts at boot and is on); None without the file."""
    if conf is None:
        return None
    for line in conf.splitlines():
        key, _, value = line.strip().partition("=")
        if key == "ENABLED":
            return value.strip().strip("'\"").lower() == "yes"
    return False


def _rules(p: Policy, chain: str, r: Rule) -> list[str]:
    """One policy rule as ``-A`` lines of ``chain`` (iptables has no sets: a rule per prefix)."""
    if r.ipv6:
        return []  # before.rules is IPv4 (before6.rules is UFW's IPv6 file)
    m = []
    if r.iif:
        m.append(f"{'! ' if r.iif_not else ''}-i {p.dev(r.iif)}")
    if r.oif:
        m.append(f"-o {p.dev(r.oif)}")
    if r.established:
        m.append("-m conntrack --ctstate RELATED,ESTABLISHED")
    if r.dnat:
        m.append("-m conntrack --ctstatus DNAT")
    target = "ACCEPT" if r.verdict == "accept" else "DROP"
    if r.src == "vms" and r.src_not:  # not one of the VMs: a chain of RETURNs, then the verdict
        return [f"-A {chain} {' '.join(m)} -j {UFW_SPOOF}"]
    for field, nets in (("-s", r.src), ("-d", r.dst)):
        if nets:  # block or routed: networks
            return [f"-A {chain} {' '.join([*m, f'{field} {n}'])} -j {target}" for n in p.nets(nets)]
    return [f"-A {chain} {' '.join([*m, f'-j {target}'])}"]


def render_policy(p: Policy, fabric_name: str, tunnel_from: tuple[str, ...] = ()) -> tuple[str, str]:
    """(nat section, filter rules) of a policy, each between markers; ``tunnel_from``: the other
    hosts whose move tunnel (VXLAN, host/move.py) this host receives."""
    chains = p.chains
    f = [
        f"{BEGIN} forward rules (fabric {fabric_name}, host {p.host}); `nestnet host apply` rewrites them",
        f":{UFW_SPOOF} - [0:0]",
        *(f":{ufw_chain(c.name)} - [0:0]" for c in chains),
    ]
    for r in p.guards:
        f += _rules(p, UFW_HOOK, r)
        if r.src == "vms" and r.src_not:
            f += [f"-A {UFW_SPOOF} -s {ip}/32 -j RETURN" for ip in p.vms]
            f.append(f"-A {UFW_SPOOF} -j {'DROP' if r.verdict == 'drop' else 'ACCEPT'}")
    f += [f"-A {UFW_HOOK} {'-s' if c.enter == 'src' else '-d'} {n} -j {ufw_chain(c.name)}" for c in chains for n in p.local]
    for c in chains:
        for r in c.rules:
            f += _rules(p, ufw_chain(c.name), r)
    # DHCP and DNS the host serves its VMs (docs/decisions/0011): UFW denies incoming otherwise
    f += [
        f"-A {UFW_INPUT} -i {p.bridge}{f' -d {dst}' if dst else ''} -p {proto} --dport {port} -j ACCEPT"
        for proto, port, dst in p.services_in
    ]
    # the move tunnel from the other hosts (migration_hook): UFW denies incoming otherwise, and a
    # live-migrated guest's traffic was dropped here until the cloud's route changed (seen in the lab)
    f += [f"-A {UFW_INPUT} -i {p.out} -s {src} -p udp --dport {MOVE_PORT} -j ACCEPT" for src in tunnel_from]
    f.append(END)
    nat = ""
    if p.masquerade != "none" or p.forwards or p.exposes:
        n = [f"{BEGIN} masquerade (fabric {fabric_name}, host {p.host})", "*nat", ":POSTROUTING ACCEPT [0:0]"]
        if p.forwards or p.exposes:
            n.append(":PREROUTING ACCEPT [0:0]")
            n += [f"-A PREROUTING -i {p.out} -d {dst} -p {proto} --dport {hp} -j DNAT --to-destination {ip}:{port}"
                  for dst, rules in ((p.host_ip, p.forwards), (p.nic_ip, p.exposes)) for proto, hp, ip, port in rules]
        if p.masquerade == "outside-vnet":
            n.append(f":{UFW_MASQ} - [0:0]")
            n += [f"-A POSTROUTING -o {p.out} -s {b} -j {UFW_MASQ}" for b in p.local]
            n += [f"-A {UFW_MASQ} -d {net} -j RETURN" for net in p.routed]
            n.append(f"-A {UFW_MASQ} -j MASQUERADE")
        elif p.masquerade == "all":
            n += [f"-A POSTROUTING -o {p.out} -s {b} -j MASQUERADE" for b in p.local]
        n += ["COMMIT", END]
        nat = "\n".join(n) + "\n"
    return nat, "\n".join(f) + "\n"


def blocks(plan: Plan, host: Host) -> tuple[str, str]:
    """(nat section, filter rules) for ``host``, each between markers."""
    return render_policy(policy(plan, host), plan.name, tunnel_peers(plan, host))


def tunnel_peers(plan: Plan, host: Host) -> tuple[str, ...]:
    """The hosts whose move tunnel ``host`` may receive: every other one, with the libvirt hook on."""
    return tuple(str(h.ip) for h in plan.hosts.values() if h.name != host.name) if host.migration_hook else ()


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
