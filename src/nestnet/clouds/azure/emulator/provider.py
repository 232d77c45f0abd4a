"""The emulated resource provider: ARM's request pipeline (auth, api-version, throttling,
preconditions, long-running operations) over the stored Microsoft.Network resources.

``Arm.handle`` is plain request -> reply, apart from the HTTP server, so the CLI and the tests run
it the same way. Thread-safe (one lock); every accepted write is saved before it is answered.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import uuid
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from . import privatedns
from .common import API_VERSION, CHILD_SPELLING, CHILDREN, NET, READ_ONLY_CHILDREN, TYPES, ArmFailure, Reply, key, rid
from .faults import Injector
from .referenced import OPERATION, REFERENCED_TYPES, refuse_delete_in_use
from .resources import (Limits, attached, effective_routes, normalise, seeded, subnet_users, subnets_using, view, view_child,
                        with_tags)
from .rules import check_api_version, check_name, wrong_type
from .store import Store

_RES = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)(?:/resourcegroups/(?P<rg>[^/]+))?/providers/microsoft\.network/"
    r"(?P<type>virtualnetworks|networkinterfaces|routetables|networksecuritygroups"
    r"|publicipaddresses|applicationsecuritygroups|loadbalancers|virtualnetworktaps)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<child>subnets|routes|securityrules|defaultsecurityrules|ipconfigurations"
    r"|effectiveroutetable)(?:/(?P<cname>[^/]+))?)?)?/?$",
    re.IGNORECASE,
)
_OP = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/microsoft\.network/locations/(?P<loc>[^/]+)/"
    r"(?P<kind>operations|operationresults)/(?P<id>[^/]+)$",
    re.IGNORECASE,
)
MAX_DEPTH = 64  # deeper JSON is refused (assumed: Json.NET's default MaxDepth, see 0009)
_OPERATION = {"routetables": "RouteTable", "virtualnetworks": "VirtualNetwork", "networkinterfaces": "NetworkInterface",
              "networksecuritygroups": "NetworkSecurityGroup", "subnets": "Subnet", "routes": "Route",
              "securityRules": "SecurityRule", **OPERATION}


class Stats:
    """What the emulator answered; ``/_emulator/stats`` shows it with the injections' counts."""

    FIELDS = ("requests", "reads", "writes", "actions", "throttled", "precondition_failed", "conflicts", "canceled",
              "bad_requests")

    def __init__(self) -> None:
        for f in self.FIELDS:
            setattr(self, f, 0)

    def to_dict(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in self.FIELDS}


class Arm:
    """The emulated resource provider: state + request handling, persisted to ``state_dir``."""

    def __init__(
        self,
        state_dir: Path | str,
        *,
        inject: dict[str, float] | None = None,
        inject_429: float = 0.0,
        retry_after: str | None = "1",
        max_routes: int = 400,
        max_ip_configs: int = 256,
        rng_seed: int | None = 0,
        on_change: Callable[["Arm"], None] | None = None,
    ):
        import threading

        self.store = Store.open(state_dir)  # the lock first: nothing else is touched before it
        self.state_dir = self.store.state_dir
        self.path = self.store.path
        self.limits = Limits(max_routes, max_ip_configs)
        self.faults = Injector(dict(inject or {}), retry_after, rng_seed)
        if inject_429:
            self.faults.rates["429"] = inject_429
        self.stats = Stats()
        self._lock = threading.RLock()
        self._ops: dict[str, dict[str, Any]] = {}
        # Called after every accepted write, e.g. by the lab to re-program its fabric namespace.
        self.on_change = on_change

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.store.resources

    @property
    def notice(self) -> str:
        return self.store.notice

    def close(self) -> None:
        self.store.close()

    def save(self) -> None:
        self.store.save()
        if self.on_change is not None:
            self.on_change(self)

    def _commit(self, changes: dict[str, dict[str, Any] | None]) -> None:
        """Store ``changes`` (id -> resource, None deletes) and save; all or nothing."""
        before = {k: self.resources.get(k) for k in changes}
        for k, v in changes.items():
            if v is None:
                self.resources.pop(k, None)
            else:
                self.resources[k] = v
        try:
            self.store.save()
        except BaseException:
            for k, v in before.items():
                if v is None:
                    self.resources.pop(k, None)
                else:
                    self.resources[k] = v
            raise
        if self.on_change is not None:
            self.on_change(self)

    def seed(self, plan: Any) -> None:
        """Create the plan's VNet, subnets and host NICs (forwarding off, no routes) if missing."""
        with self._lock:
            self._commit({**seeded(self.resources, plan), **privatedns.seeded(self.resources, plan)})

    def attach_to_vm(self, nic_id: str, vm: str, primary: bool = True) -> None:
        """What Compute does when VM ``vm`` (a name in the NIC's resource group, or a full id) takes
        the NIC: it is no request of Microsoft.Network, so it has no route here."""
        with self._lock:
            nic = self.resources.get(key(nic_id))
            if nic is None or nic["type"] != f"{NET}/networkInterfaces":
                raise KeyError(nic_id)
            self._commit({key(nic_id): attached(nic, vm, primary)})

    # -- the request pipeline ---------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes, base: str) -> Reply:
        url = urlsplit(target)
        path = unquote(url.path)
        if path.startswith("/_emulator/"):
            return self._control(method, path, body)
        with self._lock:
            write = method in ("PUT", "DELETE", "PATCH")
            self._count(method)
            try:
                reply = self._pipeline(method, path, url.query, headers, body, base, write)
            except ArmFailure as f:
                reply = self._failed(f)
            for k, v in self.faults.remaining("writes" if write or method == "POST" else "reads").items():
                reply.headers.setdefault(k, v)  # a throttled answer already says 0
            return reply

    def _count(self, method: str) -> None:
        s = self.stats
        s.requests += 1
        if method == "GET":
            s.reads += 1
        elif method in ("PUT", "DELETE", "PATCH"):
            s.writes += 1
        elif method == "POST":
            s.actions += 1

    def _failed(self, f: ArmFailure) -> Reply:
        s = self.stats
        if f.status == 412:
            s.precondition_failed += 1
        elif f.status == 409:
            s.conflicts += 1
        elif f.status == 400:
            s.bad_requests += 1
        return f.reply()

    def _pipeline(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes, base: str,
                  write: bool) -> Reply:
        if not headers.get("authorization", "").startswith("Bearer "):
            raise ArmFailure(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        dns = privatedns.PATH.match(path)  # Microsoft.Network/privateDnsZones: its own module
        if dns:
            return privatedns.handle(self.resources, self._commit, method, dns, query, headers,
                                     parse_json(body) if method in ("PUT", "PATCH") else None)
        versions = parse_qs(query).get("api-version")
        m = _RES.match(path)
        check_api_version(versions[-1] if versions else None, TYPES.get((m["type"] if m else "").lower(), "operations"))
        throttled = self.faults.throttle(write or method == "POST", path.split("/")[2] if path.count("/") > 2 else "")
        if throttled is not None:
            self.stats.throttled += 1
            return throttled
        op = _OP.match(path)
        if op and method == "GET":
            return self._operation(op["id"], op["kind"].lower())
        if not m:
            raise ArmFailure(404, "InvalidResourceType", f"The resource type could not be found for {path}.")
        return Request(self, method, m, headers, body, base).answer()

    def _operation(self, op_id: str, kind: str) -> Reply:
        op = self._ops.get(op_id)
        if op is None:
            raise ArmFailure(404, "OperationNotFound", f"Operation {op_id} was not found.")
        if kind == "operations":
            out = {"name": op_id, "status": op["status"], "startTime": op["start"], "endTime": op["start"]}
            if op.get("error"):
                out["error"] = op["error"]
            return Reply(200, out)
        return Reply(200, op["result"])

    def lro(self, status: int, body: Any, base: str, sub: str, location: str, *, result: Any = None,
            outcome: dict[str, Any] | None = None) -> Reply:
        """A long-running operation's first answer; its status answers ``outcome`` or Succeeded."""
        op = str(uuid.uuid4())
        start = _dt.datetime.now(_dt.timezone.utc).isoformat()
        self._ops[op] = {"status": "Succeeded", "result": result, "start": start, **(outcome or {})}
        root = f"{base}/subscriptions/{sub}/providers/{NET}/locations/{location}"
        headers = {"Azure-AsyncOperation": f"{root}/operations/{op}?api-version={API_VERSION}"}
        if status == 202:
            headers["Location"] = f"{root}/operationResults/{op}?api-version={API_VERSION}"
        return Reply(status, body, headers)

    # -- /_emulator/: the test harness's door, outside ARM's pipeline -----------------------------
    def _control(self, method: str, path: str, body: bytes) -> Reply:
        with self._lock:
            if path == "/_emulator/stats" and method == "GET":
                return Reply(200, {**self.stats.to_dict(), **self.faults.stats()})
            if path == "/_emulator/inject" and method == "GET":
                return Reply(200, self.faults.settings())
            if path == "/_emulator/inject" and method == "POST":
                try:
                    doc = parse_json(body)
                except ArmFailure as f:
                    return f.reply()
                if not isinstance(doc, dict) or not isinstance(doc.get("rates", {}), dict):
                    return ArmFailure(400, "InvalidInjection", 'expected {"rates": {"KIND": RATE}, "seed": N}').reply()
                try:
                    seed = doc.get("seed")
                    self.faults.configure(doc.get("rates", {}), seed if isinstance(seed, int) else None,
                                          doc["retry_after"] if "retry_after" in doc else False)
                except ArmFailure as f:
                    return f.reply()
                return Reply(200, self.faults.settings())
        return ArmFailure(404, "NotFound", f"{method} {path}: the emulator has /_emulator/stats (GET) and "
                                           "/_emulator/inject (GET, POST)").reply()


class Request:
    """One request on a Microsoft.Network resource or child: the handlers per method."""

    def __init__(self, arm: Arm, method: str, m: re.Match[str], headers: dict[str, str], body: bytes, base: str):
        self.arm, self.method, self.headers, self.body, self.base = arm, method, headers, body, base
        self.sub, self.rg, self.rtype = m["sub"], m["rg"], m["type"].lower()
        child = (m["child"] or "").lower()
        self.name, self.child, self.cname = m["name"], CHILD_SPELLING.get(child, child), m["cname"]
        if self.rg is None and (self.name is not None or self.child):
            raise ArmFailure(404, "InvalidResourceType", "A resource needs its resource group in the path.")
        self.resources = arm.resources

    def answer(self) -> Reply:
        if self.name is None:
            return self._collection()
        self.rid = rid(self.sub, self.rg, self.rtype, self.name)
        if self.child == "effectiveroutetable":
            if self.method != "POST" or self.rtype != "networkinterfaces":
                raise ArmFailure(405, "MethodNotAllowed", "effectiveRouteTable takes POST on a network interface.")
            nic = self._get(self.rid)
            return self.arm.lro(202, None, self.base, self.sub, nic.get("location", "eastus"),
                                result={"value": effective_routes(self.resources, nic)})
        if self.child:
            if self.child not in (CHILDREN.get(self.rtype), READ_ONLY_CHILDREN.get(self.rtype)):
                raise ArmFailure(404, "InvalidResourceType", f"{TYPES[self.rtype]} has no {self.child}.")
            return ChildRequest(self).answer()
        handler = {"GET": self._read, "PUT": self._put, "DELETE": self._delete, "PATCH": self._patch}.get(self.method)
        if handler is None:
            raise ArmFailure(405, "MethodNotAllowed", f"{self.method} is not allowed here.")
        return handler()

    def _collection(self) -> Reply:
        if self.method != "GET":
            raise ArmFailure(405, "MethodNotAllowed", f"{self.method} is not allowed on a collection.")
        if self.rg is None:  # list-all: every resource group of the subscription
            kind = f"{NET}/{TYPES[self.rtype]}".lower()
            head = f"/subscriptions/{self.sub}/".lower()
            items = [view(self.resources, r) for k, r in sorted(self.resources.items())
                     if k.startswith(head) and r["type"].lower() == kind]
            return Reply(200, {"value": items})
        prefix = key(rid(self.sub, self.rg, self.rtype, ""))
        items = [view(self.resources, r) for k, r in sorted(self.resources.items())
                 if k.startswith(prefix) and "/" not in k[len(prefix):]]
        return Reply(200, {"value": items})

    def _get(self, res_id: str) -> dict[str, Any]:
        res = self.resources.get(key(res_id))
        if res is None:
            parts = res_id.split("/")
            raise ArmFailure(404, "ResourceNotFound",
                             f"The Resource '{NET}/{parts[-2]}/{parts[-1]}' under resource group '{parts[4]}' was not found. "
                             "For more details please go to https://aka.ms/ARMResourceNotFoundFix")
        return res

    def _read(self) -> Reply:
        return Reply(200, view(self.resources, self._get(self.rid)))

    def location(self, existing: dict[str, Any] | None) -> str:
        return str((existing or {}).get("location") or "eastus")

    def guard(self, existing: dict[str, Any] | None, target_id: str) -> None:
        """ARM's conflict answers and preconditions, in the order a client meets them."""
        self.arm.faults.conflict(self.base, self.sub, self.location(existing))
        preconditions(self.headers, existing, target_id)

    def canceled(self, what: str) -> dict[str, Any] | None:
        outcome = self.arm.faults.cancellation(f"{self.method.capitalize()}{what}Operation")
        if outcome is not None:
            self.arm.stats.canceled += 1
        return outcome

    def _put(self) -> Reply:
        check_name(TYPES[self.rtype], self.name)
        existing = self.resources.get(key(self.rid))
        body = parse_json(self.body)
        if existing is not None and self.arm.faults.other_writer(existing, nsgs=nsg_ids(self.resources, self.sub, self.rg)):
            self.arm._commit({key(self.rid): existing})  # the other writer's change is real: saved
        self.guard(existing, self.rid)
        res = normalise(self.resources, self.rtype, self.rid, self.name, body, existing, self.arm.limits)
        outcome = self.canceled(_OPERATION[self.rtype])
        if outcome is None:
            self.arm._commit({key(self.rid): res})
        return self.arm.lro(200 if existing else 201, view(self.resources, res, updating=True), self.base, self.sub,
                            res["location"], outcome=outcome)

    def _delete(self) -> Reply:
        existing = self.resources.get(key(self.rid))
        if existing is None:
            return Reply(204)
        self.guard(existing, self.rid)
        self._refuse_in_use(existing)
        outcome = self.canceled(_OPERATION[self.rtype])
        if outcome is None:
            self.arm._commit({key(self.rid): None})
        return self.arm.lro(202, None, self.base, self.sub, self.location(existing), outcome=outcome)

    def _refuse_in_use(self, existing: dict[str, Any]) -> None:
        if self.rtype in ("routetables", "networksecuritygroups"):
            prop = "routeTable" if self.rtype == "routetables" else "networkSecurityGroup"
            users = subnets_using(self.resources, self.rid, prop)
            if users:
                code = "InUseRouteTableCannotBeDeleted" if prop == "routeTable" else "InUseNetworkSecurityGroupCannotBeDeleted"
                raise ArmFailure(400, code, f"{TYPES[self.rtype]} {self.rid} is in use by subnets {', '.join(users)} "
                                            "and cannot be deleted.")
        vm = (existing["properties"].get("virtualMachine") or {}).get("id") if self.rtype == "networkinterfaces" else None
        if vm:
            raise ArmFailure(400, "NicInUse", f"Network Interface {self.rid} is used by existing resource {vm}. In order to "
                                              "delete the network interface, it must be dissociated from the resource.")
        if self.rtype in REFERENCED_TYPES:
            refuse_delete_in_use(self.resources, self.rtype, existing)
        if self.rtype == "virtualnetworks":
            for s in existing["properties"].get("subnets") or []:
                if subnet_users(self.resources, s["id"]):
                    raise ArmFailure(400, "InUseSubnetCannotBeDeleted",
                                     f"Subnet {s['name']} is in use by {', '.join(subnet_users(self.resources, s['id']))} "
                                     "and cannot be deleted.")

    def _patch(self) -> Reply:
        existing = self._get(self.rid)
        self.guard(existing, self.rid)
        res = with_tags(existing, parse_json(self.body))
        self.arm._commit({key(self.rid): res})
        return Reply(200, view(self.resources, res))


class ChildRequest:
    """A subnet of a VNet or a route of a route table: written through the parent, as ARM stores them."""

    def __init__(self, req: Request):
        self.req = req
        self.parent = req._get(req.rid)
        self.items: list[dict[str, Any]] = self.parent["properties"].get(req.child) or []

    def answer(self) -> Reply:
        req = self.req
        if req.cname is None:
            if req.method != "GET":
                raise ArmFailure(405, "MethodNotAllowed", f"{req.method} is not allowed on a collection.")
            return Reply(200, {"value": [view_child(req.resources, c) for c in self.items]})
        self.cid = f"{self.parent['id']}/{req.child}/{req.cname}"
        writable = CHILDREN.get(req.rtype) == req.child
        handler = {"GET": self._read, "PUT": self._put, "DELETE": self._delete}.get(req.method)
        if not writable and req.method != "GET":
            handler = None
        if handler is None:
            raise ArmFailure(405, "MethodNotAllowed", f"{req.method} is not allowed here.")
        return handler()

    def _index(self) -> int | None:
        return next((i for i, c in enumerate(self.items) if c["name"].lower() == self.req.cname.lower()), None)

    def _read(self) -> Reply:
        idx = self._index()
        if idx is None:
            raise ArmFailure(404, "NotFound", f"Resource {self.cid} not found.")
        return Reply(200, view_child(self.req.resources, self.items[idx]))

    def _rebuilt(self, new_items: list[dict[str, Any]]) -> dict[str, Any]:
        req = self.req
        trial = dict(self.parent, properties=dict(self.parent["properties"], **{req.child: new_items}))
        return normalise(req.resources, req.rtype, self.parent["id"], self.parent["name"], trial, self.parent,
                         req.arm.limits)

    def _put(self) -> Reply:
        req, arm = self.req, self.req.arm
        check_name(req.child, req.cname)
        new = parse_json(req.body)
        if arm.faults.other_writer(self.parent, subnet=req.cname if req.child == "subnets" else None,
                                   nsgs=nsg_ids(req.resources, req.sub, req.rg)):
            arm._commit({key(self.parent["id"]): self.parent})
            self.items = self.parent["properties"].get(req.child) or []
        idx = self._index()
        existing = self.items[idx] if idx is not None else None
        arm.faults.conflict(req.base, req.sub, req.location(self.parent))
        preconditions(req.headers, existing, self.cid)
        if not isinstance(new, dict):
            raise wrong_type("(request body)", "object", new)
        entry = {"name": req.cname, "properties": new.get("properties")}
        new_items = list(self.items)
        if idx is None:
            new_items.append(entry)
        else:
            new_items[idx] = entry
        res = self._rebuilt(new_items)
        outcome = req.canceled(_OPERATION[req.child])
        if outcome is None:
            arm._commit({key(self.parent["id"]): res})
        out = next(c for c in res["properties"][req.child] if c["name"].lower() == req.cname.lower())
        return arm.lro(200 if existing else 201, view_child(req.resources, out, updating=True), req.base, req.sub,
                       res["location"],
                       outcome=outcome)

    def _delete(self) -> Reply:
        req, arm = self.req, self.req.arm
        idx = self._index()
        if idx is None:
            return Reply(204)
        arm.faults.conflict(req.base, req.sub, req.location(self.parent))
        preconditions(req.headers, self.items[idx], self.cid)
        if req.child == "subnets" and subnet_users(req.resources, self.items[idx]["id"]):
            users = subnet_users(req.resources, self.items[idx]["id"])
            raise ArmFailure(400, "InUseSubnetCannotBeDeleted",
                             f"Subnet {req.cname} is in use by {', '.join(users)} and cannot be deleted. In order to "
                             "delete the subnet, delete all the resources within the subnet.")
        res = self._rebuilt([c for i, c in enumerate(self.items) if i != idx])
        outcome = req.canceled(_OPERATION[req.child])
        if outcome is None:
            arm._commit({key(self.parent["id"]): res})
        return arm.lro(202, None, req.base, req.sub, req.location(self.parent), outcome=outcome)


def nsg_ids(resources: dict[str, dict[str, Any]], sub: str, rg: str) -> list[str]:
    """The NSGs of a resource group (what another writer could attach to a subnet)."""
    prefix = key(rid(sub, rg, "networksecuritygroups", ""))
    return [r["id"] for k, r in sorted(resources.items()) if k.startswith(prefix) and "/" not in k[len(prefix):]]


def parse_json(body: bytes) -> Any:
    """A request body as JSON, or ARM's 400: not JSON, not UTF-8, or nested deeper than MAX_DEPTH."""
    try:
        doc = json.loads(body or b"{}")
    except (ValueError, RecursionError) as exc:
        reason = str(exc).splitlines()[0][:160] if not isinstance(exc, RecursionError) else "nested too deeply"
        raise ArmFailure(400, "InvalidRequestContent",
                         f"The request content was invalid and could not be deserialized: '{reason}'.") from None
    if _depth(doc) > MAX_DEPTH:
        raise ArmFailure(400, "InvalidRequestContent",
                         f"The request content was invalid and could not be deserialized: 'The reader's MaxDepth of "
                         f"{MAX_DEPTH} has been exceeded.'.")
    return doc


def _depth(doc: Any) -> int:
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, d)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((v, d + 1) for v in (node.values() if isinstance(node, dict) else node))
    return deepest


def preconditions(headers: dict[str, str], existing: dict[str, Any] | None, target_id: str) -> None:
    """If-Match / If-None-Match as ARM answers them: 412 with PreconditionFailedEtagMismatch details."""
    if_match = headers.get("if-match")
    if if_match:
        current = (existing or {}).get("etag")
        if existing is None or (if_match != "*" and if_match != current):
            detail = (f"Etag provided in if-match header {if_match} does not match etag {current} of resource "
                      f"{target_id} in NRP data store." if existing is not None else
                      f"Etag provided in if-match header {if_match} does not match: resource {target_id} does not exist.")
            raise ArmFailure(412, "PreconditionFailed", "Precondition failed.",
                             [{"code": "PreconditionFailedEtagMismatch", "message": detail}])
    if headers.get("if-none-match") == "*" and existing is not None:
        raise ArmFailure(412, "PreconditionFailed", f"Precondition failed: resource {target_id} already exists.",
                         [{"code": "PreconditionFailedResourceExists",
                           "message": f"If-None-Match: * was sent and resource {target_id} exists."}])

