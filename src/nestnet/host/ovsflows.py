"""L2 guards on an OVS bridge that holds the uplink (HPE VME's ``mgmt``, as in the seed). Pure.

The cloud answers every ARP request with its own MAC (DESIGN 3.4): an answer for a nested address
would take that VM's traffic. So frames from the uplink reach only the host's own port (LOCAL),
never a nested VM's, and ARP from the uplink that claims a nested address is dropped. Because
NORMAL never sees the uplink's frames, it never learns a MAC behind it, so VM unicast cannot be
switched to the cloud either. The flows carry a cookie: 0x6e6e (nestnet) in the top 16 bits and a
digest of the flow set below, which is how ``diff`` compares them and ``remove`` finds them.
"""

from __future__ import annotations

import hashlib

from ..plan import Host

OWNER = 0x6E6E << 48
MASK = 0xFFFF << 48
MATCH = f"cookie={OWNER:#x}/{MASK:#x}"


def flows(host: Host) -> list[str]:
    up = host.uplink
    body = [
        f"priority=410,arp,in_port={up},arp_spa={host.block},actions=drop",
        f"priority=400,in_port={up},actions=LOCAL",
    ]
    return [f"cookie={cookie(body):#x},{f}" for f in body]


def cookie(body: list[str]) -> int:
    return OWNER | int(hashlib.sha256("\n".join(body).encode()).hexdigest()[:12], 16)


def parse_cookies(dump: str) -> list[int]:
    """Cookies of the flows in ``ovs-ofctl dump-flows`` output (pure)."""
    return [int(line.split("cookie=", 1)[1].split(",", 1)[0], 16) for line in dump.splitlines() if "cookie=" in line]


def bundle(want: list[str]) -> str:
    """``ovs-ofctl --bundle add-flows`` input: drop nestnet's flows, add ``want``; atomic."""
    return "".join([f"delete {MATCH}\n", *(f"add {f}\n" for f in want)])
