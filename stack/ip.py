"""IPv4 input beside TCP: ICMP echo (ping) and ICMP protocol-unreachable (RFC 792, RFC 1122 §3.2.2.1)."""

from __future__ import annotations

import struct

from stack.wire.checksum import internet_checksum
from stack.wire.codec import PROTO_ICMP, IpPacket, encode_ipv4

ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACHABLE = 3
ICMP_ECHO_REQUEST = 8
CODE_PROTOCOL_UNREACHABLE = 2


def _icmp(icmp_type: int, code: int, rest: bytes) -> bytes:
    body = struct.pack("!BBH", icmp_type, code, 0) + rest
    csum = internet_checksum(body)
    return body[:2] + struct.pack("!H", csum) + body[4:]


def handle_ip_packet(pkt: IpPacket, our_addr: int) -> bytes | None:
    """The reply to a non-TCP packet addressed to us, if any (as raw IPv4 bytes)."""
    if pkt.proto == PROTO_ICMP:
        data = pkt.payload
        if len(data) < 8 or internet_checksum(data) != 0:
            return None  # RFC 1122 §3.2.2: silently discard ICMP with a bad checksum
        if data[0] == ICMP_ECHO_REQUEST and data[1] == 0:
            # echo reply: same identifier, sequence number and data (RFC 792)
            return encode_ipv4(our_addr, pkt.src, PROTO_ICMP, _icmp(ICMP_ECHO_REPLY, 0, data[4:]))
        return None
    # RFC 1122 §3.2.2.1: protocol unreachable, quoting the IP header and the first 8 bytes
    quote = pkt.header + pkt.payload[:8]
    return encode_ipv4(
        our_addr, pkt.src, PROTO_ICMP, _icmp(ICMP_DEST_UNREACHABLE, CODE_PROTOCOL_UNREACHABLE, b"\0\0\0\0" + quote)
    )
