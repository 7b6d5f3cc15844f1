"""Pacing (stack/tcp/pacing.py): an fq qdisc's rate, Linux's departure times, packets as its GSO packets."""

import pytest

from stack.tcp.pacing import fq_rate, next_departure
from stack.tcp.state import State
from tests.tcp.conftest import IRS, ISS, seg, sent


def test_slow_start_rate_is_ss_ratio_of_cwnd_per_srtt():
    """Linux tcp_update_pacing_rate: below half of ssthresh, tcp_pacing_ss_ratio (200%)."""
    assert fq_rate(20000, 1 << 30, 0, 0.2, 200, 120) == pytest.approx(200000)


def test_avoidance_rate_is_ca_ratio_and_counts_the_larger_of_cwnd_and_flight():
    assert fq_rate(20000, 30000, 0, 0.1, 200, 120) == pytest.approx(240000)
    assert fq_rate(20000, 30000, 25000, 0.1, 200, 120) == pytest.approx(300000)


def test_no_rtt_sample_no_pacing():
    assert fq_rate(20000, 30000, 0, None, 200, 120) is None


def test_departures_are_spaced_by_length_over_rate():
    assert next_departure(1.0, 1.0, 1000, 200000) == pytest.approx(1.005)


def test_idle_flow_gets_at_most_half_a_gap_of_credit():
    """Linux tcp_update_skb_after_send: time lost idle shortens the next gap by up to half of it."""
    assert next_departure(1.0, 1.001, 1000, 200000) == pytest.approx(1.005)
    assert next_departure(1.0, 3.0, 1000, 200000) == pytest.approx(3.0025)


def test_established_paced_restart_is_not_window_limited(conn_in):
    """Linux tcp_write_xmit validates cwnd (tcp_cwnd_validate) after what it sent before the pacing wait:
    a new window of data that pacing keeps from filling the congestion window does not count as limited
    by it, so the window does not grow on its ACKs (tcp_is_cwnd_limited)."""
    c = conn_in(State.ESTABLISHED, fq_pacing=True, congestion="cubic")
    mss = c.tcb.snd_mss
    c.send(b"x" * (40 * mss), 0.0)
    assert len(sent(c, 0.0)) == 10  # the first ten segments leave unpaced, filling the window
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 10 * mss, win=60000), 0.1)
    out = sent(c, 0.1)
    assert 0 < len(out) < 10  # pacing holds the rest
    assert not c.cc._window_limited


def test_timer_late_within_slack_is_made_up_in_full():
    """An event loop's timer fires up to its resolution late (Linux has hrtimers): a packet sent that late
    does not push the next one back."""
    assert next_departure(1.0, 1.004, 1000, 200000, slack=0.004) == pytest.approx(1.005)
    assert next_departure(1.0, 1.004, 1000, 200000) == pytest.approx(1.0065)


def test_established_paced_flow_sends_whole_gso_packets(conn_in):
    """Linux paces packets, not segments (tcp_write_xmit, tcp_update_skb_after_send): a packet holds
    about a millisecond at the pacing rate (tcp_tso_autosize), the last segment with PSH, and the pacing
    timer holds the next. Here SRTT is 12.5 ms (the handshake at time 0 measured 0, then one 100 ms
    sample) and cwnd 20 segments: 2 * 29200 / 0.0125 = 4.67 MB/s, 4562 bytes a millisecond: three."""
    c = conn_in(State.ESTABLISHED, fq_pacing=True, congestion="cubic")
    mss = c.tcb.snd_mss
    c.send(b"x" * (40 * mss), 0.0)
    assert len(sent(c, 0.0)) == 10
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 10 * mss, win=60000), 0.1)
    assert c.pacing_rate == pytest.approx(4_672_000)
    assert [s[0] for s in sent(c, 0.1)] == [".", ".", "P."]
    assert c.timers.deadline("pacing") > 0.1


def test_established_paced_packet_leaves_as_one_super_segment(conn_in):
    """With TSO a paced packet of full segments leaves as one super-segment the device cuts (Linux hands
    its GSO packet to the device whole): the same three segments as above, in one Segment."""
    c = conn_in(State.ESTABLISHED, fq_pacing=True, congestion="cubic", tso_max_bytes=65536)
    mss = c.tcb.snd_mss
    c.send(b"x" * (40 * mss), 0.0)
    c.segments_to_send(0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 10 * mss, win=60000), 0.1)
    (packet,) = c.segments_to_send(0.1)
    assert packet.gso == mss and len(packet.payload) == 3 * mss
    assert c.timers.deadline("pacing") > 0.1
