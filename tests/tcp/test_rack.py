"""RACK loss detection (RFC 8985 §6.2), on a scoreboard, in virtual time."""

import pytest

from stack import core_build
from stack.tcp.rack import Rack
from stack.tcp.scoreboard import Scoreboard


def _sent(times: list[float]) -> Scoreboard:
    board = Scoreboard(1)
    for i, t in enumerate(times):
        board.sent(1 + i * 100, 100, t)
    return board


def test_rack_segment_sent_before_a_delivered_one_is_lost_after_rtt_plus_window():
    """§6.2 step 5: lost when RACK.rtt + reo_wnd has passed since it was sent."""
    board = _sent([0.0, 0.0, 0.01])
    rack = Rack()
    recs = list(board)
    board.sack(201, 301)
    rack.on_delivered(recs[2], 0.11)  # RTT 0.1 s
    lost, wait = rack.detect_loss(board, 0.11, reo_wnd=0.02)
    assert lost == [] and abs(wait - 0.01) < 1e-9  # sent at 0: lost at 0 + 0.1 + 0.02
    lost, wait = rack.detect_loss(board, 0.1201, reo_wnd=0.02)
    assert lost == recs[:2] and wait is None


def test_rack_segment_sent_after_the_delivered_one_is_not_judged():
    board = _sent([0.0, 0.05])
    rack = Rack()
    recs = list(board)
    rack.on_delivered(recs[0], 0.1)
    assert rack.detect_loss(board, 1.0, 0.0) == ([], None)


def test_rack_record_sent_at_a_timer_deadline_ahead_of_the_ack_clock_gives_rtt_zero():
    """RFC 8985 §6.2 step 1 measures now - xmit_ts; a retransmission sent by a timer carries the timer's
    deadline, which may lie a clock tick past the `now` of the ACK that follows: RACK.min_rtt stays 0, not
    negative (what the TSO autosizing shifts by, as Linux's u32 tcp_min_rtt)."""
    board = _sent([0.0105])
    rack = Rack()
    rack.on_delivered(list(board)[0], 0.01)
    assert rack.min_rtt == 0.0 and rack.rtt == 0.0


def test_rack_delivery_order_within_one_ack_is_not_reordering():
    """§6.2 step 3 would call a segment delivered after a later-sent one reordered; Linux counts only
    data delivered below the highest SACK seen before the ACK (tcp_check_sack_reordering, recovery.py),
    so an ACK whose SACK blocks are taken before its cumulative part reveals nothing by itself."""
    board = _sent([0.0, 0.01])
    rack = Rack()
    recs = list(board)
    rack.on_delivered(recs[1], 0.1)
    rack.on_delivered(recs[0], 0.1)
    assert not rack.reordering_seen


def test_rack_reo_wnd_is_zero_in_recovery_until_reordering_is_seen():
    """§6.2 step 4: min_RTT/4 normally; 0 once loss is evident and no reordering was seen."""
    rack = Rack()
    rack.min_rtt = 0.1
    assert rack.reo_wnd(False, 0, 0.2) == 0.025
    assert rack.reo_wnd(True, 0, 0.2) == 0.0
    assert rack.reo_wnd(False, 3, 0.2) == 0.0
    rack.reordering_seen = True
    assert rack.reo_wnd(True, 3, 0.2) == 0.025


def test_rack_dsack_widens_the_window_once_per_round():
    rack = Rack()
    rack.min_rtt = 0.1
    rack.reordering_seen = True
    rack.on_dsack(1000)
    rack.on_dsack(1000)  # same round trip: no further growth
    assert rack.reo_wnd(False, 0, 1.0) == 0.05


def test_rack_ambiguous_ack_of_a_retransmission_is_ignored():
    """§6.2 step 2: an ACK faster than min_RTT after a retransmission acknowledges the original."""
    board = _sent([0.0])
    rack = Rack()
    rack.min_rtt = 0.1
    rec = list(board)[0]
    board.sent(1, 100, 1.0)  # retransmitted at 1.0
    rack.on_delivered(rec, 1.01)
    assert rack.xmit_ts < 0


def test_rack_retransmission_acked_exactly_min_rtt_later_is_timed():
    """§6.2 step 2 ignores a retransmission's ACK only when it came sooner than min_RTT; one exactly
    min_RTT later is timed, as Linux's whole microseconds compare it (tcp_rack_advance), though the
    floats of its times differ in the last bit (0.7 - 0.6 < 0.2 - 0.1)."""
    board = _sent([0.1])
    rack = Rack()
    rec = list(board)[0]
    rack.on_delivered(rec, 0.2)  # min_rtt 0.2 - 0.1
    board.sent(101, 100, 0.0)
    resent = list(board)[1]
    board.sent(101, 100, 0.6)  # retransmitted at 0.6
    rack.on_delivered(resent, 0.7)
    assert rack.xmit_ts == 0.6


class _CountingBoard(Scoreboard):
    """Counts the records RACK looks at."""

    visited = 0

    def by_send_time(self):
        for rec in super().by_send_time():
            self.visited += 1
            yield rec


@pytest.mark.skipif(core_build.BUILD == "compiled", reason="subclasses Scoreboard: a compiled class refuses")
def test_rack_detect_loss_walks_only_what_was_sent_before_the_last_delivered():
    """RFC 8985 §6.2 step 5 judges only segments sent before RACK.xmit_ts: the walk stops at the first
    sent after it (a send-time chain, as Linux's tsorted list), however much is in flight beyond it."""
    board = _CountingBoard(1)
    for i in range(1000):
        board.sent(1 + i * 100, 100, i * 0.001)
    rack = Rack()
    (delivered,) = board.sack(1 + 200, 1 + 300)  # the third segment sent
    rack.on_delivered(delivered, 1.0)
    lost, _ = rack.detect_loss(board, 2.0, reo_wnd=0.0)
    assert [(r.start, r.end) for r in lost] == [(0, 100), (100, 200)]
    assert board.visited == 3  # the two lost and the first one sent after the delivered one


@pytest.mark.skipif(core_build.BUILD == "compiled", reason="subclasses Scoreboard: a compiled class refuses")
def test_rack_detect_loss_stops_at_the_delivered_segment_among_those_sent_together():
    """RFC 8985 §6.2 step 5: of segments sent at the same time, those after the last delivered one in
    sequence were not sent before it (Linux's tcp_skb_sent_after breaks the tie by sequence): the walk
    stops at the first of them, however many were sent with it."""
    board = _CountingBoard(1)
    for i in range(1000):
        board.sent(1 + i * 100, 100, 0.0)  # all at once
    rack = Rack()
    (delivered,) = board.sack(1 + 200, 1 + 300)
    rack.on_delivered(delivered, 1.0)
    lost, _ = rack.detect_loss(board, 2.0, reo_wnd=0.0)
    assert [(r.start, r.end) for r in lost] == [(0, 100), (100, 200)]
    assert board.visited == 3


@pytest.mark.skipif(core_build.BUILD == "compiled", reason="subclasses Scoreboard: a compiled class refuses")
def test_rack_segment_resent_with_new_data_is_judged_in_sequence_among_it():
    """A segment resent at the same time as new data sent just before it is chained in sequence among
    them: RACK, delivered the first of the new data, judges the resent segment before it stops."""
    board = _CountingBoard(1)
    board.sent(1, 300, 0.0, 100)  # three segments
    board.sent(301, 200, 1.0, 100)  # two new ones at 1.0 ...
    board.sent(101, 100, 1.0)  # ... and the second segment resent at the same time, after them
    rack = Rack()
    (delivered,) = board.sack(301, 401)
    rack.on_delivered(delivered, 2.0)
    lost, _ = rack.detect_loss(board, 3.0, reo_wnd=0.0)
    assert [(r.start, r.end) for r in lost] == [(0, 100), (100, 200), (200, 300)]
    assert board.visited == 4  # the three lost and the new segment after the delivered one


def test_rack_reorder_wait_is_that_of_the_last_segment_sent_before_the_delivered_one():
    """RFC 8985 §6.2 step 5: the timer waits for the longest of the segments not yet due, the one sent
    last before the delivered segment, however many were sent before it or after the delivered one."""
    board = _sent([0.0, 0.01, 0.02, 0.03, 0.04, 0.05])
    rack = Rack()
    (delivered,) = board.sack(301, 401)  # the fourth, sent at 0.03
    rack.on_delivered(delivered, 0.13)  # RTT 0.1 s: a segment sent at t is lost at t + 0.1 + 0.02
    lost, wait = rack.detect_loss(board, 0.115, reo_wnd=0.02)
    assert lost == [] and abs(wait - 0.025) < 1e-9  # the third, sent at 0.02, is lost at 0.14
    lost, wait = rack.detect_loss(board, 0.1255, reo_wnd=0.02)  # the first is due, the other two not yet
    assert [(r.start, r.end) for r in lost] == [(0, 100)] and abs(wait - 0.0145) < 1e-9
