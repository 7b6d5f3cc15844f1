"""IPv4 beside TCP: ICMP echo and timestamps, protocol unreachable, fragments of our replies, and RSTs for
closed ports (scapy as the oracle)."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, defragment

from stack.demux import Demux
from stack.ip import ICMP_RATE_DESTINATIONS, IpLayer, fragment4, handle_ip_packet
from stack.tcp.config import TcpConfig
from stack.tcp.reset import reset_for
from stack.wire.checksum import internet_checksum
from stack.wire.codec import IpPacket, decode
from stack.wire.segment import Flags, Segment

US = 0x0A070002


def _decode(pkt) -> IpPacket:
    got = decode(bytes(pkt))
    assert isinstance(got, IpPacket)
    return got


def test_icmp_echo_request_gets_identical_reply():
    """RFC 792: the reply carries the request's identifier, sequence number and data."""
    request = IP(src="10.7.0.1", dst="10.7.0.2") / ICMP(type=8, id=0x1234, seq=7) / b"ping payload"
    reply = IP(handle_ip_packet(_decode(request), 0.0))
    assert (reply.src, reply.dst) == ("10.7.0.2", "10.7.0.1")
    icmp = reply[ICMP]
    assert (icmp.type, icmp.code, icmp.id, icmp.seq, bytes(icmp.payload)) == (0, 0, 0x1234, 7, b"ping payload")
    checksum = icmp.chksum
    del icmp.chksum
    assert IP(bytes(reply))[ICMP].chksum == checksum


def test_icmp_with_bad_checksum_is_dropped():
    request = IP(src="10.7.0.1", dst="10.7.0.2") / ICMP(type=8, id=1, seq=1, chksum=0x1111) / b"x"
    assert handle_ip_packet(_decode(request), 0.0) is None


def test_icmp_echo_reply_leaves_df_clear():
    """RFC 791: a router may fragment the reply on its way back, as Linux's ICMP socket lets it
    (IP_PMTUDISC_DONT); its identification is set, for those fragments."""
    request = IP(src="10.7.0.1", dst="10.7.0.2", flags="DF") / ICMP(type=8, id=1, seq=1) / (b"x" * 56)
    reply = IP(handle_ip_packet(_decode(request), 0.0))
    assert not reply.flags.DF
    checksum = reply.chksum
    del reply.chksum
    assert IP(bytes(reply)).chksum == checksum


def test_icmp_echo_request_with_code_1_gets_reply_with_code_1():
    """Linux's icmp_echo answers whatever the code (RFC 792 names only 0) and keeps it in the reply."""
    request = IP(src="10.7.0.1", dst="10.7.0.2") / ICMP(type=8, code=1, id=3, seq=4) / b"data"
    reply = IP(handle_ip_packet(_decode(request), 0.0))[ICMP]
    assert (reply.type, reply.code, reply.id, reply.seq, bytes(reply.payload)) == (0, 1, 3, 4, b"data")


def test_icmp_echo_reply_carries_the_request_tos():
    """RFC 1349 §5.1: an echo reply has the TOS of its request (Linux keeps the ECN bits too)."""
    for tos in (0x10, 0x02):
        request = IP(src="10.7.0.1", dst="10.7.0.2", tos=tos) / ICMP(type=8, id=1, seq=1)
        assert IP(handle_ip_packet(_decode(request), 0.0)).tos == tos


def test_icmp_echo_reply_comes_from_the_address_the_request_went_to():
    """RFC 1122 §3.2.2.6: the reply's source is the request's destination."""
    request = IP(src="10.7.0.1", dst="10.7.0.9") / ICMP(type=8, id=1, seq=1)
    assert IP(handle_ip_packet(_decode(request), 0.0)).src == "10.7.0.9"


def test_icmp_timestamp_request_gets_originate_back_with_ms_since_midnight():
    """RFC 792: a timestamp reply carries the originate timestamp and the receive and transmit times,
    milliseconds since midnight UT (RFC 1122 §3.2.2.8 makes it a MAY; Linux answers)."""
    request = IP(src="10.7.0.1", dst="10.7.0.2") / ICMP(type=13, id=5, seq=6, ts_ori=12345678, ts_rx=0, ts_tx=0)
    wall = 86_400 * 20_000 + 3_600 + 0.25  # one hour and a quarter second after some midnight
    reply = IP(handle_ip_packet(_decode(request), wall))[ICMP]
    assert (reply.type, reply.code, reply.id, reply.seq) == (14, 0, 5, 6)
    assert (reply.ts_ori, reply.ts_rx, reply.ts_tx) == (12345678, 3_600_250, 3_600_250)


def test_icmp_timestamp_request_without_its_originate_timestamp_dropped():
    """RFC 792: a timestamp request carries the originate timestamp; one without it is not answered."""
    header = bytearray(struct.pack("!BBHHH", 13, 0, 0, 5, 6))
    struct.pack_into("!H", header, 2, internet_checksum(bytes(header)))
    request = IP(src="10.7.0.1", dst="10.7.0.2", proto=1) / bytes(header)
    assert handle_ip_packet(_decode(request), 0.0) is None


def test_udp_gets_protocol_unreachable_quoting_the_datagram():
    """RFC 1122 §3.2.2.1: ICMP type 3 code 2 with the IP header and (RFC 1812 §4.3.2.3, as Linux) as
    much of the datagram as fits in 576 bytes: here all of it."""
    udp = IP(src="10.7.0.1", dst="10.7.0.2") / UDP(sport=5, dport=53) / b"query"
    reply = IP(handle_ip_packet(_decode(udp), 0.0))
    assert (reply[ICMP].type, reply[ICMP].code) == (3, 2)
    quoted = bytes(reply[ICMP].payload)
    assert quoted == bytes(udp)


def test_protocol_unreachable_fits_in_576_bytes():
    """RFC 1812 §4.3.2.3: the error, quote included, is at most 576 bytes long."""
    long = IP(src="10.7.0.1", dst="10.7.0.2", proto=253) / (b"z" * 1000)
    reply = handle_ip_packet(_decode(long), 0.0)
    assert len(reply) == IP(reply).len == 576
    assert reply[28:] == bytes(long)[:548]


def test_protocol_unreachable_goes_with_internetwork_control_precedence():
    """RFC 1812 §4.3.2.5: an ICMP error has precedence 6 (0xc0), with the TOS bits of what it quotes, as
    Linux's icmp_send."""
    pkt = IP(src="10.7.0.1", dst="10.7.0.2", proto=253, tos=0x13) / b"12345678"
    assert IP(handle_ip_packet(_decode(pkt), 0.0)).tos == 0xC0 | 0x12


@pytest.mark.parametrize("size", [1473, 3000, 8000])
def test_fragment4_pieces_fit_the_mtu_and_reassemble_to_the_packet(size):
    """RFC 791 §3.2: fragments of at most the MTU, each but the last a multiple of 8 bytes, that scapy puts
    back together into the packet."""
    request = IP(src="10.7.0.1", dst="10.7.0.2") / ICMP(type=8, id=1, seq=1) / (b"abcdefgh" * 1000)[:size]
    whole = handle_ip_packet(_decode(request), 0.0)
    pieces = fragment4(whole, 1500)
    assert len(pieces) > 1 and all(len(piece) <= 1500 for piece in pieces)
    assert all((len(piece) - 20) % 8 == 0 for piece in pieces[:-1])
    for piece in pieces:
        header = IP(piece)
        checksum = header.chksum
        del header.chksum
        assert IP(bytes(header)).chksum == checksum
    assert bytes(defragment([IP(piece) for piece in pieces])[0]) == whole


def _unreachables(layer: IpLayer, src: str, now: float, count: int) -> int:
    """How many of `count` unknown-protocol packets from `src` at `now` are answered."""
    pkt = _decode(IP(src=src, dst="10.7.0.2", proto=253) / b"12345678")
    return sum(layer.receive(pkt, now)[1] is not None for _ in range(count))


def test_icmp_answers_counted_by_type_as_linux_names_them():
    """/proc/net/snmp's Icmp Out counters: echo replies, timestamp replies, destination unreachables."""
    layer = IpLayer(Demux(TcpConfig()), US)
    for request in (ICMP(type=8), ICMP(type=8), ICMP(type=13, ts_ori=1, ts_rx=0, ts_tx=0)):
        assert layer.receive(_decode(IP(src="10.7.0.1", dst="10.7.0.2") / request), 0.0)[1] is not None
    assert _unreachables(layer, "10.7.0.1", 0.0, 1) == 1
    counters = layer.counters
    assert (counters["IcmpOutEchoReps"], counters["IcmpOutTimestampReps"], counters["IcmpOutDestUnreachs"]) == (2, 1, 1)


def test_icmp_errors_to_one_source_come_six_at_once_then_one_a_second():
    """RFC 1812 §4.3.2.8, as Linux's inet_peer_xrlim_allow with icmp_ratelimit 1000 ms: a burst of six
    errors to one destination, then one a second; another destination has its own allowance."""
    layer = IpLayer(Demux(TcpConfig()), US)
    assert _unreachables(layer, "10.7.0.1", 100.0, 10) == 6
    assert layer.counters["IcmpOutRateLimitHost"] == 4
    assert _unreachables(layer, "10.7.0.1", 100.5, 10) == 0
    assert _unreachables(layer, "10.7.0.1", 101.0, 10) == 1
    assert _unreachables(layer, "10.7.0.9", 101.0, 10) == 6
    assert _unreachables(layer, "10.7.0.1", 200.0, 10) == 6  # the allowance refills to six, no more


def test_icmp_error_allowances_kept_for_a_bounded_number_of_sources():
    """Memory stays bounded under a flood from ever new sources: the allowance of the source not heard
    from longest is forgotten first, and a forgotten source starts afresh, as a new one."""
    layer = IpLayer(Demux(TcpConfig()), US)
    assert _unreachables(layer, "10.7.0.1", 0.0, 6) == 6
    for i in range(ICMP_RATE_DESTINATIONS):  # a millisecond apart: within the global limit
        assert _unreachables(layer, f"10.8.{i // 256}.{i % 256}", 0.001 * (i + 1), 1) == 1
    assert len(layer._icmp_allowances) == ICMP_RATE_DESTINATIONS
    # remembered, 10.7.0.1 would have earned four answers back by now; forgotten, it gets six
    assert _unreachables(layer, "10.7.0.1", 0.001 * ICMP_RATE_DESTINATIONS + 0.01, 6) == 6


def test_closed_port_segment_with_ack_gets_rst_with_seq_of_its_ack():
    """RFC 9293 §3.10.7.1: <SEQ=SEG.ACK><CTL=RST>."""
    rst = reset_for(Segment(40000, 81, 100, 777, Flags.ACK, 1000, b"data"))
    assert (rst.flags, rst.seq, rst.src_port, rst.dst_port) == (Flags.RST, 777, 81, 40000)


def test_closed_port_syn_gets_rst_ack_covering_it():
    """RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>."""
    rst = reset_for(Segment(40000, 81, 100, 0, Flags.SYN, 1000))
    assert (rst.flags, rst.seq, rst.ack) == (Flags.RST | Flags.ACK, 0, 101)


def test_closed_port_rst_is_never_answered():
    assert reset_for(Segment(40000, 81, 100, 0, Flags.RST, 0)) is None


def test_rst_for_closed_port_dissects_in_scapy():
    from stack.wire.codec import encode_tcp

    syn = IP(src="10.7.0.1", dst="10.7.0.2") / TCP(sport=40000, dport=81, seq=100, flags="S")
    seg = decode(bytes(syn)).segment
    reply = IP(encode_tcp(US, 0x0A070001, reset_for(seg)))
    assert reply[TCP].flags == "RA" and reply[TCP].ack == 101
