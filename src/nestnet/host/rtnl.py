"""Kernel IPv4 routes over a raw rtnetlink socket: one dump to read, pipelined writes.

Why not pyroute2 or ``ip``: a pyroute2 call per route is ~20x slower than ``ip -batch`` and an
``ip`` process costs a fork plus text parsing. Here a write of N routes is N packed messages sent
in a few ``send`` calls, with the kernel's acks read back per sequence number, so every route's
outcome is known exactly (see docs/decisions/0001). Works on the current network namespace: the
socket is opened per call, after any ``setns``.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

NETLINK_ROUTE = 0
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE = 1, 4, 5, 6, 15
RT_TABLE_MAIN = 254
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTN_UNICAST = 1

_HDR = struct.Struct("=IHHII")  # nlmsghdr
_RTM = struct.Struct("=BBBBBBBBI")  # rtmsg
_ATTR = struct.Struct("=HH")
_CHUNK = 256  # messages per send: keeps the queued acks well under the socket's receive buffer


@dataclass(frozen=True, slots=True)
class KRoute:
    """A kernel route as observed: only the fields nestnet compares (plus what names it)."""

    dst: IPv4Network
    dev: str
    via: IPv4Address | None
    proto: int
    table: int
    metric: int
    type: int = RTN_UNICAST


@dataclass(frozen=True, slots=True)
class RouteOp:
    op: str  # "add" | "replace" | "del"
    dst: IPv4Network
    dev: str
    via: IPv4Address | None
    proto: int
    table: int = RT_TABLE_MAIN
    metric: int = 0


class NetlinkError(Exception):
    """Some ops failed. ``failed`` maps op index -> errno; ops from ``upto`` on were not sent;
    every other op before ``upto`` was done (the kernel runs every message of a chunk)."""

    def __init__(self, failed: dict[int, int], upto: int):
        i, errno = min(failed.items())
        super().__init__(os.strerror(errno))
        self.failed = failed
        self.upto = upto
        self.index = i
        self.errno = errno


def _open() -> socket.socket:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    s.bind((0, 0))
    return s


def _attrs(data: bytes, off: int):
    end = len(data)
    while off + 4 <= end:
        alen, atype = _ATTR.unpack_from(data, off)
        if alen < 4:
            break
        yield atype & 0x7FFF, data[off + 4 : off + alen]
        off += (alen + 3) & ~3


def dump_routes() -> list[KRoute]:
    """Every IPv4 unicast route in every table, except the kernel's local/broadcast ones."""
    names: dict[int, str] = {}
    out: list[KRoute] = []
    with _open() as s:
        req = _RTM.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        s.send(_HDR.pack(_HDR.size + len(req), RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + req)
        while True:
            data = s.recv(1 << 20)
            off = 0
            while off + _HDR.size <= len(data):
                mlen, mtype, _flags, _seq, _pid = _HDR.unpack_from(data, off)
                if mtype == NLMSG_DONE:
                    return out
                if mtype == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", data, off + _HDR.size)
                    raise OSError(-err, os.strerror(-err))
                if mtype == RTM_NEWROUTE:
                    r = _parse_route(data[off + _HDR.size : off + mlen], names)
                    if r is not None:
                        out.append(r)
                off += (mlen + 3) & ~3


def _parse_route(body: bytes, names: dict[int, str]) -> KRoute | None:
    family, dst_len, _src_len, _tos, table, proto, _scope, rtype, _flags = _RTM.unpack_from(body)
    if family != socket.AF_INET or rtype != RTN_UNICAST:
        return None
    dst = b"\0\0\0\0"
    via = None
    oif = 0
    metric = 0
    for atype, val in _attrs(body, _RTM.size):
        if atype == RTA_DST:
            dst = val
        elif atype == RTA_GATEWAY:
            via = IPv4Address(val)
        elif atype == RTA_OIF:
            (oif,) = struct.unpack("=I", val)
        elif atype == RTA_TABLE:
            (table,) = struct.unpack("=I", val)
        elif atype == RTA_PRIORITY:
            (metric,) = struct.unpack("=I", val)
    if oif and oif not in names:
        try:
            names[oif] = socket.if_indextoname(oif)
        except OSError:
            names[oif] = f"if{oif}"
    net = IPv4Network((int.from_bytes(dst, "big"), dst_len))
    return KRoute(net, names.get(oif, ""), via, proto, table, metric)


def _pack(op: RouteOp, seq: int, ifindex: int) -> bytes:
    if op.op == "del":
        mtype, flags = RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK
    elif op.op == "replace":
        mtype, flags = RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
    else:
        mtype, flags = RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    scope = RT_SCOPE_UNIVERSE if op.via is not None else RT_SCOPE_LINK
    table = op.table if op.table < 256 else 252  # RT_TABLE_COMPAT; the real id goes in RTA_TABLE
    body = _RTM.pack(socket.AF_INET, op.dst.prefixlen, 0, 0, table, op.proto, scope, RTN_UNICAST, 0)
    body += _ATTR.pack(8, RTA_TABLE) + struct.pack("=I", op.table)
    body += _ATTR.pack(8, RTA_DST) + op.dst.network_address.packed
    body += _ATTR.pack(8, RTA_OIF) + struct.pack("=I", ifindex)
    if op.via is not None:
        body += _ATTR.pack(8, RTA_GATEWAY) + op.via.packed
    if op.metric:
        body += _ATTR.pack(8, RTA_PRIORITY) + struct.pack("=I", op.metric)
    return _HDR.pack(_HDR.size + len(body), mtype, flags, seq, 0) + body


def write(ops: list[RouteOp]) -> None:
    """Execute ``ops`` in order; after the first chunk with a failure raise ``NetlinkError``."""
    if not ops:
        return
    index: dict[str, int] = {}
    with _open() as s:
        for start in range(0, len(ops), _CHUNK):
            chunk = ops[start : start + _CHUNK]
            msgs = []
            for i, op in enumerate(chunk):
                if op.dev not in index:
                    try:
                        index[op.dev] = socket.if_nametoindex(op.dev)
                    except OSError:
                        if msgs:  # send what precedes the bad op, so the report stays exact
                            s.send(b"".join(msgs))
                            failed = _read_acks(s, len(msgs))
                            if failed:
                                raise NetlinkError({seq - 1: e for seq, e in failed.items()}, start + i)
                        raise NetlinkError({start + i: 19}, start + i + 1) from None  # ENODEV
                msgs.append(_pack(op, start + i + 1, index[op.dev]))
            s.send(b"".join(msgs))
            failed = _read_acks(s, len(chunk))
            if failed:
                raise NetlinkError({seq - 1: e for seq, e in failed.items()}, start + len(chunk))


def _read_acks(s: socket.socket, count: int) -> dict[int, int]:
    """Read ``count`` acks; return {seq: errno} of the failures."""
    failed: dict[int, int] = {}
    seen = 0
    while seen < count:
        data = s.recv(1 << 20)
        off = 0
        while off + _HDR.size <= len(data):
            mlen, mtype, _f, seq, _pid = _HDR.unpack_from(data, off)
            if mtype == NLMSG_ERROR:
                seen += 1
                (err,) = struct.unpack_from("=i", data, off + _HDR.size)
                if err:
                    failed[seq] = -err
            off += (mlen + 3) & ~3
    return failed
