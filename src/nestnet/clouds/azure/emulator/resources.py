"""The Microsoft.Network resources the emulator stores: how a PUT body becomes the stored resource,
how a stored resource is shown, effective routes, and seeding from a plan. Pure over the store's
``resources`` mapping (lower-case id -> resource)."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

from .common import DEFAULT_SUBSCRIPTION, NET, TYPES, ArmFailure, key, new_etag, parent_of, rid
from .referenced import check_ipconfig_references, normalise_referenced, view_referenced
from .rules import (IpConfigs, check_routes, check_security_rules, check_subnet, check_tags, default_security_rules,
                    expect, refuse_unmodelled, subnet_prefix)


DROPPED_BY_DEFAULT = ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16")


@dataclass(frozen=True)
class Limits:
    max_routes: int = 400
    max_ip_configs: int = 256


def normalise(resources: Mapping[str, dict[str, Any]], rtype: str, res_id: str, name: str, body: Any,
              existing: dict[str, Any] | None, limits: Limits) -> dict[str, Any]:
    """Check a PUT body the way ARM would and return the resource to store (new etags)."""
    body = expect(body, dict, "(request body)", optional=False)
    props = dict(expect(body.get("properties"), dict, "properties") or {})
    location = expect(body.get("location"), str, "location") or (existing or {}).get("location")
    if not location:
        raise ArmFailure(400, "LocationRequired", "The location property is required for this definition.")
    etag = new_etag()
    res: dict[str, Any] = {"id": res_id, "name": name, "type": f"{NET}/{TYPES[rtype]}", "location": location, "etag": etag}
    tags = check_tags(body.get("tags"))
    if tags is not None:
        res["tags"] = tags
    props.pop("provisioningState", None)
    if rtype == "routetables":
        props.pop("subnets", None)  # read-only back-references, computed on GET
        props["routes"] = check_routes(res_id, props.get("routes"), limits.max_routes, etag)
        props["disableBgpRoutePropagation"] = bool(expect(props.get("disableBgpRoutePropagation"), bool,
                                                          "properties.disableBgpRoutePropagation"))
    elif rtype == "virtualnetworks":
        space = expect(props.get("addressSpace"), dict, "properties.addressSpace") or {}
        props["addressSpace"] = {"addressPrefixes": list(expect(space.get("addressPrefixes"), list,
                                                                "properties.addressSpace.addressPrefixes") or [])}
        # As in Azure, a VNet's subnets carry the VNet's etag: any write changes all of them.
        props["subnets"] = [check_subnet(resources, res_id, s, i, etag, location)
                            for i, s in enumerate(expect(props.get("subnets"), list, "properties.subnets") or [])]
    elif rtype == "networkinterfaces":
        _nic_properties(props, existing)
        refuse_unmodelled(props, res_id)
        ref = (expect(props.get("networkSecurityGroup"), dict, "properties.networkSecurityGroup") or {}).get("id")
        if ref and key(str(ref)) not in resources:
            raise ArmFailure(400, "InvalidResourceReference", f"Network security group {ref} referenced by {res_id} was not found.")
        if ref:
            props["networkSecurityGroup"] = {"id": resources[key(str(ref))]["id"]}
        props["ipConfigurations"] = IpConfigs(resources, res_id, limits.max_ip_configs).check(
            props.get("ipConfigurations"), existing, etag)
        for c in props["ipConfigurations"]:
            check_ipconfig_references(resources, c["properties"], c["id"], res_id)
    elif rtype == "networksecuritygroups":
        for read_only in ("defaultSecurityRules", "subnets", "networkInterfaces"):
            props.pop(read_only, None)
        props["flushConnection"] = bool(expect(props.get("flushConnection"), bool, "properties.flushConnection"))
        props["securityRules"] = check_security_rules(res_id, props.get("securityRules"), etag)
        props["defaultSecurityRules"] = default_security_rules(res_id, etag)
    else:  # a type a NIC may reference
        normalise_referenced(resources, rtype, res, props, body, existing)
    props["provisioningState"] = "Succeeded"
    res["properties"] = props
    return res


# What Compute sets on a NIC when a VM takes it (NetworkInterfaceGet example): a NIC PUT neither sets
# nor clears them.
COMPUTE_OWNED = ("virtualMachine", "macAddress", "primary")


def _nic_properties(props: dict[str, Any], existing: dict[str, Any] | None) -> None:
    """The NIC settings Azure always answers with, defaulted as Azure does (2024-05-01 examples)."""
    before = (existing or {}).get("properties") or {}
    for owned in COMPUTE_OWNED:
        props.pop(owned, None)
        if owned in before:
            props[owned] = copy.deepcopy(before[owned])
    for flag in ("enableIPForwarding", "enableAcceleratedNetworking", "disableTcpStateTracking"):
        props[flag] = bool(expect(props.get(flag), bool, f"properties.{flag}"))
    dns = expect(props.get("dnsSettings"), dict, "properties.dnsSettings") or {}
    servers = list(expect(dns.get("dnsServers"), list, "properties.dnsSettings.dnsServers") or [])
    props["dnsSettings"] = {**dns, "dnsServers": servers, "appliedDnsServers": servers}
    props["vnetEncryptionSupported"] = False


def attached(nic: dict[str, Any], vm: str, primary: bool = True) -> dict[str, Any]:
    """The NIC once VM ``vm`` (a name in the NIC's resource group, or a full id) has taken it:
    Compute's ``virtualMachine``, ``macAddress`` and ``primary``. The MAC is derived from the NIC's
    id under the OUI 00-0D-3A that Azure's MACs carry (assumed: Azure's own MACs are not
    predictable; the NetworkInterfaceGet example shows that format)."""
    vm_id = vm if vm.startswith("/") else f"{nic['id'].split('/providers/')[0]}/providers/Microsoft.Compute/virtualMachines/{vm}"
    out = copy.deepcopy(nic)
    out["properties"].update(virtualMachine={"id": vm_id}, primary=primary, macAddress=_mac(nic["id"]))
    _bump(out)
    return out


def internal_domain_suffix(vnet_id: str) -> str:
    """The DNS suffix Azure-provided name resolution gives a VNet's NICs (Microsoft Learn, "Name
    resolution for resources in Azure virtual networks": ``<random>.<x>.internal.cloudapp.net``);
    derived from the VNet's id (assumed: Azure's random part is not predictable)."""
    digest = hashlib.sha256(vnet_id.lower().encode()).hexdigest()
    return f"{digest[:26]}.{chr(97 + int(digest[26], 16))}{chr(97 + int(digest[27], 16))}.internal.cloudapp.net"


def _mac(nic_id: str) -> str:
    digest = hashlib.sha256(nic_id.lower().encode()).hexdigest()[:6].upper()
    return "00-0D-3A-" + "-".join(digest[i:i + 2] for i in range(0, 6, 2))


def with_tags(res: dict[str, Any], body: Any) -> dict[str, Any]:
    """UpdateTags (PATCH): the resource with its tags replaced and a new etag (children follow)."""
    body = expect(body, dict, "(request body)", optional=False)
    out = copy.deepcopy(res)
    out["tags"] = check_tags(body.get("tags")) or {}
    _bump(out)
    return out


def _bump(res: dict[str, Any]) -> None:
    etag = new_etag()
    res["etag"] = etag
    for child in ("subnets", "routes", "ipConfigurations", "securityRules", "defaultSecurityRules"):
        for c in (res.get("properties") or {}).get(child) or []:
            c["etag"] = etag


def subnets_using(resources: Mapping[str, dict[str, Any]], table_id: str, prop: str = "routeTable") -> list[str]:
    """The subnets whose ``prop`` (routeTable, networkSecurityGroup) is ``table_id``."""
    out = []
    for r in resources.values():
        if r["type"] != f"{NET}/virtualNetworks":
            continue
        for s in r["properties"].get("subnets", []):
            ref = (s["properties"].get(prop) or {}).get("id", "")
            if ref.lower() == table_id.lower():
                out.append(s["id"])
    return out


def subnet_users(resources: Mapping[str, dict[str, Any]], subnet_id: str) -> list[str]:
    """The ip configurations of every NIC in ``subnet_id``."""
    out = []
    for r in resources.values():
        if r["type"] != f"{NET}/networkInterfaces":
            continue
        for c in r["properties"].get("ipConfigurations") or []:
            if str(((c.get("properties") or {}).get("subnet") or {}).get("id", "")).lower() == subnet_id.lower():
                out.append(c["id"])
    return out


def view(resources: Mapping[str, dict[str, Any]], res: dict[str, Any], updating: bool = False) -> dict[str, Any]:
    """A stored resource as ARM shows it: with the back-references ARM computes."""
    out = copy.deepcopy(res)
    t = res["type"]
    if t in (f"{NET}/routeTables", f"{NET}/networkSecurityGroups"):
        prop = "routeTable" if t.endswith("/routeTables") else "networkSecurityGroup"
        subnets = subnets_using(resources, res["id"], prop)
        if subnets or prop == "routeTable":
            out["properties"]["subnets"] = [{"id": s} for s in subnets]
        nics = [n["id"] for n in resources.values() if n["type"] == f"{NET}/networkInterfaces" and str(
            ((n["properties"].get("networkSecurityGroup") or {}).get("id") or "")).lower() == res["id"].lower()]
        if nics:
            out["properties"]["networkInterfaces"] = [{"id": n} for n in nics]
    elif t == f"{NET}/networkInterfaces":
        dns = out["properties"].setdefault("dnsSettings", {"dnsServers": [], "appliedDnsServers": []})
        cfgs = out["properties"].get("ipConfigurations") or []
        subnet = next((c for c in cfgs if c["properties"].get("primary")), cfgs[0] if cfgs else {"properties": {}})
        vnet_id = parent_of(str(((subnet["properties"].get("subnet")) or {}).get("id") or ""))
        if vnet_id:
            dns.setdefault("internalDomainNameSuffix", internal_domain_suffix(vnet_id))
    elif t == f"{NET}/virtualNetworks":
        out["properties"]["subnets"] = [view_child(resources, s) for s in res["properties"].get("subnets") or []]
        out["properties"].setdefault("virtualNetworkPeerings", [])
        out["properties"].setdefault("dhcpOptions", {"dnsServers": []})
    else:
        view_referenced(resources, out)
    if updating:
        out["properties"]["provisioningState"] = "Updating"
    return out


def view_child(resources: Mapping[str, dict[str, Any]], c: dict[str, Any], updating: bool = False) -> dict[str, Any]:
    out = copy.deepcopy(c)
    if c.get("type") == f"{NET}/virtualNetworks/subnets":
        users = subnet_users(resources, c["id"])
        if users:
            out["properties"]["ipConfigurations"] = [{"id": u} for u in users]
    if updating:
        out["properties"]["provisioningState"] = "Updating"
    return out


def effective_routes(resources: Mapping[str, dict[str, Any]], nic: dict[str, Any]) -> list[dict[str, Any]]:
    """Default routes of the NIC's VNet plus the user routes of its subnet's table."""
    cfgs = nic["properties"]["ipConfigurations"]
    cfg = next((c for c in cfgs if c["properties"].get("primary")), cfgs[0])["properties"]
    subnet_id = (cfg.get("subnet") or {}).get("id", "")
    vnet = resources.get(key(parent_of(subnet_id)))
    out: list[dict[str, Any]] = []
    if vnet:
        for p in vnet["properties"]["addressSpace"]["addressPrefixes"]:
            out.append(_eff("Default", [p], "VnetLocal"))
    out.append(_eff("Default", ["0.0.0.0/0"], "Internet"))
    # Azure's default routes that drop private and shared address space outside the VNet (Microsoft
    # Learn, "Virtual network traffic routing"; NetworkInterfaceEffectiveRouteTableList example).
    out += [_eff("Default", [p], "None") for p in DROPPED_BY_DEFAULT]
    sub = next((s for s in (vnet or {}).get("properties", {}).get("subnets", []) if s["id"].lower() == subnet_id.lower()), None)
    ref = ((sub or {}).get("properties", {}).get("routeTable") or {}).get("id")
    table = resources.get(key(ref)) if ref else None
    for r in (table or {}).get("properties", {}).get("routes", []):
        p = r["properties"]
        hop_ips = [p["nextHopIpAddress"]] if p.get("nextHopIpAddress") else []
        e = _eff("User", [p["addressPrefix"]], p["nextHopType"], hop_ips)
        e["name"] = r["name"]
        out.append(e)
    return out


def _eff(source: str, prefixes: list[str], hop: str, hop_ips: list[str] | None = None) -> dict[str, Any]:
    return {"source": source, "state": "Active", "addressPrefix": prefixes, "nextHopType": hop,
            "nextHopIpAddress": hop_ips or []}


def seeded(resources: Mapping[str, dict[str, Any]], plan: Any) -> dict[str, dict[str, Any]]:
    """The plan's VNet, subnets and host NICs (forwarding off, no routes) that are missing."""
    az = plan.azure
    sub = az.subscription_id or DEFAULT_SUBSCRIPTION
    loc = az.location or "eastus"
    rg = az.resource_group
    out: dict[str, dict[str, Any]] = {}
    vid = rid(sub, rg, "virtualnetworks", az.vnet)
    if key(vid) not in resources:
        vtag = new_etag()
        out[key(vid)] = {
            "id": vid, "name": az.vnet, "type": f"{NET}/virtualNetworks", "location": loc, "etag": vtag,
            "properties": {
                "provisioningState": "Succeeded",
                "addressSpace": {"addressPrefixes": [str(n) for n in az.address_space]},
                "subnets": [{"id": f"{vid}/subnets/{s.name}", "name": s.name, "etag": vtag,
                             "type": f"{NET}/virtualNetworks/subnets",
                             "properties": {"provisioningState": "Succeeded", "addressPrefix": str(s.prefix)}}
                            for s in plan.subnets.values()],
            },
        }
    for h in plan.hosts.values():
        nid = rid(sub, rg, "networkinterfaces", h.nic)
        if key(nid) in resources:
            continue
        etag = new_etag()
        nic = {
            "id": nid, "name": h.nic, "type": f"{NET}/networkInterfaces", "location": loc, "etag": etag,
            "properties": {
                "provisioningState": "Succeeded", "enableIPForwarding": False,
                "ipConfigurations": [{
                    "id": f"{nid}/ipConfigurations/ipconfig1", "name": "ipconfig1", "etag": etag,
                    "type": f"{NET}/networkInterfaces/ipConfigurations",
                    "properties": {"primary": True, "privateIPAddress": str(h.ip), "privateIPAllocationMethod": "Static",
                                   "privateIPAddressVersion": "IPv4", "provisioningState": "Succeeded",
                                   "subnet": {"id": f"{vid}/subnets/{h.subnet}"}},
                }],
            },
        }
        out[key(nid)] = attached(nic, h.name)  # the KVM host's VM has taken its NIC
    return out


__all__ = ["Limits", "attached", "effective_routes", "normalise", "seeded", "subnet_prefix", "subnet_users", "subnets_using",
           "view", "view_child", "with_tags"]
