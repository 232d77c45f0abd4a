"""An emulated ARM endpoint: the Microsoft.Network subset nestnet uses, over real HTTPS.

Faithful where the unmodified ``azure-mgmt-network`` client and nestnet's reconciler can tell:
resource ids, etags that change on every write, ``If-Match`` -> 412 with an ARM error body,
writes as long-running operations (``Azure-AsyncOperation`` polled until ``Succeeded``, then the
client's final GET), ``effectiveRouteTable`` as a POST with a ``Location`` result, 429 with
``Retry-After`` on demand, NIC ip configurations checked as ARM does (one primary, static
addresses inside their subnet and not reserved, an address on one configuration of the VNet
only: 400 ``PrivateIPAddressIsAllocated``; dynamic ones get the lowest free address). State is one JSON file in the state directory, rewritten after every
write, so a restart keeps it. Pure request handling (``Arm.handle``) is apart from the HTTP
server so both the CLI and tests run it the same way.
"""

from __future__ import annotations

import json
import os
import random
import re
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import UsageError

NET = "Microsoft.Network"
TYPES = {"virtualnetworks": "virtualNetworks", "networkinterfaces": "networkInterfaces", "routetables": "routeTables"}
CHILDREN = {"virtualnetworks": "subnets", "routetables": "routes"}
DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
STATE_FILE = "state.json"

_RES = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.network/"
    r"(?P<type>virtualnetworks|networkinterfaces|routetables)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<child>subnets|routes|effectiveroutetable)(?:/(?P<cname>[^/]+))?)?)?/?$",
    re.IGNORECASE,
)
_OP = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/microsoft\.network/locations/(?P<loc>[^/]+)/"
    r"(?P<kind>operations|operationresults)/(?P<id>[^/]+)$",
    re.IGNORECASE,
)


class ArmFailure(Exception):
    """An ARM error answer: status, code, message (becomes ``{"error": {...}}``)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def _key(rid: str) -> str:
    return rid.lower()


def _rid(sub: str, rg: str, rtype: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{NET}/{TYPES[rtype.lower()]}/{name}"


@dataclass
class Stats:
    requests: int = 0  # every ARM request, throttled or not
    reads: int = 0  # GETs answered (including LRO polls and final GETs)
    writes: int = 0  # PUT/DELETE answered (successful or refused)
    actions: int = 0  # POSTs (effectiveRouteTable)
    throttled: int = 0  # answered 429
    precondition_failed: int = 0  # answered 412

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Arm:
    """The emulated resource provider: state + request handling, thread-safe, persisted to ``state_dir``."""

    def __init__(
        self,
        state_dir: Path,
        *,
        inject_429: float = 0.0,
        retry_after: str = "1",
        max_routes: int = 400,
        max_ip_configs: int = 256,
        rng_seed: int | None = 0,
        on_change: Callable[["Arm"], None] | None = None,
    ):
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / STATE_FILE
        self.inject_429 = inject_429
        self.retry_after = retry_after
        self.max_routes = max_routes
        self.max_ip_configs = max_ip_configs
        self.stats = Stats()
        self._rng = random.Random(rng_seed)
        self._lock = threading.RLock()
        self._ops: dict[str, dict[str, Any]] = {}
        # Called after every accepted write, e.g. by the lab to re-program its fabric namespace.
        self.on_change = on_change
        self.resources: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self.resources = json.loads(self.path.read_text())["resources"]

    # -- persistence -------------------------------------------------------------------------
    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"resources": self.resources}, indent=1, sort_keys=True))
        os.replace(tmp, self.path)
        if self.on_change is not None:
            self.on_change(self)

    # -- seeding (what Terraform would have created) -----------------------------------------
    def seed(self, plan: Any) -> None:
        """Create the plan's VNet, subnets and host NICs (forwarding off, no routes) if missing."""
        az = plan.azure
        sub = az.subscription_id or DEFAULT_SUBSCRIPTION
        loc = az.location or "eastus"
        rg = az.resource_group
        with self._lock:
            vid = _rid(sub, rg, "virtualnetworks", az.vnet)
            if _key(vid) not in self.resources:
                vtag = _etag()
                self.resources[_key(vid)] = {
                    "id": vid,
                    "name": az.vnet,
                    "type": f"{NET}/virtualNetworks",
                    "location": loc,
                    "etag": vtag,
                    "properties": {
                        "provisioningState": "Succeeded",
                        "addressSpace": {"addressPrefixes": [str(n) for n in az.address_space]},
                        "subnets": [
                            {
                                "id": f"{vid}/subnets/{s.name}",
                                "name": s.name,
                                "etag": vtag,
                                "type": f"{NET}/virtualNetworks/subnets",
                                "properties": {"provisioningState": "Succeeded", "addressPrefix": str(s.prefix)},
                            }
                            for s in plan.subnets.values()
                        ],
                    },
                }
            for h in plan.hosts.values():
                nid = _rid(sub, rg, "networkinterfaces", h.nic)
                if _key(nid) in self.resources:
                    continue
                self.resources[_key(nid)] = {
                    "id": nid,
                    "name": h.nic,
                    "type": f"{NET}/networkInterfaces",
                    "location": loc,
                    "etag": _etag(),
                    "properties": {
                        "provisioningState": "Succeeded",
                        "enableIPForwarding": False,
                        "ipConfigurations": [
                            {
                                "id": f"{nid}/ipConfigurations/ipconfig1",
                                "name": "ipconfig1",
                                "properties": {
                                    "primary": True,
                                    "privateIPAddress": str(h.ip),
                                    "privateIPAllocationMethod": "Static",
                                    "privateIPAddressVersion": "IPv4",
                                    "subnet": {"id": f"{vid}/subnets/{h.subnet}"},
                                },
                            }
                        ],
                    },
                }
            self.save()

    # -- request handling ----------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes, base: str) -> Reply:
        url = urlsplit(target)
        path = unquote(url.path)
        if path == "/_emulator/stats":
            return Reply(200, self.stats.to_dict())
        with self._lock:
            self.stats.requests += 1
            if method == "GET":
                self.stats.reads += 1
            elif method in ("PUT", "DELETE", "PATCH"):
                self.stats.writes += 1
            elif method == "POST":
                self.stats.actions += 1
            if self.inject_429 and self._rng.random() < self.inject_429:
                self.stats.throttled += 1
                return Reply(
                    429,
                    _error(
                        "RetryableErrorDueToAnotherOperation",
                        "Operation is not allowed because another operation on this resource is in progress "
                        "(emulated throttling).",
                    ),
                    {"Retry-After": self.retry_after},
                )
            if not headers.get("authorization", "").startswith("Bearer "):
                return Reply(401, _error("AuthenticationFailed", "Authentication failed: no bearer token."))
            if "api-version" not in parse_qs(url.query):
                return Reply(400, _error("MissingApiVersionParameter", "The api-version query parameter is required."))
            try:
                reply = self._route(method, path, headers, body, base)
            except ArmFailure as f:
                if f.status == 412:
                    self.stats.precondition_failed += 1
                return Reply(f.status, _error(f.code, f.message))
            return reply

    def _route(self, method: str, path: str, headers: dict[str, str], body: bytes, base: str) -> Reply:
        m = _OP.match(path)
        if m and method == "GET":
            op = self._ops.get(m["id"])
            if op is None:
                raise ArmFailure(404, "OperationNotFound", f"Operation {m['id']} was not found.")
            if m["kind"].lower() == "operations":
                return Reply(200, {"status": "Succeeded", "name": m["id"]})
            return Reply(200, op["result"])
        m = _RES.match(path)
        if not m:
            raise ArmFailure(404, "InvalidResourceType", f"No emulated resource at {path}.")
        sub, rg, rtype = m["sub"], m["rg"], m["type"].lower()
        name, child, cname = m["name"], (m["child"] or "").lower(), m["cname"]
        if name is None:
            if method != "GET":
                raise ArmFailure(405, "MethodNotAllowed", f"{method} is not allowed on a collection.")
            prefix = _key(_rid(sub, rg, rtype, ""))
            items = [self._view(r) for k, r in sorted(self.resources.items()) if k.startswith(prefix) and "/" not in k[len(prefix):]]
            return Reply(200, {"value": items})
        rid = _rid(sub, rg, rtype, name)
        if child == "effectiveroutetable":
            if method != "POST" or rtype != "networkinterfaces":
                raise ArmFailure(405, "MethodNotAllowed", "effectiveRouteTable takes POST on a network interface.")
            nic = self._get(rid)
            return self._lro(202, None, base, sub, nic.get("location", "eastus"), result={"value": self._effective(nic)})
        if child:
            if CHILDREN.get(rtype) != child:
                raise ArmFailure(404, "InvalidResourceType", f"{TYPES[rtype]} has no {child}.")
            return self._child(method, rid, rtype, child, cname, headers, body, base, sub)
        if method == "GET":
            return Reply(200, self._view(self._get(rid)))
        if method == "PUT":
            existing = self.resources.get(_key(rid))
            _preconditions(headers, existing, rid)
            res = self._normalise(rtype, rid, name, _json(body), existing)
            self.resources[_key(rid)] = res
            self.save()
            return self._lro(200 if existing else 201, self._view(res, updating=True), base, sub, res["location"])
        if method == "DELETE":
            existing = self.resources.get(_key(rid))
            if existing is None:
                return Reply(204)
            _preconditions(headers, existing, rid)
            if rtype == "routetables" and self._subnets_using(rid):
                raise ArmFailure(
                    400,
                    "InUseRouteTableCannotBeDeleted",
                    f"Route table {rid} is in use by subnets {', '.join(self._subnets_using(rid))} and cannot be deleted.",
                )
            del self.resources[_key(rid)]
            self.save()
            return self._lro(202, None, base, sub, existing.get("location", "eastus"))
        raise ArmFailure(405, "MethodNotAllowed", f"{method} is not allowed here.")

    def _child(
        self, method: str, rid: str, rtype: str, child: str, cname: str | None,
        headers: dict[str, str], body: bytes, base: str, sub: str,
    ) -> Reply:
        parent = self._get(rid)
        items: list[dict[str, Any]] = parent["properties"].setdefault(child, [])
        if cname is None:
            if method != "GET":
                raise ArmFailure(405, "MethodNotAllowed", f"{method} is not allowed on a collection.")
            return Reply(200, {"value": [self._view_child(parent, c) for c in items]})
        idx = next((i for i, c in enumerate(items) if c["name"].lower() == cname.lower()), None)
        cid = f"{parent['id']}/{child}/{cname}"
        if method == "GET":
            if idx is None:
                raise ArmFailure(404, "NotFound", f"Resource {cid} not found.")
            return Reply(200, self._view_child(parent, items[idx]))
        if method == "PUT":
            existing = items[idx] if idx is not None else None
            _preconditions(headers, existing, cid)
            new = _json(body)
            new_items = list(items)
            entry = {"name": cname, "properties": dict(new.get("properties") or {})}
            if idx is None:
                new_items.append(entry)
            else:
                new_items[idx] = entry
            trial = dict(parent, properties=dict(parent["properties"], **{child: new_items}))
            res = self._normalise(rtype, parent["id"], parent["name"], trial, parent)
            self.resources[_key(parent["id"])] = res
            self.save()
            out = next(c for c in res["properties"][child] if c["name"].lower() == cname.lower())
            return self._lro(200 if existing else 201, self._view_child(res, out, updating=True), base, sub, res["location"])
        if method == "DELETE":
            if idx is None:
                return Reply(204)
            if child == "subnets":
                raise ArmFailure(400, "InUseSubnetCannotBeDeleted", "The emulator does not delete subnets.")
            new_items = [c for i, c in enumerate(items) if i != idx]
            trial = dict(parent, properties=dict(parent["properties"], **{child: new_items}))
            self.resources[_key(parent["id"])] = self._normalise(rtype, parent["id"], parent["name"], trial, parent)
            self.save()
            return self._lro(202, None, base, sub, parent.get("location", "eastus"))
        raise ArmFailure(405, "MethodNotAllowed", f"{method} is not allowed here.")

    # -- helpers ---------------------------------------------------------------------------------
    def _get(self, rid: str) -> dict[str, Any]:
        res = self.resources.get(_key(rid))
        if res is None:
            parts = rid.split("/")
            raise ArmFailure(
                404,
                "ResourceNotFound",
                f"The Resource '{NET}/{parts[-2]}/{parts[-1]}' under resource group '{parts[4]}' was not found.",
            )
        return res

    def _lro(
        self, status: int, body: Any, base: str, sub: str, location: str, result: Any = None
    ) -> Reply:
        op = str(uuid.uuid4())
        self._ops[op] = {"result": result}
        root = f"{base}/subscriptions/{sub}/providers/{NET}/locations/{location}"
        headers = {"Azure-AsyncOperation": f"{root}/operations/{op}?api-version=2024-05-01"}
        if status == 202:
            headers["Location"] = f"{root}/operationResults/{op}?api-version=2024-05-01"
        return Reply(status, body, headers)

    def _subnets_using(self, table_id: str) -> list[str]:
        out = []
        for r in self.resources.values():
            if r["type"] != f"{NET}/virtualNetworks":
                continue
            for s in r["properties"].get("subnets", []):
                ref = (s["properties"].get("routeTable") or {}).get("id", "")
                if ref.lower() == table_id.lower():
                    out.append(s["id"])
        return out

    def _view(self, res: dict[str, Any], updating: bool = False) -> dict[str, Any]:
        out = json.loads(json.dumps(res))
        if res["type"] == f"{NET}/routeTables":
            out["properties"]["subnets"] = [{"id": s} for s in self._subnets_using(res["id"])]
        if updating:
            out["properties"]["provisioningState"] = "Updating"
        return out

    def _view_child(self, parent: dict[str, Any], c: dict[str, Any], updating: bool = False) -> dict[str, Any]:
        out = json.loads(json.dumps(c))
        if updating:
            out["properties"]["provisioningState"] = "Updating"
        return out

    def _normalise(
        self, rtype: str, rid: str, name: str, body: dict[str, Any], existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Check a PUT body the way ARM would and return the stored resource (new etags)."""
        if not isinstance(body, dict):
            raise ArmFailure(400, "InvalidRequestFormat", "The request body must be a JSON object.")
        props = dict(body.get("properties") or {})
        location = body.get("location") or (existing or {}).get("location")
        if not location:
            raise ArmFailure(400, "LocationRequired", "The location property is required for this definition.")
        res: dict[str, Any] = {
            "id": rid,
            "name": name,
            "type": f"{NET}/{TYPES[rtype]}",
            "location": location,
            "etag": _etag(),
        }
        if body.get("tags") is not None:
            res["tags"] = dict(body["tags"])
        props.pop("provisioningState", None)
        if rtype == "routetables":
            props.pop("subnets", None)  # read-only back-references, computed on GET
        props["provisioningState"] = "Succeeded"
        if rtype == "routetables":
            props["routes"] = self._check_routes(rid, props.get("routes") or [])
            props.setdefault("disableBgpRoutePropagation", False)
        elif rtype == "virtualnetworks":
            # As in Azure, a VNet's subnets carry the VNet's etag: any write changes all of them.
            props["subnets"] = [self._check_subnet(rid, s, res["etag"]) for s in props.get("subnets") or []]
        elif rtype == "networkinterfaces":
            props["enableIPForwarding"] = bool(props.get("enableIPForwarding", False))
            props["ipConfigurations"] = self._check_ip_configs(rid, props.get("ipConfigurations") or [], existing, res["etag"])
        res["properties"] = props
        return res

    def _check_routes(self, table_id: str, routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(routes) > self.max_routes:
            raise ArmFailure(
                400, "RouteTableRouteLimitReached",
                f"Route table {table_id} would have {len(routes)} routes; the limit is {self.max_routes}.",
            )
        seen_names: set[str] = set()
        seen_prefixes: dict[str, str] = {}
        out = []
        for r in routes:
            name = r.get("name") or ""
            p = r.get("properties") or {}
            prefix, hop, hop_ip = p.get("addressPrefix"), p.get("nextHopType"), p.get("nextHopIpAddress")
            if not name or name.lower() in seen_names:
                raise ArmFailure(400, "InvalidRouteName", f"Route name {name!r} is empty or repeated in {table_id}.")
            seen_names.add(name.lower())
            try:
                net = ip_network(str(prefix), strict=True)
            except ValueError:
                raise ArmFailure(
                    400, "InvalidRouteAddressPrefix",
                    f"Route {name} has address prefix {prefix!r}, which is not a valid network address.",
                ) from None
            if str(net) in seen_prefixes:
                raise ArmFailure(
                    400, "RouteConflict",
                    f"Route {name} has the same address prefix {net} as route {seen_prefixes[str(net)]}.",
                )
            seen_prefixes[str(net)] = name
            if hop not in ("VirtualAppliance", "VnetLocal", "Internet", "VirtualNetworkGateway", "None"):
                raise ArmFailure(400, "InvalidNextHopType", f"Route {name} has next hop type {hop!r}.")
            if hop == "VirtualAppliance":
                try:
                    ip_address(str(hop_ip))
                except ValueError:
                    raise ArmFailure(
                        400, "InvalidNextHopIpAddress", f"Route {name} needs a next hop IP address, got {hop_ip!r}."
                    ) from None
            props = {"addressPrefix": str(net), "nextHopType": hop, "provisioningState": "Succeeded"}
            if hop_ip is not None and hop == "VirtualAppliance":
                props["nextHopIpAddress"] = str(hop_ip)
            out.append({"id": f"{table_id}/routes/{name}", "name": name, "etag": _etag(),
                        "type": f"{NET}/routeTables/routes", "properties": props})
        return out

    def _check_ip_configs(
        self, nic_id: str, cfgs: list[dict[str, Any]], existing: dict[str, Any] | None, etag: str
    ) -> list[dict[str, Any]]:
        """A NIC's ip configurations as ARM checks them; dynamic addresses allocated lowest-first."""
        if not cfgs:
            raise ArmFailure(400, "NetworkInterfaceMustHaveIpConfiguration", f"{nic_id} needs an ipConfiguration.")
        if len(cfgs) > self.max_ip_configs:
            # ARM's exact code for this limit is not documented; the emulator names it plainly.
            raise ArmFailure(
                400, "IpConfigurationCountLimitReached",
                f"Network interface {nic_id} would have {len(cfgs)} IP configurations; the limit is {self.max_ip_configs}.",
            )
        before = {c["name"].lower(): c for c in ((existing or {}).get("properties") or {}).get("ipConfigurations") or []}
        out: list[dict[str, Any]] = []
        names: set[str] = set()
        for c in cfgs:
            name = c.get("name") or ""
            if not name or name.lower() in names:
                raise ArmFailure(400, "InvalidRequestFormat", f"IP configuration name {name!r} is empty or repeated in {nic_id}.")
            names.add(name.lower())
            props = {k: v for k, v in (c.get("properties") or {}).items() if k != "provisioningState"}
            out.append({"id": f"{nic_id}/ipConfigurations/{name}", "name": name, "etag": etag,
                        "type": f"{NET}/networkInterfaces/ipConfigurations", "properties": props})
        primaries = [c for c in out if c["properties"].get("primary")]
        if len(out) == 1 and not primaries:
            out[0]["properties"]["primary"] = True
        elif len(primaries) != 1:
            raise ArmFailure(
                400, "NetworkInterfaceMustHaveOnePrimaryIpConfiguration",
                f"Network interface {nic_id} has {len(primaries)} primary IP configurations; exactly one is required.",
            )
        taken = self._addresses_in_use(exclude_nic=nic_id)
        mine: dict[str, str] = {}
        dynamic: list[tuple[dict[str, Any], IPv4Network]] = []
        for c in out:
            p, cid = c["properties"], c["id"]
            p.setdefault("primary", False)
            p.setdefault("privateIPAddressVersion", "IPv4")
            net, vnet_id = self._subnet_of(cid, p)
            addr = p.get("privateIPAddress")
            method = p.get("privateIPAllocationMethod") or ("Static" if addr else "Dynamic")
            p["privateIPAllocationMethod"] = method
            if method == "Dynamic":
                # A dynamic address stays with its configuration across updates, as in Azure.
                addr = _address_of(before.get(c["name"].lower()))
                if not addr:
                    dynamic.append((c, net))
                    continue
            elif not addr:
                raise ArmFailure(400, "PrivateIPAddressMissing",
                                 f"Private IP address is required when privateIPAllocationMethod is Static in IP configuration {cid}.")
            self._claim(cid, str(addr), net, vnet_id, taken, mine)
            p["privateIPAddress"] = str(addr)
        for c, net in dynamic:
            vnet_id = c["properties"]["subnet"]["id"].rsplit("/subnets/", 1)[0].lower()
            used = {a for (v, a) in taken if v == vnet_id} | set(mine)
            first = int(net.network_address) + 4  # Azure reserves the first four and the last address
            free = next((str(IPv4Address(i)) for i in range(first, int(net.broadcast_address)) if str(IPv4Address(i)) not in used), None)
            if free is None:
                raise ArmFailure(400, "SubnetIsFull", f"Subnet {c['properties']['subnet']['id']} has no free address.")
            self._claim(c["id"], free, net, vnet_id, taken, mine)
            c["properties"]["privateIPAddress"] = free
        return out

    def _subnet_of(self, cid: str, p: dict[str, Any]) -> tuple[IPv4Network, str]:
        subnet_id = str((p.get("subnet") or {}).get("id") or "")
        vnet_id = subnet_id.rsplit("/subnets/", 1)[0]
        vnet = self.resources.get(_key(vnet_id)) if "/subnets/" in subnet_id else None
        sub = next((s for s in ((vnet or {}).get("properties") or {}).get("subnets") or []
                    if s["id"].lower() == subnet_id.lower()), None)
        if sub is None:
            raise ArmFailure(400, "InvalidResourceReference", f"Subnet {subnet_id or '(none)'} referenced by {cid} was not found.")
        p["subnet"] = {"id": sub["id"]}
        return ip_network(sub["properties"]["addressPrefix"]), vnet_id.lower()

    def _addresses_in_use(self, exclude_nic: str) -> dict[tuple[str, str], str]:
        """(vnet id, address) -> the ip configuration that holds it, over every other NIC."""
        out: dict[tuple[str, str], str] = {}
        for r in self.resources.values():
            if r["type"] != f"{NET}/networkInterfaces" or r["id"].lower() == exclude_nic.lower():
                continue
            for c in r["properties"].get("ipConfigurations") or []:
                p = c.get("properties") or {}
                subnet_id = str((p.get("subnet") or {}).get("id") or "")
                if p.get("privateIPAddress"):
                    out[(subnet_id.rsplit("/subnets/", 1)[0].lower(), str(p["privateIPAddress"]))] = c.get("id") or r["id"]
        return out

    @staticmethod
    def _claim(
        cid: str, addr: str, net: IPv4Network, vnet_id: str, taken: dict[tuple[str, str], str], mine: dict[str, str]
    ) -> None:
        try:
            a = IPv4Address(addr)
        except ValueError:
            raise ArmFailure(400, "InvalidPrivateIPAddress", f"{addr!r} in IP configuration {cid} is not an IPv4 address.") from None
        if a not in net:
            raise ArmFailure(400, "PrivateIPAddressNotInSubnet",
                             f"IP configuration {cid} has private IP address {addr}, which is not in subnet {net}.")
        if int(a) - int(net.network_address) < 4 or a == net.broadcast_address:
            raise ArmFailure(400, "PrivateIPAddressInReservedRange",
                             f"Private IP address {addr} of IP configuration {cid} is in the reserved range of subnet {net}.")
        holder = taken.get((vnet_id, addr)) or mine.get(addr)
        if holder:
            raise ArmFailure(400, "PrivateIPAddressIsAllocated",
                             f"IP configuration {cid} is using the private IP address {addr} which is already allocated "
                             f"to resource {holder}.")
        mine[addr] = cid

    def _check_subnet(self, vnet_id: str, s: dict[str, Any], etag: str) -> dict[str, Any]:
        name = s.get("name") or ""
        props = {k: v for k, v in (s.get("properties") or {}).items() if k != "provisioningState"}
        ref = (props.get("routeTable") or {}).get("id")
        if ref:
            if _key(ref) not in self.resources:
                raise ArmFailure(400, "InvalidResourceReference", f"Route table {ref} referenced by subnet {name} was not found.")
            props["routeTable"] = {"id": self.resources[_key(ref)]["id"]}
        else:
            props.pop("routeTable", None)
        props["provisioningState"] = "Succeeded"
        return {"id": f"{vnet_id}/subnets/{name}", "name": name, "etag": etag,
                "type": f"{NET}/virtualNetworks/subnets", "properties": props}

    def _effective(self, nic: dict[str, Any]) -> list[dict[str, Any]]:
        """Default routes of the NIC's VNet plus the user routes of its subnet's table."""
        cfgs = nic["properties"]["ipConfigurations"]
        cfg = next((c for c in cfgs if c["properties"].get("primary")), cfgs[0])["properties"]
        subnet_id = (cfg.get("subnet") or {}).get("id", "")
        vnet_id = subnet_id.rsplit("/subnets/", 1)[0]
        vnet = self.resources.get(_key(vnet_id))
        out: list[dict[str, Any]] = []
        if vnet:
            for p in vnet["properties"]["addressSpace"]["addressPrefixes"]:
                out.append(_eff("Default", [p], "VnetLocal"))
        out.append(_eff("Default", ["0.0.0.0/0"], "Internet"))
        sub = next(
            (s for s in (vnet or {}).get("properties", {}).get("subnets", []) if s["id"].lower() == subnet_id.lower()),
            None,
        )
        ref = ((sub or {}).get("properties", {}).get("routeTable") or {}).get("id")
        table = self.resources.get(_key(ref)) if ref else None
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


def _address_of(cfg: dict[str, Any] | None) -> str | None:
    return ((cfg or {}).get("properties") or {}).get("privateIPAddress")


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"{}")
    except ValueError:
        raise ArmFailure(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.") from None


def _preconditions(headers: dict[str, str], existing: dict[str, Any] | None, rid: str) -> None:
    if_match = headers.get("if-match")
    if if_match:
        if existing is None or (if_match != "*" and if_match != existing.get("etag")):
            raise ArmFailure(
                412, "PreconditionFailed",
                f"Precondition failed for {rid}: If-Match {if_match} does not match the current etag "
                f"{existing.get('etag') if existing else '(none: resource does not exist)'}.",
            )
    if headers.get("if-none-match") == "*" and existing is not None:
        raise ArmFailure(412, "PreconditionFailed", f"Precondition failed for {rid}: the resource already exists.")


# -- HTTPS server -----------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as ARM; the SDK pools connections
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: "_Server"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        base = f"https://{self.headers.get('Host') or self.server.host_port}"
        try:
            reply = self.server.arm.handle(self.command, self.path, headers, body, base)
        except Exception as exc:  # an emulator bug must show as ARM's 500, not a dropped connection
            reply = Reply(500, _error("InternalServerError", f"emulator: {type(exc).__name__}: {exc}"))
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet: stats tell the story
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    arm: Arm
    host_port: str


class Emulator:
    """The HTTPS server around an ``Arm``: ``start()`` in a thread, ``url``, ``ca_pem``, ``stop()``."""

    def __init__(self, arm: Arm, host: str = "127.0.0.1", port: int = 0):
        import trustme

        self.arm = arm
        ca = trustme.CA()
        cert = ca.issue_cert(host, "localhost", "127.0.0.1")
        self.ca_pem = arm.state_dir / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_pem))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        self._server = _Server((host, port), _Handler)
        self._server.arm = arm
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        bound_host, bound_port = self._server.server_address[:2]
        self._server.host_port = f"{bound_host}:{bound_port}"
        self.url = f"https://{bound_host}:{bound_port}"
        self._thread: threading.Thread | None = None

    def start(self) -> "Emulator":
        (self.arm.state_dir / "endpoint").write_text(self.url + "\n")
        # A short poll interval so stop() returns quickly (tests start and stop many emulators).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="arm-emulator", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        (self.arm.state_dir / "endpoint").write_text(self.url + "\n")
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(5)


def parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    try:
        IPv4Address(host)
        n = int(port)
        if not 0 <= n <= 65535:
            raise ValueError
    except ValueError:
        raise UsageError(f"--listen {value!r}: expected IPv4:PORT, e.g. 127.0.0.1:8443") from None
    return host, n


def parse_inject(value: str) -> float:
    kind, _, rate = value.partition(":")
    try:
        r = float(rate)
        if kind != "429" or not 0.0 <= r < 1.0:
            raise ValueError
    except ValueError:
        raise UsageError(f"--inject {value!r}: expected 429:RATE with 0 <= RATE < 1, e.g. 429:0.3") from None
    return r


