"""The per-segment scoreboard (RFC 6675 §3) that RACK and the recovery code work on."""

import gc

from hypothesis import given, settings
from hypothesis import strategies as st

from stack.tcp.scoreboard import Scoreboard, SentSegment

SEQ = 0xFFFFF000  # near the wrap: offsets never wrap, sequence numbers do


def _board(n: int = 4, size: int = 1000) -> Scoreboard:
    board = Scoreboard(SEQ)
    for i in range(n):
        board.sent((SEQ + i * size) & 0xFFFFFFFF, size, float(i))
    return board


def _pipe(board: Scoreboard) -> int:
    """RFC 6675 §4 "pipe" in bytes: sent, neither SACKed nor lost (a resent lost segment counts again)."""
    return board.outstanding - board.sacked_bytes - board.lost_bytes


def test_scoreboard_new_data_appends_one_record_per_segment():
    board = _board()
    assert [(r.start, r.end, r.xmit_ts) for r in board] == [
        (0, 1000, 0.0),
        (1000, 2000, 1.0),
        (2000, 3000, 2.0),
        (3000, 4000, 3.0),
    ]
    assert board.outstanding == _pipe(board) == 4000


def test_scoreboard_cumulative_ack_is_timed_from_its_first_segment_not_sacked():
    """RFC 6298 §3 as Linux (tcp_clean_rtx_queue): an ACK is timed from the first segment it newly
    acknowledges; a segment SACKed before was timed by its SACK."""
    board = _board()
    board.sack((SEQ + 0) & 0xFFFFFFFF, (SEQ + 1000) & 0xFFFFFFFF)
    assert board.first_sent_below((SEQ + 3000) & 0xFFFFFFFF) == 1.0


def test_scoreboard_cumulative_ack_of_a_resent_segment_is_not_timed():
    """Karn's rule (RFC 6298 §3): an ACK that covers a segment sent twice gives no sample, even timed
    from an earlier segment sent once (Linux FLAG_RETRANS_DATA_ACKED)."""
    board = _board()
    board.sent((SEQ + 1000) & 0xFFFFFFFF, 1000, 5.0)
    assert board.first_sent_below((SEQ + 1000) & 0xFFFFFFFF) == 0.0
    assert board.first_sent_below((SEQ + 2000) & 0xFFFFFFFF) is None


def test_scoreboard_resend_marks_retransmitted_and_clears_lost():
    board = _board()
    rec = list(board)[1]
    assert board.mark_lost(rec)
    assert _pipe(board) == 3000
    resent = board.sent(board.seq_of(1000), 1000, 9.0)
    assert resent == [rec] and rec.retransmitted and not rec.lost and rec.xmit_ts == 9.0
    assert _pipe(board) == 4000


def test_scoreboard_sack_of_part_of_a_segment_marks_only_whole_segments():
    """A block may end inside a segment (RFC 2018 §3 allows any edges); as Linux (tcp_match_skb_to_sack),
    only the segments it covers whole count as SACKed: part of one is no evidence that it arrived."""
    board = _board()
    newly = board.sack(board.seq_of(1500), board.seq_of(3000))
    assert [(r.start, r.end) for r in newly] == [(2000, 3000)]
    assert board.sack(board.seq_of(1500), board.seq_of(3000)) == []
    assert board.sack(board.seq_of(3999), board.seq_of(4000)) == []
    assert [(r.start, r.end) for r in board] == [(0, 1000), (1000, 2000), (2000, 3000), (3000, 4000)]
    assert board.sacked_bytes == 1000
    assert _pipe(board) == 3000


def test_scoreboard_cumulative_ack_across_the_wrap_drops_records_and_keeps_a_tail():
    board = _board()
    board.sack(board.seq_of(2000), board.seq_of(3000))
    delivered = board.ack((SEQ + 2500) & 0xFFFFFFFF)
    assert [(r.start, r.end) for r in delivered] == [(0, 1000), (1000, 2000)]  # the SACKed one is not new
    assert [(r.start, r.end) for r in board] == [(2500, 3000), (3000, 4000)]
    assert board.sacked_bytes == 500 and board.outstanding == 1500


def test_scoreboard_lost_records_leave_the_pipe_until_resent():
    board = _board()
    for rec in board:
        board.mark_lost(rec)
    assert _pipe(board) == 0 and board.first_lost() is list(board)[0]


def test_scoreboard_resegment_cuts_big_records_and_marks_every_piece_lost():
    """RFC 1191: after the path MTU shrinks, each segment in flight that is too big is resent in pieces."""
    board = _board(2, 1000)
    board.sack(board.seq_of(1000), board.seq_of(2000))
    assert board.resegment(400)
    assert [(r.start, r.end, r.lost) for r in board] == [
        (0, 400, True),
        (400, 800, True),
        (800, 1000, True),
        (1000, 2000, False),
    ]
    assert board.lost_bytes == 1000 and _pipe(board) == 0
    assert not board.resegment(400)


def test_scoreboard_run_is_one_record_split_where_a_sack_divides_it():
    """RFC 6675 §3 for a TSO run: recorded once; a block covering two of its segments splits it in three."""
    board = Scoreboard(SEQ)
    board.sent(SEQ, 6000, 0.0, 1000)
    assert len(board) == 1 and board.segments == 6
    newly = board.sack(board.seq_of(2000), board.seq_of(4000))
    assert [(r.start, r.end, r.segments) for r in newly] == [(2000, 4000, 2)]
    assert [(r.start, r.end, r.sacked) for r in board] == [(0, 2000, False), (2000, 4000, True), (4000, 6000, False)]


def test_scoreboard_block_extending_one_taken_before_sacks_the_segment_its_end_cut():
    """RFC 2018 §4: a block repeated one segment longer is worked from where the earlier one ended, as
    Linux's recv_sack_cache does; the segment that end cut in two (not SACKed then) is SACKed now."""
    board = Scoreboard(SEQ)
    board.sent(SEQ, 6000, 0.0, 1000)
    board.sack(board.seq_of(1000), board.seq_of(2500))  # the third segment only half covered
    newly = board.sack(board.seq_of(1000), board.seq_of(4000))
    assert [(r.start, r.end) for r in newly] == [(2000, 4000)]
    assert [(r.start, r.end, r.sacked) for r in board] == [
        (0, 1000, False),
        (1000, 2000, True),
        (2000, 4000, True),
        (4000, 6000, False),
    ]
    assert board.sacked_bytes == 3000 and board.sacked_packets == 3


def test_scoreboard_block_repeated_after_the_sacks_were_forgotten_sacks_again():
    """RFC 2018 §8: once SACKed data is forgotten (reneging), a block that names it again is new news."""
    board = _board()
    board.sack(board.seq_of(1000), board.seq_of(3000))
    board.forget_sacks()
    newly = board.sack(board.seq_of(1000), board.seq_of(3000))
    assert [(r.start, r.end) for r in newly] == [(1000, 2000), (2000, 3000)]
    assert board.sacked_bytes == 2000


def test_scoreboard_lost_run_is_resent_one_segment_at_a_time():
    """RFC 6675 §5 (NextSeg): a lost segment is resent alone, not the run it left in."""
    board = Scoreboard(SEQ)
    board.sent(SEQ, 3000, 0.0, 1000)
    board.mark_all_lost()
    first = board.first_lost()
    assert (first.start, first.end) == (0, 1000)
    board.sent(board.seq_of(0), first.length, 1.0)
    assert [(r.start, r.end, r.retransmitted, r.lost) for r in board] == [
        (0, 1000, True, False),
        (1000, 3000, False, True),
    ]
    assert board.lost_bytes == 2000 and _pipe(board) == 1000


def test_scoreboard_one_segment_out_counts_the_pieces_of_a_run():
    """A lone segment (RFC 8985 §7.2's probe timeout allows for its delayed ACK) is one record of one piece:
    a run of several is not, nor are two records."""
    lone = _board(1)
    assert lone.one_segment_out() and lone.segments == 1
    run = Scoreboard(SEQ)
    run.sent(SEQ, 3000, 0.0, 1000)
    assert not run.one_segment_out() and len(run) == 1
    assert not _board(2).one_segment_out()
    assert not Scoreboard(SEQ).one_segment_out()


def test_scoreboard_acknowledged_in_full_leaves_no_cycle_for_the_garbage_collector():
    """Once every record is acknowledged, the send-time chain goes unlinked: reference counting frees all
    of it, and a collection afterwards finds none of its records (other tests' garbage aside)."""
    gc.collect()
    gc.disable()
    gc.garbage.clear()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds stays in gc.garbage, to be looked at
    try:
        board = _board()
        board.ack((SEQ + 4000) & 0xFFFFFFFF)
        assert not len(board)
        del board
        gc.collect()
        left = [found for found in gc.garbage if type(found) is SentSegment]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []


def test_scoreboard_reneging_ack_below_sacked_data_then_forget_sacks_makes_it_losable():
    """RFC 2018 §8: an ACK that stops at SACKed data says the receiver may have dropped it; once the
    SACKs are forgotten (a timeout), that data can be declared lost and resent like the rest."""
    board = _board()
    board.sack(board.seq_of(1000), board.seq_of(2000))
    board.ack(board.seq_of(1000))
    assert board.head_sacked()
    board.forget_sacks()
    assert not board.head_sacked() and board.sacked_bytes == 0
    board.mark_all_lost()
    assert board.lost_bytes == 3000


def test_scoreboard_short_segments_each_count_one_packet_in_flight():
    """Linux counts the congestion window in packets (tcp_packets_in_flight): a 100-byte segment takes a
    packet's room as a full one does, a SACKed or lost one none, a resent lost one again."""
    board = _board(4, 100)
    assert board.pipe_packets == 4 and _pipe(board) == 400
    board.sack(board.seq_of(100), board.seq_of(200))
    board.mark_lost(list(board)[0])
    assert board.pipe_packets == 2
    board.sent(board.seq_of(0), 100, 9.0)
    assert board.pipe_packets == 3


OPERATIONS = ("sent", "sack", "ack", "lost", "resend", "forget", "cut", "join", "renege")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 30)), max_size=40))
def test_scoreboard_running_counts_match_the_records(ops):
    """The running counts (packets in flight and resent ones among them, SACKed packets and bytes, lost
    packets and bytes, packets out) equal what the records say, whatever cuts, joins, SACKs, reneging,
    losses, resends and ACKs came before."""
    board = Scoreboard(SEQ)
    top = 0
    for op, n in ops:
        low = list(board)[0].start if len(board) else top
        if op == "sent":
            board.sent(board.seq_of(top), 100 + 150 * n, float(n), 1000 if n % 2 else 0)
            top += 100 + 150 * n
        elif op == "sack" and top > low:
            board.sack(board.seq_of(low + 37 * n % (top - low)), board.seq_of(top - 53 * n % (top - low)))
        elif op == "ack" and top > low:
            board.ack(board.seq_of(low + 41 * n % (top - low + 1)))
        elif op == "lost" and len(board):
            board.mark_lost(list(board)[n % len(board)])
        elif op == "resend" and (rec := board.first_lost()) is not None:
            board.sent(board.seq_of(rec.start), rec.length, float(n))
        elif op == "forget":
            board.forget_losses(retransmitted_too=bool(n % 2))
        elif op == "cut" and len(board):
            rec = list(board)[n % len(board)]
            if rec.length > 1:
                board.cut(rec, 1 + n % (rec.length - 1))
        elif op == "join" and len(board):
            rec = list(board)[n % len(board)]
            joined = board.after(rec)
            if not rec.sacked and rec.segments == 1 and joined and joined.segments == 1 and not joined.sacked:
                board.join_next(rec)
        elif op == "renege":
            board.forget_sacks()
        assert board.pipe_packets == sum(r.segments for r in board if not r.sacked and not r.lost)
        assert board.sacked_packets == sum(r.segments for r in board if r.sacked)
        assert board.sacked_bytes == sum(r.length for r in board if r.sacked)
        assert board.lost_bytes == sum(r.length for r in board if r.lost)
        assert board.lost_packets == sum(r.segments for r in board if r.lost)
        assert board.retrans_packets == sum(
            r.segments for r in board if r.retransmitted and not r.sacked and not r.lost
        )
        assert board.segments == sum(r.segments for r in board)


def test_scoreboard_cumulative_ack_delivers_the_segments_wholly_below_it():
    """Linux's tcp_tso_acked: an ACK that ends inside a segment of a run delivers the segments before it;
    SACKed ones were delivered when their SACK came."""
    board = Scoreboard(SEQ)
    board.sent(SEQ, 3000, 0.0, 1000)
    board.sent(board.seq_of(3000), 100, 0.1)
    board.sack(board.seq_of(1000), board.seq_of(2000))
    assert board.packets_below(board.seq_of(2500)) == 1
    assert board.packets_below(board.seq_of(3100)) == 3
