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


def test_reassembly_segment_filling_gap_between_runs_merges_them():
    """A segment spanning two held runs and the hole between them leaves one run, counted once."""
    r = Reassembly()
    r.add(100, 110, b"BB")
    r.add(100, 120, b"DD")
    spanning = b"a" * 5 + b"BB" + b"b" * 8 + b"DD" + b"d"  # seq 105..122
    r.add(100, 105, spanning)
    assert r.sack_blocks() == [(105, 123)] and r.bytes_held == 18
    assert r.pop_ready(105) == spanning and r.bytes_held == 0 and len(r) == 0


def test_reassembly_duplicate_segment_changes_nothing():
    r = Reassembly()
    r.add(0, 10, b"xyz")
    r.add(0, 10, b"xyz")
    r.add(0, 11, b"y")
    assert r.sack_blocks() == [(10, 13)] and r.bytes_held == 3


def test_reassembly_pop_ready_drops_runs_already_delivered():
    """Bytes at or below RCV.NXT were delivered by a retransmission: dropped, never delivered twice."""
    r = Reassembly()
    r.add(0, 10, b"0123")
    r.add(0, 20, b"abcd")
    assert r.pop_ready(22) == b"cd"
    assert len(r) == 0 and r.bytes_held == 0


def test_reassembly_many_segments_in_reverse_order_stay_linear():
    """Performance: 2000 out-of-order segments are stored and released without quadratic copying."""
    r = Reassembly()
    data = bytes(range(256)) * 40
    for i in range(2000, 0, -1):
        r.add(0, i * 10, data[i * 10 % 10000 : i * 10 % 10000 + 10])
    assert len(r) == 1 and r.bytes_held == 20000
    assert len(r.pop_ready(10)) == 20000


def test_reassembly_drop_from_keeps_only_bytes_below_the_point():
    """What tcp_prune_ofo_queue leaves: the held bytes below the point, a run cut there, no FIN."""
    q = Reassembly()
    q.add(0, 100, b"a" * 100)
    q.add(0, 300, b"b" * 100)
    q.fin_seq = 400
    assert q.drop_from(350) == 50
    assert q.sack_blocks() == [(100, 200), (300, 350)] and q.bytes_held == 150 and q.fin_seq is None
    assert q.drop_from(0) == 150 and not q
