"""What every part of the emulator shares: resource types, ids, etags, ARM's error answers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

NET = "Microsoft.Network"
# Lower-case URL segment -> ARM's spelling of the type.
TYPES = {
    "virtualnetworks": "virtualNetworks",
    "networkinterfaces": "networkInterfaces",
    "routetables": "routeTables",
    "networksecuritygroups": "networkSecurityGroups",
    # what a NIC may reference (emulator/referenced.py)
    "publicipaddresses": "publicIPAddresses",
    "applicationsecuritygroups": "applicationSecurityGroups",
    "loadbalancers": "loadBalancers",
    "virtualnetworktaps": "virtualNetworkTaps",
}
# Children written through their parent (PUT/DELETE), by parent type; and those only read.
CHILDREN = {"virtualnetworks": "subnets", "routetables": "routes", "networksecuritygroups": "securityRules"}
READ_ONLY_CHILDREN = {"networkinterfaces": "ipConfigurations", "networksecuritygroups": "defaultSecurityRules"}
CHILD_SPELLING = {c.lower(): c for c in (*CHILDREN.values(), *READ_ONLY_CHILDREN.values())}
DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
STATE_FILE = "state.json"
API_VERSION = "2024-05-01"  # the version the emulator's answers follow (Location/Azure-AsyncOperation urls)


class ArmFailure(Exception):
    """An ARM error answer: status, code, message, optional details (becomes ``{"error": {...}}``)."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details
        self.headers = headers or {}

    def reply(self) -> "Reply":
        return Reply(self.status, error_body(self.code, self.message, self.details), dict(self.headers))


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        err["details"] = details
    return {"error": err}


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def key(rid: str) -> str:
    """ARM ids are case-insensitive: the store is keyed by the lower-case id."""
    return rid.lower()


def rid(sub: str, rg: str, rtype: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{NET}/{TYPES[rtype.lower()]}/{name}"


def parent_of(subnet_id: str) -> str:
    """The VNet id of a subnet id ('' when it is not one)."""
    return subnet_id.rsplit("/subnets/", 1)[0] if "/subnets/" in subnet_id else ""
