"""Azure facts shared by the pure core and the ARM emulator (no I/O).

Reserved addresses: "Azure reserves the first four and last IP address for a total of five IP
addresses within each subnet" (Microsoft Learn, Virtual Network FAQ, "Are there any restrictions on
using IP addresses within these subnets?"; DESIGN.md 3.5).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

RESERVED_AT_START = 4  # network address, default gateway, two for Azure DNS

# "Prefix on NIC": an ip configuration with privateIPAddressPrefixLength takes a whole block. The
# schema allows 1-128, but the service takes only /28 on a non-primary configuration (azure-cli
# pull request #30837, Feb 2025: "Must not be a primary config; Must be a /28 prefix (Verify on the
# service side)"); REST example stable/2025-03-01/examples/NetworkInterfaceCreate.json. See
# docs/decisions/0028-nic-prefix-mode.md.
NIC_PREFIX_LEN = 28


def reserved_addresses(prefix: IPv4Network) -> tuple[IPv4Address, ...]:
    """Azure keeps the first four addresses and the last one of every subnet."""
    base = int(prefix.network_address)
    return tuple(IPv4Address(base + i) for i in range(RESERVED_AT_START)) + (prefix.broadcast_address,)


def is_reserved(address: IPv4Address, prefix: IPv4Network) -> bool:
    """True when ``address`` (inside ``prefix``) is one Azure keeps for itself."""
    return int(address) - int(prefix.network_address) < RESERVED_AT_START or address == prefix.broadcast_address


def first_assignable(prefix: IPv4Network) -> int:
    """The lowest address Azure hands out dynamically (as an int)."""
    return int(prefix.network_address) + RESERVED_AT_START


# Azure's default system routes with next hop None (Microsoft Learn, "Virtual network traffic
# routing" -> "Default": "Azure adds more default system routes for different Azure
# capabilities" ... 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 and 100.64.0.0/10 -> None: "traffic
# routed to the None next hop type is dropped"). Inside the VNet's own space the VNet route wins
# (longest prefix; on a tie Azure turns the route into a VNet route).
NONE_ROUTES = tuple(IPv4Network(p) for p in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"))


def none_routes(address_space: tuple[IPv4Network, ...]) -> tuple[IPv4Network, ...]:
    """The None routes a VNet with ``address_space`` keeps: those its own space does not cover
    (a VNet prefix inside one, such as 10.0.0.0/16, wins by longest prefix and needs no exception)."""
    return tuple(n for n in NONE_ROUTES if not any(n.subnet_of(s) for s in address_space))


def name_key(name: str) -> str:
    """The form in which Azure compares a resource or child name: without case.

    Microsoft Learn, "Naming rules and restrictions for Azure resources": "Azure resource names
    are case-insensitive unless noted otherwise" (route tables, routes, NICs, ip configurations,
    subnets: none is noted otherwise); DNS names are case-insensitive too (RFC 4343), and the
    private DNS zone's record sets are DNS names. Validation (two spec names that would be one
    Azure or DNS name) and the Azure diff (which of Azure's names is which of the plan's) both
    compare through this one function, so they cannot disagree.
    """
    return name.lower()


def own_public_ip_name(route_prefix: str, host: str) -> str:
    """The public IP nestnet creates and owns for a host whose VMs expose ports (the spec names no
    ``hosts[].public_ip``): named like its routes, tagged like its route table."""
    return f"{route_prefix}{host}-pip"
