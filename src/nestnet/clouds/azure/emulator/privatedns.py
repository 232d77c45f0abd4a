"""Microsoft.Network/privateDnsZones in the emulator: zones (read) and their A record sets.

Sources (docs/decisions/0011): azure-rest-api-specs ``specification/privatedns/resource-manager/
Microsoft.Network/stable/2020-06-01/privatedns.json`` (RecordSets_CreateOrUpdate 200/201 with
``If-Match`` / ``If-None-Match: *``, RecordSets_Delete 200/204 with ``If-Match``, ListByType
paged ``value``/``nextLink``, the RecordSet shape: ``etag``, ``properties.metadata``, ``ttl``,
``fqdn`` with a trailing dot, ``isAutoRegistered``, ``aRecords[].ipv4Address``) and the
azure-mgmt-privatedns client that talks to it. A precondition that fails is 412
``PreconditionFailed``; a zone that does not exist is 404 ``ParentResourceNotFound``. Only A
record sets are kept (nestnet's only kind): other record types answer 400 — an emulator limit.
The zone is created by ``seed`` (Terraform's job in real life), not through this API.
"""

from __future__ import annotations

import re
import uuid
from ipaddress import IPv4Address
from typing import Any, Callable, Mapping
from urllib.parse import parse_qs

from .common import DEFAULT_SUBSCRIPTION, NET, ArmFailure, Reply, key

PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.network/"
    r"privatednszones/(?P<zone>[^/]+)(?:/(?P<rtype>[^/]+)(?:/(?P<name>[^/]+))?)?/?$",
    re.IGNORECASE,
)
API_VERSIONS = frozenset({"2018-09-01", "2020-01-01", "2020-06-01", "2024-06-01"})
ZONE_TYPE = f"{NET}/privateDnsZones"
_LABEL = re.compile(r"^(@|[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*)$")


def zone_id(sub: str, rg: str, zone: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{NET}/privateDnsZones/{zone}"


def seeded(resources: Mapping[str, dict[str, Any]], plan: Any) -> dict[str, dict[str, Any]]:
    """The plan's private DNS zone, if it names one and it is missing (as Terraform made it)."""
    az = plan.azure
    if not az.private_dns_zone:
        return {}
    zid = zone_id(az.subscription_id or DEFAULT_SUBSCRIPTION, az.resource_group, az.private_dns_zone)
    if key(zid) in resources:
        return {}
    return {key(zid): {"id": zid, "name": az.private_dns_zone, "type": ZONE_TYPE, "location": "global",
                       "etag": str(uuid.uuid4()), "properties": {"provisioningState": "Succeeded"}}}


def a_records(resources: Mapping[str, dict[str, Any]], zone: str) -> dict[str, IPv4Address]:
    """FQDN -> address of every A record set in ``zone`` (what Azure DNS answers from it)."""
    out = {}
    for r in resources.values():
        if r.get("type") == f"{ZONE_TYPE}/A" and r["id"].lower().split("/privatednszones/")[1].split("/")[0] == zone.lower():
            for a in r["properties"].get("aRecords") or []:
                out[f"{r['name']}.{zone}".lower() if r["name"] != "@" else zone.lower()] = IPv4Address(a["ipv4Address"])
    return out


def handle(resources: dict[str, dict[str, Any]], commit: Callable[[dict[str, Any]], None], method: str,
           m: re.Match, query: str, headers: Mapping[str, str], body: Any) -> Reply:
    """One request on a zone or its record sets (``m``: ``PATH``'s match)."""
    versions = parse_qs(query).get("api-version")
    if not versions:
        raise ArmFailure(400, "MissingApiVersionParameter",
                         "The api-version query parameter (?api-version=) is required for all requests.")
    if versions[-1] not in API_VERSIONS:
        raise ArmFailure(400, "NoRegisteredProviderFound",
                         f"No registered resource provider found for API version '{versions[-1]}' and type "
                         f"'privateDnsZones'. The supported api-versions are '{', '.join(sorted(API_VERSIONS))}'.")
    zid = zone_id(m["sub"], m["rg"], m["zone"])
    zone = resources.get(key(zid))
    if m["rtype"] is None:
        if method != "GET":
            raise ArmFailure(405, "MethodNotAllowed", "The emulator keeps private DNS zones read-only.")
        if zone is None:
            raise ArmFailure(404, "ResourceNotFound", f"The Resource '{ZONE_TYPE}/{m['zone']}' under resource group "
                                                      f"'{m['rg']}' was not found.")
        return Reply(200, zone)
    if zone is None:
        raise ArmFailure(404, "ParentResourceNotFound",
                         f"Can not perform requested operation on nested resource. Parent resource '{m['zone']}' not found.")
    rtype = m["rtype"].upper()
    if rtype != "A":
        raise ArmFailure(400, "BadRequest", f"The emulator keeps A record sets only, not {m['rtype']}.")
    base = f"{zone['id']}/A"
    if m["name"] is None:
        if method != "GET":
            raise ArmFailure(405, "MethodNotAllowed", f"{method} is not allowed on a collection.")
        items = [r for k, r in sorted(resources.items()) if k.startswith(key(base) + "/")]
        return Reply(200, {"value": items})
    name = m["name"]
    rid = f"{base}/{name}"
    have = resources.get(key(rid))
    # If-Match carries the etag as an HTTP entity tag (quoted; the SDK quotes it): compare its value
    if_match, if_none = _tag(headers.get("if-match")), _tag(headers.get("if-none-match"))
    if method == "GET":
        if have is None:
            raise ArmFailure(404, "NotFound", f"The resource record '{name}' does not exist in resource group "
                                              f"'{m['rg']}' of subscription '{m['sub']}'.")
        return Reply(200, have)
    if method == "DELETE":
        if have is None:
            return Reply(204)
        if if_match and if_match not in ("*", have["etag"]):
            raise ArmFailure(412, "PreconditionFailed", f"The Record set {name} has been modified (etag mismatch).")
        commit({key(rid): None})
        return Reply(200)
    if method not in ("PUT", "PATCH"):
        raise ArmFailure(405, "MethodNotAllowed", f"{method} is not allowed here.")
    if if_none == "*" and have is not None:
        raise ArmFailure(412, "PreconditionFailed", f"The Record set {name} exists already and so cannot be created again.")
    if if_match and (have is None or if_match not in ("*", have["etag"])):
        raise ArmFailure(412, "PreconditionFailed", f"The Record set {name} has been modified (etag mismatch).")
    if method == "PATCH" and have is None:
        raise ArmFailure(404, "NotFound", f"The resource record '{name}' does not exist.")
    props = _check(name, (body or {}).get("properties") if isinstance(body, dict) else None, method, have)
    res = {"id": rid, "name": name, "type": f"{ZONE_TYPE}/A", "etag": str(uuid.uuid4()),
           "properties": {**props, "fqdn": f"{name}.{m['zone']}." if name != "@" else f"{m['zone']}.",
                          "isAutoRegistered": False}}
    commit({key(rid): res})
    return Reply(201 if have is None else 200, res)


def _tag(value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip()
    return v[2:].strip('"') if v.startswith("W/") else v.strip('"')


def _check(name: str, props: Any, method: str, have: dict[str, Any] | None) -> dict[str, Any]:
    if not _LABEL.match(name) or len(name) > 253:
        raise ArmFailure(400, "BadRequest", f"The record set name '{name}' is invalid.")
    if not isinstance(props, dict):
        raise ArmFailure(400, "BadRequest", "The request body must have 'properties'.")
    old = dict((have or {}).get("properties") or {}) if method == "PATCH" else {}
    out: dict[str, Any] = {"metadata": old.get("metadata") or {}, "ttl": old.get("ttl", 3600), "aRecords": old.get("aRecords") or []}
    if "metadata" in props:
        meta = props["metadata"] or {}
        if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
            raise ArmFailure(400, "BadRequest", "metadata must map strings to strings.")
        out["metadata"] = meta
    if "ttl" in props:
        ttl = props["ttl"]
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= 2147483647:
            raise ArmFailure(400, "BadRequest", f"The TTL {ttl!r} is invalid.")
        out["ttl"] = ttl
    if "aRecords" in props:
        recs = props["aRecords"] or []
        try:
            out["aRecords"] = [{"ipv4Address": str(IPv4Address(r["ipv4Address"]))} for r in recs]
        except (KeyError, TypeError, ValueError):
            raise ArmFailure(400, "BadRequest", "Each A record needs a valid ipv4Address.") from None
    return out
