"""BBR v1 (draft-cardwell-iccrg-bbr-congestion-control-00) on a simulated fixed-rate path and with
hand-made AckSamples, in virtual time."""

import math
import random

import pytest

from stack.tcp.congestion import AckSample
from stack.tcp.congestion.bbr import (
    DRAIN,
    DRAIN_GAIN,
    HIGH_GAIN,
    PACING_GAIN_CYCLE,
    PROBE_BW,
    PROBE_RTT,
    PROBE_RTT_DURATION,
    STARTUP,
    Bbr,
    WindowedMax,
)
from tests.tcp.bottleneck import Path, Sender

MSS = 1000
RATE = 1.25e6  # 10 Mbit/s
RTT = 0.04


def run_path(until: float, on_step=None, buffer: float = float("inf")) -> Sender:
    s = Sender("bbr", Path(rate=RATE, rtt=RTT, buffer=buffer))
    s.run(until, on_step)
    return s


def sample(now, delivered, rate=None, rtt=None, prior=None, acked=MSS, in_flight=10 * MSS, app_limited=False):
    return AckSample(acked, in_flight, rtt, rtt, delivered, rate, app_limited, now, prior)


# ---------------------------------------------------------------- on a fixed-rate path


def test_bbr_fixed_rate_path_startup_drain_probe_bw_in_order():
    """§4.3: STARTUP until the bandwidth stops growing, DRAIN until the queue is gone, then PROBE_BW."""
    s = run_path(3.0)
    order = s.trace.state_order()
    assert order[:3] == [STARTUP, DRAIN, PROBE_BW]
    startup_end = s.trace.states[1][0]
    assert startup_end < 1.0  # about log2(BDP / initial window) + 3 rounds of 40 ms


def test_bbr_fixed_rate_path_model_matches_the_path():
    """§4.1: BtlBw is the bottleneck rate and RTprop the propagation delay (plus one segment's
    serialization), within 2%."""
    s = run_path(3.0)
    b = s.cc.controller
    assert b.btlbw == pytest.approx(RATE, rel=0.02)
    assert b.rtprop == pytest.approx(RTT + MSS / RATE, rel=0.02)


def test_bbr_probe_bw_cwnd_is_two_bdp_plus_quanta():
    """§4.2.3.2: in PROBE_BW cwnd = 2 * BtlBw * RTprop + 3 send quanta (2 segments at 10 Mbit/s)."""
    s = run_path(3.0)
    b = s.cc.controller
    assert b.state == PROBE_BW
    bdp = b.btlbw * b.rtprop
    assert b.send_quantum == 2 * MSS
    assert b.cwnd == pytest.approx(2 * bdp + 6 * MSS, abs=MSS)


def test_bbr_probe_bw_cycles_through_the_pacing_gains():
    """§4.3.4.3: PROBE_BW moves through 5/4, 3/4 and six phases of 1, each about one RTprop."""
    gains: list[float] = []

    def watch(snd):
        b = snd.cc.controller
        if b.state == PROBE_BW and (not gains or gains[-1] != b.pacing_gain):
            gains.append(b.pacing_gain)

    run_path(3.0, watch)
    assert {5 / 4, 3 / 4, 1.0} <= set(gains)
    i = gains.index(5 / 4)
    assert gains[i + 1] == 3 / 4 and gains[i + 2] == 1.0  # probe, drain, cruise


def test_bbr_probe_bw_pacing_rate_is_gain_times_btlbw():
    """§4.2.1: pacing_rate = pacing_gain * BtlBw once the pipe is full, less Linux's 1% margin
    (bbr_pacing_margin_percent)."""
    s = run_path(3.0)
    b = s.cc.controller
    assert s.cc.pacing_rate == pytest.approx(b.pacing_gain * b.btlbw * 0.99)


def test_bbr_queue_stays_small_in_probe_bw():
    """The point of the model: after DRAIN the standing queue is under one BDP of extra delay
    (Reno or CUBIC would fill any buffer), here with a 1 MB buffer that is never reached."""
    worst = []

    def watch(snd):
        if snd.cc.controller.state == PROBE_BW and snd.now > 2.0:
            worst.append(max(snd.link_free_at - snd.now, 0.0))

    s = run_path(5.0, watch, buffer=1e6)
    assert s.trace.drops == 0
    assert max(worst) < RTT  # queueing delay below one RTprop


def test_bbr_rtprop_ten_seconds_old_enters_probe_rtt():
    """§4.3.5: when RTprop has not been refreshed for 10 s, PROBE_RTT holds cwnd at 4 segments for
    at least 200 ms and a round, then returns to PROBE_BW with the saved cwnd."""
    windows: list[tuple[float, int]] = []

    def watch(snd):
        if snd.cc.controller.state == PROBE_RTT:
            windows.append((snd.now, snd.cc.cwnd))

    s = run_path(12.0, watch)
    order = s.trace.state_order()
    assert PROBE_RTT in order and order[order.index(PROBE_RTT) + 1] == PROBE_BW
    entered = next(t for t, st in s.trace.states if st == PROBE_RTT)
    assert 10.0 < entered < 11.5
    assert all(cwnd == 4 * MSS for _, cwnd in windows)
    left = s.trace.states[s.trace.state_order().index(PROBE_RTT) + 1][0]
    assert left - entered >= PROBE_RTT_DURATION
    assert s.cc.cwnd > 20 * MSS  # restored


def test_bbr_startup_then_loss_recovery_conserves_packets():
    """§4.2.3.4: on loss, cwnd = in flight + one segment for a round; afterwards the saved cwnd
    comes back (here with a buffer small enough for STARTUP to overflow it)."""
    s = run_path(3.0, buffer=20_000)
    assert s.trace.drops > 0
    b = s.cc.controller
    assert b.btlbw == pytest.approx(RATE, rel=0.05)
    assert b.state in (PROBE_BW, PROBE_RTT)


# ---------------------------------------------------------------- hand-made samples


def test_bbr_startup_gains_are_high_gain():
    """§4.3.2.1: STARTUP paces and sizes cwnd at 2/ln 2 = 2.885 times the model."""
    b = Bbr(MSS)
    assert b.state == STARTUP and b.pacing_gain == b.cwnd_gain == pytest.approx(2 / math.log(2))


def test_bbr_initial_pacing_rate_from_first_rtt():
    """§4.2.1: pacing starts at high_gain * initial window / RTT (1 ms until an RTT is known, then
    the first sample, as Linux's has_seen_rtt)."""
    b = Bbr(MSS)
    assert b.pacing_rate == pytest.approx(HIGH_GAIN * 10 * MSS / 0.001 * 0.99)
    b.on_ack(sample(0.1, 1000, rate=10_000, rtt=0.1, prior=0))
    assert b.pacing_rate == pytest.approx(HIGH_GAIN * 10 * MSS / 0.1 * 0.99)


def test_bbr_initial_pacing_rate_from_handshake_rtt():
    """§4.2.1 with the SRTT the handshake measured, as Linux starts BBR when the connection is
    established (tcp_init_transfer, bbr_init_pacing_rate_from_rtt); the first ACK keeps it."""
    b = Bbr(MSS)
    b.on_established(0.1)
    assert b.pacing_rate == pytest.approx(HIGH_GAIN * 10 * MSS / 0.1 * 0.99)
    b.on_ack(sample(0.1, 1000, rate=10_000, rtt=0.05, prior=0))
    assert b.pacing_rate == pytest.approx(HIGH_GAIN * 10 * MSS / 0.1 * 0.99)


def test_bbr_handshake_without_rtt_keeps_nominal_rate():
    """No SRTT from the handshake (a retransmitted SYN): the nominal 1 ms stands until an ACK's sample."""
    b = Bbr(MSS)
    b.on_established(None)
    assert b.pacing_rate == pytest.approx(HIGH_GAIN * 10 * MSS / 0.001 * 0.99) and not b.has_seen_rtt


def test_bbr_gso_packet_is_one_segment_below_1_2_mbit():
    """Linux bbr_min_tso_segs: a GSO packet holds at least two segments, one below 1.2 Mbit/s."""
    b = Bbr(MSS)
    b.pacing_rate = 149_000.0
    assert b.min_tso_segs() == 1
    b.pacing_rate = 151_000.0
    assert b.min_tso_segs() == 2


def test_bbr_full_pipe_after_three_rounds_without_growth():
    """§4.3.2.2: the pipe is full when BtlBw grew less than 25% in three rounds in a row; DRAIN
    follows (§4.3.3) with the inverse gain."""
    b = Bbr(MSS)
    delivered = 0
    for rnd in range(6):
        delivered += 10 * MSS
        b.on_ack(
            sample(0.1 * (rnd + 1), delivered, rate=100_000, rtt=0.1, prior=delivered - 10 * MSS, in_flight=50 * MSS)
        )
        assert b.filled_pipe == (rnd >= 3), rnd
    assert b.state == DRAIN and b.pacing_gain == pytest.approx(DRAIN_GAIN)


def test_bbr_app_limited_sample_below_btlbw_is_ignored():
    """§4.1.1.2: an app-limited sample only counts if it raises BtlBw."""
    b = Bbr(MSS)
    b.on_ack(sample(0.1, 10_000, rate=100_000, rtt=0.1, prior=0))
    b.on_ack(sample(0.2, 20_000, rate=200_000, rtt=0.1, prior=10_000, app_limited=True))
    assert b.btlbw == 200_000
    b.on_ack(sample(0.3, 30_000, rate=50_000, rtt=0.1, prior=20_000, app_limited=True))
    assert b.btlbw == 200_000


def test_bbr_windowed_max_forgets_after_ten_rounds():
    """§4.1.1: BtlBw is the maximum of the last 10 round trips."""
    f = WindowedMax(10)
    f.update(100.0, 1)
    for r in range(2, 11):
        f.update(50.0, r)
    assert f.best == 100.0
    f.update(50.0, 11)
    assert f.best == 50.0


def test_bbr_congestion_event_conserves_then_restores():
    """§4.2.3.4: entering recovery sets cwnd to what is in flight plus one segment; leaving it
    restores the cwnd saved on entry."""
    b = Bbr(MSS)
    b.cwnd = 40 * MSS
    b.on_congestion_event(30 * MSS, 1.0)
    assert b.cwnd == 31 * MSS and b.packet_conservation
    b.on_recovery_exit()
    assert b.cwnd == 40 * MSS and not b.packet_conservation


def test_bbr_rto_sets_loss_window_keeps_model():
    """§4.2.3.4: a timeout sets cwnd to one segment; BtlBw and RTprop stay."""
    b = Bbr(MSS)
    b.on_ack(sample(0.1, 10_000, rate=100_000, rtt=0.1, prior=0))
    b.on_rto(10 * MSS, 1.0)
    assert b.cwnd == MSS and b.btlbw == 100_000 and b.rtprop == 0.1


def test_bbr_probe_bw_starts_in_random_phase_never_the_drain_phase():
    """§4.3.4.3: PROBE_BW begins in a random phase other than 3/4."""
    phases = set()
    for seed in range(40):
        b = Bbr(MSS, rng=random.Random(seed))
        delivered, now = 0, 0.0
        while b.state != PROBE_BW:  # a steady 250 kB/s: STARTUP finds the pipe full, DRAIN empties it
            now += RTT
            delivered += 10 * MSS
            b.on_ack(sample(now, delivered, rate=250_000.0, rtt=RTT, prior=delivered - 10 * MSS))
            assert now < 2.0, b.state
        phases.add(b.pacing_gain)
    assert 3 / 4 not in phases and phases <= set(PACING_GAIN_CYCLE)
    assert 5 / 4 in phases and 1.0 in phases


def test_bbr_restart_from_idle_paces_at_btlbw():
    """§4.3.4.4: sending after an idle period in PROBE_BW paces at 1.0 * BtlBw, and PROBE_RTT is not
    entered because of that ACK."""
    s = run_path(3.0)
    b = s.cc.controller
    assert b.state == PROBE_BW
    b.on_sent(MSS, 0, s.now + 1.0)
    assert b.idle_restart and s.cc.controller.pacing_rate == pytest.approx(b.btlbw * 0.99)
