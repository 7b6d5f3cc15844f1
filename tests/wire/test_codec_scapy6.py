"""Differential tests for IPv6+TCP: scapy (an independent implementation) and our C codec agree field by field."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt

from stack.wire import addr
from stack.wire.codec import PROTO_ICMPV6, IpPacket, Rejected, TcpPacket, checksum6, decode, encode_ipv6, encode_tcp
from stack.wire.reasons import DropReason
from stack.wire.segment import Flags, Segment
from tests.wire.test_codec_scapy import _expected_options, _option_len, _to_scapy, data_options, option, syn_options

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
addr6 = st.integers(1, (1 << 128) - 1).map(lambda n: addr.V6 | n)


def _text(a: int) -> str:
    return addr.fmt(a)


@settings(max_examples=200, deadline=None)
@given(
    src=addr6,
    dst=addr6,
    sport=u16,
    dport=u16,
    seq=u32,
    ack=u32,
    flags=st.integers(0, 255),
    window=u16,
    urgent=u16,
    hlim=st.integers(0, 255),
    tc=st.integers(0, 255),
    fl=st.integers(0, 0xFFFFF),
    opts=st.lists(option, max_size=6).filter(lambda o: sum(map(_option_len, o)) <= 40),
    payload=st.binary(max_size=300),
)
def test_decode6_agrees_with_scapy(
    src, dst, sport, dport, seq, ack, flags, window, urgent, hlim, tc, fl, opts, payload
):
    """RFC 8200 §3 fixed header and §8.1 pseudo-header checksum, as scapy builds them."""
    pkt = (
        IPv6(src=_text(src), dst=_text(dst), hlim=hlim, tc=tc, fl=fl)
        / TCP(
            sport=sport,
            dport=dport,
            seq=seq,
            ack=ack,
            flags=flags,
            window=window,
            urgptr=urgent,
            options=_to_scapy(opts),
        )
        / payload
    )
    got = decode(bytes(pkt))
    assert isinstance(got, TcpPacket)
    assert (got.src, got.dst, got.ttl) == (src, dst, hlim)
    seg = got.segment
    assert (seg.src_port, seg.dst_port, seg.seq, seg.ack) == (sport, dport, seq, ack)
    assert (int(seg.flags), seg.window, seg.urgent, seg.payload, seg.ecn) == (flags, window, urgent, payload, tc & 3)
    assert seg.options == _expected_options(opts, bool(flags & Flags.SYN))


@settings(max_examples=200, deadline=None)
@given(
    src=addr6,
    dst=addr6,
    sport=u16,
    dport=u16,
    seq=u32,
    ack=u32,
    window=u16,
    flow=st.integers(0, 0xFFFFF),
    ecn=st.integers(0, 3),
    syn=st.booleans(),
    data=st.data(),
    payload=st.binary(max_size=1400),
)
def test_encode6_dissects_in_scapy_with_valid_checksum(
    src, dst, sport, dport, seq, ack, window, flow, ecn, syn, data, payload
):
    """The flow label (RFC 6437), traffic class ECN bits and the TCP checksum over the IPv6 pseudo-header."""
    options = data.draw(syn_options if syn else data_options)
    flags = Flags.SYN | Flags.ACK if syn else Flags.ACK | Flags.PSH
    seg = Segment(sport, dport, seq, ack, flags, window, payload, options, 0, ecn)
    raw = encode_tcp(src, dst, seg, ttl=61, flow=flow)
    pkt = IPv6(raw)
    tcp = pkt[TCP]
    assert (pkt.version, addr.parse(pkt.src), addr.parse(pkt.dst)) == (6, src, dst)
    assert (pkt.fl, pkt.tc, pkt.hlim, pkt.nh) == (flow, ecn, 61, 6)
    assert pkt.plen == len(raw) - 40
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, int(tcp.flags), tcp.window) == (
        sport,
        dport,
        seq,
        ack,
        flags,
        window,
    )
    assert bytes(tcp.payload) == payload
    sent = tcp.chksum
    del pkt[TCP].chksum
    assert IPv6(bytes(pkt))[TCP].chksum == sent
    decoded = dict(tcp.options)
    if options.mss is not None:
        assert decoded["MSS"] == options.mss
    if options.timestamps is not None:
        assert decoded["Timestamp"] == options.timestamps


def test_decode6_bad_tcp_checksum_rejected():
    """RFC 8200 §8.1: the pseudo-header covers the addresses; a changed address breaks the checksum."""
    raw = bytearray(bytes(IPv6(src="fd00::1", dst="fd00::2") / TCP(flags="S")))
    raw[23] ^= 1  # last byte of the source address
    got = decode(bytes(raw))
    assert got == Rejected(DropReason.BAD_TCP_CHECKSUM)


def test_decode6_payload_length_beyond_packet_rejected():
    raw = bytearray(bytes(IPv6(src="fd00::1", dst="fd00::2") / TCP(flags="S")))
    raw[5] += 1
    assert decode(bytes(raw)) == Rejected(DropReason.BAD_TOTAL_LENGTH)
    assert decode(bytes(raw[:39])) == Rejected(DropReason.TOO_SHORT)


def test_decode6_extension_header_left_to_the_caller():
    """A next header other than TCP comes back whole, the payload starting at the first extension header."""
    raw = bytes(IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrDestOpt() / TCP(flags="S"))
    got = decode(raw)
    assert isinstance(got, IpPacket) and got.proto == 60 and got.header == raw[:40] and got.payload == raw[40:]
    assert not got.is_fragment


def test_encode_ipv6_and_checksum6_agree_with_scapy():
    src, dst = addr.parse("fd3d::1"), addr.parse("fd3d::2")
    request = bytes(IPv6(src="fd3d::2", dst="fd3d::1") / ICMPv6EchoRequest(id=7, seq=3, data=b"ping"))
    got = decode(request)
    assert isinstance(got, IpPacket) and got.proto == PROTO_ICMPV6
    assert checksum6(got.src, got.dst, PROTO_ICMPV6, got.payload) == 0
    body = bytearray(b"\x81\x00\x00\x00" + got.payload[4:])
    body[2:4] = checksum6(src, dst, PROTO_ICMPV6, bytes(body)).to_bytes(2, "big")
    built = IPv6(encode_ipv6(src, dst, PROTO_ICMPV6, bytes(body), hop_limit=255, flow=5))
    assert (built.src, built.dst, built.hlim, built.fl, built.nh) == ("fd3d::1", "fd3d::2", 255, 5, 58)
    sent = built.payload.cksum
    del built.payload.cksum
    assert IPv6(bytes(built)).payload.cksum == sent
    assert IPv6(bytes(built)).payload.id == 7
