"""IPv4 beside TCP: ICMP echo, protocol unreachable, and RSTs for closed ports (scapy as the oracle)."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, TCP, UDP

from stack.ip import handle_ip_packet
from stack.tcp.reset import reset_for
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
    reply = IP(handle_ip_packet(_decode(request), US))
    assert (reply.src, reply.dst) == ("10.7.0.2", "10.7.0.1")
    icmp = reply[ICMP]
    assert (icmp.type, icmp.code, icmp.id, icmp.seq, bytes(icmp.payload)) == (0, 0, 0x1234, 7, b"ping payload")
    checksum = icmp.chksum
    del icmp.chksum
    assert IP(bytes(reply))[ICMP].chksum == checksum


def test_icmp_with_bad_checksum_is_dropped():
    request = IP(src="10.7.0.1", dst="10.7.0.2") / ICMP(type=8, id=1, seq=1, chksum=0x1111) / b"x"
    assert handle_ip_packet(_decode(request), US) is None


def test_udp_gets_protocol_unreachable_quoting_the_header():
    """RFC 1122 §3.2.2.1: ICMP type 3 code 2 with the IP header and 8 bytes of the datagram."""
    udp = IP(src="10.7.0.1", dst="10.7.0.2") / UDP(sport=5, dport=53) / b"query"
    reply = IP(handle_ip_packet(_decode(udp), US))
    assert (reply[ICMP].type, reply[ICMP].code) == (3, 2)
    quoted = bytes(reply[ICMP].payload)
    assert quoted == bytes(udp)[:28]


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
