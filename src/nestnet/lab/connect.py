"""The lab's TCP/UDP probe agent: run as a script (stdlib only, so it starts fast) inside a lab
namespace by ``nestnet.lab.matrix`` with ``ip netns exec NS python connect.py ...``.

    listen tcp|udp PORT              bind 0.0.0.0:PORT; print "ready" (or "busy" when the port is
                                     taken) and serve until killed: TCP accepts and closes, UDP
                                     echoes every datagram to its sender
    probe tcp|udp PORT TIMEOUT IP..  connect to (TCP) or send to and await the echo from (UDP)
                                     every IP at once; print each IP that answered

A TCP target counts as reached when the handshake completes (the SYN got there and the SYN/ACK
came back), a UDP target when its echo came back: like fping's echo reply, both directions.
The client's source port is the kernel's ephemeral one (Linux: 32768-60999), which the model's
NSG matching assumes (``nestnet.model.probe.EPHEMERAL``). UDP resends to unanswered targets every
300 ms (the first datagram may have waited for ARP); TCP relies on the kernel's SYN retransmit.
"""

from __future__ import annotations

import errno
import selectors
import socket
import struct
import sys
import time

PAYLOAD = b"nestnet-probe"
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux's value; not every Python build names it


def listen(proto: str, port: int) -> None:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    if proto == "tcp":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    else:  # answer from the address asked (a node with several addresses, e.g. the internet's)
        s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    try:
        s.bind(("0.0.0.0", port))
    except OSError as exc:
        print("busy" if exc.errno == errno.EADDRINUSE else f"error {exc.strerror}", flush=True)
        return
    if proto == "tcp":
        s.listen(1024)
        print("ready", flush=True)
        while True:
            c, _ = s.accept()
            c.close()
    print("ready", flush=True)
    while True:
        data, anc, _, peer = s.recvmsg(2048, socket.CMSG_SPACE(12))
        # in_pktinfo: ifindex, the local address, the header's destination; reply from the latter
        info = [d for level, kind_, d in anc if level == socket.IPPROTO_IP and kind_ == IP_PKTINFO]
        cmsg = [(socket.IPPROTO_IP, IP_PKTINFO, struct.pack("i4s4s", 0, info[0][8:12], bytes(4)))] if info else []
        s.sendmsg([data], cmsg, 0, peer)


def probe_tcp(port: int, timeout: float, targets: list[str]) -> set[str]:
    sel = selectors.DefaultSelector()
    reached: set[str] = set()
    for ip in targets:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex((ip, port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            continue
        sel.register(s, selectors.EVENT_WRITE, ip)
    deadline = time.monotonic() + timeout
    while sel.get_map() and (left := deadline - time.monotonic()) > 0:
        for key, _ in sel.select(left):
            s = key.fileobj
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                reached.add(key.data)
            sel.unregister(s)
            s.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    return reached


def probe_udp(port: int, timeout: float, targets: list[str]) -> set[str]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    reached: set[str] = set()
    deadline = time.monotonic() + timeout
    resend = 0.0
    while len(reached) < len(targets) and (now := time.monotonic()) < deadline:
        if now >= resend:
            for ip in targets:
                if ip not in reached:
                    try:
                        s.sendto(PAYLOAD, (ip, port))
                    except OSError:
                        pass  # no route, unreachable: not reached
            resend = now + 0.3
        s.settimeout(max(0.001, min(resend, deadline) - time.monotonic()))
        try:
            data, (ip, sport) = s.recvfrom(2048)
        except (socket.timeout, ConnectionRefusedError, OSError):
            continue
        if data == PAYLOAD and sport == port and ip in targets:
            reached.add(ip)
    return reached


def main(argv: list[str]) -> None:
    if argv[0] == "listen":
        listen(argv[1], int(argv[2]))
        return
    proto, port, timeout, targets = argv[1], int(argv[2]), float(argv[3]), argv[4:]
    reached = (probe_tcp if proto == "tcp" else probe_udp)(port, timeout, targets)
    sys.stdout.write("".join(f"{ip}\n" for ip in sorted(reached)))


if __name__ == "__main__":
    main(sys.argv[1:])
