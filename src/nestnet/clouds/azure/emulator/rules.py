"""ARM's rules for the requests the emulator accepts: api-versions, names, tags, body shapes, and
the Microsoft.Network checks on route tables, subnets and NIC ip configurations.

Pure functions over the stored resources; each refusal is an ``ArmFailure`` with ARM's status and
code. Sources and assumptions: docs/decisions/0009-arm-emulator-fidelity.md.
"""

from __future__ import annotations

import datetime as _dt
import re
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import Any, Mapping

from ..facts import NIC_PREFIX_LEN, first_assignable, is_reserved
from .common import NET, ArmFailure, key, parent_of

# Microsoft.Network api-versions (azure-rest-api-specs stable/ folders, plus those the current
# azure-mgmt-network sends). A well-formed version newer than the newest listed one and not in the
# future is taken as released after this list was written.
KNOWN_API_VERSIONS = frozenset("""
2015-05-01-preview 2015-06-15 2016-03-30 2016-06-01 2016-07-01 2016-08-01 2016-09-01 2016-10-01
2016-11-01 2016-12-01 2017-03-01 2017-04-01 2017-06-01 2017-08-01 2017-09-01 2017-10-01 2017-11-01
2018-01-01 2018-02-01 2018-03-01 2018-04-01 2018-06-01 2018-07-01 2018-08-01 2018-10-01 2018-11-01
2018-12-01 2019-02-01 2019-04-01 2019-06-01 2019-07-01 2019-08-01 2019-09-01 2019-11-01 2019-12-01
2020-01-01 2020-03-01 2020-04-01 2020-05-01 2020-06-01 2020-07-01 2020-08-01 2020-11-01 2021-02-01
2021-03-01 2021-05-01 2021-08-01 2022-01-01 2022-05-01 2022-07-01 2022-09-01 2022-11-01 2023-02-01
2023-04-01 2023-05-01 2023-06-01 2023-09-01 2023-11-01 2024-01-01 2024-03-01 2024-05-01 2024-07-01
2024-10-01 2025-01-01 2025-03-01 2025-05-01 2025-07-01 2025-09-01 2026-01-01 2026-03-01
""".split())
_API_VERSION_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(-preview)?$")

# Microsoft Learn, "Naming rules and restrictions for Azure resources" (Microsoft.Network):
# alphanumerics, underscores, periods and hyphens; start with an alphanumeric; end with an
# alphanumeric or underscore. Length: virtual networks 2-64, the others here 1-80.
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
NAME_LENGTH = {"virtualNetworks": (2, 64)}
DEFAULT_NAME_LENGTH = (1, 80)

# Microsoft Learn, "Use tags to organize your Azure resources": 50 tags, name 512, value 256
# characters; names may not contain < > % & \ ? /.
MAX_TAGS, MAX_TAG_NAME, MAX_TAG_VALUE = 50, 512, 256
_TAG_NAME_FORBIDDEN = re.compile(r"[<>%&\\?/\x00-\x1f]")

NEXT_HOP_TYPES = ("VirtualAppliance", "VnetLocal", "Internet", "VirtualNetworkGateway", "None")


def check_api_version(value: str | None, type_name: str, location: str = "global",
                      today: _dt.date | None = None) -> None:
    supported = ", ".join(sorted(KNOWN_API_VERSIONS, reverse=True))
    if not value:
        raise ArmFailure(400, "MissingApiVersionParameter",
                         "The api-version query parameter (?api-version=) is required for all requests.")
    m = _API_VERSION_RE.match(value)
    try:
        date = _dt.date(int(m[1]), int(m[2]), int(m[3])) if m else None
    except ValueError:
        date = None
    if date is None:
        raise ArmFailure(400, "InvalidApiVersionParameter",
                         f"The api-version '{value}' is invalid. The supported versions are '{supported}'.")
    newest = max(_dt.date.fromisoformat(v[:10]) for v in KNOWN_API_VERSIONS)
    if value in KNOWN_API_VERSIONS or (not m[4] and newest < date <= (today or _dt.date.today())):
        return
    raise ArmFailure(
        400, "NoRegisteredProviderFound",
        f"No registered resource provider found for location '{location}' and API version '{value}' for type "
        f"'{type_name}'. The supported api-versions are '{supported}'.",
    )


def check_name(type_name: str, name: str) -> None:
    lo, hi = NAME_LENGTH.get(type_name, DEFAULT_NAME_LENGTH)
    if not (lo <= len(name) <= hi and _NAME_RE.match(name)):
        shown = name.encode("unicode_escape").decode("ascii")
        raise ArmFailure(
            400, "InvalidResourceName",
            f"Resource name {shown} is invalid. The name can be up to {hi} characters long. It must begin with a word "
            "character, and it must end with a word character or with '_'. The name may contain word characters or "
            "'.', '-', '_'.",
        )


def wrong_type(path: str, expected: str, got: Any) -> ArmFailure:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}
    got_name = "null" if got is None else names.get(type(got), type(got).__name__)
    return ArmFailure(400, "InvalidRequestFormat", "Cannot parse the request.", [
        {"code": "InvalidJsonReferenceWrongType",
         "message": f"Reference '{path}' has the wrong type. Expected type {expected}, got {got_name}."}])


def expect(value: Any, kind: type, path: str, optional: bool = True) -> Any:
    """``value`` if it has JSON type ``kind`` (or is null and optional), else ARM's 400."""
    if value is None and optional:
        return None
    if kind is str and isinstance(value, str):
        return value
    if kind is bool and isinstance(value, bool):
        return value
    if kind in (dict, list) and isinstance(value, kind):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    raise wrong_type(path, {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer"}[kind], value)


def check_tags(tags: Any) -> dict[str, str] | None:
    tags = expect(tags, dict, "tags")
    if tags is None:
        return None
    if len(tags) > MAX_TAGS:
        raise ArmFailure(400, "InvalidTagsCount",  # code assumed; the limit is documented
                         f"The number of tags {len(tags)} exceeds the maximum of {MAX_TAGS} tags per resource.")
    for name, value in tags.items():
        expect(value, str, f"tags.{name}", optional=False)
        if _TAG_NAME_FORBIDDEN.search(name):
            raise ArmFailure(400, "InvalidTagNameCharacters",
                             f"The tag names '{name[:80]}' have reserved characters '<,>,%,&,\\,?,/' or control characters.")
        if len(name) > MAX_TAG_NAME:
            raise ArmFailure(400, "InvalidTagNameLength",
                             f"The tag name '{name[:40]}...' exceeds the maximum length of {MAX_TAG_NAME} characters.")
        if len(value) > MAX_TAG_VALUE:
            raise ArmFailure(400, "InvalidTagValueLength",
                             f"The tag value of '{name[:40]}' exceeds the maximum length of {MAX_TAG_VALUE} characters.")
    return dict(tags)


def check_routes(table_id: str, routes: Any, max_routes: int, etag: str) -> list[dict[str, Any]]:
    routes = expect(routes, list, "properties.routes") or []
    if len(routes) > max_routes:
        raise ArmFailure(400, "RouteTableRouteLimitReached",
                         f"Route table {table_id} would have {len(routes)} routes; the limit is {max_routes}.")
    seen_names: set[str] = set()
    seen_prefixes: dict[str, str] = {}
    out = []
    for i, r in enumerate(routes):
        expect(r, dict, f"properties.routes[{i}]", optional=False)
        name = expect(r.get("name"), str, f"properties.routes[{i}].name") or ""
        p = expect(r.get("properties"), dict, f"properties.routes[{i}].properties") or {}
        if not name or name.lower() in seen_names:
            raise ArmFailure(400, "InvalidRouteName", f"Route name {name!r} is empty or repeated in {table_id}.")
        check_name("routes", name)
        seen_names.add(name.lower())
        prefix, hop, hop_ip = p.get("addressPrefix"), p.get("nextHopType"), p.get("nextHopIpAddress")
        try:
            net = ip_network(expect(prefix, str, f"properties.routes[{i}].properties.addressPrefix", optional=False),
                             strict=True)
        except ValueError:
            raise ArmFailure(400, "InvalidRouteAddressPrefix",
                             f"Route {name} has address prefix {prefix!r}, which is not a valid network address.") from None
        if str(net) in seen_prefixes:
            raise ArmFailure(400, "RouteConflict",
                             f"Route {name} has the same address prefix {net} as route {seen_prefixes[str(net)]}.")
        seen_prefixes[str(net)] = name
        if hop not in NEXT_HOP_TYPES:
            raise ArmFailure(400, "InvalidNextHopType", f"Route {name} has next hop type {hop!r}.")
        if hop == "VirtualAppliance":
            try:
                ip_address(str(hop_ip))
            except ValueError:
                raise ArmFailure(400, "InvalidNextHopIpAddress",
                                 f"Route {name} needs a next hop IP address, got {hop_ip!r}.") from None
        props = {"addressPrefix": str(net), "nextHopType": hop, "provisioningState": "Succeeded"}
        if hop_ip is not None and hop == "VirtualAppliance":
            props["nextHopIpAddress"] = str(hop_ip)
        # A route carries its table's etag, as a subnet carries its VNet's (assumed, see 0009).
        out.append({"id": f"{table_id}/routes/{name}", "name": name, "etag": etag,
                    "type": f"{NET}/routeTables/routes", "properties": props})
    return out


def check_subnet(resources: Mapping[str, dict[str, Any]], vnet_id: str, s: Any, i: int, etag: str,
                 location: str = "eastus") -> dict[str, Any]:
    expect(s, dict, f"properties.subnets[{i}]", optional=False)
    name = expect(s.get("name"), str, f"properties.subnets[{i}].name") or ""
    check_name("subnets", name)
    # provisioningState and the NICs' back-references are ARM's to compute, never stored from a body.
    props = {k: v for k, v in (expect(s.get("properties"), dict, f"properties.subnets[{i}].properties") or {}).items()
             if k not in ("provisioningState", "ipConfigurations")}
    where = f"properties.subnets[{i}].properties"
    if props.get("addressPrefix") is None and props.get("addressPrefixes") is not None:
        prefixes = expect(props["addressPrefixes"], list, f"{where}.addressPrefixes")
    else:
        prefixes = [expect(props.get("addressPrefix"), str, f"{where}.addressPrefix", optional=False)]
    for prefix in prefixes:
        try:
            ip_network(expect(prefix, str, f"{where}.addressPrefixes", optional=False), strict=True)
        except ValueError:
            raise ArmFailure(400, "InvalidAddressPrefixFormat",
                             f"Address prefix {prefix!r} of subnet {name} is not formatted correctly.") from None
    for prop, what in (("routeTable", "Route table"), ("networkSecurityGroup", "Network security group")):
        ref = (expect(props.get(prop), dict, f"{where}.{prop}") or {}).get("id")
        if ref:
            if key(str(ref)) not in resources:
                raise ArmFailure(400, "InvalidResourceReference", f"{what} {ref} referenced by subnet {name} was not found.")
            props[prop] = {"id": resources[key(str(ref))]["id"]}
        else:
            props.pop(prop, None)
    subnet_id = f"{vnet_id}/subnets/{name}"
    endpoints = expect(props.get("serviceEndpoints"), list, f"{where}.serviceEndpoints")
    if endpoints is not None:
        props["serviceEndpoints"] = [_service_endpoint(e, f"{where}.serviceEndpoints[{j}]", location)
                                     for j, e in enumerate(endpoints)]
    delegations = expect(props.get("delegations"), list, f"{where}.delegations")
    if delegations is not None:
        props["delegations"] = [_delegation(d, f"{where}.delegations[{j}]", subnet_id, etag)
                                for j, d in enumerate(delegations)]
    props.pop("purpose", None)  # read-only: a delegated subnet's, "" as the SubnetCreateWithDelegation example answers
    if props.get("delegations"):
        props["purpose"] = ""
    props["provisioningState"] = "Succeeded"
    return {"id": subnet_id, "name": name, "etag": etag, "type": f"{NET}/virtualNetworks/subnets", "properties": props}


def _service_endpoint(e: Any, path: str, location: str) -> dict[str, Any]:
    expect(e, dict, path, optional=False)
    service = expect(e.get("service"), str, f"{path}.service", optional=False)
    # Azure fills the regions the endpoint covers; the VNet's region stands in for them.
    locations = expect(e.get("locations"), list, f"{path}.locations")
    return {"service": service, "locations": list(locations if locations is not None else [location]),
            "provisioningState": "Succeeded"}


def _delegation(d: Any, path: str, subnet_id: str, etag: str) -> dict[str, Any]:
    expect(d, dict, path, optional=False)
    name = expect(d.get("name"), str, f"{path}.name", optional=False)
    props = expect(d.get("properties"), dict, f"{path}.properties") or {}
    service = expect(props.get("serviceName"), str, f"{path}.properties.serviceName", optional=False)
    actions = expect(props.get("actions"), list, f"{path}.properties.actions")
    return {"name": name, "id": f"{subnet_id}/delegations/{name}", "etag": etag,
            "type": f"{NET}/virtualNetworks/subnets/delegations",
            "properties": {"serviceName": service, "actions": list(actions or []), "provisioningState": "Succeeded"}}


# The six default rules of every NSG (Microsoft Learn, "Network security groups", default security
# rules; the 2024-05-01 NetworkSecurityGroupCreate example).
DEFAULT_SECURITY_RULES = (
    ("AllowVnetInBound", "Allow inbound traffic from all VMs in VNET", "VirtualNetwork", "VirtualNetwork", "Allow", 65000, "Inbound"),
    ("AllowAzureLoadBalancerInBound", "Allow inbound traffic from azure load balancer", "AzureLoadBalancer", "*", "Allow", 65001, "Inbound"),
    ("DenyAllInBound", "Deny all inbound traffic", "*", "*", "Deny", 65500, "Inbound"),
    ("AllowVnetOutBound", "Allow outbound traffic from all VMs to all VMs in VNET", "VirtualNetwork", "VirtualNetwork", "Allow", 65000, "Outbound"),
    ("AllowInternetOutBound", "Allow outbound traffic from all VMs to Internet", "*", "Internet", "Allow", 65001, "Outbound"),
    ("DenyAllOutBound", "Deny all outbound traffic", "*", "*", "Deny", 65500, "Outbound"),
)
PROTOCOLS = ("Tcp", "Udp", "Icmp", "Esp", "Ah", "*")


def default_security_rules(nsg_id: str, etag: str) -> list[dict[str, Any]]:
    return [{"name": n, "id": f"{nsg_id}/defaultSecurityRules/{n}", "etag": etag,
             "type": f"{NET}/networkSecurityGroups/defaultSecurityRules",
             "properties": {"provisioningState": "Succeeded", "description": d, "protocol": "*", "sourcePortRange": "*",
                            "destinationPortRange": "*", "sourceAddressPrefix": src, "destinationAddressPrefix": dst,
                            "access": a, "priority": p, "direction": dr,
                            # empty, as the DefaultSecurityRuleGet example answers them
                            "sourcePortRanges": [], "destinationPortRanges": [], "sourceAddressPrefixes": [],
                            "destinationAddressPrefixes": []}}
            for n, d, src, dst, a, p, dr in DEFAULT_SECURITY_RULES]


def check_security_rules(nsg_id: str, rules: Any, etag: str) -> list[dict[str, Any]]:
    """An NSG's rules as ARM checks them (enumerations, priority 100-4096 unique per direction)."""
    rules = expect(rules, list, "properties.securityRules") or []
    out, names, priorities = [], set(), {}
    for i, r in enumerate(rules):
        where = f"properties.securityRules[{i}]"
        expect(r, dict, where, optional=False)
        name = expect(r.get("name"), str, f"{where}.name") or ""
        check_name("securityRules", name)
        if name.lower() in names:
            raise ArmFailure(400, "InvalidRequestFormat", f"Security rule name {name!r} is repeated in {nsg_id}.")
        names.add(name.lower())
        p = {k: v for k, v in (expect(r.get("properties"), dict, f"{where}.properties") or {}).items()
             if k != "provisioningState"}
        for prop, allowed in (("protocol", PROTOCOLS), ("access", ("Allow", "Deny")), ("direction", ("Inbound", "Outbound"))):
            if p.get(prop) not in allowed:
                raise ArmFailure(400, "SecurityRuleParameterContainsUnsupportedValue",  # code assumed
                                 f"Security rule {name} has {prop} {p.get(prop)!r}; allowed: {', '.join(allowed)}.")
        prio = p.get("priority")
        if not isinstance(prio, int) or isinstance(prio, bool) or not 100 <= prio <= 4096:
            raise ArmFailure(400, "SecurityRuleInvalidPriority",  # code assumed; the range is documented
                             f"Security rule {name} has priority {prio!r}; it must be between 100 and 4096.")
        other = priorities.get((p["direction"], prio))
        if other:
            raise ArmFailure(400, "SecurityRuleConflict",  # code assumed
                             f"Security rules {other} and {name} have the same priority {prio} and direction {p['direction']}.")
        priorities[(p["direction"], prio)] = name
        p["provisioningState"] = "Succeeded"
        out.append({"name": name, "id": f"{nsg_id}/securityRules/{name}", "etag": etag,
                    "type": f"{NET}/networkSecurityGroups/securityRules", "properties": p})
    return out


class IpConfigs:
    """A NIC's ip configurations checked as ARM does; dynamic addresses allocated lowest-first."""

    def __init__(self, resources: Mapping[str, dict[str, Any]], nic_id: str, max_ip_configs: int):
        self.resources, self.nic_id, self.max = resources, nic_id, max_ip_configs

    def check(self, cfgs: Any, existing: dict[str, Any] | None, etag: str) -> list[dict[str, Any]]:
        cfgs = expect(cfgs, list, "properties.ipConfigurations") or []
        nic_id = self.nic_id
        if not cfgs:
            raise ArmFailure(400, "NetworkInterfaceMustHaveIpConfiguration", f"{nic_id} needs an ipConfiguration.")
        if len(cfgs) > self.max:
            # ARM's exact code for this limit is not documented; the emulator names it plainly.
            raise ArmFailure(400, "IpConfigurationCountLimitReached",
                             f"Network interface {nic_id} would have {len(cfgs)} IP configurations; the limit is {self.max}.")
        before = {c["name"].lower(): c for c in ((existing or {}).get("properties") or {}).get("ipConfigurations") or []}
        out = self._entries(cfgs, etag)
        primaries = [c for c in out if c["properties"].get("primary")]
        if not primaries:  # Azure makes the first configuration primary (NetworkInterfaceCreate example)
            out[0]["properties"]["primary"] = True
            primaries = [out[0]]
        elif len(primaries) != 1:
            raise ArmFailure(400, "NetworkInterfaceMustHaveOnePrimaryIpConfiguration",
                             f"Network interface {nic_id} has {len(primaries)} primary IP configurations; exactly one is required.")
        taken = self._addresses_in_use()
        mine: dict[str, str] = {}
        dynamic: list[tuple[dict[str, Any], IPv4Network, str]] = []
        primary_subnet = dict((primaries or out)[0]["properties"].get("subnet") or {})
        for c in out:
            p, cid = c["properties"], c["id"]
            if not (p.get("subnet") or {}).get("id"):
                p["subnet"] = dict(primary_subnet)  # Azure puts a later configuration in the primary's subnet
            p.setdefault("primary", False)
            p["provisioningState"] = "Succeeded"
            p.setdefault("privateIPAddressVersion", "IPv4")
            net, vnet_id = self._subnet_of(cid, p)
            addr = p.get("privateIPAddress")
            method = p.get("privateIPAllocationMethod") or ("Static" if addr else "Dynamic")
            p["privateIPAllocationMethod"] = method
            length = self._prefix_length(c)
            if method == "Dynamic":
                # A dynamic address stays with its configuration across updates, as in Azure.
                addr = (((before.get(c["name"].lower()) or {}).get("properties")) or {}).get("privateIPAddress")
                if not addr:
                    dynamic.append((c, net, vnet_id))
                    continue
            elif not addr:
                raise ArmFailure(400, "PrivateIPAddressMissing",
                                 f"Private IP address is required when privateIPAllocationMethod is Static in IP configuration {cid}.")
            if length is not None:
                p["privateIPAddress"] = self._claim_prefix(cid, str(addr), length, net, vnet_id, taken, mine)
                continue
            self._claim(cid, str(addr), net, vnet_id, taken, mine)
            p["privateIPAddress"] = str(addr)
        for c, net, vnet_id in dynamic:
            used = {a for (v, a) in taken if v == vnet_id} | set(mine)
            length = self._prefix_length(c)
            if length is not None:
                c["properties"]["privateIPAddress"] = self._prefix(c, net, int(length), used, mine)
                continue
            free = next((str(IPv4Address(i)) for i in range(first_assignable(net), int(net.broadcast_address))
                         if str(IPv4Address(i)) not in used), None)
            if free is None:
                raise ArmFailure(400, "SubnetIsFull", f"Subnet {c['properties']['subnet']['id']} has no free address.")
            self._claim(c["id"], free, net, vnet_id, taken, mine)
            c["properties"]["privateIPAddress"] = free
        return out

    @staticmethod
    def _prefix_length(c: dict[str, Any]) -> int | None:
        """``privateIPAddressPrefixLength`` as the service takes it: a non-primary configuration's, /28
        only (azure-cli #30837: "Must not be a primary config; Must be a /28 prefix (Verify on the
        service side)"; the codes are assumed, docs/decisions/0028)."""
        p = c["properties"]
        length = expect(p.get("privateIPAddressPrefixLength"), int,
                        "properties.ipConfigurations[].properties.privateIPAddressPrefixLength")
        if length is None:
            return None
        if isinstance(length, bool) or not 1 <= length <= 128:  # the schema's bounds
            raise ArmFailure(400, "InvalidRequestFormat", f"privateIPAddressPrefixLength {length!r} of {c['id']} is out of range.")
        if p.get("primary"):
            raise ArmFailure(400, "PrimaryIpConfigurationCannotHavePrefix",  # code assumed
                             f"The primary IP configuration {c['id']} cannot have privateIPAddressPrefixLength.")
        if length != NIC_PREFIX_LEN:
            raise ArmFailure(400, "InvalidPrivateIPAddressPrefixLength",  # code assumed
                             f"privateIPAddressPrefixLength {length} of {c['id']} is not supported; only "
                             f"{NIC_PREFIX_LEN} is.")
        return int(length)

    @classmethod
    def _claim_prefix(cls, cid: str, addr: str, length: int, net: IPv4Network, vnet_id: str,
                      taken: dict[tuple[str, str], str], mine: dict[str, str]) -> str:
        """A static IP prefix: its network address bare or in CIDR form (as a GET returns it),
        aligned, inside the subnet, holding no reserved or allocated address; stored in CIDR form."""
        base, _, given = addr.partition("/")
        try:
            block = IPv4Network(f"{base}/{length}", strict=True)
        except ValueError:
            raise ArmFailure(400, "InvalidRequestFormat",  # ASSUMPTION: ARM's code for a malformed value
                             f"{addr!r} in IP configuration {cid} is not the network address of a /{length} "
                             "prefix.") from None
        if given and given != str(length):
            raise ArmFailure(400, "InvalidRequestFormat",
                             f"{addr!r} in IP configuration {cid} does not match privateIPAddressPrefixLength {length}.")
        if not block.subnet_of(net):
            raise ArmFailure(400, "PrivateIPAddressNotInSubnet",
                             f"IP configuration {cid} has private IP prefix {block}, which is not in subnet {net}.")
        for a in block:
            cls._claim(cid, str(a), net, vnet_id, taken, mine)
        return str(block)

    @staticmethod
    def _prefix(c: dict[str, Any], net: IPv4Network, length: int, used: set[str], mine: dict[str, str]) -> str:
        """A dynamic IP prefix (privateIPAddressPrefixLength): the lowest aligned free block of the subnet."""
        if not net.prefixlen <= length <= 32:
            raise ArmFailure(400, "InvalidPrivateIPAddressPrefixLength",  # code assumed
                             f"privateIPAddressPrefixLength {length} of {c['id']} does not fit subnet {net}.")
        for block in net.subnets(new_prefix=length):
            addrs = [str(a) for a in (block if block.num_addresses > 1 else [block.network_address])]
            if not any(is_reserved(IPv4Address(a), net) or a in used for a in addrs):
                for a in addrs:
                    mine[a] = c["id"]
                return f"{block.network_address}/{length}"
        raise ArmFailure(400, "SubnetIsFull", f"Subnet {net} has no free /{length} for {c['id']}.")

    def _entries(self, cfgs: list[Any], etag: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        names: set[str] = set()
        for i, c in enumerate(cfgs):
            expect(c, dict, f"properties.ipConfigurations[{i}]", optional=False)
            name = expect(c.get("name"), str, f"properties.ipConfigurations[{i}].name") or ""
            if not name or name.lower() in names:
                raise ArmFailure(400, "InvalidRequestFormat",
                                 f"IP configuration name {name!r} is empty or repeated in {self.nic_id}.")
            check_name("ipConfigurations", name)
            names.add(name.lower())
            raw = expect(c.get("properties"), dict, f"properties.ipConfigurations[{i}].properties") or {}
            props = {k: v for k, v in raw.items() if k != "provisioningState"}
            expect(props.get("subnet"), dict, f"properties.ipConfigurations[{i}].properties.subnet")
            refuse_unmodelled(props, f"{self.nic_id}/ipConfigurations/{name}")
            out.append({"id": f"{self.nic_id}/ipConfigurations/{name}", "name": name, "etag": etag,
                        "type": f"{NET}/networkInterfaces/ipConfigurations", "properties": props})
        return out

    def _subnet_of(self, cid: str, p: dict[str, Any]) -> tuple[IPv4Network, str]:
        subnet_id = str((p.get("subnet") or {}).get("id") or "")
        vnet_id = parent_of(subnet_id)
        vnet = self.resources.get(key(vnet_id)) if vnet_id else None
        sub = next((s for s in ((vnet or {}).get("properties") or {}).get("subnets") or []
                    if s["id"].lower() == subnet_id.lower()), None)
        if sub is None:
            raise ArmFailure(400, "InvalidResourceReference", f"Subnet {subnet_id or '(none)'} referenced by {cid} was not found.")
        p["subnet"] = {"id": sub["id"]}
        return ip_network(subnet_prefix(sub)), vnet_id.lower()

    def _addresses_in_use(self) -> dict[tuple[str, str], str]:
        """(vnet id, address) -> the ip configuration that holds it, over every other NIC."""
        out: dict[tuple[str, str], str] = {}
        for r in self.resources.values():
            if r["type"] != f"{NET}/networkInterfaces" or r["id"].lower() == self.nic_id.lower():
                continue
            for c in r["properties"].get("ipConfigurations") or []:
                p = c.get("properties") or {}
                subnet_id = str((p.get("subnet") or {}).get("id") or "")
                if p.get("privateIPAddress"):
                    held = ip_network(str(p["privateIPAddress"]), strict=False)  # an address or an IP prefix
                    for a in (held if held.num_addresses > 1 else [held.network_address]):
                        out[(parent_of(subnet_id).lower(), str(a))] = c.get("id") or r["id"]
        return out

    @staticmethod
    def _claim(cid: str, addr: str, net: IPv4Network, vnet_id: str,
               taken: dict[tuple[str, str], str], mine: dict[str, str]) -> None:
        try:
            a = IPv4Address(addr)
        except ValueError:
            raise ArmFailure(400, "InvalidPrivateIPAddress", f"{addr!r} in IP configuration {cid} is not an IPv4 address.") from None
        if a not in net:
            raise ArmFailure(400, "PrivateIPAddressNotInSubnet",
                             f"IP configuration {cid} has private IP address {addr}, which is not in subnet {net}.")
        if is_reserved(a, net):
            raise ArmFailure(400, "PrivateIPAddressInReservedRange",
                             f"Private IP address {addr} of IP configuration {cid} is in the reserved range of subnet {net}.")
        holder = taken.get((vnet_id, addr)) or mine.get(addr)
        if holder:
            raise ArmFailure(400, "PrivateIPAddressIsAllocated",
                             f"IP configuration {cid} is using the private IP address {addr} which is already allocated "
                             f"to resource {holder}.")
        mine[addr] = cid


# References to resource types the emulator does not store (nestnet neither creates nor reads them,
# and users of nested hosts have not asked for them): each can only name a resource that does not
# exist here, and ARM refuses a reference to a missing resource with InvalidResourceReference (as for
# a missing NSG or subnet). Public IPs, ASGs, load balancer pools/NAT rules and vTAPs are stored
# (referenced.py) and their references checked there.
UNMODELLED_REFERENCES = ("dscpConfiguration", "applicationGatewayBackendAddressPools", "gatewayLoadBalancer")


def refuse_unmodelled(props: Mapping[str, Any], owner: str) -> None:
    for prop in UNMODELLED_REFERENCES:
        value = props.get(prop)
        refs = value if isinstance(value, list) else [value] if value else []
        for ref in refs:
            rid = ref.get("id") if isinstance(ref, dict) else ref
            if rid:
                raise ArmFailure(400, "InvalidResourceReference",
                                 f"Resource {rid} referenced by resource {owner} was not found. Please make sure that the "
                                 "referenced resource exists, and that both resources are in the same region.")


def subnet_prefix(subnet: dict[str, Any]) -> str:
    """A subnet's (first) address prefix: ``addressPrefix`` or the first of ``addressPrefixes``."""
    p = subnet.get("properties") or {}
    return str(p.get("addressPrefix") or (p.get("addressPrefixes") or ["0.0.0.0/32"])[0])
