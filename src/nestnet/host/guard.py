"""Never lock out SSH: refuse a firewall change that could drop the current SSH session.

nestnet's inet table hooks only forward and postrouting, and its bridge table (L2 guards) drops
only ARP on input/output, so neither can touch a session that ends on this host; this guard keeps
that true as the rule sets change: an input or output chain must accept the session's port
before any rule that could drop it.
The session is taken from ``SSH_CONNECTION`` (client ip, port, server ip, port); without one,
the spec's ``ssh_port`` is protected.
"""

from __future__ import annotations

import re

from ..errors import HostError
from .desired import Change, Desired

_CHAIN = re.compile(r"chain (\S+) \{\n\s*type filter hook (input|output) [^;]*;\s*policy (\w+);(.*?)\n\s*\}", re.S)


def ssh_port(default: int) -> int:
    from ..env import get

    return get("SSH_CONNECTION") or default


def drops_ssh(ruleset: str, port: int) -> str | None:
    """The chain of ``ruleset`` that could drop TCP ``port`` to or from this host, if any (pure)."""
    for name, hook, policy, body in _CHAIN.findall(ruleset):
        direction = "dport" if hook == "input" else "sport"
        for line in body.strip().splitlines():
            line = line.strip()
            if re.fullmatch(rf"tcp {direction} (\{{[^}}]*\b{port}\b[^}}]*\}}|{port}) (counter )?accept", line):
                break
            if (line.endswith("drop") or line.endswith("reject")) and "arp" not in line.split():
                return name  # anything but an ARP-only match might hit the session's packets
        else:
            if policy != "accept":
                return name
    return None


def refuse_lockout(want: Desired, changes: list[Change]) -> None:
    port = ssh_port(want.policy.ssh_port)
    for c in changes:
        if c.kind == "nft" and isinstance(c.action, str):
            chain = drops_ssh(c.action, port)
            if chain is not None:
                raise HostError(
                    f"refusing to load nestnet's nftables tables: chain {chain!r} could drop the SSH session on "
                    f"port {port}; nothing was changed"
                )
