"""The Microsoft.Network resources a NIC may reference that users have: public IP addresses,
application security groups, load balancers (their backend pools and inbound NAT rules, as
references) and virtual network taps. Stored as ARM stores them, shown with ARM's defaults
(azure-rest-api-specs 2024-07-01 examples; sources and assumptions in docs/decisions/0009).

Pure over the store's ``resources`` mapping (lower-case id -> resource)."""

from __future__ import annotations

import hashlib
import uuid
from ipaddress import IPv4Network
from typing import Any, Mapping

from .common import NET, ArmFailure, key
from .rules import expect

# Lower-case URL segment -> ARM's spelling (merged into common.TYPES).
REFERENCED_TYPES = {
    "publicipaddresses": "publicIPAddresses",
    "applicationsecuritygroups": "applicationSecurityGroups",
    "loadbalancers": "loadBalancers",
    "virtualnetworktaps": "virtualNetworkTaps",
}
OPERATION = {"publicipaddresses": "PublicIPAddress", "applicationsecuritygroups": "ApplicationSecurityGroup",
             "loadbalancers": "LoadBalancer", "virtualnetworktaps": "VirtualNetworkTap"}

# Where the emulator draws public addresses from: the documentation ranges of RFC 5737 (assumed;
# Azure's own public addresses are not predictable and must never be used by a test). Never the
# lab internet's own address, where `lab up --azure api` serves this emulator (model/state.py).
PUBLIC_POOLS = (IPv4Network("203.0.113.0/24"), IPv4Network("198.51.100.0/24"))
NOT_HANDED_OUT = frozenset({"203.0.113.10"})

# Ip configuration properties that reference these types: the type each must name, and whether a list.
IPCONFIG_REFERENCES = {
    "publicIPAddress": ("publicIPAddresses", False),
    "applicationSecurityGroups": ("applicationSecurityGroups", True),
    "loadBalancerBackendAddressPools": ("loadBalancers/backendAddressPools", True),
    "loadBalancerInboundNatRules": ("loadBalancers/inboundNatRules", True),
    "virtualNetworkTaps": ("virtualNetworkTaps", True),
}
# Lists of child resources a load balancer holds (named, given ids and the LB's etag).
LB_CHILDREN = ("frontendIPConfigurations", "backendAddressPools", "inboundNatRules", "loadBalancingRules", "probes",
               "outboundRules", "inboundNatPools")


def normalise_referenced(resources: Mapping[str, dict[str, Any]], rtype: str, res: dict[str, Any],
                         props: dict[str, Any], body: dict[str, Any], existing: dict[str, Any] | None) -> None:
    """Fill ``props`` of a PUT of one of REFERENCED_TYPES as ARM answers it (in place)."""
    before = (existing or {}).get("properties") or {}
    if rtype == "publicipaddresses":
        sku = expect(body.get("sku"), dict, "sku") or (existing or {}).get("sku") or {"name": "Basic"}
        sku_name = str(sku.get("name") or "Basic")
        if sku_name not in ("Basic", "Standard"):
            raise ArmFailure(400, "InvalidRequestFormat", f"Public IP SKU {sku_name!r} is not Basic or Standard.")
        res["sku"] = {"name": sku_name, "tier": str(sku.get("tier") or "Regional")}
        method = expect(props.get("publicIPAllocationMethod"), str, "properties.publicIPAllocationMethod") or (
            "Static" if sku_name == "Standard" else "Dynamic")
        if method not in ("Static", "Dynamic"):
            raise ArmFailure(400, "InvalidRequestFormat", f"publicIPAllocationMethod {method!r} is not Static or Dynamic.")
        if sku_name == "Standard" and method != "Static":  # Microsoft Learn, "Public IP addresses": Standard is static
            raise ArmFailure(400, "StandardSkuPublicIPAddressesMustBeStatic",  # code assumed
                             f"Standard sku publicIp {res['id']} must have AllocationMethod set to Static.")
        props["publicIPAllocationMethod"] = method
        props["publicIPAddressVersion"] = expect(props.get("publicIPAddressVersion"), str,
                                                 "properties.publicIPAddressVersion") or "IPv4"
        if props["publicIPAddressVersion"] != "IPv4":
            raise ArmFailure(400, "InvalidRequestFormat", "The emulator holds IPv4 public addresses only.")
        props["idleTimeoutInMinutes"] = expect(props.get("idleTimeoutInMinutes"), int,
                                               "properties.idleTimeoutInMinutes") or 4
        if not 4 <= props["idleTimeoutInMinutes"] <= 30:  # Microsoft Learn: 4 to 30 minutes
            raise ArmFailure(400, "PublicIPIdleTimeoutIsOutOfRange",  # code assumed
                             f"Idle timeout {props['idleTimeoutInMinutes']} of {res['id']} is not within 4 and 30 minutes.")
        props["ipTags"] = list(expect(props.get("ipTags"), list, "properties.ipTags") or [])
        props["ddosSettings"] = expect(props.get("ddosSettings"), dict, "properties.ddosSettings") or {
            "protectionMode": "VirtualNetworkInherited"}
        props.pop("ipConfiguration", None)  # read-only back-reference, computed on GET
        # The address stays for the life of the resource (a given ipAddress is read-only).
        props["ipAddress"] = before.get("ipAddress") or _free_public_address(resources)
        props["resourceGuid"] = before.get("resourceGuid") or str(uuid.uuid4())
        dns = expect(props.get("dnsSettings"), dict, "properties.dnsSettings")
        if dns is not None:
            props["dnsSettings"] = _dns_settings(dns, res["id"], res["location"])
    elif rtype == "applicationsecuritygroups":
        props["resourceGuid"] = before.get("resourceGuid") or str(uuid.uuid4())
    elif rtype == "loadbalancers":
        res["sku"] = expect(body.get("sku"), dict, "sku") or (existing or {}).get("sku") or {"name": "Basic"}
        for child in LB_CHILDREN:
            items = expect(props.get(child), list, f"properties.{child}") or []
            out = []
            for i, c in enumerate(items):
                expect(c, dict, f"properties.{child}[{i}]", optional=False)
                name = expect(c.get("name"), str, f"properties.{child}[{i}].name")
                if not name:
                    raise ArmFailure(400, "InvalidRequestFormat", f"properties.{child}[{i}] has no name.")
                cp = dict(expect(c.get("properties"), dict, f"properties.{child}[{i}].properties") or {})
                pip = expect(cp.get("publicIPAddress"), dict, f"properties.{child}[{i}].properties.publicIPAddress")
                if pip is not None:
                    target = resolve(resources, str(pip.get("id") or ""))
                    if target is None or target["type"] != f"{NET}/publicIPAddresses":
                        raise ArmFailure(400, "InvalidResourceReference",
                                         f"Resource {pip.get('id') or '(none)'} referenced by resource {res['id']} was not found.")
                    cp["publicIPAddress"] = {"id": target["id"]}
                cp["provisioningState"] = "Succeeded"
                out.append({"id": f"{res['id']}/{child}/{name}", "name": name, "etag": res["etag"],
                            "type": f"{NET}/loadBalancers/{child}", "properties": cp})
            props[child] = out
        props["resourceGuid"] = before.get("resourceGuid") or str(uuid.uuid4())
    elif rtype == "virtualnetworktaps":
        props.pop("networkInterfaceTapConfigurations", None)  # read-only
        props["resourceGuid"] = before.get("resourceGuid") or str(uuid.uuid4())


def _dns_settings(dns: dict[str, Any], res_id: str, location: str) -> dict[str, Any]:
    """A public IP's DNS name as Azure forms it (Microsoft Learn, "Public IP addresses", DNS name label:
    ``<label>.<region>.cloudapp.azure.com``; with a label scope, a hashed label under ``sysgen``, whose
    hash is assumed: derived from the id here, Azure's is not predictable)."""
    label = expect(dns.get("domainNameLabel"), str, "properties.dnsSettings.domainNameLabel")
    out = dict(dns)
    if label:
        scope = expect(dns.get("domainNameLabelScope"), str, "properties.dnsSettings.domainNameLabelScope")
        if scope:
            digest = hashlib.sha256(res_id.lower().encode()).hexdigest()[:16]
            mid = "".join(chr(97 + int(ch, 16)) for ch in digest)
            out["fqdn"] = f"{label}.{mid}.{location}.sysgen.cloudapp.azure.com"
        else:
            out["fqdn"] = f"{label}.{location}.cloudapp.azure.com"
    return out


def _free_public_address(resources: Mapping[str, dict[str, Any]]) -> str:
    taken = {str((r.get("properties") or {}).get("ipAddress")) for r in resources.values()
             if r["type"] == f"{NET}/publicIPAddresses"}
    for pool in PUBLIC_POOLS:
        for a in pool.hosts():
            if str(a) not in taken and str(a) not in NOT_HANDED_OUT:
                return str(a)
    raise ArmFailure(400, "PublicIPCountLimitReached", "The emulator's public address pools are exhausted.")  # assumed


def resolve(resources: Mapping[str, dict[str, Any]], ref_id: str) -> dict[str, Any] | None:
    """The stored resource, or load balancer child, that ``ref_id`` names (case-insensitive)."""
    res = resources.get(key(ref_id))
    if res is not None:
        return res
    for child in LB_CHILDREN:
        marker = f"/{child.lower()}/"
        if marker in ref_id.lower():
            lb_id, name = ref_id.lower().rsplit(marker, 1)
            lb = resources.get(lb_id)
            if lb and lb["type"] == f"{NET}/loadBalancers":
                return next((c for c in lb["properties"].get(child) or [] if c["name"].lower() == name), None)
    return None


def check_ipconfig_references(resources: Mapping[str, dict[str, Any]], props: dict[str, Any], owner: str,
                              nic_id: str) -> None:
    """Each reference of an ip configuration names a stored resource of the right type (as ARM refuses a
    reference to a missing one with InvalidResourceReference); ids are rewritten to ARM's spelling.
    A public IP already on another NIC's ip configuration is refused."""
    for prop, (want, many) in IPCONFIG_REFERENCES.items():
        value = props.get(prop)
        if value is None:
            continue
        refs = expect(value, list if many else dict, f"{owner}.properties.{prop}", optional=False)
        out = []
        for ref in refs if many else [refs]:
            ref_id = str((ref or {}).get("id") or "") if isinstance(ref, dict) else ""
            target = resolve(resources, ref_id) if ref_id else None
            if target is None or not target["type"].lower().endswith(f"/{want.lower()}"):
                raise ArmFailure(400, "InvalidResourceReference",
                                 f"Resource {ref_id or '(none)'} referenced by resource {owner} was not found. Please make "
                                 "sure that the referenced resource exists, and that both resources are in the same region.")
            out.append({"id": target["id"]})
        props[prop] = out if many else out[0]
    pip = (props.get("publicIPAddress") or {}).get("id")
    if pip:
        holder = public_ip_holder(resources, pip, exclude_nic=nic_id)
        if holder:
            raise ArmFailure(400, "PublicIPAddressInUse",  # code assumed (Microsoft Learn: one association at a time)
                             f"Public IP address {pip} is already in use by {holder}; it can be associated with one "
                             "resource at a time.")


def public_ip_holder(resources: Mapping[str, dict[str, Any]], pip_id: str, exclude_nic: str = "") -> str:
    """The id of the ip configuration (of a NIC or a load balancer's frontend) that holds public IP
    ``pip_id`` ('' when none)."""
    for r in resources.values():
        if r["type"] == f"{NET}/loadBalancers":
            for c in r["properties"].get("frontendIPConfigurations") or []:
                if str((c["properties"].get("publicIPAddress") or {}).get("id", "")).lower() == pip_id.lower():
                    return c["id"]
        if r["type"] != f"{NET}/networkInterfaces" or r["id"].lower() == exclude_nic.lower():
            continue
        for c in r["properties"].get("ipConfigurations") or []:
            ref = ((c.get("properties") or {}).get("publicIPAddress") or {}).get("id", "")
            if ref.lower() == pip_id.lower():
                return c["id"]
    return ""


def users_of(resources: Mapping[str, dict[str, Any]], res: dict[str, Any]) -> list[str]:
    """The ip configurations that reference ``res`` (or one of a load balancer's children)."""
    target = res["id"].lower()
    out = []
    for r in resources.values():
        if r["type"] != f"{NET}/networkInterfaces":
            continue
        for c in r["properties"].get("ipConfigurations") or []:
            p = c.get("properties") or {}
            for prop in IPCONFIG_REFERENCES:
                v = p.get(prop)
                for ref in v if isinstance(v, list) else [v] if v else []:
                    rid = str(ref.get("id", "")).lower()
                    if rid == target or rid.startswith(target + "/"):
                        out.append(c["id"])
    return sorted(set(out))


def refuse_delete_in_use(resources: Mapping[str, dict[str, Any]], rtype: str, res: dict[str, Any]) -> None:
    users = users_of(resources, res)
    if not users:
        return
    code = {"publicipaddresses": "PublicIPAddressCannotBeDeleted", "applicationsecuritygroups":
            "InUseApplicationSecurityGroupCannotBeDeleted", "loadbalancers": "InUseLoadBalancerCannotBeDeleted",
            "virtualnetworktaps": "InUseVirtualNetworkTapCannotBeDeleted"}
    raise ArmFailure(400, code[rtype],  # codes assumed except PublicIPAddressCannotBeDeleted
                     f"{REFERENCED_TYPES[rtype]} {res['id']} is in use by {', '.join(users)} and cannot be deleted.")


def view_referenced(resources: Mapping[str, dict[str, Any]], out: dict[str, Any]) -> None:
    """Back-references ARM computes: a public IP's ipConfiguration; a Dynamic address only while associated."""
    if out["type"] != f"{NET}/publicIPAddresses":
        return
    holder = public_ip_holder(resources, out["id"])
    props = out["properties"]
    if holder:
        props["ipConfiguration"] = {"id": holder}
    elif props.get("publicIPAllocationMethod") == "Dynamic":
        props.pop("ipAddress", None)  # Microsoft Learn: a dynamic address is assigned on association


__all__ = ["IPCONFIG_REFERENCES", "OPERATION", "REFERENCED_TYPES", "check_ipconfig_references", "normalise_referenced",
           "public_ip_holder", "refuse_delete_in_use", "resolve", "users_of", "view_referenced"]
