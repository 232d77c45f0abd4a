"""The HTTPS endpoint: moto's server on loopback behind a TLS front that adds what moto lacks.

``Emulator(state_dir).start()`` starts moto's ``ThreadedMotoServer`` on 127.0.0.1 (a free port,
plain HTTP, reachable only from this machine) and the front on ``host:port`` with a certificate
of a throw-away CA (trustme), written to ``STATE_DIR/ca.pem`` with the URL in
``STATE_DIR/endpoint``. boto3 then talks to it as to EC2: ``AWS_ENDPOINT_URL`` and
``AWS_CA_BUNDLE``. moto keeps its state in memory: it lasts as long as the emulator.
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from ....errors import UsageError
from ...azure.emulator.server import _Server as _TlsServer
from .faults import Injector
from .front import Front, Reply, error_xml

MAX_BODY = 10 * 1024 * 1024
IO_TIMEOUT = 30.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = IO_TIMEOUT
    server: "_Server"

    def _serve(self) -> None:
        raw = self.headers.get("Content-Length", "0").strip()
        if self.headers.get("Transfer-Encoding") or not raw.isdigit() or int(raw) > MAX_BODY:
            self.close_connection = True
            return self._send(error_xml("InvalidRequest", "send a Content-Length of at most 10 MiB"))
        body = self.rfile.read(int(raw)) if int(raw) else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = self.server.front.handle(self.command, self.path, headers, body)
        except Exception as exc:  # an emulator bug: EC2's 500, one line on stderr
            print(f"nestnet aws emulator: internal error on {self.command} {self.path[:200]}: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            reply = error_xml("InternalError", f"emulator: {type(exc).__name__}: {exc}", 500)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        self.close_connection = True
        self._send(error_xml("InvalidRequest", message or f"HTTP {code}", code))

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(_TlsServer):
    """Azure's emulator's server (TLS per connection in its own thread, quiet on broken clients)
    with EC2's front instead of ARM."""

    front: Front


class Emulator:
    def __init__(self, state_dir: str | Path, host: str = "127.0.0.1", port: int = 0,
                 injector: Injector | None = None, max_routes: int | None = None):
        import trustme
        from moto.server import ThreadedMotoServer

        self.state_dir = Path(state_dir)
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--state-dir {str(self.state_dir)!r}: {exc.strerror or exc}") from None
        self._server = _Server((host, port), _Handler)  # OSError on a busy port: nothing written yet
        self._server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        # moto's request handler logs every request through werkzeug's logger: quiet, as ours.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        mhost, mport = self._moto.get_host_and_port()
        from .rules import DEFAULT_MAX_ROUTES

        self.front = Front(mhost, mport, injector, max_routes or DEFAULT_MAX_ROUTES)
        ca = trustme.CA()
        cert = ca.issue_cert(host, "localhost", "127.0.0.1")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        self._server.front = self.front
        self._server.tls = ctx
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"https://{bound_host}:{bound_port}"
        self.ca_pem = self.state_dir / "ca.pem"
        self.ca_pem.write_bytes(ca.cert_pem.bytes())
        self._thread: threading.Thread | None = None

    def env(self) -> dict[str, str]:
        """What boto3 needs to talk to this emulator (and nothing else)."""
        return {"AWS_ENDPOINT_URL": self.url, "AWS_CA_BUNDLE": str(self.ca_pem)}

    def _announce(self) -> None:
        (self.state_dir / "endpoint").write_text(self.url + "\n")

    def start(self) -> "Emulator":
        self._announce()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="aws-emulator", daemon=True)
        self._thread.start()
        return self

    def wait(self) -> None:
        """Until the thread ``start`` began ends (Ctrl-C, or ``stop`` from another thread)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def serve_forever(self) -> None:
        self._announce()
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(5)
        self._moto.stop()
        (self.state_dir / "endpoint").unlink(missing_ok=True)
