"""The C Internet checksum against a pure-Python RFC 1071 reference kept only here."""

import struct

from hypothesis import given
from hypothesis import strategies as st

from stack.wire.checksum import checksum_update16, internet_checksum, tcp_checksum


def reference_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@given(st.binary(max_size=3000))
def test_checksum_matches_rfc1071_reference(data):
    assert internet_checksum(data) == reference_checksum(data)


def test_checksum_rfc1071_example():
    """RFC 1071 §3 example bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2; the checksum is its complement."""
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == (~0xDDF2 & 0xFFFF)


@given(st.binary(min_size=2, max_size=200).filter(lambda b: len(b) % 2 == 0), st.data())
def test_incremental_update_equals_full_recompute(data, draw):
    """RFC 1624 eqn. 3 gives the checksum a full recomputation gives."""
    i = draw.draw(st.integers(0, len(data) // 2 - 1)) * 2
    new_word = draw.draw(st.integers(0, 0xFFFF))
    old_word = struct.unpack_from("!H", data, i)[0]
    changed = data[:i] + struct.pack("!H", new_word) + data[i + 2 :]
    updated = checksum_update16(internet_checksum(data), old_word, new_word)
    # 0x0000 and 0xffff are the same one's-complement value (RFC 1624 §3)
    assert updated % 0xFFFF == internet_checksum(changed) % 0xFFFF


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.binary(min_size=20, max_size=200))
def test_tcp_checksum_includes_the_pseudo_header(src, dst, segment):
    pseudo = struct.pack("!IIBBH", src, dst, 0, 6, len(segment))
    assert tcp_checksum(src, dst, segment) == reference_checksum(pseudo + segment)
