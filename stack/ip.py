"""IPv4 input beside the TCP fast path: fragment reassembly, ICMP (echo, timestamp, errors quoting our
segments) and protocol unreachable (RFC 791, RFC 792, RFC 1122 §3.2), answered as Linux answers them."""

from __future__ import annotations

import random
import struct
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from stack.fragments import FragmentLimits, Reassembler
from stack.ip_options import arrived, later_fragment_header, reply_options
from stack.tcp.icmp_input import DEST_UNREACHABLE, PARAMETER_PROBLEM, SOURCE_QUENCH, TIME_EXCEEDED, IcmpError
from stack.wire.checksum import fill_ipv4_checksum, internet_checksum
from stack.wire.codec import PROTO_ICMP, PROTO_TCP, IpPacket, Rejected, TcpPacket, decode, encode_tcp
from stack.wire.reasons import DropReason

if TYPE_CHECKING:
    from stack.demux import Demux
    from stack.tcp.connection import Connection

ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACHABLE = DEST_UNREACHABLE
ICMP_ECHO_REQUEST = 8
ICMP_TIMESTAMP_REQUEST = 13
ICMP_TIMESTAMP_REPLY = 14
CODE_PROTOCOL_UNREACHABLE = 2
CODE_REASSEMBLY_TIME_EXCEEDED = 1
_ICMP_ERRORS = (DEST_UNREACHABLE, TIME_EXCEEDED, PARAMETER_PROBLEM)
ICMP_ERRORS_PER_SEC = 1000  # ICMP errors we send, at most (Linux net.ipv4.icmp_msgs_per_sec)
ICMP_ERRORS_BURST = 50  # Linux net.ipv4.icmp_msgs_burst
ICMP_RATELIMIT = 1.0  # seconds between ICMP errors to one destination (Linux net.ipv4.icmp_ratelimit)
ICMP_RATE_BURST = 6  # errors one destination may have at once (Linux's XRLIM_BURST_FACTOR)
ICMP_RATE_DESTINATIONS = 4096  # destinations whose allowance is kept; one forgotten starts afresh
ERROR_DATAGRAM_MAX = 576  # RFC 1812 §4.3.2.3: an error quotes as much as fits in 576 bytes, as Linux's
TOS_INTERNETCONTROL = 0xC0  # RFC 1812 §4.3.2.5: ICMP errors go with precedence 6
TOS_MASK = 0x1E  # the TOS bits proper (RFC 1349), without precedence and ECN
_MF = 0x2000
# what handle_ip_packet answers with, by ICMP type, as Linux's /proc/net/snmp counts it
_OUT_COUNTERS = {
    ICMP_ECHO_REPLY: "IcmpOutEchoReps",
    ICMP_TIMESTAMP_REPLY: "IcmpOutTimestampReps",
    ICMP_DEST_UNREACHABLE: "IcmpOutDestUnreachs",
}


def _icmp(icmp_type: int, code: int, rest: bytes) -> bytes:
    body = struct.pack("!BBH", icmp_type, code, 0) + rest
    csum = internet_checksum(body)
    return body[:2] + struct.pack("!H", csum) + body[4:]


def icmp_packet(src: int, dst: int, message: bytes, tos: int = 0, options: bytes = b"") -> bytes:
    """An ICMP message in an IPv4 packet without DF, as Linux's ICMP socket sends them (IP_PMTUDISC_DONT):
    a router on the way may fragment a large echo reply. The identification is random, for fragments."""
    size = 20 + len(options)
    fields = (0x40 | size // 4, tos, size + len(message), random.getrandbits(16), 0, 64, PROTO_ICMP, 0, src, dst)
    header = bytearray(struct.pack("!BBHHHBBHII", *fields) + options)
    fill_ipv4_checksum(header)
    return bytes(header) + message


def fragment4(packet: bytes, mtu: int) -> list[bytes]:
    """RFC 791 §3.2: a packet we made (DF clear) too big for the link, as fragments of at most `mtu` bytes
    under its own identification, each but the last carrying a multiple of 8 bytes; the options not to be
    copied (record route, timestamp) are in the first fragment only."""
    size = (packet[0] & 0x0F) * 4
    payload = packet[size:]
    step = (mtu - size) // 8 * 8
    pieces = []
    header = bytearray(packet[:size])
    for start in range(0, len(payload), step):
        chunk = payload[start : start + step]
        more = _MF if start + step < len(payload) else 0
        struct.pack_into("!H", header, 2, size + len(chunk))
        struct.pack_into("!H", header, 6, more | start // 8)
        fill_ipv4_checksum(header)
        pieces.append(bytes(header) + chunk)
        header = bytearray(later_fragment_header(header))
    return pieces


def ms_since_midnight(wall_time: float) -> int:
    """RFC 792's timestamp: milliseconds since midnight UT."""
    return int(wall_time * 1000) % 86_400_000


def handle_ip_packet(pkt: IpPacket, wall_time: float) -> bytes | None:
    """The stateless reply to a whole non-TCP packet addressed to us, if any (as raw IPv4 bytes, from the
    address it was sent to); `wall_time` (seconds since the epoch) gives the times it records (a timestamp
    reply's, a timestamp option's)."""
    if pkt.is_fragment:
        return None  # a piece of a datagram: IpLayer reassembles it first
    tos, stamp = pkt.header[1], ms_since_midnight(wall_time)
    header, options = answering(pkt.header, stamp)
    if pkt.proto == PROTO_ICMP:
        data = pkt.payload
        if len(data) < 8 or internet_checksum(data) != 0:
            return None  # RFC 1122 §3.2.2: silently discard ICMP with a bad checksum
        if data[0] == ICMP_ECHO_REQUEST:
            # echo reply: same identifier, sequence number and data (RFC 792), and code and TOS (RFC 1349
            # §5.1), as Linux's icmp_echo
            return icmp_packet(pkt.dst, pkt.src, _icmp(ICMP_ECHO_REPLY, data[1], data[4:]), tos, options)
        if data[0] == ICMP_TIMESTAMP_REQUEST and len(data) >= 12:
            # RFC 792: the originate timestamp back, with when it was received and sent (RFC 1122 §3.2.2.8
            # makes it a MAY; Linux's icmp_timestamp answers, with the same two times)
            times = data[8:12] + struct.pack("!II", stamp, stamp)
            return icmp_packet(pkt.dst, pkt.src, _icmp(ICMP_TIMESTAMP_REPLY, 0, data[4:8] + times), tos, options)
        return None
    # RFC 1122 §3.2.2.1: protocol unreachable
    return _error(header + pkt.payload, options, ICMP_DEST_UNREACHABLE, CODE_PROTOCOL_UNREACHABLE)


def error_reply(packet: bytes, icmp_type: int, code: int, wall_time: float) -> bytes:
    """The ICMP error about a packet sent to us (raw IPv4 bytes), back to its source: as Linux's icmp_send
    builds it (see _error), a record route or timestamp option of the packet sent back with our entries."""
    size = (packet[0] & 0x0F) * 4
    header, options = answering(packet[:size], ms_since_midnight(wall_time))
    return _error(header + packet[size:], options, icmp_type, code)


def answering(header: bytes, stamp: int) -> tuple[bytes, bytes]:
    """The header of a packet to us as it arrived, and the options of an answer to it (from ICMP, or from
    TCP): a record route or timestamp option comes back, with our entries, as Linux sends it back
    (stack/ip_options.py)."""
    if len(header) == 20:
        return header, b""
    ours = struct.unpack_from("!I", header, 16)[0]
    header = arrived(header, ours, stamp)
    return header, reply_options(header, ours, stamp)


def _error(quoted: bytes, options: bytes, icmp_type: int, code: int) -> bytes:
    """An ICMP error from the destination of `quoted` (the packet it is about, its header as it arrived) to
    its source: quoting as much of it as fits in 576 bytes (RFC 1812 §4.3.2.3), with precedence 6 and the
    quoted packet's TOS bits (RFC 1812 §4.3.2.5), as Linux's icmp_send."""
    src, dst = struct.unpack_from("!II", quoted, 12)
    message = _icmp(icmp_type, code, b"\0\0\0\0" + quoted[: ERROR_DATAGRAM_MAX - 20 - len(options) - 8])
    return icmp_packet(dst, src, message, quoted[1] & TOS_MASK | TOS_INTERNETCONTROL, options)


class IpLayer:
    """Everything that reaches us as an `IpPacket`: fragments go to the reassembler and a whole datagram
    is decoded again; ICMP errors quoting a TCP segment go to the connection through the demux."""

    def __init__(
        self,
        demux: Demux,
        our_addr: int,
        limits: FragmentLimits | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.demux = demux
        self.addr = our_addr
        self.wall_clock = wall_clock  # for the times ICMP gives out (timestamp replies, timestamp options)
        self.counters: Counter[str] = Counter()  # Icmp*, Reasm*, drops of reassembled datagrams
        self.fragments = Reassembler(limits, self.counters)
        self._icmp_tokens = float(ICMP_ERRORS_BURST)
        self._icmp_refilled = 0.0
        # destination -> (seconds of allowance, when last asked); the most recently asked last
        self._icmp_allowances: OrderedDict[int, tuple[float, float]] = OrderedDict()

    def receive(self, pkt: IpPacket, now: float) -> tuple[Connection | None, bytes | None]:
        """One packet addressed to us: the connection it touched (to flush), and a reply to send."""
        if pkt.is_fragment:
            whole = self.fragments.add(pkt, now)
            if whole is None:
                return None, None
            decoded = decode(whole)
            if type(decoded) is TcpPacket:
                conn, rst = self.demux.segment_arrives(decoded.src, decoded.dst, decoded.segment, now)
                return conn, None if rst is None else encode_tcp(decoded.dst, decoded.src, rst)
            if type(decoded) is Rejected:
                bad_sum = decoded.reason is DropReason.BAD_TCP_CHECKSUM
                self.counters["InCsumErrors" if bad_sum else "InErrors"] += 1
                self.counters[f"Drop{decoded.reason.name}"] += 1
                return None, None
            pkt = decoded
        if pkt.proto == PROTO_ICMP:
            self.counters["IcmpInMsgs"] += 1
            data = pkt.payload
            if len(data) < 8 or internet_checksum(data) != 0:
                self.counters["IcmpInErrors"] += 1
                return None, None
            if data[0] in _ICMP_ERRORS:
                return self._icmp_error(data, now), None
            if data[0] == SOURCE_QUENCH:
                self.counters["IcmpInSrcQuenchs"] += 1  # RFC 6633 §3: silently ignored
                return None, None
            if data[0] == ICMP_ECHO_REQUEST:
                self.counters["IcmpInEchos"] += 1
            elif data[0] == ICMP_TIMESTAMP_REQUEST:
                self.counters["IcmpInTimestamps"] += 1
        elif not self.may_send_icmp_error(now, pkt.src, ICMP_RATELIMIT):
            return None, None  # a flood is not answered packet for packet
        reply = handle_ip_packet(pkt, self.wall_clock())
        if reply is not None:
            self.counters[_OUT_COUNTERS[reply[(reply[0] & 0x0F) * 4]]] += 1
        return None, reply

    def may_send_icmp_error(self, now: float, to: int, interval: float) -> bool:
        """Whether an ICMP error to `to` may go now (RFC 1812 §4.3.2.8 asks routers to rate-limit them; a
        host answering every packet of a flood is as much of an amplifier). As Linux: a token bucket for all
        of them (icmp_global_allow: ICMP_ERRORS_PER_SEC, a burst of ICMP_ERRORS_BURST), and one per
        destination (inet_peer_xrlim_allow: one error per `interval`, a burst of ICMP_RATE_BURST), whose
        refusal leaves the first untouched; counted as IcmpOutRateLimitGlobal and IcmpOutRateLimitHost."""
        elapsed = max(now - self._icmp_refilled, 0.0)
        self._icmp_refilled = now
        self._icmp_tokens = min(self._icmp_tokens + elapsed * ICMP_ERRORS_PER_SEC, ICMP_ERRORS_BURST)
        if self._icmp_tokens < 1.0:
            self.counters["IcmpOutRateLimitGlobal"] += 1
            return False
        allowances = self._icmp_allowances
        most = ICMP_RATE_BURST * interval
        allowance, last = allowances.pop(to, (most, now))  # one not heard from lately starts with a burst
        allowance = min(allowance + max(now - last, 0.0), most)
        allowed = allowance >= interval
        allowances[to] = (allowance - interval if allowed else allowance, now)
        if len(allowances) > ICMP_RATE_DESTINATIONS:
            del allowances[next(iter(allowances))]  # the one not heard from longest
        if not allowed:
            self.counters["IcmpOutRateLimitHost"] += 1
            return False
        self._icmp_tokens -= 1.0
        return True

    def reassembly_timed_out(self, header: bytes, first: bytes, now: float) -> bytes | None:
        """RFC 792 (RFC 1122 §3.3.2): time exceeded, fragment reassembly time exceeded, to the source of a
        datagram whose first fragment (`header`, `first`) came but not all the others, quoting that
        fragment, as Linux's ip_expire; within the limits of ICMP errors."""
        if not self.may_send_icmp_error(now, struct.unpack_from("!I", header, 12)[0], ICMP_RATELIMIT):
            return None
        self.counters["IcmpOutTimeExcds"] += 1
        return error_reply(header + first, TIME_EXCEEDED, CODE_REASSEMBLY_TIME_EXCEEDED, self.wall_clock())

    def _icmp_error(self, data: bytes, now: float) -> Connection | None:
        """RFC 792: the error quotes the IP header and at least 8 bytes of the datagram it is about;
        for TCP those are the ports and SEG.SEQ (RFC 5927 §4.1)."""
        icmp_type, code = data[0], data[1]
        self.counters["IcmpInDestUnreachs" if icmp_type == DEST_UNREACHABLE else "IcmpInOtherErrors"] += 1
        quoted = data[8:]
        ihl = (quoted[0] & 0x0F) * 4 if quoted else 0
        if len(quoted) < 20 or quoted[0] >> 4 != 4 or ihl < 20 or len(quoted) < ihl + 8:
            self.counters["IcmpInErrors"] += 1
            return None
        frag = struct.unpack_from("!H", quoted, 6)[0]
        src, dst = struct.unpack_from("!II", quoted, 12)
        if quoted[9] != PROTO_TCP or frag & 0x1FFF or src != self.addr:
            self.counters["IcmpUnmatched"] += 1  # not about a TCP header we sent
            return None
        sport, dport, seq = struct.unpack_from("!HHI", quoted, ihl)
        mtu = struct.unpack_from("!H", data, 6)[0] if icmp_type == DEST_UNREACHABLE else 0
        error = IcmpError(icmp_type, code, seq, mtu)
        return self.demux.icmp_error((src, sport), (dst, dport), error, now)
