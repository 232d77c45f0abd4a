"""What ``check`` sends between two nodes: a ``Probe``, a ping (ICMP echo, the default) or a TCP/UDP
connection to one destination port from an ephemeral source port. Pure; each cloud's security rules
(its package's ``nsg`` module, where it has one) judge it."""

from __future__ import annotations

from dataclasses import dataclass

# The client's source port range: IANA's dynamic ports (Windows) and Linux's default 32768-60999.
EPHEMERAL = (32768, 65535)
PROTOCOLS = ("icmp", "tcp", "udp")


@dataclass(frozen=True, slots=True)
class Probe:
    """What ``check`` sends from every node to every other: ``icmp`` (echo) or ``tcp``/``udp`` to
    ``port``. ``str()`` gives the CLI's spelling (``icmp``, ``tcp/22``)."""

    protocol: str = "icmp"
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> "Probe":
        """``icmp``, ``tcp/PORT`` or ``udp/PORT`` (PORT 1-65535); ValueError saying what is wrong."""
        t = text.strip().lower()
        proto, sep, port = t.partition("/")
        if proto not in PROTOCOLS:
            raise ValueError(f"unknown protocol {proto!r} (expected icmp, tcp/PORT or udp/PORT)")
        if proto == "icmp":
            if sep:
                raise ValueError("icmp has no port (expected icmp, tcp/PORT or udp/PORT)")
            return cls()
        if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
            raise ValueError(f"{proto} needs a port 1-65535 (expected {proto}/PORT, e.g. {proto}/22)")
        return cls(proto, int(port))

    def __str__(self) -> str:
        return self.protocol if self.port is None else f"{self.protocol}/{self.port}"


ICMP = Probe()
