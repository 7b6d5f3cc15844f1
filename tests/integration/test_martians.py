"""Packets from source addresses no host may answer, sent into the TUN from the test's namespace.

RFC 1122 §3.2.1.3 and Linux (martian sources): broadcast, multicast, 0.0.0.0/8, loopback, class E and our
own address (LAND) as the source are dropped silently, counted by reason: no RST, no SYN,ACK, no
half-open connection, no ICMP answer. A packet-socket listener on the TUN sees everything the stack
writes; a packet from the kernel's own address to a closed port, sent last, proves it is listening.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from stack import martians
from stack.wire.checksum import internet_checksum
from stack.wire.codec import PROTO_ICMP, encode_ipv4, encode_tcp
from stack.wire.segment import Flags, Segment, TcpOptions
from tests.integration.conftest import ADDR, Served
from tests.integration.hostile import packet_socket, quiet_ipv6, wait_counters

STACK = int(ipaddress.IPv4Address(ADDR))
KERNEL = int(ipaddress.IPv4Address("10.7.0.1"))
PROTO_UDP = 17

SOURCES = {
    "255.255.255.255": martians.BROADCAST,
    "10.7.0.255": martians.BROADCAST,  # the directed broadcast of --peer 10.7.0.1/24
    "224.0.0.1": martians.MULTICAST,
    "239.255.255.250": martians.MULTICAST,
    "0.0.0.0": martians.ZERONET,
    "0.1.2.3": martians.ZERONET,
    "127.0.0.1": martians.LOOPBACK,
    "127.9.9.9": martians.LOOPBACK,
    "240.0.0.1": martians.CLASS_E,
    ADDR: martians.OWN_ADDRESS,  # LAND: our own address and port as the source
}


def _echo_request(ident: int) -> bytes:
    body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"martian"
    return body[:2] + struct.pack("!H", internet_checksum(body)) + body[4:]


def _shapes(src: int) -> list[bytes]:
    """What would each draw an answer from a legitimate source: SYN to a listener (SYN,ACK), SYN and ACK
    to a closed port (RST), a bare ACK to a listener (RST), ping (echo reply), UDP (protocol unreachable)."""
    syn = Segment(80 if src == STACK else 40000, 80, 1000, 0, Flags.SYN, 65535, b"", TcpOptions(mss=1460))
    return [
        encode_tcp(src, STACK, syn),
        encode_tcp(src, STACK, Segment(40001, 1, 2000, 0, Flags.SYN, 65535)),
        encode_tcp(src, STACK, Segment(40002, 1, 3000, 5, Flags.ACK, 65535, b"data")),
        encode_tcp(src, STACK, Segment(40003, 80, 4000, 5, Flags.ACK, 65535)),
        encode_ipv4(src, STACK, PROTO_ICMP, _echo_request(src & 0xFFFF)),
        encode_ipv4(src, STACK, PROTO_UDP, struct.pack("!HHHH", 5000, 53, 8, 0)),
    ]


def _replies(listener: socket.socket) -> list[tuple[str, str]]:
    """(source, destination) of every IPv4 packet the stack wrote into the TUN since the listener opened."""
    seen = []
    while True:
        try:
            data, addr = listener.recvfrom(65535)
        except BlockingIOError:
            return seen
        if addr[2] != socket.PACKET_OUTGOING and data[0] >> 4 == 4:  # written by the stack, read by the kernel
            seen.append((socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20])))


def test_serve_martian_sources_dropped_silently_and_counted(served: Served):
    """RFC 1122 §3.2.1.3: a host must not answer these sources; Linux drops them (in_martian_src)."""
    quiet_ipv6(served.ns)
    injector = packet_socket(served.ns)
    listener = packet_socket(served.ns)
    listener.setblocking(False)
    before = served.stats()
    expected: dict[str, int] = {}
    for text, reason in SOURCES.items():
        for packet in _shapes(int(ipaddress.IPv4Address(text))):
            injector.send(packet)
            expected[reason] = expected.get(reason, 0) + 1
    total = sum(expected.values())
    # the marker: a legitimate SYN to a closed port, answered by a RST once everything before it was read
    injector.send(encode_tcp(KERNEL, STACK, Segment(40009, 1, 7, 0, Flags.SYN, 65535)))
    after = wait_counters(served.stats, {"OutRsts": before.get("OutRsts", 0) + 1, martians.TOTAL: total})
    replies = _replies(listener)
    injector.close()
    listener.close()
    assert replies == [(ADDR, "10.7.0.1")], f"the stack answered martian sources: {replies}"
    for reason, count in expected.items():
        assert after[reason] - before[reason] == count, (reason, after[reason] - before[reason])
    assert after[martians.TOTAL] - before[martians.TOTAL] == total
    assert after.get("PassiveOpens", 0) == before.get("PassiveOpens", 0)
    assert not [r for r in served.netstat() if r["state"] == "SYN_RECV"]
