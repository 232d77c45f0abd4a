"""The HTTPS server around an ``Arm``: framing, TLS, and ARM-shaped answers to broken requests.

Every answer is JSON with ARM's ``{"error": {...}}`` shape, including requests the HTTP layer
refuses (bad ``Content-Length``, oversized bodies, malformed request lines); nothing is printed as
a traceback. TLS is set up per connection in the connection's own thread, so a client that never
finishes its handshake holds only its own thread.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from typing import Any

from ....errors import UsageError
from .common import Reply, error_body
from .provider import Arm

MAX_BODY = 4 * 1024 * 1024  # assumed cap (ARM documents 4 MB for template requests), see 0009
IO_TIMEOUT = 30.0  # seconds a connection may stay silent mid-request


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as ARM; the SDK pools connections
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    timeout = IO_TIMEOUT
    server: "_Server"

    def _serve(self) -> None:
        body = self._body()
        if body is None:
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        base = f"https://{self.headers.get('Host') or self.server.host_port}"
        try:
            reply = self.server.arm.handle(self.command, self.path, headers, body, base)
        except Exception as exc:  # an emulator bug: ARM's 500, one line on stderr, the connection kept sane
            print(f"nestnet azure emulator: internal error on {self.command} {self.path[:200]}: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            reply = Reply(500, error_body("InternalServerError", f"emulator: {type(exc).__name__}: {exc}"))
        self._send(reply)

    def _body(self) -> bytes | None:
        """The request body, or None after answering a framing error (the connection then closes)."""
        if self.headers.get("Transfer-Encoding"):
            return self._refuse(411, "LengthRequired", "Transfer-Encoding is not supported; send Content-Length.")
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw.strip())
            if length < 0 or not raw.strip().isdigit():
                raise ValueError
        except ValueError:
            return self._refuse(400, "InvalidContentLength", f"Content-Length {raw[:40]!r} is not a number of bytes.")
        if length > MAX_BODY:
            return self._refuse(413, "RequestEntityTooLarge",
                                f"The request body of {length} bytes is larger than the limit of {MAX_BODY} bytes.")
        try:
            body = self.rfile.read(length)
        except (OSError, TimeoutError):
            body = b""
        if len(body) != length:
            return self._refuse(400, "InvalidRequestContent",
                                f"The request body ended after {len(body)} of {length} bytes.")
        return body

    def _refuse(self, status: int, code: str, message: str) -> None:
        self.close_connection = True  # the framing cannot be trusted: no keep-alive after this
        self._send(Reply(status, error_body(code, message), {"Connection": "close"}))
        return None

    def _send(self, reply: Reply) -> None:
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-ms-request-id", str(uuid.uuid4()))
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client went away
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed request lines and headers: ARM's JSON shape instead of http.server's HTML page.
        self.close_connection = True
        reason = message or self.responses.get(code, ("Error",))[0]
        self._send(Reply(code, error_body("BadRequest" if code == 400 else f"Http{code}", reason), {"Connection": "close"}))

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet: /_emulator/stats tells the story
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    arm: Arm
    host_port: str
    tls: ssl.SSLContext

    def finish_request(self, request: Any, client_address: Any) -> None:
        # In the connection's thread: the TLS handshake, bounded by a timeout.
        request.settimeout(IO_TIMEOUT)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ValueError):
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up or sends garbage is not the emulator's problem: no traceback


class Emulator:
    """``start()`` in a thread or ``serve_forever()``; ``url``; ``ca_pem``; ``stop()``.

    The port is bound before anything is written, so a busy port fails without touching the
    state directory of an emulator already running there.
    """

    def __init__(self, arm: Arm, host: str = "127.0.0.1", port: int = 0):
        import trustme

        self.arm = arm
        self._server = _Server((host, port), _Handler)  # raises OSError on a busy port: nothing written yet
        self._server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        ca = trustme.CA()
        cert = ca.issue_cert(host, "localhost", "127.0.0.1")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        self._server.arm = arm
        self._server.tls = ctx
        bound_host, bound_port = self._server.server_address[:2]
        self._server.host_port = f"{bound_host}:{bound_port}"
        self.url = f"https://{bound_host}:{bound_port}"
        self.ca_pem = arm.store.write_file("ca.pem", ca.cert_pem.bytes())
        self._thread: threading.Thread | None = None

    def _announce(self) -> None:
        self.arm.store.write_file("endpoint", (self.url + "\n").encode())

    def start(self) -> "Emulator":
        self._announce()
        # A short poll interval so stop() returns quickly (tests start and stop many emulators).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="arm-emulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._announce()
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(5)
        (self.arm.state_dir / "endpoint").unlink(missing_ok=True)
        self.arm.close()


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
