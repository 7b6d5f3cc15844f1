"""Fast recovery with PRR, RTO recovery with F-RTO, and undo (RFC 6937, RFC 5682, RFC 3708)."""

import pytest

from stack.tcp.state import State
from stack.wire.segment import TcpOptions
from tests.tcp.conftest import IRS, ISS, seg, sent

MSS = 1460


def _sack(*blocks: tuple[int, int]) -> TcpOptions:
    return TcpOptions(sack_blocks=tuple((ISS + 1 + a * MSS, ISS + 1 + b * MSS) for a, b in blocks))


def _flight(conn_in, segments: int, congestion: str = "reno", **config):
    c = conn_in(State.ESTABLISHED, congestion=congestion, **config)
    c.tcb.sack_ok = True
    c.send(b"d" * (segments * MSS), 0.0)
    assert len(sent(c, 0.0)) == min(segments, 10)
    return c


def _data(out) -> list[int]:
    return [(s - ISS - 1) // MSS for _, s, _, d in out if d]


def test_fast_recovery_prr_sends_one_segment_per_two_delivered(conn_in):
    """RFC 6937 §3.1: with Reno's ssthresh of half the flight, PRR sends about one segment for every
    two the receiver reports, instead of a burst or a silence."""
    c = _flight(conn_in, 20)  # IW10 out: segments 0-9; 10-19 wait
    out = []
    for i in range(2, 10):  # segment 0 lost; 1..9 arrive
        c.receive_segment(seg(".", IRS + 1, ISS + 1, options=_sack((1, i))), 0.01)
        if c.recovery.in_fast_recovery:  # from the third SACK; the first two send new data (RFC 3042)
            out += sent(c, 0.01)
        else:
            sent(c, 0.01)
    assert _data(out)[0] == 0  # the fast retransmit first
    assert len(out) == 3  # 6 delivered in recovery: about ssthresh/RecoverFS (6/10) of them


def test_fast_recovery_full_ack_sets_cwnd_to_ssthresh_then_grows_it(conn_in):
    """RFC 6582 §3.2 step 3 / RFC 6937: a full ACK ends recovery with cwnd = ssthresh; then, as Linux's
    tcp_cong_control after tcp_fastretrans_alert, the same ACK grows it as any ACK in congestion
    avoidance: Reno counts the 7 segments it newly delivered, more than cwnd's 5, so one segment more."""
    c = _flight(conn_in, 10)
    for i in range(2, 5):
        c.receive_segment(seg(".", IRS + 1, ISS + 1, options=_sack((1, i))), 0.01)
    sent(c, 0.01)
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 10 * MSS), 0.02)
    assert not c.recovery.in_recovery
    assert (c.cc.ssthresh, c.cc.cwnd) == (5 * MSS, 6 * MSS)


def test_fast_recovery_undone_when_every_retransmission_is_dsacked(conn_in):
    """RFC 3708 / Linux: the retransmission comes back as a D-SACK, so the loss was reordering: the
    congestion window and ssthresh return to what they were."""
    c = _flight(conn_in, 10)
    cwnd, ssthresh = c.cc.cwnd, c.cc.ssthresh
    for i in range(2, 5):
        c.receive_segment(seg(".", IRS + 1, ISS + 1, options=_sack((1, i))), 0.01)
    assert _data(sent(c, 0.01))[0] == 0
    assert c.cc.cwnd < cwnd
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 4 * MSS), 0.02)  # the original arrived after all
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 4 * MSS, options=_sack((0, 1))), 0.03)  # D-SACK
    assert (c.cc.cwnd, c.cc.ssthresh) == (cwnd, ssthresh)
    assert c.counters.events().dsack_undos == 1 and c.counters.events().dsacks_received == 1
    assert not c.recovery.in_recovery


def test_established_dsack_without_a_retransmission_is_ignored(conn_in):
    """RFC 2883 §5 / Linux tcp_dsack_seen: a D-SACK for data we never resent cannot be true (a receiver
    cannot hold a second copy we never sent): it grows no window and undoes nothing."""
    c = _flight(conn_in, 10, congestion="cubic")
    cwnd = c.cc.cwnd
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + MSS, options=_sack((0, 1))), 0.01)
    assert c.counters.events().dsacks_received == 1 and c.counters.retrans_segs == 0
    assert c.cc.cwnd == cwnd + MSS  # slow start by the one segment acknowledged, not two


def test_established_dsack_of_a_retransmission_counts_as_delivered(conn_in):
    """Linux tcp_dsack_seen (sack_delivered): the needless copy of a resent segment was delivered too,
    so the ACK that reports it grows the window by it (CUBIC's slow start, as Linux's, by every segment
    delivered)."""
    c = _flight(conn_in, 10, congestion="cubic")
    probe_at = c.next_deadline()
    c.handle_timer(probe_at)
    assert _data(sent(c, probe_at)) == [9]  # the loss probe resends the last segment
    cwnd = c.cc.cwnd
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 10 * MSS, options=_sack((9, 10))), probe_at + 0.01)
    assert c.cc.cwnd == cwnd + 11 * MSS  # ten segments acknowledged, one reported twice


def test_rto_recovery_frto_duplicate_ack_means_real_loss(conn_in):
    """RFC 5682 §2.1 step 3a: a duplicate ACK after the two new segments: resend as usual."""
    c = _flight(conn_in, 14)
    probe_at = c.next_deadline()
    c.handle_timer(probe_at)
    assert _data(sent(c, probe_at)) == [10]  # the tail loss probe sends new data
    now = c.timers.deadline("retransmit")
    c.handle_timer(now)
    assert _data(sent(c, now)) == [0]
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + MSS), now + 0.01)
    assert _data(sent(c, now + 0.01)) == [11, 12]  # step 2b: new data, not retransmissions
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + MSS, options=_sack((11, 12))), now + 0.02)
    assert _data(sent(c, now + 0.02)) == [1]  # step 3a: go-back-N from SND.UNA
    assert c.counters.events().spurious_rtos == 0


def test_rto_recovery_frto_second_advancing_ack_undoes_the_timeout(conn_in):
    """RFC 5682 §2.1 step 3b: original segments keep arriving, so the timeout was spurious."""
    c = _flight(conn_in, 14)
    cwnd = c.cc.cwnd
    probe_at = c.next_deadline()
    c.handle_timer(probe_at)
    sent(c, probe_at)
    now = c.timers.deadline("retransmit")
    c.handle_timer(now)
    sent(c, now)
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + MSS), now + 0.01)
    sent(c, now + 0.01)
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 5 * MSS), now + 0.02)
    assert c.counters.events().spurious_rtos == 1
    assert c.cc.cwnd >= cwnd
    assert 1 not in _data(sent(c, now + 0.02))


def test_fast_recovery_entered_by_the_rack_timer_sends_the_lost_segment_at_once(conn_in):
    """RFC 8985 §6.3: when the reordering timer marks a segment lost, it is retransmitted right away, even
    though no ACK arrives to clock PRR (Linux tcp_rack_reo_timeout); else the RTO would be its only hope."""
    c = _flight(conn_in, 1)
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + MSS), 0.02)  # an RTT sample: SRTT 20 ms
    c.send(b"d" * (10 * MSS), 0.02)
    sent(c, 0.02)
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + MSS, options=_sack((2, 3))), 0.03)  # one SACKed: wait
    assert _data(sent(c, 0.03)) == []
    reorder_at = c.timers.deadline("rack_reorder")
    c.handle_timer(reorder_at)
    assert c.recovery.in_fast_recovery
    assert 1 in _data(sent(c, reorder_at))


def test_fast_recovery_prr_leaves_the_controllers_window_alone(conn_in):
    """RFC 6937 §3 paces what is sent during recovery; cwnd and ssthresh stay the controller's own: CUBIC's
    window after its congestion event (RFC 9438 §4.6) is not replaced by PRR's on every ACK."""
    c = conn_in(State.ESTABLISHED, congestion="cubic")
    c.tcb.sack_ok = True
    c.send(b"d" * (20 * MSS), 0.0)
    sent(c, 0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, options=_sack((1, 2))), 0.01)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, options=_sack((1, 3))), 0.01)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, options=_sack((1, 4))), 0.01)
    assert c.recovery.in_fast_recovery
    cubic = (c.cc.cwnd, c.cc.ssthresh)
    for i in range(5, 10):
        c.receive_segment(seg(".", IRS + 1, ISS + 1, options=_sack((1, i))), 0.01)
        sent(c, 0.01)
        assert (c.cc.cwnd, c.cc.ssthresh) == cubic
        assert c.recovery.send_window is not None  # PRR's, in place of cwnd


def test_fast_recovery_bbr_sets_its_own_window_without_prr(conn_in):
    """BBR conserves packets in recovery itself (draft-cardwell-iccrg-bbr-congestion-control §4.2.3.4), so
    PRR does not pace over it: Linux runs PRR only for controllers without their own cong_control."""
    c = conn_in(State.ESTABLISHED, congestion="bbr")
    c.tcb.sack_ok = True
    c.send(b"d" * (20 * MSS), 0.0)
    out, now = sent(c, 0.0), 0.0
    while len(out) < 10:  # BBR paces its initial window
        now = c.timers.deadline("pacing")
        c.handle_timer(now)
        out += sent(c, now)
    for i in range(2, 10):
        c.receive_segment(seg(".", IRS + 1, ISS + 1, options=_sack((1, i))), now + 0.01)
        sent(c, now + 0.01)
        if c.recovery.in_fast_recovery:
            assert c.recovery.send_window is None
    assert c.recovery.in_fast_recovery


def test_established_cumulative_ack_of_several_segments_is_not_reordering(conn_in):
    """Linux tcp_check_sack_reordering: reordering is data delivered below the highest SACK seen before
    the ACK; with nothing SACKed that is SND.UNA, so an ACK of several segments in order reveals none."""
    c = _flight(conn_in, 10)
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 6 * MSS), 0.05)
    assert (c.recovery.reordering, c.recovery.reord_seen, c.recovery.rack.reordering_seen) == (3, 0, False)


def test_established_sack_above_a_hole_with_nothing_reordered_gives_no_reordering_window(conn_in):
    """RFC 8985 §6.2 step 4 as Linux (tcp_rack_reo_wnd): with DupThresh segments SACKed and no reordering
    ever seen, the hole is lost at once, though the SACK blocks came before the cumulative part."""
    c = _flight(conn_in, 10)
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 2 * MSS, options=_sack((3, 4), (5, 9))), 0.05)
    assert c.recovery.in_fast_recovery
    assert _data(sent(c, 0.05))[0] == 2


def test_established_sack_only_ack_is_timed_by_what_it_sacks(conn_in):
    """RFC 6298 §3 allows a sample per ACK; as Linux (tcp_sacktag_one, tcp_ack_update_rtt), an ACK that
    SACKs new data without moving SND.UNA is timed from the earliest segment it newly SACKs."""
    c = _flight(conn_in, 3)
    assert c.rto.srtt == 0.0  # the handshake's sample
    c.receive_segment(seg(".", IRS + 1, ISS + 1, options=_sack((1, 2))), 0.04)
    assert c.rto.srtt == pytest.approx(0.125 * 0.04)


def test_established_without_sack_more_duplicate_acks_than_segments_beyond_the_hole_start_no_recovery(conn_in):
    """Linux tcp_check_reno_reordering: of three segments out, at most two can have reached the receiver
    beyond a lost first one, so a third duplicate ACK was duplicated by the network: the count stays at
    two, the reordering degree becomes the flight, and no fast retransmit goes (RFC 5681 §3.2 counts
    three for a loss)."""
    c = conn_in(State.ESTABLISHED, congestion="reno")
    c.send(b"d" * (3 * MSS), 0.0)
    assert len(sent(c, 0.0)) == 3
    for _ in range(3):
        c.receive_segment(seg(".", IRS + 1, ISS + 1), 0.01)
    assert not c.recovery.in_recovery and sent(c, 0.01) == []
    assert (c.recovery.reno_sacked, c.recovery.reordering, c.recovery.reord_seen) == (2, 3, 1)
