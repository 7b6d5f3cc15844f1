"""IPv4 record route and timestamp options in ICMP answers (RFC 791 §3.1, RFC 1122 §3.2.2.6), as Linux's
ip_options_compile, ip_options_echo and ip_options_build treat them; scapy as the oracle."""

from __future__ import annotations

import socket
import struct

from scapy.layers.inet import ICMP, IP, IPOption, IPOption_RR

from stack.ip import fragment4, handle_ip_packet, ms_since_midnight
from stack.ip_options import arrived, later_fragment_header, reply_options
from stack.wire.codec import IpPacket, decode

US = "10.7.0.2"
US_IP = 0x0A070002
WALL = 86_400 * 20_000 + 7.5  # 7.5 s after some midnight
STAMP = ms_since_midnight(WALL)


def _header(*options) -> bytes:
    pkt = IP(bytes(IP(src="10.7.0.1", dst=US, options=list(options)) / ICMP()))
    return bytes(pkt)[: pkt.ihl * 4]


def _timestamp(flags: int, pointer: int, *words: int) -> IPOption:
    return IPOption(struct.pack(f"!BBBB{len(words)}I", 68, 4 + 4 * len(words), pointer, flags, *words))


def _option(options: bytes, kind: int) -> bytes:
    """The option of this kind among these option bytes."""
    at = 0
    while options[at] != kind:
        at += 1 if options[at] == 1 else options[at + 1]
    return options[at : at + options[at + 1]]


def test_record_route_gets_our_address_on_arrival_and_again_in_the_answer():
    """RFC 791 §3.1: each hop with room records its address; we are the hop the request ends at and the
    first one the answer leaves from."""
    header = arrived(_header(IPOption_RR(routers=["0.0.0.0"] * 3)), US_IP, STAMP)
    assert _option(header[20:], 7) == bytes([7, 15, 8]) + socket.inet_aton(US) + bytes(8)
    reply = reply_options(header, US_IP, STAMP)
    assert reply == bytes([7, 15, 12]) + socket.inet_aton(US) * 2 + bytes(4) + b"\0"


def test_full_record_route_comes_back_as_it_came():
    """RFC 791 §3.1: a full record route is passed on without an entry (it has no overflow count)."""
    rr = IPOption_RR(pointer=8, routers=["1.2.3.4"])
    header = arrived(_header(rr), US_IP, STAMP)
    assert _option(reply_options(header, US_IP, STAMP), 7) == bytes(rr)


def test_timestamps_only_get_the_time_on_arrival_and_in_the_answer():
    """RFC 791 §3.1, flag 0: milliseconds since midnight UT, one entry at each of our two turns."""
    header = arrived(_header(_timestamp(0, 5, 0, 0, 0)), US_IP, STAMP)
    assert _option(reply_options(header, US_IP, STAMP), 68) == struct.pack("!BBBB3I", 68, 16, 13, 0, STAMP, STAMP, 0)


def test_full_timestamp_option_counts_one_overflow():
    """RFC 791 §3.1: a hop that finds no room adds one to the overflow count (only as the packet arrives:
    Linux does not count again for its answer)."""
    header = arrived(_header(_timestamp(0, 9, 1234)), US_IP, STAMP)
    assert _option(reply_options(header, US_IP, STAMP), 68) == struct.pack("!BBBBI", 68, 8, 9, 0x10, 1234)


def test_timestamps_with_addresses_get_ours_with_each_time():
    """RFC 791 §3.1, flag 1: each entry is an address and a time."""
    header = arrived(_header(_timestamp(1, 5, 0, 0, 0, 0)), US_IP, STAMP)
    got = _option(reply_options(header, US_IP, STAMP), 68)
    assert got == struct.pack("!BBBB4I", 68, 20, 21, 1, US_IP, STAMP, US_IP, STAMP)


def test_prespecified_timestamp_filled_only_where_our_address_is_named():
    """RFC 791 §3.1, flag 3: a hop fills in the entry that names it; one naming another host stops us."""
    ours_first = arrived(_header(_timestamp(3, 5, US_IP, 0, 0x01020304, 0)), US_IP, STAMP)
    got = _option(reply_options(ours_first, US_IP, STAMP), 68)
    assert got == struct.pack("!BBBB4I", 68, 20, 13, 3, US_IP, STAMP, 0x01020304, 0)
    theirs_first = arrived(_header(_timestamp(3, 5, 0x01020304, 0, US_IP, 0)), US_IP, STAMP)
    got = _option(reply_options(theirs_first, US_IP, STAMP), 68)
    assert got == struct.pack("!BBBB4I", 68, 20, 5, 3, 0x01020304, 0, US_IP, 0)


def test_other_options_are_not_sent_back():
    """Linux's ip_options_echo returns record route, timestamp and source route only (the last never
    reaches us): a router alert stays behind."""
    header = arrived(_header(IPOption(b"\x94\x04\x00\x00")), US_IP, STAMP)
    assert reply_options(header, US_IP, STAMP) == b""


def test_echo_reply_carries_the_record_route():
    """RFC 1122 §3.2.2.6: an echo request's record route comes back in its reply, with our entries."""
    request = IP(src="10.7.0.1", dst=US, options=[IPOption_RR(routers=["0.0.0.0"] * 3)]) / ICMP(id=1, seq=2)
    reply = IP(handle_ip_packet(_packet(request), WALL))
    assert reply.ihl == 9 and reply.options[0].routers == [US, US, "0.0.0.0"]
    assert (reply[ICMP].type, reply[ICMP].id, reply[ICMP].seq) == (0, 1, 2)


def test_protocol_unreachable_quotes_the_header_as_it_arrived():
    """Linux's icmp_send quotes the packet with the entries it recorded as it took it in (the checksum as
    it came), and sends the record route back in the error's own header too."""
    pkt = IP(src="10.7.0.1", dst=US, proto=253, options=[IPOption_RR(routers=["0.0.0.0"] * 3)]) / (b"z" * 8)
    reply = handle_ip_packet(_packet(pkt), WALL)
    quoted = reply[36 + 8 :]
    assert quoted[20:36] == bytes([7, 15, 8]) + socket.inet_aton(US) + bytes(8) + b"\0"
    assert quoted[10:12] == bytes(pkt)[10:12] and quoted[36:] == b"z" * 8


def test_later_fragments_carry_no_operations_where_the_record_route_was():
    """RFC 791 §3.1: record route is not copied into fragments; Linux's ip_options_fragment keeps the
    header's length and fills the option with no-operations."""
    request = IP(src="10.7.0.1", dst=US, options=[IPOption_RR(routers=["0.0.0.0"] * 3)]) / ICMP() / (b"q" * 1472)
    pieces = fragment4(handle_ip_packet(_packet(request), WALL), 1500)
    assert [IP(piece).ihl for piece in pieces] == [9, 9]
    assert pieces[1][20:36] == b"\x01" * 15 + b"\0"
    assert later_fragment_header(pieces[0][:36])[20:36] == pieces[1][20:36]


def _packet(pkt) -> IpPacket:
    got = decode(bytes(pkt))
    assert isinstance(got, IpPacket)
    return got


def test_malformed_options_end_the_walk_without_a_hang():
    """Options the C parser would refuse (a length of 0, one past the header) end the walk: nothing is
    recorded or sent back, and nothing loops."""
    for bad in (b"\x07\x00\x04\x00", b"\x07\x0f\x04\x00", b"\x07\x02\x44\x02"):
        header = bytes([0x46]) + bytes(19) + bad
        assert arrived(header, US_IP, STAMP) == header
        assert reply_options(header, US_IP, STAMP) == b""


def test_two_byte_option_at_the_header_end_left_alone():
    """An option of another kind, two bytes long, may end the header (the parser skips it by its length):
    nothing is recorded in it, nothing is read past it, and an echo request carrying it is answered."""
    header = _header(IPOption(b"\x01\x01\x88\x02"))
    assert arrived(header, US_IP, STAMP) == header
    assert reply_options(header, US_IP, STAMP) == b""
    request = IP(src="10.7.0.1", dst=US, options=[IPOption(b"\x01\x01\x88\x02")]) / ICMP(id=3, seq=4)
    assert IP(handle_ip_packet(_packet(request), WALL))[ICMP].type == 0
