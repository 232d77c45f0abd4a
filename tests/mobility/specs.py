"""A three-host fabric with the shared guest gateway: the moving VM, a host to move to, and a
third host whose VM (with the mgmt endpoint) watches the move."""

from __future__ import annotations

import copy

MOBILE = {
    "version": 1,
    "name": "mobile",
    "azure": {"resource_group": "rg", "vnet": "vnet", "address_space": ["10.0.0.0/16"], "route_table": "rt"},
    "subnets": [
        {"name": "vm-subnet", "prefix": "10.0.1.0/24"},
        {"name": "mgmt-subnet", "prefix": "10.0.2.0/24"},
    ],
    "nested": {"pool": "10.0.1.128/25", "guest_style": "shared"},
    "hosts": [
        {"name": "kvm1", "ip": "10.0.1.10", "block": "10.0.1.128/28"},
        {"name": "kvm2", "ip": "10.0.1.11", "block": "10.0.1.144/28"},
        {"name": "kvm3", "ip": "10.0.1.12", "block": "10.0.1.160/28"},
    ],
    "vms": [
        {"name": "web1", "host": "kvm1", "ip": "10.0.1.130"},
        {"name": "web2", "host": "kvm2", "ip": "10.0.1.146"},
        {"name": "web3", "host": "kvm3", "ip": "10.0.1.162"},
    ],
    "endpoints": [{"name": "mgmt-vm", "ip": "10.0.2.5", "subnet": "mgmt-subnet"}],
}


def mobile(moved_to: str | None = None, **nested) -> dict:
    """The fabric; ``moved_to``: web1 lives on that host, keeping its address (an exception)."""
    spec = copy.deepcopy(MOBILE)
    spec["nested"].update(nested)
    if moved_to:
        spec["vms"][0]["host"] = moved_to
    return spec
