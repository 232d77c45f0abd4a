"""Raw HTTPS requests to an emulated ARM endpoint (for what the SDK would hide: status codes,
headers, error bodies, broken framing)."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

API = "api-version=2024-05-01"


def arm_path(plan: Any, *parts: str) -> str:
    az = plan.azure
    sub = az.subscription_id or "00000000-0000-0000-0000-000000000000"
    return f"/subscriptions/{sub}/resourceGroups/{az.resource_group}/providers/Microsoft.Network/" + "/".join(parts)


def request(ep: Any, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
            *, raw: bytes | None = None, query: str = API) -> tuple[int, dict[str, str], Any]:
    """One request over a fresh TLS connection; (status, lower-case headers, parsed JSON or None)."""
    u = urlsplit(ep.url)
    ctx = ssl.create_default_context(cafile=ep.ca)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=20)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    h = {"Authorization": "Bearer test", "Content-Type": "application/json", **(headers or {})}
    target = path + (("&" if "?" in path else "?") + query if query else "")
    try:
        conn.request(method, target, body=data, headers=h)
        r = conn.getresponse()
        payload = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(payload) if payload else None
    finally:
        conn.close()


def raw_exchange(ep: Any, head: bytes, timeout: float = 20) -> bytes:
    """Send raw bytes (request line + headers + body) over TLS; everything the server answers."""
    u = urlsplit(ep.url)
    ctx = ssl.create_default_context(cafile=ep.ca)
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as s, \
            ctx.wrap_socket(s, server_hostname=u.hostname) as t:
        t.sendall(head)
        out = b""
        while True:
            try:
                chunk = t.recv(65536)
            except (ssl.SSLError, OSError):
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                hdr, _, rest = out.partition(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in hdr.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                if length is not None and len(rest) >= length:
                    break
        return out
