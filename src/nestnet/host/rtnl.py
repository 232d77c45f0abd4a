"""Netlink, raw: IPv4 routes (one dump to read, pipelined writes), links, nestnet's nft table.

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
    """A kernel route as observed: only the fields nestnet compares (plus what names it).

    Addresses stay integers (``via`` 0 = none): building ipaddress objects for every route of a
    1,000-route dump would cost more than the dump itself.
    """

    dst: int
    plen: int
    dev: str
    via: int
    proto: int
    table: int
    metric: int

    @property
    def net(self) -> IPv4Network:
        return IPv4Network((self.dst, self.plen))

    @property
    def gateway(self) -> IPv4Address | None:
        return IPv4Address(self.via) if self.via else None


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


def _open(protocol: int = NETLINK_ROUTE) -> socket.socket:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
    s.bind((0, 0))
    return s


def _dump(mtype: int, req: bytes, protocol: int = NETLINK_ROUTE):
    """Yield (data, body offset, end) of every message a dump request answers."""
    with _open(protocol) as s:
        s.send(_HDR.pack(_HDR.size + len(req), mtype, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + req)
        while True:
            data = s.recv(1 << 20)
            off = 0
            while off + _HDR.size <= len(data):
                mlen, t, _flags, _seq, _pid = _HDR.unpack_from(data, off)
                if t == NLMSG_DONE:
                    return
                if t == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", data, off + _HDR.size)
                    raise OSError(-err, os.strerror(-err))
                yield data, off + _HDR.size, off + mlen
                off += (mlen + 3) & ~3


def dump_routes() -> list[KRoute]:
    """Every IPv4 unicast route in every table (not the kernel's local/broadcast ones)."""
    names: dict[int, str] = {}
    out: list[KRoute] = []
    for data, off, end in _dump(RTM_GETROUTE, _RTM.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)):
        r = _parse_route(data, off, end, names)
        if r is not None:
            out.append(r)
    return out


RTM_GETLINK, RTM_GETADDR = 18, 22
IFLA_ADDRESS, IFLA_IFNAME, IFLA_LINKINFO, IFLA_IFALIAS = 1, 3, 18, 20
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_BR_NF_CALL_IPTABLES = 1, 2, 36
IFA_LOCAL = 2
IFF_UP = 1
_IFI = struct.Struct("=BxHiII")
_IFA = struct.Struct("=BBBBI")


@dataclass(frozen=True, slots=True)
class KLink:
    name: str
    kind: str
    mac: str
    up: bool
    alias: str
    addrs: frozenset[IPv4Address]
    nf_call_iptables: int | None


def _attrs(data: bytes, off: int, end: int):
    while off + 4 <= end:
        alen, atype = _ATTR.unpack_from(data, off)
        if alen < 4:
            return
        yield atype & 0x7FFF, off + 4, off + alen
        off += (alen + 3) & ~3


def dump_links() -> list[KLink]:
    """Every link with its kind, MAC, admin state, alias, IPv4 addresses (and a bridge's
    nf_call_iptables)."""
    addrs: dict[int, set[IPv4Address]] = {}
    for data, off, end in _dump(RTM_GETADDR, _IFA.pack(socket.AF_INET, 0, 0, 0, 0)):
        family, _plen, _flags, _scope, index = _IFA.unpack_from(data, off)
        for t, a, b in _attrs(data, off + _IFA.size, end):
            if t == IFA_LOCAL and family == socket.AF_INET:
                addrs.setdefault(index, set()).add(IPv4Address(data[a:b]))
    out: list[KLink] = []
    for data, off, end in _dump(RTM_GETLINK, _IFI.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
        _family, _type, index, flags, _change = _IFI.unpack_from(data, off)
        name = kind = mac = alias = ""
        nf = None
        for t, a, b in _attrs(data, off + _IFI.size, end):
            if t == IFLA_IFNAME:
                name = data[a:b].rstrip(b"\0").decode()
            elif t == IFLA_ADDRESS:
                mac = ":".join(f"{x:02x}" for x in data[a:b])
            elif t == IFLA_IFALIAS:
                alias = data[a:b].rstrip(b"\0").decode(errors="replace")
            elif t == IFLA_LINKINFO:
                for t2, a2, b2 in _attrs(data, a, b):
                    if t2 == IFLA_INFO_KIND:
                        kind = data[a2:b2].rstrip(b"\0").decode()
                    elif t2 == IFLA_INFO_DATA:
                        for t3, a3, _b3 in _attrs(data, a2, b2):
                            if t3 == IFLA_BR_NF_CALL_IPTABLES:
                                nf = data[a3]
        out.append(KLink(name, kind, mac, bool(flags & IFF_UP), alias, frozenset(addrs.get(index, ())), nf if kind == "bridge" else None))
    return out


_U32 = struct.Struct("=I")
_BE32 = struct.Struct(">I")


def _parse_route(data: bytes, off: int, end: int, names: dict[int, str]) -> KRoute | None:
    family, plen, _src_len, _tos, table, proto, _scope, rtype, _flags = _RTM.unpack_from(data, off)
    if family != socket.AF_INET or rtype != RTN_UNICAST:
        return None
    dst = via = oif = metric = 0
    off += _RTM.size
    while off + 4 <= end:
        alen, atype = _ATTR.unpack_from(data, off)
        if alen < 4:
            break
        if atype == RTA_DST:
            (dst,) = _BE32.unpack_from(data, off + 4)
        elif atype == RTA_GATEWAY:
            (via,) = _BE32.unpack_from(data, off + 4)
        elif atype == RTA_OIF:
            (oif,) = _U32.unpack_from(data, off + 4)
        elif atype == RTA_TABLE:
            (table,) = _U32.unpack_from(data, off + 4)
        elif atype == RTA_PRIORITY:
            (metric,) = _U32.unpack_from(data, off + 4)
        off += (alen + 3) & ~3
    dev = names.get(oif)
    if dev is None:
        try:
            dev = socket.if_indextoname(oif) if oif else ""
        except OSError:
            dev = f"if{oif}"
        names[oif] = dev
    return KRoute(dst, plen, dev, via, proto, table, metric)


_STRUCTS: dict[tuple[bool, bool], struct.Struct] = {}


def _struct(via: bool, metric: bool) -> struct.Struct:
    key = (via, metric)
    if key not in _STRUCTS:  # nlmsghdr, rtmsg, RTA_TABLE, RTA_DST, RTA_OIF [, RTA_GATEWAY] [, RTA_PRIORITY]
        _STRUCTS[key] = struct.Struct("=IHHII BBBBBBBBI HHI HH4s HHI" + (" HH4s" if via else "") + (" HHI" if metric else ""))
    return _STRUCTS[key]


_FLAGS = {
    "del": (RTM_DELROUTE, NLM_F_REQUEST),
    "replace": (RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE),
    "add": (RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL),
}


def _pack(op: RouteOp, seq: int, ifindex: int, ack: bool) -> bytes:
    mtype, flags = _FLAGS[op.op]
    st = _struct(op.via is not None, bool(op.metric))
    scope = RT_SCOPE_UNIVERSE if op.via is not None else RT_SCOPE_LINK
    table = op.table if op.table < 256 else 252  # RT_TABLE_COMPAT; the real id goes in RTA_TABLE
    fields = [
        st.size, mtype, flags | (NLM_F_ACK if ack else 0), seq, 0,
        socket.AF_INET, op.dst.prefixlen, 0, 0, table, op.proto, scope, RTN_UNICAST, 0,
        8, RTA_TABLE, op.table,
        8, RTA_DST, op.dst.network_address.packed,
        8, RTA_OIF, ifindex,
    ]
    if op.via is not None:
        fields += [8, RTA_GATEWAY, op.via.packed]
    if op.metric:
        fields += [8, RTA_PRIORITY, op.metric]
    return st.pack(*fields)


def write(ops: list[RouteOp]) -> None:
    """Execute ``ops`` in order; after the first chunk with a failure raise ``NetlinkError``.

    Only the last message of a chunk asks for an ack: the kernel answers failures anyway and
    handles a chunk's messages in order, so that ack means every earlier one was handled too.
    Reading one ack per chunk instead of one per route halves the cost of a write.
    """
    index: dict[str, int] = {}
    for i, op in enumerate(ops):
        if op.dev not in index:
            try:
                index[op.dev] = socket.if_nametoindex(op.dev)
            except OSError:
                write(ops[:i])  # what precedes the bad op, so the report stays exact
                raise NetlinkError({i: 19}, i + 1) from None  # ENODEV
    if not ops:
        return
    with _open() as s:
        s.setsockopt(270, 10, 1)  # SOL_NETLINK, NETLINK_CAP_ACK: errors without the request echoed
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for start in range(0, len(ops), _CHUNK):
            chunk = ops[start : start + _CHUNK]
            last = start + len(chunk)
            s.send(b"".join(_pack(op, start + i + 1, index[op.dev], start + i + 1 == last) for i, op in enumerate(chunk)))
            failed = _read_acks(s, last)
            if failed:
                raise NetlinkError({seq - 1: e for seq, e in failed.items()}, last)


def _read_acks(s: socket.socket, last_seq: int) -> dict[int, int]:
    """Read errors up to the answer for ``last_seq``; return {seq: errno} of the failures."""
    failed: dict[int, int] = {}
    while True:
        data = s.recv(1 << 20)
        off = 0
        while off + _HDR.size <= len(data):
            mlen, mtype, _f, seq, _pid = _HDR.unpack_from(data, off)
            if mtype == NLMSG_ERROR:
                (err,) = struct.unpack_from("=i", data, off + _HDR.size)
                if err:
                    failed[seq] = -err
                if seq == last_seq:
                    return failed
            off += (mlen + 3) & ~3


NETLINK_NETFILTER = 12
NFT_MSG_GETTABLE = (10 << 8) | 1  # NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE
NFTA_TABLE_NAME, NFTA_TABLE_USERDATA = 1, 6
NFPROTO = {"inet": 1, "ip": 2, "bridge": 7, "netdev": 5}


def nft_table_comment(family: str, name: str) -> str | None:
    """The comment of an nftables table ("" if none), None if the table does not exist.

    One netlink request instead of an ``nft`` process: the comment is all ``diff`` needs.
    """
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as s:
        s.bind((0, 0))
        attr = name.encode() + b"\0"
        alen = 4 + len(attr)
        body = struct.pack("=BBH", NFPROTO[family], 0, 0) + _ATTR.pack(alen, NFTA_TABLE_NAME) + attr
        body += b"\0" * ((4 - alen % 4) % 4)
        s.send(_HDR.pack(_HDR.size + len(body), NFT_MSG_GETTABLE, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body)
        comment: str | None = None
        while True:
            data = s.recv(65536)
            off = 0
            while off + _HDR.size <= len(data):
                mlen, mtype, _f, _seq, _pid = _HDR.unpack_from(data, off)
                if mtype == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", data, off + _HDR.size)
                    if err == -2:  # ENOENT
                        return None
                    if err:
                        raise OSError(-err, os.strerror(-err))
                    return comment
                if mtype == NLMSG_DONE:
                    return comment
                comment = ""
                a = off + _HDR.size + 4  # after nfgenmsg
                while a + 4 <= off + mlen:
                    l, t = _ATTR.unpack_from(data, a)
                    if l < 4:
                        break
                    if t & 0x7FFF == NFTA_TABLE_USERDATA:
                        comment = _udata_comment(data[a + 4 : a + l])
                    a += (l + 3) & ~3
                off += (mlen + 3) & ~3


def _udata_comment(udata: bytes) -> str:
    i = 0
    while i + 2 <= len(udata):
        t, l = udata[i], udata[i + 1]
        if t == 0:  # NFTNL_UDATA_TABLE_COMMENT, NUL-terminated
            return udata[i + 2 : i + 2 + l].rstrip(b"\0").decode(errors="replace")
        i += 2 + l
    return ""


NFT_MSG_GETRULE = (10 << 8) | 7
NFTA_RULE_TABLE = 1


def nft_rule_count(family: str, table: str) -> int:
    """How many rules the table holds: a cheap check that nobody edited it behind its comment."""
    attr = table.encode() + b"\0"
    alen = 4 + len(attr)
    req = struct.pack("=BBH", NFPROTO[family], 0, 0) + _ATTR.pack(alen, NFTA_RULE_TABLE) + attr
    req += b"\0" * ((4 - alen % 4) % 4)
    try:
        return sum(1 for _ in _dump(NFT_MSG_GETRULE, req, NETLINK_NETFILTER))
    except FileNotFoundError:  # ENOENT: no such table
        return 0
