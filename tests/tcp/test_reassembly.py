"""The out-of-order queue holds each byte once and releases it in order."""

from stack.tcp.reassembly import Reassembly


def test_reassembly_releases_contiguous_bytes_only():
    r = Reassembly()
    r.add(100, 110, b"klm")
    assert r.pop_ready(100) == b""
    r.add(100, 100, b"abcdefghij")  # (normally delivered directly; here it tests the merge)
    assert r.pop_ready(100) == b"abcdefghijklm"


def test_reassembly_overlaps_stored_once():
    r = Reassembly()
    r.add(0, 10, b"0123456789")
    r.add(0, 5, b"abcdefghijklmnop")  # overlaps the held run on both sides
    assert r.bytes_held == 16
    assert r.pop_ready(5) == b"abcde0123456789p"


def test_reassembly_sack_blocks_merge_adjacent_runs():
    r = Reassembly()
    r.add(0, 10, b"aa")
    r.add(0, 12, b"bb")
    r.add(0, 20, b"cc")
    assert r.sack_blocks() == [(10, 14), (20, 22)]


def test_reassembly_wraps_around_sequence_space():
    r = Reassembly()
    base = 2**32 - 3
    r.add(base, 1, b"xyz")
    assert r.pop_ready(base) == b""
    assert r.pop_ready(1) == b"xyz"
