"""Sequence-number arithmetic modulo 2**32 (RFC 9293 §3.4)."""

from hypothesis import given
from hypothesis import strategies as st

from stack.wire.seq import in_window, seq_add, seq_ge, seq_gt, seq_le, seq_lt, seq_sub

seqs = st.integers(0, 2**32 - 1)
small = st.integers(1, 2**31 - 1)


@given(seqs, small)
def test_seq_add_then_compare_wraps_around(a, n):
    b = seq_add(a, n)
    assert seq_lt(a, b) and seq_gt(b, a) and seq_le(a, b) and seq_ge(b, a)
    assert seq_sub(b, a) == n


@given(seqs)
def test_seq_equal_is_neither_less_nor_greater(a):
    assert not seq_lt(a, a) and not seq_gt(a, a) and seq_le(a, a) and seq_ge(a, a)


def test_seq_lt_across_the_wrap():
    assert seq_lt(0xFFFFFFF0, 0x10)
    assert seq_add(0xFFFFFFFF, 1) == 0


@given(seqs, st.integers(0, 2**20), st.integers(0, 2**20))
def test_in_window_matches_offset(start, length, offset):
    assert in_window(seq_add(start, offset), start, length) == (offset < length)


@given(st.one_of(seqs, st.sampled_from([0, 1, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1])), seqs)
def test_comparisons_are_the_sign_of_seq_sub(delta, b):
    """RFC 9293 §3.4: a < b exactly when the signed distance a - b is negative, also at 2**31 apart."""
    a = seq_add(b, delta)
    d = seq_sub(a, b)
    assert (seq_lt(a, b), seq_le(a, b), seq_gt(a, b), seq_ge(a, b)) == (d < 0, d <= 0, d > 0, d >= 0)
