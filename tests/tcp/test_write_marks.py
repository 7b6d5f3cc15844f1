"""stack/tcp/write_marks.py: where PSH goes and where MSG_EOR records end, in sequence space."""

from __future__ import annotations

from stack.tcp.write_marks import WriteMarks
from stack.wire.seq import seq_add

NEAR_WRAP = 0xFFFFFFFF - 1500  # records that straddle 2**32 (RFC 9293 §3.4: sequence space is modular)


def test_established_records_across_sequence_wrap_cut_segments_at_each_end():
    """Linux tcp_sendmsg MSG_EOR: no segment crosses a record's end, however the numbers wrap."""
    marks = WriteMarks()
    ends = [seq_add(NEAR_WRAP, n) for n in (1000, 2000, 3000)]
    for end in ends:
        marks.wrote(end, more=False, eor=True)
    assert marks.unsent_in_record(NEAR_WRAP, 5000) == 1000
    assert marks.unsent_in_record(ends[0], 4000) == 1000  # from one end to the next
    assert marks.unsent_in_record(seq_add(ends[1], 10), 990) == 990  # the last record
    assert all(marks.pushes(end) for end in ends) and not marks.pushes(seq_add(ends[0], 1))
    marks.acked(ends[1])
    assert not marks.pushes(ends[0]) and marks.pushes(ends[2])
    assert marks.unsent_in_record(ends[1], 5000) == 1000


def test_established_many_tiny_records_each_found_by_bisection():
    """A writer of 20,000 one-byte records: every segment finds its record's end without walking all
    of them (bad input must not make the sender quadratic)."""
    marks = WriteMarks()
    count = 20_000
    for n in range(1, count + 1):
        marks.wrote(seq_add(NEAR_WRAP, n), more=False, eor=True)
    for n in range(count):
        assert marks.unsent_in_record(seq_add(NEAR_WRAP, n), count - n) == 1
        marks.acked(seq_add(NEAR_WRAP, n))
    assert marks.pushes(seq_add(NEAR_WRAP, count))


def test_established_more_write_leaves_no_push_mark_until_a_pushed_write():
    """MSG_MORE (send(2)): the bytes carry no PSH until a write without it ends them."""
    marks = WriteMarks()
    marks.wrote(100, more=True, eor=False)
    assert marks.more and not marks.pushes(100)
    marks.wrote(200, more=False, eor=False)
    assert not marks.more and marks.pushes(200) and not marks.pushes(100)
