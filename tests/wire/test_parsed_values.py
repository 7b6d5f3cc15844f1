"""The segment values (stack/wire/segment.py), dataclasses with their constructor written out, behave as
frozen ones would: equality, hash and repr over every field, dataclasses.replace() changing only what it names;
and the decoder's struct read in one call (stack/wire/codec.py) reads what the C parser wrote."""

from __future__ import annotations

from dataclasses import astuple, fields, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stack._fast import ffi, lib

from stack import core_build
from stack.wire import codec
from stack.wire.codec import encode_tcp
from stack.wire.segment import NO_OPTIONS, Segment, TcpOptions

u16, u32 = st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
options_values = st.builds(
    TcpOptions,
    st.none() | u16,
    st.none() | st.integers(0, 14),
    st.booleans(),
    st.none() | st.tuples(u32, u32),
    st.lists(st.tuples(u32, u32), max_size=4).map(tuple),
    st.none() | st.binary(max_size=16),
    st.booleans(),
)
segments = st.builds(
    Segment,
    u16,
    u16,
    u32,
    u32,
    st.integers(0, 255),
    u16,
    st.binary(max_size=64),
    options_values,
    u16,
    st.integers(0, 3),
    u16,
    st.integers(0, 252),
    st.booleans(),
)
SEGMENT_FIELDS = ("src_port", "dst_port", "seq", "ack", "flags", "window", "payload", "options", "urgent", "ecn")
SEGMENT_FIELDS += ("gso", "tos", "df")
OPTIONS_FIELDS = ("mss", "wscale", "sack_permitted", "timestamps", "sack_blocks", "fast_open", "fast_open_exp")


def _copy(seg: Segment) -> Segment:
    o = seg.options
    options = TcpOptions(o.mss, o.wscale, o.sack_permitted, o.timestamps, o.sack_blocks, o.fast_open, o.fast_open_exp)
    values = [getattr(seg, name) for name in SEGMENT_FIELDS]
    values[6] = bytes(seg.payload)  # an equal payload, another object
    values[7] = options
    return Segment(*values)


@given(segments)
def test_segment_equal_fields_are_equal_values_with_equal_hashes(seg):
    twin = _copy(seg)
    assert twin == seg and not twin != seg and hash(twin) == hash(seg)


def _other(name: str, value: object) -> object:
    """A value unequal to field `name`'s `value`, of the field's own kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, bytes | memoryview):
        return bytes(value) + b"x"
    if isinstance(value, TcpOptions):
        return TcpOptions(mss=(value.mss or 0) + 1)
    if value is None:
        return {"timestamps": (1, 2), "fast_open": b""}.get(name, 1)
    assert isinstance(value, tuple)
    return None if len(value) == 2 and isinstance(value[0], int) else ((1, 2), *value)


@given(segments, st.sampled_from(SEGMENT_FIELDS))
def test_segment_differing_in_one_field_is_unequal(seg, name):
    """Equality compares every field (the payload by content, the options by value)."""
    values = [getattr(seg, n) for n in SEGMENT_FIELDS]
    at = SEGMENT_FIELDS.index(name)
    values[at] = _other(name, values[at])
    assert Segment(*values) != seg


@given(options_values, st.sampled_from(OPTIONS_FIELDS))
def test_options_differing_in_one_field_are_unequal(options, name):
    values = [getattr(options, n) for n in OPTIONS_FIELDS]
    at = OPTIONS_FIELDS.index(name)
    values[at] = _other(name, values[at])
    assert TcpOptions(*values) != options and TcpOptions(*values) == TcpOptions(*values)


def test_segment_and_options_are_unequal_to_other_types():
    """Comparing with another type is NotImplemented, so == falls back to identity: a tuple of the same values
    is not a segment."""
    seg = Segment(1, 2, 3, 4, 0x10, 5)
    assert seg != (1, 2, 3, 4, 0x10, 5) and NO_OPTIONS != () and NO_OPTIONS != None  # noqa: E711


def test_segment_repr_names_every_field_in_order():
    """As a dataclass's repr: what a failing test prints."""
    seg = Segment(1, 2, 3, 4, 0x18, 5, b"ab", TcpOptions(mss=1460, timestamps=(7, 8)), ecn=2, df=False)
    assert repr(seg) == (
        "Segment(src_port=1, dst_port=2, seq=3, ack=4, flags=24, window=5, payload=b'ab', options=TcpOptions("
        "mss=1460, wscale=None, sack_permitted=False, timestamps=(7, 8), sack_blocks=(), fast_open=None, "
        "fast_open_exp=False), urgent=0, ecn=2, gso=0, tos=0, df=False)"
    )


@given(segments, st.sampled_from(SEGMENT_FIELDS[:11]), st.integers(1, 9))
def test_segment_replace_changes_only_the_named_field(seg, name, value):
    changed = {"payload": b"n" * value, "options": TcpOptions(mss=value)}.get(name, value)
    got = replace(seg, **{name: changed})
    for n in SEGMENT_FIELDS:
        assert getattr(got, n) == (changed if n == name else getattr(seg, n)), n


def test_segment_replace_with_no_change_is_an_equal_copy():
    seg = Segment(1, 2, 3, 4, 0x10, 5, b"x", tos=8, df=False)
    assert replace(seg) == seg and replace(seg) is not seg


@given(segments, st.integers(0, 255), st.none() | u16)
def test_segment_with_flags_is_dataclasses_replace_of_flags_and_urgent(seg, flags, urgent):
    """The core's native shortcut changes the flags (and the urgent pointer when given), nothing else."""
    expected = replace(seg, flags=flags) if urgent is None else replace(seg, flags=flags, urgent=urgent)
    assert seg.with_flags(flags, urgent) == expected


def test_value_fields_are_the_constructor_parameters():
    """dataclasses.fields lists exactly what each constructor takes (compiled, a `__slots__` written in the
    class body would count as a field too: the decorator's slots=True makes them), so replace() and
    astuple() see the values and nothing else."""
    assert tuple(f.name for f in fields(Segment)) == SEGMENT_FIELDS
    assert tuple(f.name for f in fields(TcpOptions)) == OPTIONS_FIELDS
    assert tuple(f.name for f in fields(codec.TcpPacket)) == ("src", "dst", "ttl", "segment", "ip_header")
    seg = Segment(1, 2, 3, 4, 0x10, 5, b"x", tos=8, df=False)
    assert replace(seg, seq=9) == Segment(1, 2, 9, 4, 0x10, 5, b"x", tos=8, df=False)
    assert astuple(seg)[:7] == (1, 2, 3, 4, 0x10, 5, b"x")


@pytest.mark.skipif(core_build.BUILD != "compiled", reason="the interpreted source relies on mypy's Final")
@pytest.mark.parametrize("name", SEGMENT_FIELDS)
def test_compiled_segment_field_assignment_raises(name):
    """Values are immutable: a segment handed on (to the send queue, the event log) stays what it was."""
    seg = Segment(1, 2, 3, 4, 0x10, 5)
    with pytest.raises(AttributeError):
        setattr(seg, name, getattr(seg, name))


def test_struct_layout_reads_what_cffi_reads():
    """codec._SEG, built from cffi's offsets, unpacks every field of struct fast_seg as cffi reads it."""
    for flags, options in (
        (0x12, TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamps=(11, 12))),  # a SYN's options
        (0x12, TcpOptions(mss=1460, timestamps=(11, 12), fast_open=bytes(range(1, 17)), fast_open_exp=True)),
        (0x02, TcpOptions(mss=1460, sack_permitted=True, fast_open=b"")),  # a fast open cookie request
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
