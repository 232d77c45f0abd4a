"""nestnet's firewall as text: the nftables table (default) and the UFW equivalent. Pure.

Policy (docs/decisions/0001): nestnet's forward chain has policy *accept* and drops only traffic
from or to its own nested block. In nftables every base chain on a hook sees the packet; a drop
anywhere is final but an accept only ends that chain, so a ``policy drop`` here would silently
drop other tables' routed traffic (Docker, libvirt NAT, ...). What nestnet judges, it judges
completely (nestnet.firewall): from the block only to the routed prefixes (VNet address space +
nested pool + blocks), established/related, and out of the uplink when masquerading; to the block
only from them or established/related; everything else of the block's is dropped.
"""

from __future__ import annotations

import hashlib

from ..firewall import FAMILIES, FAMILY, TABLE, Policy, Rule, policy
from ..plan import Host, Plan

def _set(items) -> str:
    items = [str(i) for i in items]
    return "{ " + ", ".join(items) + " }" if items else ""


def _local(p: Policy) -> str:
    """The block, or an anonymous set when VMs moved in or out (docs/decisions/0013)."""
    return "{ " + ", ".join(map(str, p.local)) + " }" if p.here else str(p.block)


# The policy's address sets as the table's named sets ("fabric" is the set's name on hosts:
# renaming it would reload every host's table for nothing).
_SETS = {"vms": "@vms", "routed": "@fabric"}


def _rule(p: Policy, r: Rule) -> str:
    """One policy rule as an nft rule line."""
    m: list[str] = []
    if r.iif:
        m.append(f'iifname {"!= " if r.iif_not else ""}"{p.dev(r.iif)}"')
    if r.oif:
        m.append(f'oifname "{p.dev(r.oif)}"')
    if r.ipv6:
        m.append("meta nfproto ipv6")
    for field, nets, neg in (("saddr", r.src, r.src_not), ("daddr", r.dst, False)):
        if nets:
            m.append(f"ip {field} {'!= ' if neg else ''}{_local(p) if nets == 'block' else _SETS[nets]}")
    if r.established:
        m.append("ct state established,related")
    if r.dnat:
        m.append("ct status dnat")
    # drops are counted (`nft list` shows what the policy stopped); accepts are not
    return " ".join([*m, "counter drop" if r.verdict == "drop" else "accept"])


def render_policy(p: Policy) -> str:
    """The ``table inet nestnet`` text of a policy, without the identifying comment."""
    lines = [
        f"table {FAMILY} {TABLE} {{",
        "\tset fabric {",
        "\t\ttype ipv4_addr; flags interval;",
        f"\t\telements = {_set(p.routed)}",
        "\t}",
        "\tset vms {",
        "\t\ttype ipv4_addr;",
    ]
    if p.vms:
        lines.append(f"\t\telements = {_set(sorted(p.vms))}")
    lines += [
        "\t}",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        *(f"\t\t{_rule(p, r)}" for r in p.guards),
        *(f"\t\tip {'saddr' if c.enter == 'src' else 'daddr'} {_local(p)} jump {c.name}" for c in p.chains),
        "\t}",
    ]
    for c in p.chains:
        lines += [f"\tchain {c.name} {{", *(f"\t\t{_rule(p, r)}" for r in c.rules), "\t}"]
    if p.forwards or p.exposes:
        # nat mode's port forwards: the host's address and port -> the VM's (to_vms accepts the
        # VNet as source; replies go back through conntrack); exposed ports: the NIC's address
        # (the cloud's public IP is 1:1 NAT to it) -> the VM's, accepted in to_vms as DNATed
        lines += [
            "\tchain prerouting {",
            "\t\ttype nat hook prerouting priority dstnat; policy accept;",
            *(f'\t\tiifname "{p.out}" ip daddr {dst} {proto} dport {hp} dnat ip to {ip}:{port}'
              for dst, rules in ((p.host_ip, p.forwards), (p.nic_ip, p.exposes)) for proto, hp, ip, port in rules),
            "\t}",
        ]
    if p.masquerade != "none":
        except_fabric = " ip daddr != @fabric" if p.masquerade == "outside-vnet" else ""
        lines += [
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            f'\t\toifname "{p.out}" ip saddr {_local(p)}{except_fabric} masquerade',
            "\t}",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_table(plan: Plan, host: Host) -> str:
    """The table's body, without the identifying comment (see ``ruleset``)."""
    return render_policy(policy(plan, host))


def render_bridge(plan: Plan, host: Host) -> str:
    """L2 guards for a Linux bridge that holds the uplink (DESIGN 3.4): nested VM ports and the
    uplink never meet at L2 (the host routes between them), and no ARP about nested addresses
    crosses the uplink (the cloud answers every ARP and would take the traffic)."""
    up, block = host.uplink, host.block
    return "\n".join([
        f"table bridge {TABLE} {{",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        f'\t\tiifname "{up}" counter drop',
        f'\t\toifname "{up}" counter drop',
        "\t}",
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy accept;",
        f'\t\tiifname "{up}" arp saddr ip {block} counter drop',
        "\t}",
        "\tchain output {",
        "\t\ttype filter hook output priority filter; policy accept;",
        f'\t\toifname "{up}" arp daddr ip {block} counter drop',
        f'\t\toifname "{up}" arp saddr ip {block} counter drop',
        "\t}",
        "}",
    ]) + "\n"


def tables(plan: Plan, host: Host, pol: Policy | None = None) -> dict[str, str]:
    """family -> table text, for the tables this host needs (``pol``: its policy, if made already)."""
    out = {}
    if host.firewall == "nftables":
        out[FAMILY] = render_policy(pol or policy(plan, host))
    if host.bridge_has_uplink and host.bridge_type == "linux":
        out["bridge"] = render_bridge(plan, host)
    return out


def rule_count(body: str) -> int:
    """Rules in a table text as rendered here (lines of chain blocks, bar their 'type' line)."""
    n, in_chain = 0, False
    for line in body.splitlines():
        t = line.strip()
        if t.startswith("chain "):
            in_chain = True
        elif t == "}":
            in_chain = False
        elif in_chain and t and not t.startswith("type "):
            n += 1
    return n


def digest(bodies: dict[str, str]) -> str:
    return hashlib.sha256("".join(bodies[f] for f in sorted(bodies)).encode()).hexdigest()[:16]


def comment(bodies: dict[str, str]) -> str:
    """The comment every nestnet table gets: how ``diff`` compares without parsing rules."""
    return f"nestnet {digest(bodies)}"


def ruleset(bodies: dict[str, str]) -> str:
    """One ``nft -f`` transaction: delete every nestnet table there is (create-then-delete never
    fails), then load the wanted ones, each carrying the comment. Atomic: all or nothing."""
    c = comment(bodies)
    out = [delete_ruleset()]
    for fam in FAMILIES:
        if fam in bodies:
            head = f"table {fam} {TABLE} {{\n"
            out.append(bodies[fam].replace(head, f'{head}\tcomment "{c}"\n', 1))
    return "".join(out)


def delete_ruleset() -> str:
    return "".join(f"table {fam} {TABLE} {{}}\ndelete table {fam} {TABLE}\n" for fam in FAMILIES)
