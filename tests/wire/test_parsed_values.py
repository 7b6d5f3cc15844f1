"""The decoder's shortcuts build exactly the values the plain constructors build (stack/wire/segment.py,
stack/wire/codec.py): a frozen dataclass filled slot by slot, and the C parser's struct read in one call."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from stack._fast import ffi, lib

from stack.wire import codec
from stack.wire.codec import encode_tcp
from stack.wire.segment import (
    NO_OPTIONS,
    Segment,
    TcpOptions,
    parsed_segment,
    sent_segment,
    tcp_options,
    timestamps_only,
)

u16, u32 = st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)


@given(u16, u16, u32, u32, st.integers(0, 255), u16, st.binary(max_size=64), u16, st.integers(0, 3))
def test_parsed_segment_is_the_constructed_segment(sport, dport, seq, ack, flags, window, payload, urgent, ecn):
    """Every field is set, gso is 0: a field added to Segment and not to parsed_segment fails here."""
    options = TcpOptions(timestamps=(seq, ack))
    built = parsed_segment(sport, dport, seq, ack, flags, window, payload, options, urgent, ecn)
    assert built == Segment(sport, dport, seq, ack, flags, window, payload, options, urgent, ecn)
    assert repr(built) == repr(Segment(sport, dport, seq, ack, flags, window, payload, options, urgent, ecn))


@given(u16, u32, u32, st.integers(0, 255), st.binary(max_size=64), st.integers(0, 3), u16, st.integers(0, 255))
def test_sent_segment_is_the_constructed_segment(dport, seq, ack, flags, payload, ecn, gso, tos):
    """The output path's shortcut sets every field as the constructor does (urgent 0), tos and df included."""
    options = timestamps_only(seq, ack)
    for df in (True, False):
        built = sent_segment(80, dport, seq, ack, flags, 1000, payload, options, ecn, gso, tos, df)
        expected = Segment(80, dport, seq, ack, flags, 1000, payload, options, ecn=ecn, gso=gso, tos=tos, df=df)
        assert built == expected and repr(built) == repr(expected)


@given(
    st.none() | u16,
    st.none() | st.integers(0, 14),
    st.booleans(),
    st.none() | st.tuples(u32, u32),
    st.lists(st.tuples(u32, u32), max_size=4).map(tuple),
)
def test_tcp_options_is_the_constructed_options(mss, wscale, sack_permitted, timestamps, sack_blocks):
    """Every field set as the constructor sets it: a field added to TcpOptions and not to tcp_options fails."""
    built = tcp_options(mss, wscale, sack_permitted, timestamps, sack_blocks)
    expected = TcpOptions(mss, wscale, sack_permitted, timestamps, sack_blocks)
    assert built == expected and repr(built) == repr(expected)


@given(u32, u32)
def test_timestamps_only_is_the_constructed_options(ts_val, ts_ecr):
    assert timestamps_only(ts_val, ts_ecr) == TcpOptions(timestamps=(ts_val, ts_ecr))


def test_struct_layout_reads_what_cffi_reads():
    """codec._SEG, built from cffi's offsets, unpacks every field of struct fast_seg as cffi reads it."""
    for flags, options in (
        (0x12, TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamps=(11, 12))),  # a SYN's options
        (0x18, TcpOptions(timestamps=(11, 12), sack_blocks=((1, 2), (3, 4), (5, 6)))),
    ):
        seg = Segment(40000, 80, 0x01020304, 0xA0B0C0D0, flags, 0x4321, b"data", options, urgent=7, ecn=2)
        raw = bytes(encode_tcp(0x0A000001, 0x0A000002, seg, ttl=33, ident=0x5555))
        parsed = ffi.new("struct fast_seg *")
        assert lib.fast_parse_csum(raw, len(raw), parsed, True) == 0
        values = codec._SEG.unpack_from(ffi.buffer(parsed))
        for name, field in ffi.typeof("struct fast_seg").fields:
            at = codec._AT[name]
            if field.type.kind == "array":
                assert list(values[at : at + field.type.length]) == list(getattr(parsed, name)), name
            else:
                assert values[at] == getattr(parsed, name), name
        assert codec.decode(raw).segment == seg


def test_decoded_segment_without_options_shares_no_options():
    raw = bytes(encode_tcp(0x0A000001, 0x0A000002, Segment(1, 2, 3, 4, 0x10, 5)))
    assert codec.decode(raw).segment.options is NO_OPTIONS
