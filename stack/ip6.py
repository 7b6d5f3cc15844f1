"""IPv6 input beside the TCP fast path (RFC 8200, RFC 4443): extension headers, fragments, ICMPv6.

The C parser hands over every IPv6 packet whose first next header is not TCP. Here the header chain is
walked (RFC 8200 §4) within bounds; fragments join the IPv4 ones in the same bounded reassembler and an
atomic fragment (offset 0, M=0) is processed on its own (RFC 6946). ICMPv6 echo is answered, errors
quoting our segments go to the connection as their ICMPv4 equivalents (RFC 7915 §5.2) after the same
window check, and the kernel's link chatter (router solicitations, MLD reports) is counted as what it
is. Counters use Linux's /proc/net/snmp6 names.
"""

from __future__ import annotations

import hashlib
import os
import random
import struct
from collections import Counter
from typing import TYPE_CHECKING

from stack.tcp.icmp_input import (
    CODE_FRAG_NEEDED,
    DEST_UNREACHABLE,
    PARAMETER_PROBLEM,
    TIME_EXCEEDED,
    IcmpError,
)
from stack.wire import addr
from stack.wire.codec import (
    PROTO_ICMPV6,
    PROTO_TCP,
    IpPacket,
    Rejected,
    TcpPacket,
    checksum6,
    decode,
    encode_ipv6,
    encode_tcp,
)
from stack.wire.reasons import DropReason

if TYPE_CHECKING:
    from stack.demux import Demux
    from stack.fragments import Key, Reassembler
    from stack.ip import IpLayer
    from stack.tcp.connection import Connection

HOP_BY_HOP = 0
ROUTING = 43
FRAGMENT = 44
NO_NEXT_HEADER = 59
DEST_OPTIONS = 60
MIN_MTU = 1280  # RFC 8200 §5
ICMP6_RATELIMIT = 0.1  # seconds between ICMPv6 errors to one destination (Linux net.ipv6.icmp.ratelimit)
MAX_EXTENSION_HEADERS = 16  # a longer chain is an attack, not a packet (Linux stops far earlier too)

ICMP6_DEST_UNREACHABLE = 1
ICMP6_PACKET_TOO_BIG = 2
ICMP6_TIME_EXCEEDED = 3
ICMP6_PARAM_PROBLEM = 4
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
ICMP6_NEIGHBOR_SOLICIT = 135
ICMP6_NEIGHBOR_ADVERT = 136
NA_SOLICITED = 0x40000000  # RFC 4861 §4.4
NA_OVERRIDE = 0x20000000
ROUTING_SEGMENT_ROUTING = 4  # RFC 8754
PARAM_ERRONEOUS_FIELD = 0
PARAM_UNKNOWN_NEXT_HEADER = 1
PARAM_UNKNOWN_OPTION = 2
PARAM_INCOMPLETE_CHAIN = 3  # RFC 7112 §5
_UPPER_HEADER_LEN = {PROTO_TCP: 20, PROTO_ICMPV6: 4}  # what an upper-layer header needs at least

# informational messages of the link (RFC 4861 neighbour discovery, RFC 3810/2710 MLD): counted, no reply
_LINK_CHATTER = {
    130: "Icmp6InGroupMembQueries",
    131: "Icmp6InGroupMembResponses",
    132: "Icmp6InGroupMembReductions",
    133: "Icmp6InRouterSolicits",
    134: "Icmp6InRouterAdvertisements",
    135: "Icmp6InNeighborSolicits",
    136: "Icmp6InNeighborAdvertisements",
    137: "Icmp6InRedirects",
    143: "Icmp6InMLDv2Reports",
}
_ERROR_COUNTERS = {
    ICMP6_DEST_UNREACHABLE: "Icmp6InDestUnreachs",
    ICMP6_PACKET_TOO_BIG: "Icmp6InPktTooBigs",
    ICMP6_TIME_EXCEEDED: "Icmp6InTimeExcds",
    ICMP6_PARAM_PROBLEM: "Icmp6InParmProblems",
}
# RFC 7915 §5.2: ICMPv6 destination unreachable codes -> ICMPv4 ones, so one table decides hard or soft
# (5 and 6, policy and reject route, are prohibitions as 1 is: Linux icmpv6_err_convert makes all three fatal);
# no route (0) becomes net unreachable, not RFC 7915's host unreachable: Linux reports it as ENETUNREACH
# and reverts the RTO's backoff on it alone (RFC 6069, tcp_v6_err)
_UNREACHABLE_AS_V4 = {0: 0, 1: 10, 2: 1, 3: 1, 4: 3, 5: 10, 6: 10}

_FLOW_SECRET = os.urandom(16)


def flow_label(local: tuple[int, int], remote: tuple[int, int]) -> int:
    """RFC 6437 §3: a flow label per connection, the same for all its packets, from a keyed hash of the
    4-tuple so that it is uniformly distributed and hard to guess; never 0 (0 means unlabelled)."""
    data = addr.packed(local[0]) + addr.packed(remote[0]) + struct.pack("!HH", local[1], remote[1])
    label = int.from_bytes(hashlib.blake2s(data, key=_FLOW_SECRET, digest_size=4).digest(), "big") & 0xFFFFF
    return label or 1


ALL_NODES = addr.parse("ff02::1")


def is_multicast(a: int) -> bool:
    return a >> 120 == (addr.V6 | 0xFF << 120) >> 120


def fragment6(packet: bytes, mtu: int) -> list[bytes]:
    """RFC 8200 §4.5/§5: a packet we made (a fixed header, no extension headers) too big for the link, as
    fragments of at most `mtu` bytes under one unpredictable identification (RFC 7739)."""
    header, payload = bytearray(packet[:40]), packet[40:]
    next_header = header[6]
    header[6] = FRAGMENT
    ident = random.getrandbits(32)
    step = (mtu - 48) // 8 * 8  # every fragment but the last carries a multiple of 8 bytes
    pieces = []
    for start in range(0, len(payload), step):
        chunk = payload[start : start + step]
        more = start + step < len(payload)
        struct.pack_into("!H", header, 4, 8 + len(chunk))
        pieces.append(bytes(header) + struct.pack("!BBHI", next_header, 0, start | more, ident) + chunk)
    return pieces


def icmp6(
    src: int, dst: int, icmp_type: int, code: int, rest: bytes, traffic_class: int = 0, neighbour: bool = False
) -> bytes:
    """An ICMPv6 message in an IPv6 packet, checksum over the pseudo-header (RFC 4443 §2.3), with a flow
    label from its addresses (RFC 6437 §3, as Linux labels its ICMPv6 messages); a `neighbour` discovery
    message goes unlabelled with hop limit 255 (RFC 4861 §7.1.2), as Linux's ndisc sends them."""
    body = bytearray(struct.pack("!BBH", icmp_type, code, 0) + rest)
    struct.pack_into("!H", body, 2, checksum6(src, dst, PROTO_ICMPV6, bytes(body)))
    if neighbour:
        return encode_ipv6(src, dst, PROTO_ICMPV6, bytes(body), hop_limit=255)
    flow = flow_label((src, 0), (dst, 0))
    return encode_ipv6(src, dst, PROTO_ICMPV6, bytes(body), flow=flow, traffic_class=traffic_class)


def traffic_class_of(raw: bytes) -> int:
    """The Traffic Class of an IPv6 packet (RFC 8200 §3), between the version and the flow label."""
    return (raw[0] & 0x0F) << 4 | raw[1] >> 4


def _chain_complete(nh: int, data: bytes) -> bool:
    """Whether `data` holds the rest of the header chain through the upper-layer header (RFC 7112 §5)."""
    at = 0
    for _ in range(MAX_EXTENSION_HEADERS):
        if nh in (HOP_BY_HOP, ROUTING, DEST_OPTIONS):
            if at + 2 > len(data):
                return False
            nh, at = data[at], at + 8 + data[at + 1] * 8
        elif nh == FRAGMENT:
            if at + 8 > len(data):
                return False
            nh, at = data[at], at + 8
        else:
            return nh == NO_NEXT_HEADER or at + _UPPER_HEADER_LEN.get(nh, 1) <= len(data)
    return False


class Ip6Layer:
    """Every IPv6 `IpPacket` for one of our addresses or a multicast group on the link, its source
    already checked (stack/martians.py)."""

    def __init__(self, demux: Demux, ours: frozenset[int], ip4: IpLayer) -> None:
        self.demux = demux
        self.ours = ours
        self.ip4 = ip4  # its ICMP error rate limit covers both families, as Linux's icmp_global_allow
        self.counters: Counter[str] = ip4.counters
        self.fragments: Reassembler = ip4.fragments
        # the source of an echo reply to all nodes
        self.unicast = min((a for a in ours if a > addr.MAX4 and not is_multicast(a)), default=None)

    def receive(self, pkt: IpPacket, now: float) -> tuple[Connection | None, bytes | None]:
        """One IPv6 packet that the C parser did not take as TCP: the connection it touched, a reply."""
        counters = self.counters
        counters["Ip6InReceives"] += 1
        multicast = is_multicast(pkt.dst)
        if multicast:
            if pkt.dst >> 112 & 0xF < 2:
                # RFC 4291 §2.7: interface-local (and reserved) scope never crosses a link (Linux's ipv6_rcv)
                counters["Ip6InHdrErrors"] += 1
                return None, None
            counters["Ip6InMcastPkts"] += 1
        elif pkt.dst not in self.ours:
            counters["Ip6InAddrErrors"] += 1
            return None, None
        return self._walk(pkt, pkt.header + pkt.payload, multicast, now)

    def _walk(self, pkt: IpPacket, raw: bytes, multicast: bool, now: float) -> tuple[Connection | None, bytes | None]:
        """RFC 8200 §4.1: the headers in order, each naming the next; `off` is the current one's start."""
        nh, nh_at, off = pkt.proto, 6, 40
        end = len(raw)
        for count in range(MAX_EXTENSION_HEADERS + 1):
            if nh == PROTO_TCP:
                return self._tcp(raw, nh_at, off, now)
            if nh == PROTO_ICMPV6:
                return self._icmp(pkt, raw, off, multicast, now)
            if nh == NO_NEXT_HEADER:
                return None, None  # RFC 8200 §4.7: nothing follows
            if nh == FRAGMENT:
                return self._fragment(pkt, raw, off, multicast, now)
            if nh not in (HOP_BY_HOP, ROUTING, DEST_OPTIONS) or (nh == HOP_BY_HOP and count):
                # §4: an unknown header, or Hop-by-Hop anywhere but first (§4.3)
                self.counters["Ip6InUnknownProtos"] += 1
                return None, self._param_problem(pkt, raw, PARAM_UNKNOWN_NEXT_HEADER, nh_at, multicast, now)
            if off + 8 > end or off + 8 + raw[off + 1] * 8 > end:
                self.counters["Ip6InTruncatedPkts"] += 1
                return None, None
            size = 8 + raw[off + 1] * 8
            if nh == ROUTING and raw[off + 2] == ROUTING_SEGMENT_ROUTING:
                # Linux without segment routing enabled (seg6_enabled, off by default) drops it unanswered
                self.counters["Ip6InDiscards"] += 1
                return None, None
            if nh == ROUTING and raw[off + 3]:
                # §4.4: segments left, and we route for nobody: no routing type is recognized
                self.counters["Ip6InHdrErrors"] += 1
                return None, self._param_problem(pkt, raw, PARAM_ERRONEOUS_FIELD, off + 2, multicast, now)
            if nh != ROUTING:
                verdict = self._options(pkt, raw, off + 2, off + size, multicast, now)
                if verdict is not True:
                    return None, verdict
            nh, nh_at, off = raw[off], off, off + size
        self.counters["Ip6InHdrErrors"] += 1  # too long a chain
        return None, None

    def _options(
        self, pkt: IpPacket, raw: bytes, at: int, end: int, multicast: bool, now: float
    ) -> bytes | None | bool:
        """RFC 8200 §4.2 TLV options: True to go on, or the packet is dropped (with a reply, maybe)."""
        while at < end:
            kind = raw[at]
            if kind == 0:  # Pad1
                at += 1
                continue
            if at + 2 > end or at + 2 + raw[at + 1] > end:
                self.counters["Ip6InHdrErrors"] += 1
                return None
            if kind not in (1, 5):  # PadN and Router Alert (MLD carries it) are known; others by action bits
                action = kind >> 6
                if action:
                    self.counters["Ip6InHdrErrors"] += 1
                if action == 2 or (action == 3 and not multicast):
                    return self._param_problem(pkt, raw, PARAM_UNKNOWN_OPTION, at, False, now)
                if action:
                    return None
            at += 2 + raw[at + 1]
        return True

    def _fragment(
        self, pkt: IpPacket, raw: bytes, off: int, multicast: bool, now: float
    ) -> tuple[Connection | None, bytes | None]:
        """RFC 8200 §4.5: reassembly keyed by source, destination and identification."""
        if off + 8 > len(raw):
            self.counters["Ip6InTruncatedPkts"] += 1
            return None, None
        nh = raw[off]
        offset_flags, ident = struct.unpack_from("!HI", raw, off + 2)
        rest = raw[off + 8 :]
        header = bytearray(raw[:40])
        header[6] = nh  # the fixed header now leads straight to the fragmentable part
        if offset_flags & 0xFFF9 == 0:
            # RFC 6946 §4: an atomic fragment is a whole packet, never mixed with queued fragments
            self.counters["Ip6AtomicFragments"] += 1
            struct.pack_into("!H", header, 4, len(rest))
            whole = bytes(header) + rest
        else:
            start, more = offset_flags & 0xFFF8, offset_flags & 1
            problem = None
            if more and len(rest) % 8:
                problem = PARAM_ERRONEOUS_FIELD, 4  # §4.5: the Payload Length of a fragment not the last
            elif start + len(rest) > 0xFFFF:
                problem = PARAM_ERRONEOUS_FIELD, off + 2  # §4.5: the Fragment Offset reaches past 65535
            elif start == 0 and not _chain_complete(nh, rest):
                problem = PARAM_INCOMPLETE_CHAIN, 0  # RFC 7112 §5: the first fragment holds every header
            if problem is not None:
                self.counters["ReasmFails"] += 1
                return None, self._param_problem(pkt, raw, *problem, multicast, now)
            piece = IpPacket(pkt.src, pkt.dst, nh, pkt.ttl, ident, bytes(header), rest, start, bool(more))
            whole = self.fragments.add(piece, now, raw[: off + 8])
            if whole is None:
                return None, None
        decoded = decode(whole)
        if type(decoded) is TcpPacket:
            return self._segment(decoded, now)
        if type(decoded) is Rejected:
            self._rejected(decoded)
            return None, None
        return self._walk(decoded, whole, multicast, now)

    def _rejected(self, decoded: Rejected) -> None:
        self.counters["InCsumErrors" if decoded.reason is DropReason.BAD_TCP_CHECKSUM else "InErrors"] += 1
        self.counters[f"Drop{decoded.reason.name}"] += 1

    def _tcp(self, raw: bytes, nh_at: int, off: int, now: float) -> tuple[Connection | None, bytes | None]:
        """TCP after extension headers: the fixed header is rebuilt to lead to it and decoded again."""
        header = bytearray(raw[:40])
        header[6] = PROTO_TCP
        struct.pack_into("!H", header, 4, len(raw) - off)
        decoded = decode(bytes(header) + raw[off:])
        if type(decoded) is Rejected:
            self._rejected(decoded)
            return None, None
        return self._segment(decoded, now)

    def _segment(self, pkt: TcpPacket, now: float) -> tuple[Connection | None, bytes | None]:
        conn, rst = self.demux.segment_arrives(pkt.src, pkt.dst, pkt.segment, now)
        if rst is None:
            return conn, None
        return conn, encode_tcp(
            pkt.dst, pkt.src, rst, flow=flow_label((pkt.dst, rst.src_port), (pkt.src, rst.dst_port))
        )

    def _icmp(
        self, pkt: IpPacket, raw: bytes, off: int, multicast: bool, now: float
    ) -> tuple[Connection | None, bytes | None]:
        counters = self.counters
        counters["Icmp6InMsgs"] += 1
        data = raw[off:]
        if len(data) < 4 or checksum6(pkt.src, pkt.dst, PROTO_ICMPV6, data) != 0:
            counters["Icmp6InErrors"] += 1
            counters["Icmp6InCsumErrors"] += len(data) >= 4
            return None, None
        icmp_type = data[0]
        chatter = _LINK_CHATTER.get(icmp_type)
        if chatter is not None:
            counters[chatter] += 1
            if icmp_type == ICMP6_NEIGHBOR_SOLICIT:
                return None, self._neighbour_advert(pkt, raw, data, multicast)
            return None, None
        if icmp_type == ICMP6_ECHO_REQUEST:
            counters["Icmp6InEchos"] += 1
            src = pkt.dst
            if multicast:
                # RFC 4443 §4.2: answered from a unicast address of ours, for a group we belong to: on a
                # TUN link only all nodes (RFC 4291 §2.7.1), as Linux joins no solicited-node group on a
                # device without neighbour discovery (IFF_NOARP: addrconf_join_solict)
                if pkt.dst != ALL_NODES or self.unicast is None:
                    return None, None
                src = self.unicast
            counters["Icmp6OutEchoReplies"] += 1
            # RFC 4443 §4.2: the identifier, sequence number and data back; the code and traffic class too,
            # as Linux's icmpv6_echo_reply
            return None, icmp6(src, pkt.src, ICMP6_ECHO_REPLY, data[1], data[4:], traffic_class_of(raw))
        if icmp_type == ICMP6_ECHO_REPLY:
            counters["Icmp6InEchoReplies"] += 1
            return None, None
        if icmp_type < 128:
            counters[_ERROR_COUNTERS.get(icmp_type, "Icmp6InOtherErrors")] += 1
            return self._icmp_error(data, now), None
        return None, None  # unknown informational messages are dropped silently (RFC 4443 §2.4 b)

    def _neighbour_advert(self, pkt: IpPacket, raw: bytes, data: bytes, multicast: bool) -> bytes | None:
        """RFC 4861 §7.2.4: a valid solicitation (§7.1.1) for an address of ours gets a solicited
        advertisement, with Override when it came to a group, as Linux's ndisc_recv_ns. A TUN device has no
        link-layer address, so no option goes with it. (Duplicate address detection, from ::, never gets
        here: the unspecified source is martian.)"""
        if raw[7] != 255 or data[1] != 0 or len(data) < 24:
            self.counters["Icmp6InErrors"] += 1
            return None
        target = addr.from_packed6(data[8:24])
        if target not in self.ours or multicast and pkt.dst != ALL_NODES:
            return None  # not ours to answer, or sent to a group we are not in
        flags = NA_SOLICITED | (NA_OVERRIDE if multicast else 0)
        self.counters["Icmp6OutNeighborAdvertisements"] += 1
        return icmp6(target, pkt.src, ICMP6_NEIGHBOR_ADVERT, 0, struct.pack("!I", flags) + data[8:24], neighbour=True)

    def _icmp_error(self, data: bytes, now: float) -> Connection | None:
        """RFC 4443 §2.4 d: the error goes to the connection whose segment it quotes (the IPv6 header we
        sent, no extension headers, then the ports and SEG.SEQ), as its RFC 7915 ICMPv4 equivalent."""
        quoted = data[8:]
        if len(quoted) < 48 or quoted[0] >> 4 != 6:
            self.counters["Icmp6InErrors"] += 1
            return None
        src = addr.from_packed6(quoted[8:24])
        dst = addr.from_packed6(quoted[24:40])
        if data[0] == ICMP6_PACKET_TOO_BIG and quoted[6] != PROTO_TCP and src in self.ours:
            # about an echo reply of ours: its MTU holds for the next ones there (RFC 8201 §4, never below
            # the IPv6 minimum MTU), as Linux's icmpv6_err keeps it with the route
            self.demux.path_too_big(dst, max(struct.unpack_from("!I", data, 4)[0], MIN_MTU), now)
            return None
        if quoted[6] != PROTO_TCP or src not in self.ours:
            self.counters["IcmpUnmatched"] += 1  # not about a TCP header we sent
            return None
        sport, dport, seq = struct.unpack_from("!HHI", quoted, 40)
        icmp_type, code, field = data[0], data[1], struct.unpack_from("!I", data, 4)[0]
        if icmp_type == ICMP6_PACKET_TOO_BIG:
            # RFC 8201 §4: never below the IPv6 minimum MTU, whatever the message says
            error = IcmpError(DEST_UNREACHABLE, CODE_FRAG_NEEDED, seq, max(field, MIN_MTU))
        elif icmp_type == ICMP6_DEST_UNREACHABLE and code in _UNREACHABLE_AS_V4:
            error = IcmpError(DEST_UNREACHABLE, _UNREACHABLE_AS_V4[code], seq)
        elif icmp_type == ICMP6_TIME_EXCEEDED:
            error = IcmpError(TIME_EXCEEDED, code, seq)
        elif icmp_type == ICMP6_PARAM_PROBLEM and code == PARAM_UNKNOWN_NEXT_HEADER:
            error = IcmpError(DEST_UNREACHABLE, 2, seq)  # RFC 7915: protocol unreachable
        elif icmp_type == ICMP6_PARAM_PROBLEM and code == PARAM_ERRONEOUS_FIELD:
            error = IcmpError(PARAMETER_PROBLEM, 0, seq)
        else:
            self.counters["TCPIcmpIgnored"] += 1  # RFC 7915 §5.2: no ICMPv4 equivalent, no effect on TCP
            return None
        return self.demux.icmp_error((src, sport), (dst, dport), error, now)

    def reassembly_timed_out(self, key: Key, headers: bytes, first: bytes, now: float) -> bytes | None:
        """RFC 8200 §4.5: Time Exceeded, fragment reassembly time exceeded, to the source of a packet whose
        first fragment came but not all the others, quoting that fragment as it came (`headers`: the fixed
        header, any extension header before the fragment header and the fragment header; `first`, its
        payload), as Linux's ip6_expire_frag_queue; within the limits of ICMP errors."""
        src, dst, _, _ = key
        if is_multicast(dst) or not self.ip4.may_send_icmp_error(now, src, ICMP6_RATELIMIT):
            return None
        fragment = headers + first
        self.counters["Icmp6OutTimeExcds"] += 1
        return icmp6(dst, src, ICMP6_TIME_EXCEEDED, 1, bytes(4) + fragment[: MIN_MTU - 48])

    def _param_problem(
        self, pkt: IpPacket, raw: bytes, code: int, pointer: int, multicast: bool, now: float
    ) -> bytes | None:
        """RFC 4443 §3.4, within the limits of §2.4 (e): not to a multicast destination, rate-limited; as
        much of the packet as fits in the minimum MTU."""
        if multicast or not self.ip4.may_send_icmp_error(now, pkt.src, ICMP6_RATELIMIT):
            return None
        self.counters["Icmp6OutParmProblems"] += 1
        quote = raw[: MIN_MTU - 48]
        return icmp6(pkt.dst, pkt.src, ICMP6_PARAM_PROBLEM, code, struct.pack("!I", pointer) + quote)
