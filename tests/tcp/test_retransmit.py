"""Retransmission timer and RTO estimation (RFC 6298), go-back-N after a timeout (RFC 5681 §3.1)."""

import math

import pytest

from stack.tcp.rto import RtoEstimator, retries_time
from stack.tcp.state import State
from tests.tcp.conftest import IRS, ISS, events, seg, sent


def test_rto_first_sample_sets_srtt_and_rttvar():
    """RFC 6298 (2.2): SRTT = R, RTTVAR = R/2, RTO = SRTT + max(4*RTTVAR, min_rto) (Linux's floor)."""
    r = RtoEstimator(1.0, 0.2, 120.0)
    r.on_sample(0.1, 0, 1000)
    assert (r.srtt, r.rttvar) == (0.1, 0.05)
    assert r.rto == pytest.approx(0.3)


def test_rto_later_samples_smooth():
    """RFC 6298 (2.3): RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R'|, SRTT = 7/8 SRTT + 1/8 R'."""
    r = RtoEstimator(1.0, 0.2, 120.0)
    r.on_sample(0.1, 0, 1000)
    r.on_sample(0.3, 500, 1000)
    assert r.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.2)
    assert r.srtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.3)
    assert r.rto == pytest.approx(r.srtt + 4 * r.rttvar)


def test_rto_rttvar_falls_slowly_when_the_rtt_falls():
    """Linux (tcp_rtt_estimator): an RTT below SRTT by more than RTTVAR moves RTTVAR by a 32nd of the
    difference, not a quarter, so that a faster path does not first raise the RTO."""
    r = RtoEstimator(1.0, 0.2, 120.0)
    r.on_sample(0.3, 0, 1000)
    r.on_sample(0.1, 500, 1000)
    assert r.rttvar == pytest.approx(0.15 + (0.2 - 0.15) / 32)


def test_rto_variance_term_holds_its_round_trip_peak_then_decays_by_a_quarter():
    """Linux (rttvar_us, mdev_max_us): the RTO keeps the largest 4*RTTVAR until a round trip of data has
    passed without a larger one; each round that ends (SND.UNA past what SND.NXT was when it began) moves
    it a quarter of the way down to that round's largest, at least min_rto."""
    r = RtoEstimator(1.0, 0.2, 120.0)
    r.on_sample(0.1, 0, 1000)
    r.on_sample(0.5, 500, 1000)  # RTTVAR 0.1375: the variance term 0.55
    peak = 4 * r.rttvar
    r.on_sample(r.srtt, 1001, 2000)  # the round of the peak ends: nothing to decay to yet
    assert r.rto == pytest.approx(r.srtt + peak)
    r.on_sample(r.srtt, 1500, 2000)  # no error: RTTVAR falls, and this round's largest is now
    largest = max(4 * r.rttvar, 0.2)
    r.on_sample(r.srtt, 1800, 2000)
    assert r.rto == pytest.approx(r.srtt + peak)  # held within the round
    r.on_sample(r.srtt, 2001, 3000)
    assert r.rto == pytest.approx(r.srtt + peak - (peak - largest) / 4)


def test_rto_variance_term_at_least_min_rto_and_rto_never_above_max():
    """As Linux (tcp_set_rto): RTO = SRTT + max(4*RTTVAR, min_rto); RFC 6298 (2.5) caps it."""
    r = RtoEstimator(1.0, 0.2, 5.0)
    r.on_sample(0.001, 0, 1000)
    assert r.rto == pytest.approx(0.201)
    for _ in range(10):
        r.on_timeout()
    assert r.rto == 5.0


def test_established_rto_retransmits_first_segment_and_backs_off(conn_in):
    """RFC 6298 (5.4)-(5.6): retransmit the earliest unacknowledged segment, double the RTO."""
    c = conn_in(State.ESTABLISHED)
    c.send(b"hello", 0.0)
    assert sent(c, 0.0) == [("P.", ISS + 1, IRS + 1, b"hello")]
    rto = c.rto.rto  # 0.2 s: the handshake's RTT sample was 0, so the minimum applies
    assert c.next_deadline() == rto == 0.2
    c.handle_timer(rto - 0.001)
    assert sent(c, rto - 0.001) == []
    c.handle_timer(rto)
    assert sent(c, rto) == [("P.", ISS + 1, IRS + 1, b"hello")]
    assert c.next_deadline() == pytest.approx(rto + 2 * rto)
    assert c.cc.cwnd == c.tcb.snd_mss  # loss window (RFC 5681 §3.1)


def test_established_ack_after_retransmit_is_not_timed(conn_in):
    """Karn's rule (RFC 6298 §3): no RTT sample from a retransmitted segment."""
    c = conn_in(State.ESTABLISHED)
    srtt = c.rto.srtt
    c.send(b"hello", 0.0)
    c.segments_to_send(0.0)
    c.handle_timer(c.next_deadline())
    c.segments_to_send(1.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 6), 1.5)
    assert c.rto.srtt == srtt


def test_established_ack_restarts_timer_and_clears_backoff(conn_in):
    """RFC 6298 (5.3): an ACK of new data restarts the timer; (5.7)-style backoff reset."""
    c = conn_in(State.ESTABLISHED, loss_probes=False)
    c.send(b"a" * 3000, 0.0)
    c.segments_to_send(0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1461), 0.05)
    assert c.next_deadline() == pytest.approx(0.05 + c.rto.rto)


def test_established_all_acked_stops_retransmit_timer(conn_in):
    """RFC 6298 (5.2)."""
    c = conn_in(State.ESTABLISHED)
    c.send(b"abc", 0.0)
    c.segments_to_send(0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 4), 0.05)
    assert c.next_deadline() is None


def test_established_retries_exhausted_times_out_with_rst(conn_in):
    """After max_retries the connection is aborted: ETIMEDOUT to the application."""
    c = conn_in(State.ESTABLISHED, max_retries=3)
    c.send(b"lost", 0.0)
    c.segments_to_send(0.0)
    while c.state is State.ESTABLISHED:
        now = c.next_deadline()
        c.handle_timer(now)
        c.segments_to_send(now)
    assert c.state is State.CLOSED
    assert events(c) == ["TimedOut", "Closed"]


def test_established_rto_goes_back_n(conn_in):
    """After an RTO everything from SND.UNA is sent again as the window reopens."""
    c = conn_in(State.ESTABLISHED, loss_probes=False)
    c.send(b"z" * 4380, 0.0)
    assert len(c.segments_to_send(0.0)) == 3
    c.handle_timer(c.next_deadline())
    assert [s[1] for s in sent(c, 1.0)] == [ISS + 1]  # cwnd = 1 MSS
    c.receive_segment(seg(".", IRS + 1, ISS + 1461), 1.01)
    assert [s[1] for s in sent(c, 1.01)] == [ISS + 1461, ISS + 2921]


def test_established_tail_loss_probe_resends_last_segment_before_the_rto(conn_in):
    """RFC 8985 §7: after 2*SRTT without an ACK, probe with the last segment instead of waiting for the RTO
    (Linux adds 2 ms with several segments in flight and counts in whole milliseconds, tcp_schedule_loss_probe)."""
    c = conn_in(State.ESTABLISHED)
    c.tcb.sack_ok = True
    c.rto.on_sample(0.05, c.tcb.snd_una, c.tcb.snd_nxt)
    c.send(b"q" * 4380, 0.0)
    c.segments_to_send(0.0)
    probe_at = c.next_deadline()
    assert probe_at == pytest.approx(math.ceil((2 * c.rto.srtt + 0.002) * 1000) / 1000)
    assert probe_at < c.timers.deadline("retransmit")
    c.handle_timer(probe_at)
    assert sent(c, probe_at) == [("P.", ISS + 2921, IRS + 1, b"q" * 1460)]
    assert c.counters.events().loss_probes == 1
    assert c.next_deadline() == c.timers.deadline("retransmit")  # one probe, then the RTO


def test_established_loss_probe_the_window_holds_back_is_not_sent_nor_counted(conn_in):
    """RFC 8985 §7.3 with §3.8.6 of RFC 9293: a probe resends the last segment only if the peer's window
    takes it; one the window holds back is no probe (Linux counts TCPLossProbes only for a probe sent), and
    the RTO comes as if none had been due."""
    c = conn_in(State.ESTABLISHED)
    c.tcb.sack_ok = True
    c.rto.on_sample(0.05, c.tcb.snd_una, c.tcb.snd_nxt)
    c.send(b"q" * 4380, 0.0)
    c.segments_to_send(0.0)
    c.tcb.snd_wnd = 2 * 1460  # the peer shrank its window below the last segment
    probe_at = c.next_deadline()
    c.handle_timer(probe_at)
    assert sent(c, probe_at) == [] and c.counters.events().loss_probes == 0
    assert c.next_deadline() == c.timers.deadline("retransmit")


def test_established_two_segments_sent_as_one_run_get_the_short_probe_timeout(conn_in):
    """RFC 8985 §7.2 as Linux: the delayed-ACK allowance (rto_min) joins the probe timeout only with one
    segment in flight; two segments sent as one TSO run are two, so the probe comes at 2*SRTT + 2 ms."""
    c = conn_in(State.ESTABLISHED, tso_max_bytes=64 * 1460)
    c.tcb.sack_ok = True
    c.rto.on_sample(0.05, c.tcb.snd_una, c.tcb.snd_nxt)
    c.send(b"q" * 2920, 0.0)
    assert len(c.segments_to_send(0.0)) == 1  # one super-segment
    assert c.timers.deadline("loss_probe") == pytest.approx(math.ceil((2 * c.rto.srtt + 0.002) * 1000) / 1000)


def test_established_sack_after_probe_enters_recovery_and_fills_the_hole(conn_in):
    """The probe's ACK SACKs the tail: the hole at SND.UNA is retransmitted at once (RFC 6675)."""
    from stack.wire.segment import TcpOptions

    c = conn_in(State.ESTABLISHED)
    c.tcb.sack_ok = True
    c.rto.on_sample(0.05, c.tcb.snd_una, c.tcb.snd_nxt)
    c.send(b"q" * 4380, 0.0)
    c.segments_to_send(0.0)
    c.handle_timer(c.next_deadline())
    c.segments_to_send(0.1)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, options=TcpOptions(sack_blocks=((ISS + 2921, ISS + 4381),))), 0.11)
    out = sent(c, 0.11)
    assert (".", ISS + 1, IRS + 1, b"q" * 1460) in out
    assert c.counters.events().sack_recoveries == 1


def test_established_zero_window_peer_that_falls_silent_is_timed_out(conn_in):
    """§3.8.6.1 spares a zero-window receiver only while it answers: a silent one still meets
    ETIMEDOUT (Linux times it out after MAX_RTO without an answer)."""
    c = conn_in(State.ESTABLISHED)
    c.send(b"x" * 5000, 0.0)
    sent(c, 0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=0), 0.01)  # window closed, nothing acknowledged
    now = 0.01
    while (deadline := c.next_deadline()) is not None and now < 7200:
        now = deadline
        c.handle_timer(now)
        sent(c, now)
    assert c.state is State.CLOSED and "TimedOut" in events(c)


def test_retries_time_doubles_up_to_the_largest_rto_then_adds_it():
    """Linux retransmits_timed_out: n doubling timeouts from the base take (2^(n+1) - 1) * base until the
    timeout reaches the maximum (ilog2(120 / 1) = 6 doublings), then each adds the maximum."""
    assert retries_time(1, 1.0, 120.0) == 3.0
    assert retries_time(6, 1.0, 120.0) == 127.0
    assert retries_time(8, 1.0, 120.0) == 127.0 + 2 * 120.0


def test_established_rto_resend_takes_in_the_short_segments_after_it(conn_in):
    """After a timeout cwnd is one packet (RFC 5681 §3.1); Linux resends the first short segment with the
    ones sent after it joined to it, up to an MSS, as one (tcp_retrans_try_collapse)."""
    c = conn_in(State.ESTABLISHED, nodelay=True, loss_probes=False)
    for chunk in (b"a" * 100, b"b" * 100, b"c" * 100, b"d" * 1400):
        c.send(chunk, 0.0)
        assert [len(payload) for *_, payload in sent(c, 0.0)] == [len(chunk)]
    c.handle_timer(c.next_deadline())
    assert sent(c, c.rto.rto) == [("P.", ISS + 1, IRS + 1, b"a" * 100 + b"b" * 100 + b"c" * 100)]
    assert c.recovery.board.pipe_packets == 1 and c.counters.retrans_segs == 1


def test_established_rto_resend_takes_in_the_fin_after_it(conn_in):
    """A FIN sent alone after the data joins the data's resend (Linux ORs the flags of the skbs it joins)."""
    c = conn_in(State.ESTABLISHED, loss_probes=False)
    c.send(b"hello", 0.0)
    assert sent(c, 0.0) == [("P.", ISS + 1, IRS + 1, b"hello")]
    c.close(0.0)
    assert sent(c, 0.0) == [("F.", ISS + 6, IRS + 1, b"")]
    c.handle_timer(c.next_deadline())
    assert sent(c, c.rto.rto) == [("FP.", ISS + 1, IRS + 1, b"hello")]
