"""ESTABLISHED: data, acknowledgment, windows and the RFC 5961 checks (RFC 9293 §3.10.7.4)."""

import pytest

from stack.tcp.state import State
from stack.tcp.tcp_info import tcp_info
from stack.wire.segment import TcpOptions
from tests.tcp.conftest import IRS, ISS, events, seg, sent

MSS = 1460


def test_established_first_data_acked_at_once(conn_in):
    """§3.8.6.3 leaves the delay to us; as Linux (quickack), the connection's first data is ACKed at once."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg("P.", IRS + 1, ISS + 1, b"hello"), 0.0)
    assert events(c) == ["DataAvailable"]
    assert c.read() == b"hello"
    assert sent(c, 0.0) == [(".", ISS + 1, IRS + 6, b"")]


def test_established_interactive_exchange_ack_delayed(conn_in):
    """§3.8.6.3: once we answer data at once (ping-pong), a lone segment's ACK waits for the timer."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg("P.", IRS + 1, ISS + 1, b"hello"), 0.0)
    c.read()
    c.send(b"hi", 0.0)
    assert sent(c, 0.0) == [("P.", ISS + 1, IRS + 6, b"hi")]
    c.receive_segment(seg("P.", IRS + 6, ISS + 3, b"again"), 0.01)
    assert sent(c, 0.01) == []
    assert c.next_deadline() == 0.05
    c.handle_timer(0.05)
    assert sent(c, 0.05) == [(".", ISS + 3, IRS + 11, b"")]


def test_established_data_after_idle_gap_acked_at_once(conn_in):
    """As Linux: data after an idle gap longer than the RTO starts a new quickack phase."""
    c = conn_in(State.ESTABLISHED, receive_buffer=3000)  # a window (2920) for two quick ACKs of 536 only
    acks = []
    for i in range(3):
        c.receive_segment(seg("P.", IRS + 1 + 5 * i, ISS + 1, b"hello"), 0.0)
        acks += sent(c, 0.0)
    assert acks == [(".", ISS + 1, IRS + 6, b""), (".", ISS + 1, IRS + 11, b"")]  # the third waits (unread)
    c.handle_timer(0.04)
    assert sent(c, 0.04) == [(".", ISS + 1, IRS + 16, b"")]
    c.receive_segment(seg("P.", IRS + 16, ISS + 1, b"again"), 10.0)
    assert sent(c, 10.0) == [(".", ISS + 1, IRS + 21, b"")]


def test_established_second_full_segment_acked_at_once(conn_in):
    """§3.8.6.3: an ACK at least every second full-sized segment."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"a" * MSS), 0.0)
    c.receive_segment(seg(".", IRS + 1 + MSS, ISS + 1, b"b" * MSS), 0.0)
    assert sent(c, 0.0) == [(".", ISS + 1, IRS + 1 + 2 * MSS, b"")]


def test_established_super_segment_counts_as_the_segments_it_holds(conn_in):
    """§3.8.6.3 (every second full-sized segment): a coalesced super-segment from TUN offloads (GRO)
    holds several full segments, so it is ACKed at once even where a lone segment's ACK would wait."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg("P.", IRS + 1, ISS + 1, b"hello"), 0.0)
    c.read()
    c.send(b"hi", 0.0)
    sent(c, 0.0)
    c.receive_segment(seg(".", IRS + 6, ISS + 3, b"s" * (2 * MSS)), 0.01)  # ping-pong: a lone one would wait
    assert sent(c, 0.01) == [(".", ISS + 3, IRS + 6 + 2 * MSS, b"")]


def test_established_out_of_order_held_then_delivered_in_order(conn_in):
    """§3.10.7.4 seventh check: later data is held; the hole filled delivers both, in order."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 6, ISS + 1, b"world"), 0.0)
    assert c.read() == b""
    assert sent(c, 0.0) == [(".", ISS + 1, IRS + 1, b"")]  # immediate duplicate ACK (RFC 5681 §4.2)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"hello"), 0.0)
    assert c.read() == b"helloworld"
    assert sent(c, 0.0) == [(".", ISS + 1, IRS + 11, b"")]  # hole filled: ACK at once


def test_established_out_of_order_ack_carries_sack_block(conn_in):
    """RFC 2018 §4: the ACK for out-of-order data reports it in a SACK block."""
    c = conn_in(State.ESTABLISHED)
    c.tcb.sack_ok = True
    c.receive_segment(seg(".", IRS + 6, ISS + 1, b"world"), 0.0)
    (ack,) = c.segments_to_send(0.0)
    assert ack.options.sack_blocks == ((IRS + 6, IRS + 11),)


def test_established_overlapping_data_delivered_once(conn_in):
    """Duplicates and overlaps are trimmed: every byte reaches the application once."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"abcdef"), 0.0)
    c.receive_segment(seg(".", IRS + 4, ISS + 1, b"defghi"), 0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"abc"), 0.0)
    assert c.read() == b"abcdefghi"


def test_established_overlapping_out_of_order_segments_delivered_once(conn_in):
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 5, ISS + 1, b"efgh"), 0.0)
    c.receive_segment(seg(".", IRS + 3, ISS + 1, b"cdefg"), 0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"ab"), 0.0)
    assert c.read() == b"abcdefgh"


def test_established_old_segment_answered_by_ack(conn_in):
    """§3.10.7.4 first check: an unacceptable segment gets <SEQ=SND.NXT><ACK=RCV.NXT> and is dropped."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS - 100, ISS + 1, b"old"), 0.0)
    assert sent(c, 0.0) == [(".", ISS + 1, IRS + 1, b"")]
    assert c.read() == b""


def test_established_data_beyond_window_with_data_waiting_dropped_whole(conn_in):
    """Linux tcp_sequence: a segment that runs past the window is taken only into an empty receive
    queue; with data waiting to be read it is dropped whole (BeyondWindow) and a duplicate ACK repeats
    the window. The peer sends it again."""
    c = conn_in(State.ESTABLISHED, receive_buffer=100)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"x" * 90), 0.0)
    c.receive_segment(seg(".", IRS + 1 + 90, ISS + 1, b"0123456789abcdef"), 0.0)
    assert c.read() == b"x" * 90
    assert c.counters.events().beyond_window == 1


def test_established_data_beyond_window_dropped_whole_leaves_receive_estimates(conn_in):
    """Linux drops such a segment in tcp_sequence, before tcp_event_data_recv: it moves neither the
    peer's segment-size estimate (tcpi_rcv_mss) nor the time data last arrived (tcpi_last_data_recv)."""
    c = conn_in(State.ESTABLISHED, receive_buffer=1200)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"x" * 700), 1.0)
    before = tcp_info(c, 1.0)
    c.receive_segment(seg(".", IRS + 701, ISS + 1, b"y" * 1400), 5.0)
    after = tcp_info(c, 5.0)
    assert c.counters.events().beyond_window == 1
    assert after["tcpi_rcv_mss"] == before["tcpi_rcv_mss"]
    assert after["tcpi_last_data_recv"] == 4000  # ms since the data that was taken


def test_established_out_of_order_data_beyond_window_into_empty_queue_kept_whole(conn_in):
    """§3.10.7.4 first check: an out-of-order segment that starts in the window may be kept whole; Linux
    (tcp_sequence) keeps it when nothing waits to be read, as for in-order data."""
    c = conn_in(State.ESTABLISHED)
    c.tcb.rcv_adv = IRS + 1 + 20
    c.receive_segment(seg(".", IRS + 1 + 10, ISS + 1, b"0123456789abcdef"), 0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"0123456789"), 0.0)
    assert c.read() == b"01234567890123456789abcdef"


def test_established_out_of_order_data_beyond_window_with_data_waiting_dropped(conn_in):
    """Linux tcp_sequence: with data waiting to be read, a segment past the window is dropped whole
    (BeyondWindow), so the peer sends it again."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"0123456789"), 0.0)
    c.tcb.rcv_adv = IRS + 1 + 20
    c.receive_segment(seg(".", IRS + 1 + 15, ISS + 1, b"fghijklmnop"), 0.0)
    assert c.counters.events().beyond_window == 1
    assert c.receiver.bytes_held == 0


def test_established_in_order_data_beyond_window_into_empty_queue_kept_whole(conn_in):
    """Linux tcp_data_queue: in-order data with the window open is queued whole into an empty receive
    queue (RFC 9293 §3.10.7.4 lets a receiver keep data beyond the window); the window closes behind it."""
    c = conn_in(State.ESTABLISHED, receive_buffer=10)
    c.tcb.rcv_adv = IRS + 1 + 10
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"0123456789abcdef"), 0.0)
    assert c.read() == b"0123456789abcdef"


def test_established_data_into_closed_window_dropped(conn_in):
    """§3.10.7.4 first check with RCV.WND = 0: no data is taken, however empty the queue (Linux
    TCPZeroWindowDrop)."""
    c = conn_in(State.ESTABLISHED, receive_buffer=10)
    c.tcb.rcv_adv = IRS + 1
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"0123456789"), 0.0)
    assert c.read() == b""


def test_established_rst_exact_sequence_resets(conn_in):
    """RFC 5961 §3.2: an RST with SEG.SEQ == RCV.NXT resets the connection."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg("R", IRS + 1), 0.0)
    assert c.state is State.CLOSED
    assert events(c) == ["Reset", "Closed"]
    assert c.counters.events().estab_resets == 1


def test_established_rst_in_window_not_exact_sends_challenge_ack(conn_in):
    """RFC 5961 §3.2: an in-window RST that is not exact gets a challenge ACK."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg("R", IRS + 100), 0.0)
    assert c.state is State.ESTABLISHED
    assert sent(c, 0.0) == [(".", ISS + 1, IRS + 1, b"")]
    assert c.counters.events().challenge_acks == 1


def test_established_rst_out_of_window_ignored(conn_in):
    """§3.10.7.4 first check: RSTs outside the window are dropped silently."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg("R", IRS + 10_000_000), 0.0)
    assert c.state is State.ESTABLISHED
    assert sent(c, 0.0) == []


def test_established_syn_sends_challenge_ack(conn_in):
    """RFC 5961 §4.2: a SYN in a synchronized state gets a challenge ACK, nothing else."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg("S", IRS + 1), 0.0)
    assert c.state is State.ESTABLISHED
    assert sent(c, 0.0) == [(".", ISS + 1, IRS + 1, b"")]


def test_established_ack_of_unsent_data_acked_and_dropped(conn_in):
    """§3.10.7.4 fifth check: SEG.ACK > SND.NXT -> send ACK, drop the segment."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 1, ISS + 500, b"data"), 0.0)
    assert sent(c, 0.0) == [(".", ISS + 1, IRS + 1, b"")]
    assert c.read() == b""


def test_established_urgent_pointer_ignored_without_losing_data(conn_in):
    """§3.10.7.4 sixth check: URG is accepted, its data delivered like any other."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg("U.", IRS + 1, ISS + 1, b"urgent!"), 0.0)
    assert c.read() == b"urgent!"


def test_established_fin_enters_close_wait_and_acks(conn_in):
    """§3.10.7.4 eighth check: FIN -> CLOSE-WAIT, ACK it, signal end of stream. As Linux, the ACK of the
    FIN waits for the delayed-ACK timer (§3.8.6.3), so an answer from the application can carry it."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg("F.", IRS + 1, ISS + 1, b"bye"), 0.0)
    assert c.state is State.CLOSE_WAIT
    assert sent(c, 0.0) == []
    c.handle_timer(c.next_deadline())
    assert sent(c, 0.04) == [(".", ISS + 1, IRS + 5, b"")]
    assert c.read() == b"bye" and c.at_eof


def test_established_out_of_order_fin_waits_for_the_hole(conn_in):
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg("F.", IRS + 4, ISS + 1, b"def"), 0.0)
    assert c.state is State.ESTABLISHED
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"abc"), 0.0)
    assert c.state is State.CLOSE_WAIT
    assert c.read() == b"abcdef"


def test_established_send_splits_at_mss(conn_in):
    """Segments carry at most SND.MSS bytes; the last of a burst has PSH."""
    c = conn_in(State.ESTABLISHED)
    assert c.send(b"x" * 3000, 0.0) == 3000
    out = sent(c, 0.0)
    assert [(f, s, len(d)) for f, s, _, d in out] == [
        (".", ISS + 1, MSS),
        (".", ISS + 1 + MSS, MSS),
        ("P.", ISS + 1 + 2 * MSS, 80),
    ]


def test_established_nagle_holds_small_segment_while_data_unacked(conn_in):
    """§3.7.4 Nagle: a small segment waits until outstanding data is acknowledged."""
    c = conn_in(State.ESTABLISHED)
    c.send(b"a", 0.0)
    assert len(sent(c, 0.0)) == 1
    c.send(b"b", 0.0)
    assert sent(c, 0.0) == []
    c.receive_segment(seg(".", IRS + 1, ISS + 2), 0.01)
    assert sent(c, 0.01) == [("P.", ISS + 2, IRS + 1, b"b")]


def test_established_nodelay_sends_small_segments_at_once(conn_in):
    c = conn_in(State.ESTABLISHED, nodelay=True)
    c.send(b"a", 0.0)
    c.segments_to_send(0.0)
    c.send(b"b", 0.0)
    assert sent(c, 0.0) == [("P.", ISS + 2, IRS + 1, b"b")]


def test_established_send_stops_at_peer_window(conn_in):
    """The sender never has more than SND.WND unacknowledged (§3.8.6)."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=2000), 0.0)
    c.send(b"x" * 5000, 0.0)
    out = sent(c, 0.0)
    assert sum(len(d) for *_, d in out) == MSS  # 540 more would be a silly window (§3.8.6.2.1)


def test_established_three_duplicate_acks_fast_retransmit(conn_in):
    """RFC 5681 §3.2: the third duplicate ACK retransmits the first unacknowledged segment."""
    c = conn_in(State.ESTABLISHED)
    c.send(b"x" * (5 * MSS), 0.0)
    c.segments_to_send(0.0)
    for _ in range(2):
        c.receive_segment(seg(".", IRS + 1, ISS + 1), 0.01)
        assert [s for s in sent(c, 0.01) if s[1] == ISS + 1] == []
    c.receive_segment(seg(".", IRS + 1, ISS + 1), 0.01)
    assert (".", ISS + 1, IRS + 1, b"x" * MSS) in sent(c, 0.01)
    assert c.counters.retrans_segs == 1


def test_established_close_sends_fin_after_data(conn_in):
    """§3.10.4: CLOSE queues a FIN after the data; state FIN-WAIT-1."""
    c = conn_in(State.ESTABLISHED)
    c.send(b"last", 0.0)
    c.close(0.0)
    assert c.state is State.FIN_WAIT_1
    assert sent(c, 0.0) == [("FP.", ISS + 1, IRS + 1, b"last")]


def test_established_abort_sends_rst(conn_in):
    """§3.10.5: ABORT sends <SEQ=SND.NXT><CTL=RST> and deletes the TCB."""
    c = conn_in(State.ESTABLISHED)
    c.abort(0.0)
    assert sent(c, 0.0) == [("R.", ISS + 1, IRS + 1, b"")]
    assert c.state is State.CLOSED


def test_established_challenge_acks_rate_limited_per_second(conn_in):
    """RFC 5961 §7: at most challenge_ack_limit challenge ACKs per second (the per-connection limit of
    answers to unacceptable segments set aside)."""
    c = conn_in(State.ESTABLISHED, challenge_ack_limit=2, invalid_ratelimit=0.0)
    acks = 0
    for _ in range(5):
        c.receive_segment(seg("S", IRS + 1), 0.5)
        acks += len(sent(c, 0.5))
    assert acks == 2
    c.receive_segment(seg("S", IRS + 1), 1.6)
    assert len(sent(c, 1.6)) == 1  # a new second, a new allowance


def test_established_second_syn_within_500ms_draws_no_challenge_ack(conn_in):
    """RFC 5961 §7, as Linux's tcp_send_challenge_ack: a connection answers unacceptable segments at
    most once per tcp_invalid_ratelimit (500 ms), challenge ACKs included, whatever challenge_ack_limit
    allows; the one held back is counted (TCPACKSkippedChallenge)."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg("S", IRS + 1), 1.0)
    assert len(sent(c, 1.0)) == 1
    c.receive_segment(seg("S", IRS + 1), 1.4)
    assert sent(c, 1.4) == []
    assert c.counters.events().challenge_acks_skipped == 1
    c.receive_segment(seg("S", IRS + 1), 1.5)
    assert len(sent(c, 1.5)) == 1


def test_established_challenge_ack_and_out_of_window_ack_share_the_rate_limit(conn_in):
    """Linux __tcp_oow_rate_limited: one last_oow_ack_time per socket serves both answers, so an
    out-of-window pure ACK right after a challenge ACK is not answered (TCPACKSkippedSeq)."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg("S", IRS + 1), 1.0)
    assert len(sent(c, 1.0)) == 1
    c.receive_segment(seg(".", IRS + 1 + 10_000_000, ack=ISS + 1), 1.1)
    assert sent(c, 1.1) == []
    assert c.counters.events().oow_acks_skipped == 1


def test_established_zero_window_data_at_rcv_nxt_ack_still_processed(conn_in):
    """§3.10.7.4 first check: with RCV.WND = 0 the text is not accepted, but a valid ACK is."""
    c = conn_in(State.ESTABLISHED, receive_buffer=1460)
    c.tcb.rcv_adv = IRS + 1 + 1460
    c.send(b"q" * 100, 0.0)
    c.segments_to_send(0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"x" * 1460), 0.0)
    c.handle_timer(0.04)
    (ack,) = c.segments_to_send(0.04)
    assert (ack.ack, ack.window) == (IRS + 1461, 0)
    c.receive_segment(seg("P.", IRS + 1461, ISS + 101, b"more"), 0.1)
    assert c.tcb.snd_una == ISS + 101  # the ACK was taken
    assert c.recv_queue_bytes == 1460  # the text was not
    (ack,) = c.segments_to_send(0.1)
    assert (ack.ack, ack.window) == (IRS + 1461, 0)


def test_established_zero_window_probe_answered_with_ack(conn_in):
    """§3.8.6.1: a probe (SEG.SEQ = RCV.NXT - 1) against a zero window draws an ACK with the window."""
    c = conn_in(State.ESTABLISHED, receive_buffer=1460)
    c.tcb.rcv_adv = IRS + 1 + 1460
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"x" * 1460), 0.0)
    c.segments_to_send(0.0)
    c.receive_segment(seg(".", IRS + 1460, ISS + 1), 1.0)
    (ack,) = c.segments_to_send(1.0)
    assert (ack.ack, ack.window) == (IRS + 1461, 0)


def test_established_bare_fin_at_zero_window_accepted(conn_in):
    """A FIN needs no buffer space: accepted at RCV.NXT even with a zero window (as Linux)."""
    c = conn_in(State.ESTABLISHED, receive_buffer=1460)
    c.tcb.rcv_adv = IRS + 1 + 1460
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"x" * 1460), 0.0)
    c.receive_segment(seg("F.", IRS + 1461, ISS + 1), 0.1)
    assert c.state is State.CLOSE_WAIT


def test_established_window_update_needs_newer_segment(conn_in):
    """§3.10.7.4 fifth check: SND.WND changes only if SND.WL1 < SEG.SEQ or (= and SND.WL2 =< SEG.ACK)."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=3000), 0.0)
    assert c.tcb.snd_wnd == 3000
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=1000), 0.0)  # same SEQ and ACK: still newer-or-equal
    assert c.tcb.snd_wnd == 1000
    c.receive_segment(seg("P.", IRS + 1, ISS + 1, b"abc", win=2000), 0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=9000), 0.0)  # older SEQ than the last update
    assert (c.tcb.snd_wnd, c.tcb.snd_wl1) == (2000, IRS + 1)


def test_established_data_delivered_across_sequence_wrap(conn_in):
    """§3.4: sequence numbers are modulo 2**32; data crossing the wrap is delivered in order."""
    c = conn_in(State.ESTABLISHED, iss=2**32 - 3, irs=2**32 - 2)
    c.receive_segment(seg("P.", 2**32 + 2, 2**32 - 2, b"world"), 0.0)
    c.receive_segment(seg("P.", 2**32 - 1, 2**32 - 2, b"hel"), 0.0)
    assert c.read() == b"helworld"
    assert c.tcb.rcv_nxt == 7
    c.send(b"abcdef", 0.0)
    assert [s.seq for s in c.segments_to_send(0.0)] == [2**32 - 2]
    c.receive_segment(seg(".", 8, 4), 0.1)
    assert c.tcb.snd_una == 4 and c.send_queue_bytes == 0


def test_established_rst_out_of_window_dropped_silently_and_counted(conn_in):
    """RFC 5961 §3.2: a RST outside the window is dropped without an answer; it is counted."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg("R", IRS + 1 + 10_000_000), 0.0)
    assert c.state is State.ESTABLISHED and sent(c, 0.0) == []
    assert c.counters.events().rsts_out_of_window == 1


def test_established_challenge_acks_beyond_the_limit_are_counted(conn_in):
    """RFC 5961 §7: challenge ACKs past the limit are held back, and counted (TCPACKSkippedChallenge)."""
    c = conn_in(State.ESTABLISHED, challenge_ack_limit=1)
    for _ in range(3):
        c.receive_segment(seg("S", IRS + 1), 0.0)
    assert (c.counters.events().challenge_acks, c.counters.events().challenge_acks_skipped) == (1, 2)


def test_established_rst_one_below_rcv_nxt_dropped_silently(conn_in):
    """Linux tcp_reset_check takes a RST at RCV.NXT - 1 only after the peer's FIN (CLOSE-WAIT, CLOSING,
    LAST-ACK); in ESTABLISHED it is outside the window: dropped without an answer (RFC 5961 §3.2)."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg("R", IRS), 0.5)
    assert sent(c, 0.5) == [] and c.state is State.ESTABLISHED
    assert c.counters.events().rsts_out_of_window == 1


def _stamped(c, ts_recent: int = 500):
    """Timestamps in use (as if negotiated), TS.Recent as given."""
    c.tcb.ts_ok = True
    c.receiver.ts_recent = ts_recent
    return c


def _echoes(c, now: float) -> list[int]:
    return [s.options.timestamps[1] for s in c.segments_to_send(now)]


def test_established_syn_challenged_without_taking_its_timestamp(conn_in):
    """RFC 5961 §4.2 and RFC 7323 §4.3 in Linux's order (tcp_validate_incoming challenges the SYN before
    tcp_ack could take its timestamp): the challenge ACK echoes TS.Recent, not the SYN's newer TSval."""
    c = _stamped(conn_in(State.ESTABLISHED))
    c.receive_segment(seg("S", IRS + 1, options=TcpOptions(timestamps=(600, 0))), 0.01)
    assert _echoes(c, 0.01) == [500]
    assert c.receiver.ts_recent == 500


def test_established_old_ack_text_taken_but_not_its_timestamp(conn_in):
    """RFC 7323 §4.3 as Linux's tcp_ack takes it: a segment whose ACK is older than SND.UNA delivers its
    text, but its timestamp is not taken; its ACK echoes TS.Recent as it stood."""
    c = _stamped(conn_in(State.ESTABLISHED))
    c.send(b"x" * 100, 0.0)
    c.segments_to_send(0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 101, options=TcpOptions(timestamps=(510, 0))), 0.01)
    c.receive_segment(seg("P.", IRS + 1, ISS + 51, b"hello", options=TcpOptions(timestamps=(520, 0))), 0.02)
    assert c.read() == b"hello"
    assert _echoes(c, 0.02) == [510]


@pytest.mark.parametrize("header_prediction", [True, False])
def test_established_segments_before_our_ack_echo_the_earliest_timestamp(conn_in, header_prediction):
    """RFC 7323 §4.3: TS.Recent takes a TSval only from a segment at or before Last.ACK.sent, so the ACK of
    two segments echoes the first one's (Linux: only while rcv_nxt == rcv_wup), on either path."""
    c = _stamped(conn_in(State.ESTABLISHED, header_prediction=header_prediction))
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"a" * MSS, options=TcpOptions(timestamps=(510, 0))), 0.01)
    c.receive_segment(seg(".", IRS + 1 + MSS, ISS + 1, b"b" * MSS, options=TcpOptions(timestamps=(520, 0))), 0.01)
    assert _echoes(c, 0.01) == [510]
    assert c.receiver.ts_recent == 510
