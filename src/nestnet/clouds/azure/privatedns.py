"""Nested VMs' names in an Azure Private DNS zone (``azure.private_dns_zone``): one A record set per
VM, kept by ``nestnet azure apply`` through ``azure-mgmt-privatedns``.

Ownership is the record set's metadata ``nestnet: <fabric name>`` (record sets carry metadata, not
tags): nestnet creates, updates and deletes only record sets with it. A record set of a VM's name
without it is someone else's: nestnet refuses to touch it and says so. Writes are guarded by
ETags (``If-Match`` to update or delete what was read, ``If-None-Match: *`` to create), so a
record set another writer created or changed in between is never overwritten (412).

The zone itself (and its link to the VNet, which makes Azure DNS answer from it) is the user's,
as the VNet is: Terraform or ``az network private-dns zone create``.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any, Iterable

from .facts import name_key
from .errors import AzureError
from .arm import ArmClient, _converted, _StaticToken
from .diff import Change

OWNER_KEY = "nestnet"  # metadata key; its value is the fabric's name
TTL = 300
KIND = "dns_record"


def records(plan: Any) -> dict[str, IPv4Address]:
    """Record set name (lower case: DNS names are) -> address, one per nested VM."""
    return {name_key(v.name): v.ip for v in plan.vms.values()} if plan.azure.private_dns_zone else {}


def body(plan: Any, ip: IPv4Address) -> dict[str, Any]:
    return {"properties": {"ttl": TTL, "metadata": {OWNER_KEY: plan.name}, "aRecords": [{"ipv4Address": str(ip)}]}}


def owned(rs: dict[str, Any], fabric: str) -> bool:
    meta = (rs.get("properties") or {}).get("metadata") or {}
    return any(k.lower() == OWNER_KEY and v == fabric for k, v in meta.items())


def _ips(rs: dict[str, Any]) -> list[str]:
    props = rs.get("properties") or {}
    recs = props.get("aRecords") or props.get("a_records") or []
    return sorted(str(r.get("ipv4Address") or r.get("ipv4_address")) for r in recs)


def diff(plan: Any, seen: Iterable[dict[str, Any]]) -> list[Change]:
    """Changes that make the zone hold the plan's records (pure). ``seen``: the zone's A record sets."""
    zone = plan.azure.private_dns_zone
    want = records(plan)
    have = {name_key(str(rs["name"])): rs for rs in seen}
    out: list[Change] = []
    for name, ip in want.items():
        rs = have.get(name)
        after = {"zone": zone, "ip": str(ip)}
        if rs is None:
            out.append(Change("create", KIND, name, None, after))
        elif not owned(rs, plan.name):
            raise AzureError(
                f"private DNS zone {zone}: record set {name!r} (A {', '.join(_ips(rs)) or '-'}) is not nestnet's "
                f"(no metadata {OWNER_KEY}={plan.name}); nestnet leaves it alone: delete or rename it, or rename VM {name!r}"
            )
        elif _ips(rs) != [str(ip)] or (rs.get("properties") or {}).get("ttl") != TTL:
            out.append(Change("update", KIND, name, {"zone": zone, "ip": ", ".join(_ips(rs)), "etag": rs.get("etag")}, after))
    for name, rs in sorted(have.items()):
        if name not in want and owned(rs, plan.name):
            out.append(Change("delete", KIND, name, {"zone": zone, "ip": ", ".join(_ips(rs)), "etag": rs.get("etag")}, None))
    return out


class DnsClient:
    """The seam to Microsoft.Network/privateDnsZones (the SDK imported on first use)."""

    def __init__(self, arm: ArmClient):
        self.settings = arm.settings
        self.rg = arm.rg
        self._sdk: Any = None

    @property
    def sdk(self) -> Any:
        if self._sdk is None:
            from azure.mgmt.privatedns import PrivateDnsManagementClient

            s = self.settings
            if s.token:
                credential: Any = _StaticToken(s.token)
            else:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential(**({"authority": s.authority_host} if s.authority_host else {}))
            self._sdk = PrivateDnsManagementClient(
                credential, s.subscription_id, base_url=s.endpoint,
                credential_scopes=[f"{s.endpoint}/.default"], connection_verify=s.ca_bundle or True,
            )
        return self._sdk

    def list_a(self, zone: str) -> list[dict[str, Any]]:
        with _converted(f"list A record sets of private DNS zone {zone!r} in resource group {self.rg!r}") as box:
            box.value = [_rest(rs) for rs in self.sdk.record_sets.list_by_type(self.rg, zone, "A")]
        return box.value

    def put_a(self, zone: str, name: str, doc: dict[str, Any], etag: str | None) -> None:
        from azure.core import MatchConditions

        kw: dict[str, Any] = {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {
            "match_condition": MatchConditions.IfMissing}
        with _converted(f"PUT A record set {name!r} in private DNS zone {zone!r}"):
            self.sdk.record_sets.create_or_update(self.rg, zone, "A", name, doc, **kw)

    def delete_a(self, zone: str, name: str, etag: str | None) -> None:
        from azure.core import MatchConditions

        kw: dict[str, Any] = {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {}
        with _converted(f"DELETE A record set {name!r} in private DNS zone {zone!r}"):
            self.sdk.record_sets.delete(self.rg, zone, "A", name, **kw)


def _rest(rs: Any) -> dict[str, Any]:
    """An SDK record set as REST JSON (``as_dict`` of the 2.x models is already that shape)."""
    d = rs.as_dict() if hasattr(rs, "as_dict") else dict(rs)
    return d


def plan_changes(arm: ArmClient, plan: Any) -> list[Change]:
    zone = plan.azure.private_dns_zone
    if not zone:
        return []
    return diff(plan, DnsClient(arm).list_a(zone))


def apply(arm: ArmClient, plan_name: str, changes: Iterable[Change]) -> list[Change]:
    """Execute the ``dns_record`` changes among ``changes``; returns those applied."""
    todo = [c for c in changes if c.kind == KIND]
    if not todo:
        return []
    client = DnsClient(arm)
    for c in todo:
        if c.action == "delete":
            assert c.before is not None
            client.delete_a(c.before["zone"], c.name, c.before.get("etag"))
        else:
            assert c.after is not None
            doc = {"properties": {"ttl": TTL, "metadata": {OWNER_KEY: plan_name},
                                  "aRecords": [{"ipv4Address": c.after["ip"]}]}}
            client.put_a(c.after["zone"], c.name, doc, (c.before or {}).get("etag"))
    return todo


# --- exports: the same records for Terraform and the az CLI ------------------------------------

def terraform(plan: Any) -> str:
    """``azurerm_private_dns_a_record`` per nested VM (azurerm writes a DNS record's ``tags`` as its
    metadata: the ownership mark ``nestnet azure apply`` looks for)."""
    from .export import hcl_string as q
    from .export import tf_ident

    zone = plan.azure.private_dns_zone
    if not zone:
        return ""
    used: set[str] = set()
    lines = [f"# The nested VMs' names in private DNS zone {zone} (the zone and its VNet link are yours).", ""]
    for name, ip in records(plan).items():
        lines += [
            f'resource "azurerm_private_dns_a_record" {q(tf_ident("dns_" + name, used))} {{',
            f"  name                = {q(name)}",
            f"  zone_name           = {q(zone)}",
            f"  resource_group_name = {q(plan.azure.resource_group)}",
            f"  ttl                 = {TTL}",
            f"  records             = [{q(str(ip))}]",
            f"  tags                = {{ {q(OWNER_KEY)} = {q(plan.name)} }}",
            "}",
            "",
        ]
    return "\n".join(lines)


def az_lines(plan: Any) -> str:
    from .export import _cmd

    zone = plan.azure.private_dns_zone
    if not zone:
        return ""
    az = plan.azure
    sub = ["--subscription", az.subscription_id] if az.subscription_id else []
    rg = ["--resource-group", az.resource_group]
    lines = [f"# The nested VMs' names in private DNS zone {zone} (the zone and its VNet link are yours)."]
    for name, ip in records(plan).items():
        lines.append(_cmd("az", "network", "private-dns", "record-set", "a", "create", *sub, *rg, "--zone-name", zone,
                          "--name", name, "--ttl", str(TTL), "--metadata", f"{OWNER_KEY}={plan.name}"))
        lines.append(_cmd("az", "network", "private-dns", "record-set", "a", "add-record", *sub, *rg, "--zone-name", zone,
                          "--record-set-name", name, "--ipv4-address", str(ip)))
    return "\n".join(lines) + "\n"
