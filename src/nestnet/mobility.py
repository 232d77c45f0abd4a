"""VM mobility, pure: the shared guest gateway and /32 exceptions for VMs living outside their block.

A nested VM's address normally lies in its host's block, and the block's routes (one route in the
cloud, one on every host) deliver it. A VM that moved keeps its address: the Plan then carries a
*move* (an exception to the block) for it, which becomes

- a cloud route ``<prefix><vm>.32`` -> the new host (wins over the block's /28 by longest prefix),
- a /32 on every host: local delivery on the new host (``dev <bridge>``), and on every other host,
  the old one included, the same next hop as the new host's block (forward away),
- a firewall that judges the address where the VM lives (``local_prefixes``).

The guest needs no change when it moves if it uses the shared gateway (``guest_style: shared``):
one link-local address, the same on every host's nested bridge, with one MAC. See
docs/decisions/0013-vm-mobility.md.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, collapse_addresses
from typing import Iterable, NamedTuple

# Link-local: never routed, never a virtual network's address (clouds refuse 169.254.0.0/16 in
# address spaces), the same on every host - Calico's choice for pods. Not 169.254.169.254 (the
# clouds' instance metadata service).
SHARED_GATEWAY = IPv4Address("169.254.1.1")
# One MAC for the shared gateway on every host's (nestnet-made) bridge, so a guest's ARP entry
# stays right after a live migration (Calico gives every host-side veth ee:ee:ee:ee:ee:ee).
SHARED_GATEWAY_MAC = "02:00:a9:fe:01:01"

# Moves in flight are forwarded from the old host to the new one over VXLAN (UDP, which the cloud
# carries; sending the packet back to the cloud would loop until the route changes).
MOVE_TUNNEL = "nnmove0"
MOVE_VNI = 4242
MOVE_PORT = 4789  # IANA's VXLAN port
MOVE_PROTO = 202  # the in-flight /32 through the tunnel: not the reconciler's (201) to keep or drop
MOVE_PROTO_NAME = "nestnet-move"


class Move(NamedTuple):
    """A VM that lives on ``host`` while its address lies outside that host's block."""

    vm: str
    ip: IPv4Address
    host: str  # where it lives now
    owner: str | None  # the host whose block holds the address (None: no block holds it)

    def to_dict(self) -> dict[str, str | None]:
        return {"vm": self.vm, "ip": str(self.ip), "host": self.host, "block_of": self.owner}


def route_name(prefix: str, vm: str) -> str:
    """The cloud route's name of a move. Names in the spec never hold a '.', so this cannot collide
    with a host's ``<prefix><host>`` route (the cloud allows '.' inside route names)."""
    return f"{prefix}{vm}.32"


def moves(vms: Iterable[tuple[str, IPv4Address, str]], blocks: dict[str, IPv4Network]) -> tuple[Move, ...]:
    """The exceptions among ``(vm, ip, host)``: VMs whose address is outside their host's block."""
    out = []
    # plain ints: twice per VM on every load (ip in block is the same test, 3x slower)
    spans = {h: (int(b.network_address), int(b.broadcast_address)) for h, b in blocks.items()}
    for vm, ip, host in vms:
        lo, hi = spans[host]
        if lo <= int(ip) <= hi:
            continue
        owner = next((h for h, b in blocks.items() if ip in b), None)
        out.append(Move(vm, ip, host, owner))
    return tuple(out)


def local_prefixes(block: IPv4Network, away: Iterable[IPv4Address], here: Iterable[IPv4Address]) -> tuple[IPv4Network, ...]:
    """What lives on a host: its block without the addresses that moved away, plus those that
    moved in (the firewall judges these as the host's own)."""
    nets = [block]
    for ip in away:
        nets = [piece for n in nets for piece in (n.address_exclude(IPv4Network(ip)) if ip in n else (n,))]
    return tuple(collapse_addresses([*nets, *(IPv4Network(ip) for ip in here)]))


def tunnel_mac(ip: IPv4Address) -> str:
    """The move tunnel's MAC on the host whose address is ``ip`` (flannel-style unicast VXLAN:
    a neighbour entry and an FDB entry per destination, no flooding, no learning)."""
    b = ip.packed
    return f"02:6d:{b[0]:02x}:{b[1]:02x}:{b[2]:02x}:{b[3]:02x}"
