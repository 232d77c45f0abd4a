"""The request pipeline in front of moto: injections, EC2's rules moto lacks, then moto itself.

Each EC2 request (the Query protocol: a form-encoded POST with ``Action=...``) is, under one
lock (so a check and the write it guards are one step, as EC2's own serialisation per resource):

1. counted (``GET /_emulator/stats``);
2. maybe failed as injected (``faults.py``): throttling, unavailability, an internal error;
3. maybe preceded by another writer's change (``--inject writer:RATE``);
4. checked or answered by ``rules.py`` (prefixes, limits, the route rules);
5. forwarded to moto's server on loopback, its answer returned as it is.

Requests for other services (STS's ``GetCallerIdentity``, ...) go to moto unchanged.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from . import rules
from .faults import Injector

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
READ_PREFIXES = ("Describe", "Get", "List")
FOREIGN_NET = IPv4Network("203.0.113.0/24")  # TEST-NET-3 (RFC 5737): never a plan's address


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "text/xml;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)


def error_xml(code: str, message: str, status: int = 400) -> Reply:
    """EC2's error document (EC2 API reference, "Error responses")."""
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>")
    return Reply(status, body.encode())


def _ok_xml(action: str, inner: str) -> Reply:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{EC2_NS}">'
            f"<requestId>{uuid.uuid4()}</requestId>{inner}</{action}Response>")
    return Reply(200, body.encode())


def _scope(headers: dict[str, str]) -> tuple[str, str, str]:
    """(access key, region, service) from the SigV4 credential scope of ``Authorization``."""
    auth = headers.get("authorization", "")
    cred = auth.partition("Credential=")[2].split(",", 1)[0].strip()
    parts = cred.split("/")
    if len(parts) >= 5:
        return parts[0], parts[2], parts[3]
    return "", "us-east-1", ""


def _list(params: dict[str, list[str]], name: str) -> list[str]:
    """``Name.1``, ``Name.2``, ... in order."""
    out = []
    i = 1
    while f"{name}.{i}" in params:
        out.append(params[f"{name}.{i}"][0])
        i += 1
    return out


def _one(params: dict[str, list[str]], name: str) -> str | None:
    v = params.get(name)
    return v[0] if v else None


class Front:
    def __init__(self, moto_host: str, moto_port: int, injector: Injector | None = None,
                 max_routes: int = rules.DEFAULT_MAX_ROUTES):
        rules.patch_moto()
        self.moto = (moto_host, moto_port)
        self.injector = injector or Injector()
        self.max_routes = max_routes
        self.lock = threading.Lock()
        self.stats: dict[str, Any] = {"requests": 0, "reads": 0, "writes": 0, "actions": {}, "refused": {}}

    # -- entry ---------------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if path.startswith("/_emulator/"):
            return self._control(method, path, body)
        key, region, service = _scope(headers)
        params = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True) if body else {}
        if "?" in path:
            params.update(parse_qs(path.split("?", 1)[1], keep_blank_values=True))
        action = _one(params, "Action") or ""
        if service != "ec2" or not action:
            return self._forward(method, path, headers, body)
        with self.lock:
            return self._ec2(method, path, headers, body, params, action, key, region)

    def _ec2(self, method: str, path: str, headers: dict[str, str], body: bytes, params: dict[str, list[str]],
             action: str, key: str, region: str) -> Reply:
        write = not action.startswith(READ_PREFIXES)
        self.stats["requests"] += 1
        self.stats["actions"][action] = self.stats["actions"].get(action, 0) + 1
        failed = self.injector.failure()
        if failed:
            code, status, message = failed
            return error_xml(code, message, status)
        backend = self._backend(key, region)
        try:
            if write and self.injector.roll("writer"):
                self._other_writer(backend, action, params)
            reply = self._rules(backend, action, params)
        except rules.Ec2Failure as exc:
            self.stats["refused"][exc.code] = self.stats["refused"].get(exc.code, 0) + 1
            return error_xml(exc.code, exc.message, exc.status)
        if reply is None:
            reply = self._forward(method, path, headers, body)
        if reply.status == 200:
            self.stats["writes" if write else "reads"] += 1
        return reply

    @staticmethod
    def _backend(key: str, region: str) -> Any:
        from moto.ec2.models import ec2_backends
        from moto.iam.models import get_account_id_from

        return ec2_backends[get_account_id_from(key)][region]

    # -- EC2's rules -----------------------------------------------------------------------------
    def _rules(self, backend: Any, action: str, params: dict[str, list[str]]) -> Reply | None:
        """An answer of nestnet's own, or None to let moto answer (after the checks passed)."""
        eni_id = _one(params, "NetworkInterfaceId") or ""
        if action == "AssignPrivateIpAddresses":
            prefixes, count = _list(params, "Ipv4Prefix"), int(_one(params, "Ipv4PrefixCount") or 0)
            ips = _list(params, "PrivateIpAddress")
            n = int(_one(params, "SecondaryPrivateIpAddressCount") or 0)
            if prefixes or count:
                if ips or n:
                    raise rules.Ec2Failure("InvalidParameterCombination",
                                           "Private IP addresses and IPv4 prefixes cannot be assigned in one request")
                added = rules.assign_prefixes(backend, eni_id, prefixes, count)
                items = "".join(f"<item><ipv4Prefix>{p}</ipv4Prefix></item>" for p in added)
                return _ok_xml(action, f"<networkInterfaceId>{eni_id}</networkInterfaceId>"
                                       f"<assignedPrivateIpAddressesSet/><assignedIpv4PrefixSet>{items}"
                                       "</assignedIpv4PrefixSet>")
            reassign = (_one(params, "AllowReassignment") or "").lower() == "true"
            rules.check_private_ips(backend, eni_id, ips, n, reassign)
        elif action == "UnassignPrivateIpAddresses":
            prefixes = _list(params, "Ipv4Prefix")
            if prefixes:
                if _list(params, "PrivateIpAddress"):
                    raise rules.Ec2Failure("InvalidParameterCombination",
                                           "Private IP addresses and IPv4 prefixes cannot be unassigned in one request")
                rules.unassign_prefixes(backend, eni_id, prefixes)
                return _ok_xml(action, "<return>true</return>")
        elif action == "CreateNetworkInterface":
            if any(k.startswith(("Ipv4Prefix", "Ipv4PrefixCount")) for k in params):
                raise rules.Ec2Failure("UnsupportedOperation",
                                       "nestnet's emulator takes IPv4 prefixes through AssignPrivateIpAddresses only")
        elif action in ("CreateRoute", "ReplaceRoute"):
            targets = {k: v[0] for k, v in params.items() if k.endswith("Id") and k != "RouteTableId" and v and v[0]}
            rules.check_route(backend, _one(params, "RouteTableId") or "", _one(params, "DestinationCidrBlock"),
                              targets, action == "CreateRoute", self.max_routes)
        return None

    def _other_writer(self, backend: Any, action: str, params: dict[str, list[str]]) -> None:
        """Someone else's change to the resource this write names, made just before it."""
        table = backend.route_tables.get(_one(params, "RouteTableId") or "")
        eni = backend.enis.get(_one(params, "NetworkInterfaceId") or "")
        if action in ("CreateRoute", "ReplaceRoute", "DeleteRoute") and table is not None:
            have = {r.destination_cidr_block for r in table.routes}
            target = next((e for e in backend.enis.values() if getattr(e.subnet, "vpc_id", None) == table.vpc_id), None)
            free = next((str(IPv4Network(f"{a}/32")) for a in FOREIGN_NET.hosts() if f"{a}/32" not in have), None)
            if target is not None and free:
                backend.create_route(table.id, free, interface_id=target.id)
                self.stats.setdefault("writer", {}).setdefault("foreign_route", 0)
                self.stats["writer"]["foreign_route"] += 1
        elif action in ("AssignPrivateIpAddresses", "UnassignPrivateIpAddresses") and eni is not None:
            subnet = IPv4Network(eni.subnet.cidr_block)
            ips, nets = rules._taken_in_subnet(backend, eni.subnet.id)
            for a in reversed(list(subnet.hosts())):
                if a not in ips and a not in rules.reserved(subnet) and not any(a in n for n in nets) \
                        and a not in {IPv4Address(x) for x in rules.prefixes_of(eni)}:
                    if rules.address_limit(eni) is not None and \
                            len(eni.private_ip_addresses) + len(rules.prefixes_of(eni)) >= (rules.address_limit(eni) or 0):
                        return
                    eni.private_ip_addresses.append({"Primary": False, "PrivateIpAddress": str(a)})
                    self.stats.setdefault("writer", {}).setdefault("foreign_ip", 0)
                    self.stats["writer"]["foreign_ip"] += 1
                    return

    # -- moto and the control endpoints -----------------------------------------------------------
    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        conn = http.client.HTTPConnection(*self.moto, timeout=60)
        try:
            fwd = {k: v for k, v in headers.items() if k not in ("host", "connection", "content-length",
                                                                  "transfer-encoding", "expect")}
            fwd["Host"] = f"{self.moto[0]}:{self.moto[1]}"
            conn.request(method, path, body=body or None, headers=fwd)
            resp = conn.getresponse()
            data = resp.read()
            return Reply(resp.status, data, resp.getheader("Content-Type") or "text/xml;charset=UTF-8")
        except (OSError, http.client.HTTPException) as exc:
            return error_xml("InternalError", f"emulator: moto did not answer ({exc})", 500)
        finally:
            conn.close()

    def _control(self, method: str, path: str, body: bytes) -> Reply:
        if path == "/_emulator/stats" and method == "GET":
            out = {**self.stats, "injected": dict(self.injector.counts), "max_routes": self.max_routes}
            return Reply(200, json.dumps(out).encode(), "application/json")
        if path == "/_emulator/inject" and method == "POST":
            try:
                doc = json.loads(body or b"{}")
                rates = doc.get("rates", {}) if isinstance(doc, dict) else None
                if not isinstance(rates, dict):
                    raise ValueError("expected {\"rates\": {KIND: RATE}, \"seed\": N}")
                seed = doc.get("seed")
                if seed is not None and not isinstance(seed, int):
                    raise ValueError("seed must be an integer")
                with self.lock:
                    self.injector.configure(rates, seed)
            except ValueError as exc:
                return Reply(400, json.dumps({"error": str(exc)}).encode(), "application/json")
            return Reply(200, json.dumps({"rates": self.injector.rates, "seed": self.injector.seed}).encode(),
                         "application/json")
        if path == "/_emulator/reset" and method == "POST":
            # Everything moto holds (every account and Region of this process) and the counters.
            with self.lock:
                reply = self._forward("POST", "/moto-api/reset", {}, b"")
                self.stats = {"requests": 0, "reads": 0, "writes": 0, "actions": {}, "refused": {}}
                self.injector.rates.clear()
                self.injector.counts = {k: 0 for k in self.injector.counts}
            return Reply(reply.status, b"{}", "application/json")
        return Reply(404, json.dumps({"error": f"no such emulator endpoint: {method} {path}"}).encode(),
                     "application/json")
