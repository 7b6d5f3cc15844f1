"""Malformed input is rejected with the right reason, and never crashes the parser."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack.wire.codec import IpPacket, Rejected, TcpPacket, decode, encode_tcp
from stack.wire.reasons import DropReason
from stack.wire.segment import Flags, Segment, TcpOptions

GOOD = encode_tcp(0x0A000001, 0x0A000002, Segment(1234, 80, 1, 2, Flags.ACK, 1000, b"hello", TcpOptions(mss=1460)))


def _with_ip_checksum(buf: bytearray) -> bytes:
    buf[10:12] = b"\0\0"
    total = sum(struct.unpack("!10H", bytes(buf[:20])))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    buf[10:12] = struct.pack("!H", ~total & 0xFFFF)
    return bytes(buf)


def _mutate(offset: int, value: bytes, fix_ip_checksum: bool = True) -> bytes:
    buf = bytearray(GOOD)
    buf[offset : offset + len(value)] = value
    return _with_ip_checksum(buf) if fix_ip_checksum else bytes(buf)


def test_good_packet_decodes():
    assert isinstance(decode(GOOD), TcpPacket)


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (b"", DropReason.TOO_SHORT),
        (GOOD[:19], DropReason.TOO_SHORT),
        (_mutate(0, b"\x75"), DropReason.BAD_VERSION),
        (_mutate(0, b"\x44"), DropReason.BAD_IHL),
        (_mutate(0, b"\x4f"), DropReason.BAD_IHL),
        (_mutate(2, struct.pack("!H", len(GOOD) + 1)), DropReason.BAD_TOTAL_LENGTH),
        (_mutate(2, struct.pack("!H", 10)), DropReason.BAD_TOTAL_LENGTH),
        (_mutate(8, b"\x01", fix_ip_checksum=False), DropReason.BAD_IP_CHECKSUM),
        (_mutate(2, struct.pack("!H", 30)), DropReason.TCP_TOO_SHORT),
        (_mutate(32, b"\x40"), DropReason.BAD_TCP_OFFSET),
        (_mutate(32, b"\xf0"), DropReason.BAD_TCP_OFFSET),
        (_mutate(len(GOOD) - 1, b"X"), DropReason.BAD_TCP_CHECKSUM),
    ],
)
def test_malformed_packet_rejected_with_reason(packet, reason):
    assert decode(packet) == Rejected(reason)


@pytest.mark.parametrize(
    ("flags_offset", "offset", "more"), [(b"\x20\x00", 0, True), (b"\x00\x10", 128, False), (b"\x3f\xff", 65528, True)]
)
def test_fragment_is_not_rejected_but_handed_on_with_its_offset(flags_offset, offset, more):
    """RFC 791 §3.2: a fragment's transport header is only parsed after reassembly."""
    got = decode(_mutate(6, flags_offset))
    assert isinstance(got, IpPacket) and got.is_fragment
    assert (got.proto, got.frag_offset, got.more_fragments, got.payload) == (6, offset, more, GOOD[20:])


def test_fragment_with_bad_ip_checksum_rejected():
    assert decode(_mutate(6, b"\x20\x00", fix_ip_checksum=False)) == Rejected(DropReason.BAD_IP_CHECKSUM)


def _with_options(options: bytes) -> bytes:
    """A valid packet (checksums right) whose TCP options are exactly `options`."""
    from stack.wire.checksum import tcp_checksum

    tcp = bytearray(struct.pack("!HHIIBBHHH", 1, 2, 3, 4, (20 + len(options)) // 4 << 4, 0x10, 100, 0, 0))
    tcp += options
    ip = bytearray(struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, 0x0A000001, 0x0A000002))
    tcp[16:18] = struct.pack("!H", tcp_checksum(0x0A000001, 0x0A000002, bytes(tcp)))
    return _with_ip_checksum(ip) + bytes(tcp)


@pytest.mark.parametrize(
    "bad",
    [b"\x02\x00\x00\x00", b"\x02\x01\x00\x00", b"\x01\x01\x01\x02", b"\x08\x0c\x00\x00", b"\x01\x01\x01\xfe"],
    ids=["zero-length", "length-one", "truncated-kind", "runs-past-header", "unknown-too-long"],
)
def test_malformed_tcp_option_ends_parsing_and_keeps_those_before(bad):
    """Linux tcp_parse_options: a silly length (0 or 1) or an option running past the header stops the
    parse; the options before it count and the segment is processed."""
    got = decode(_with_options(b"\x02\x04\x05\xb4\x03\x03\x07\x01" + bad))
    assert isinstance(got, TcpPacket)
    assert (got.segment.options.mss, got.segment.options.wscale) == (1460, 7)


def test_options_after_a_silly_length_are_ignored():
    """Linux tcp_parse_options returns at the silly option: a SACK-permitted behind it does not count."""
    got = decode(_with_options(b"\x02\x04\x05\xb4" + b"\x1e\x00" + b"\x04\x02"))
    assert isinstance(got, TcpPacket)
    assert (got.segment.options.mss, got.segment.options.sack_permitted) == (1460, False)


def _with_ip_options(options: bytes) -> bytes:
    """GOOD with these IPv4 options (padded to 4 bytes with EOL), header length and checksum fixed."""
    options += b"\0" * (-len(options) % 4)
    ip = bytearray(GOOD[:20])
    ip[0] = 0x40 | (20 + len(options)) // 4
    ip[2:4] = struct.pack("!H", len(GOOD) + len(options))
    header = ip + options
    header[10:12] = b"\0\0"
    words = struct.unpack(f"!{len(header) // 2}H", bytes(header))
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    header[10:12] = struct.pack("!H", ~total & 0xFFFF)
    return bytes(header) + GOOD[20:]


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (b"\x07", DropReason.BAD_IP_OPTION),  # no room for the length byte
        (b"\x94\x00", DropReason.BAD_IP_OPTION),  # length 0
        (b"\x94\x01", DropReason.BAD_IP_OPTION),  # length 1
        (b"\x01\x82\x09\x00\x00\x00", DropReason.BAD_IP_OPTION),  # runs past the header
        (b"\x07\x03\x02", DropReason.BAD_IP_OPTION),  # record route: pointer below 4
        (b"\x07\x07\x06\x00\x00\x00\x00", DropReason.BAD_IP_OPTION),  # record route: no room at the pointer
        (b"\x07\x03\x04\x07\x03\x04", DropReason.BAD_IP_OPTION),  # record route twice
        (b"\x44\x04\x04\x00", DropReason.BAD_IP_OPTION),  # timestamp: pointer below 5
        (b"\x44\x08\x05\x01\x00\x00\x00\x00", DropReason.BAD_IP_OPTION),  # address+time without room
        (b"\x44\x04\x05\xf0", DropReason.BAD_IP_OPTION),  # full, and the overflow count full too
        (b"\x94\x03\x00", DropReason.BAD_IP_OPTION),  # router alert shorter than 4
        (b"\x86\x06\x00\x00\x00\x01", DropReason.BAD_IP_OPTION),  # CIPSO, no domain configured
        (b"\x83\x07\x04\x0a\x00\x00\x09", DropReason.IP_SOURCE_ROUTE),  # loose source route
        (b"\x89\x07\x04\x0a\x00\x00\x09", DropReason.IP_SOURCE_ROUTE),  # strict source route
        (b"\x83\x02", DropReason.BAD_IP_OPTION),  # source route without a pointer
    ],
)
def test_ipv4_options_linux_refuses_are_dropped_with_reason(options, reason):
    """RFC 791 §3.1; Linux ip_options_compile and ip_rcv_options (accept_source_route=0) drop these."""
    assert decode(_with_ip_options(options)) == Rejected(reason)


@pytest.mark.parametrize(
    "options",
    [
        b"\x01\x01\x01\x00",
        b"\x00\xff\xff\xff",
        b"\x94\x04\x00\x00",
        b"\x07\x07\x04\x00\x00\x00\x00",
        b"\x44\x0c\x05\x00" + bytes(8),
        b"\x07\x03\x04",
        b"\x1e\x02",
    ],
    ids=["nop-eol", "eol-then-padding", "router-alert", "record-route", "timestamp", "record-route-full", "unknown"],
)
def test_ipv4_options_linux_accepts_are_ignored(options):
    """Well-formed options are accepted (and not honoured, as the README says)."""
    got = decode(_with_ip_options(options))
    assert isinstance(got, TcpPacket) and got.segment.payload == b"hello"


def test_unknown_option_skipped_by_its_length():
    got = decode(_with_options(b"\x1e\x04\xab\xcd" + b"\x02\x04\x05\xb4"))
    assert isinstance(got, TcpPacket) and got.segment.options.mss == 1460


def test_options_after_eol_ignored():
    got = decode(_with_options(b"\x00\x02\x04\x05" + b"\xb4\x00\x00\x00"))
    assert isinstance(got, TcpPacket) and got.segment.options.mss is None


def test_trailing_bytes_beyond_total_length_ignored():
    got = decode(GOOD + b"trailer")
    assert isinstance(got, TcpPacket) and got.segment.payload == b"hello"


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=120))
def test_garbage_never_crashes(data):
    assert decode(data) is not None


@settings(max_examples=2000, deadline=None)
@given(st.integers(0, len(GOOD) - 1), st.integers(0, 255))
def test_single_byte_corruption_is_rejected_or_consistent(offset, value):
    """A flipped byte either fails a checksum/validity check or decodes to a well-formed value."""
    result = decode(_mutate(offset, bytes([value]), fix_ip_checksum=False))
    if offset == 0 and value >> 4 == 6:  # now read as an IPv6 header: its payload length field is 0x0000
        assert isinstance(result, (Rejected, IpPacket))
        return
    assert isinstance(result, (Rejected, TcpPacket))
