"""CUBIC (RFC 9438) and HyStart++ (RFC 9406), driven with AckSamples in virtual time."""

import math

import pytest

from stack.tcp.config import TcpConfig
from stack.tcp.congestion import AckSample
from stack.tcp.congestion.base import INFINITE_SSTHRESH
from stack.tcp.congestion.cubic import BETA, CSS, CSS_ROUNDS, OFF, SLOW_START, C, Cubic
from stack.tcp.state import State
from tests.tcp.bottleneck import Path, Sender
from tests.tcp.conftest import IRS, ISS, seg

MSS = 1000


def ack(bytes_acked=MSS, in_flight=None, now=0.0, rtt=None, delivered=0, prior=None, cwnd=None, limited=True):
    """An ACK from a window-limited flight (in_flight = cwnd unless given; `limited` False: the window was
    not what limited sending, as the connection's cwnd validation decides)."""
    flight = in_flight if in_flight is not None else cwnd
    return AckSample(bytes_acked, flight, rtt, rtt, delivered, None, False, now, prior, limited)


def after_loss(w_max_segments: int, rtt: float = 0.1) -> Cubic:
    """A CUBIC that had cwnd = W_max, lost a segment and finished fast recovery."""
    c = Cubic(MSS)
    c.cwnd = w_max_segments * MSS
    c.on_ack(ack(0, c.cwnd, rtt=rtt))  # an RTT sample for the srtt CUBIC keeps
    c.on_congestion_event(c.cwnd, 0.0)
    c.on_recovery_exit()
    return c


def run_avoidance(c: Cubic, start: float, until: float, rtt: float) -> list[tuple[float, float]]:
    """One ACK per segment, a window per RTT, evenly spread; returns (t since start, cwnd/MSS)."""
    out = []
    now = start
    while now < until:
        n = max(c.cwnd // MSS, 1)
        for i in range(n):
            t = now + rtt * i / n
            c.on_ack(ack(MSS, c.cwnd, now=t, rtt=rtt))
        now += rtt
        out.append((now - start, c.cwnd / MSS))
    return out


# ---------------------------------------------------------------- slow start


def test_cubic_is_the_default_like_linux(conn_in):
    """Linux's default is CUBIC; so is ours (TcpConfig.congestion)."""
    assert TcpConfig().congestion == "cubic"
    c = conn_in(State.ESTABLISHED, congestion="cubic")
    assert isinstance(c.cc.controller, Cubic)


def test_cubic_slow_start_ack_grows_cwnd_by_bytes_acked():
    """RFC 9406 §4.2: in slow start cwnd += N for an ACK of N bytes."""
    c = Cubic(MSS)
    c.on_ack(ack(2 * MSS, cwnd=c.cwnd))
    assert c.cwnd == 12 * MSS


def test_cubic_slow_start_stretch_ack_grows_cwnd_by_all_it_acknowledges():
    """Linux's tcp_slow_start grows cwnd by every segment an ACK delivers: not RFC 9406 §4.2's cap of
    L = 8 segments per ACK for a sender that does not pace."""
    c = Cubic(MSS)
    c.cwnd = 40 * MSS
    c.on_ack(ack(20 * MSS, cwnd=c.cwnd))
    assert c.cwnd == 60 * MSS


def test_cubic_slow_start_window_not_in_use_does_not_grow():
    """RFC 9438 §4.6 (cwnd validation, RFC 7661): cwnd does not grow when the window was not what limited
    sending (Linux's tcp_is_cwnd_limited)."""
    c = Cubic(MSS)
    c.on_ack(ack(MSS, in_flight=4 * MSS, limited=False))
    assert c.cwnd == 10 * MSS


def test_cubic_slow_start_reaches_ssthresh_then_avoidance():
    """RFC 5681 §3.1 as RFC 9438 §4.10 keeps it: slow start while cwnd < ssthresh."""
    c = Cubic(MSS)
    c.ssthresh = 11 * MSS
    c.on_ack(ack(MSS, cwnd=c.cwnd))
    assert c.cwnd == 11 * MSS
    c.on_ack(ack(MSS, cwnd=c.cwnd, now=0.1, rtt=0.1))
    assert c.epoch == 0.1  # the first ACK at cwnd >= ssthresh starts a congestion avoidance stage


# ---------------------------------------------------------------- loss and timeout


def test_cubic_congestion_event_multiplies_by_beta():
    """RFC 9438 §4.6: ssthresh = cwnd * 0.7; W_max = cwnd; cwnd = ssthresh, which PRR (RFC 6937) paces
    the flight down to during fast recovery, and after it (RFC 6582 §3.2 step 3)."""
    c = Cubic(MSS)
    c.cwnd = 100 * MSS
    c.on_congestion_event(120 * MSS, 0.0)
    assert c.ssthresh == 70 * MSS and c.w_max == 100
    assert c.cwnd == 70 * MSS
    c.on_recovery_exit()
    assert c.cwnd == 70 * MSS


def test_cubic_second_loss_below_w_max_fast_convergence():
    """RFC 9438 §4.7: a loss before cwnd is back at W_max sets W_max = cwnd * (1 + 0.7) / 2."""
    c = after_loss(100)
    c.on_congestion_event(70 * MSS, 1.0)
    assert c.w_max == pytest.approx(70 * (1 + BETA) / 2)
    assert c.ssthresh == 49 * MSS


def test_cubic_ack_in_recovery_leaves_window():
    """RFC 6582 §3.2: during fast recovery the window stays reduced until the full ACK; on_ack does not
    grow it."""
    c = Cubic(MSS)
    c.cwnd = 20 * MSS
    c.on_congestion_event(20 * MSS, 0.0)
    c.on_ack(ack(5 * MSS, cwnd=c.cwnd))
    assert c.cwnd == 14 * MSS


def test_cubic_rto_loss_window_and_beta_ssthresh():
    """RFC 9438 §4.8: on a timeout cwnd = 1 SMSS (RFC 5681 §3.1), ssthresh = cwnd * 0.7."""
    c = Cubic(MSS)
    c.cwnd = 50 * MSS
    c.on_rto(50 * MSS, 0.0)
    assert (c.cwnd, c.ssthresh) == (MSS, 35 * MSS)


def test_cubic_repeated_rto_keeps_ssthresh():
    """A second timeout before any ACK keeps the ssthresh of the first (as Linux's tcp_enter_loss);
    computing it from the 1-segment loss window would collapse it to 2 SMSS."""
    c = Cubic(MSS)
    c.cwnd = 50 * MSS
    c.on_rto(50 * MSS, 0.0)
    c.on_rto(50 * MSS, 1.0)
    assert (c.cwnd, c.ssthresh) == (MSS, 35 * MSS)


def test_cubic_avoidance_after_rto_starts_with_k_zero():
    """RFC 9438 §4.8: in the first congestion avoidance stage after a timeout K = 0 and W_max is
    the cwnd at the start of the stage."""
    c = Cubic(MSS)
    c.cwnd = 50 * MSS
    c.on_rto(50 * MSS, 0.0)
    c.cwnd = c.ssthresh  # slow start brought it back
    c.on_ack(ack(MSS, cwnd=c.cwnd, now=2.0, rtt=0.1))
    assert c.k == 0.0 and c.w_max == 35


# ---------------------------------------------------------------- congestion avoidance


def test_cubic_k_is_time_to_reach_w_max():
    """RFC 9438 §4.2, Figure 2: K = cbrt((W_max - cwnd_epoch) / C) with cwnd_epoch = 0.7 * W_max."""
    c = after_loss(100)
    c.on_ack(ack(MSS, cwnd=c.cwnd, now=1.0, rtt=0.1))
    assert c.cwnd_epoch == 70
    assert c.k == pytest.approx(((100 - 70) / C) ** (1 / 3))
    for t in (0.0, 1.0, 2.5, c.k, 6.0):
        assert c.w_cubic(t) == pytest.approx(C * (t - c.k) ** 3 + 100)
    assert c.w_cubic(0.0) == pytest.approx(70) and c.w_cubic(c.k) == pytest.approx(100)


def test_cubic_avoidance_cwnd_follows_w_cubic():
    """RFC 9438 §4.4-4.5: each ACK moves cwnd by (target - cwnd)/cwnd toward W_cubic(t + RTT), so
    with a window of ACKs per RTT cwnd tracks W_cubic(t): concave below W_max, a plateau at K,
    convex beyond. W_max = 100 segments, RTT 100 ms: K = 4.22 s."""
    rtt = 0.1
    c = after_loss(100, rtt)
    trace = run_avoidance(c, 1.0, 1.0 + 8.0, rtt)
    k = ((100 - 70) / C) ** (1 / 3)
    for t_check in (1.0, 3.0, k, 5.0):
        t, cwnd = min(trace, key=lambda p: abs(p[0] - t_check))
        assert cwnd == pytest.approx(C * (t - k) ** 3 + 100, rel=0.02), t
    plateau = [w for t, w in trace if abs(t - k) < 1.0]
    assert max(plateau) - min(plateau) < 3  # about W_max for two seconds around K
    # §4.3: W_est, growing 0.53 segments per RTT, passes cwnd_prior = 100 at about t = 5.7 s and
    # then one per RTT; by t = 7 s it is above W_cubic(t): the Reno-friendly region takes over
    t, cwnd = trace[-1]
    assert c.w_est > c.w_cubic(t) and cwnd == pytest.approx(c.w_est, abs=1.5)


def test_cubic_avoidance_small_window_reno_friendly_region():
    """RFC 9438 §4.3: while W_cubic(t) < W_est, cwnd = W_est, which grows by
    alpha = 3(1 - 0.7)/(1 + 0.7) segments per RTT until it reaches cwnd_prior, then by one."""
    rtt = 0.1
    c = after_loss(10, rtt)
    trace = run_avoidance(c, 1.0, 1.0 + 1.0, rtt)
    alpha = 3 * (1 - BETA) / (1 + BETA)
    w_est = 7.0
    for t, cwnd in trace[:5]:
        for _ in range(math.floor(w_est)):  # one ACK per segment of the window (Figure 4, per ACK)
            w_est += alpha * 1 / w_est
        assert cwnd == pytest.approx(w_est, abs=0.01), t
        assert c.w_cubic(t) < cwnd


def test_cubic_avoidance_flight_below_window_does_not_grow():
    """RFC 9438 §4.6: cwnd is not increased while the flight is smaller than cwnd."""
    c = after_loss(20)
    before = c.cwnd
    for i in range(100):
        c.on_ack(ack(MSS, in_flight=5 * MSS, now=1.0 + i * 0.01, rtt=0.1, limited=False))
    assert c.cwnd == before


def test_cubic_idle_period_shifts_the_epoch():
    """Linux's CA_EVENT_TX_START (cwnd validation, RFC 7661): time spent idle does not count toward
    W_cubic(t), so sending again after a pause does not jump the window."""
    c = after_loss(100)
    c.on_ack(ack(MSS, cwnd=c.cwnd, now=1.0, rtt=0.1))
    c.on_sent(MSS, 10 * MSS, 1.0)
    c.on_sent(MSS, 0, 31.0)  # nothing in flight: idle for 30 s
    assert c.epoch == pytest.approx(31.0)


# ---------------------------------------------------------------- HyStart++


class Rounds:
    """ACKs grouped in rounds: the first ACK of a round acknowledges a segment sent after the
    previous round began (its prior_delivered is the current count), the others older ones."""

    def __init__(self, c: Cubic) -> None:
        self.c = c
        self.delivered = 0
        self.now = 0.0

    def round(self, rtt: float, acks: int = 10) -> None:
        self.now += rtt
        for i in range(acks):
            prior = self.delivered if i == 0 else 0
            self.delivered += MSS
            self.c.on_ack(ack(MSS, cwnd=self.c.cwnd, now=self.now, rtt=rtt, delivered=self.delivered, prior=prior))


def test_cubic_hystart_rtt_increase_enters_css():
    """RFC 9406 §4.2: with N_RTT_SAMPLE samples in a round and its minimum RTT at least
    lastRoundMinRTT + clamp(lastRoundMinRTT / 8, 4 ms, 16 ms) above the last one, leave slow start
    for Conservative Slow Start."""
    c = Cubic(MSS)
    r = Rounds(c)
    r.round(0.100)
    r.round(0.100)
    assert c.hystart.phase is SLOW_START
    r.round(0.112)  # +12 ms >= 100/8 = 12.5 ms? no: stays
    assert c.hystart.phase is SLOW_START
    r.round(0.125)  # +13 ms over 112 ms: threshold 14 ms, stays
    assert c.hystart.phase is SLOW_START
    r.round(0.140)  # +15 ms over 125 ms (threshold 15.6 ms): stays
    assert c.hystart.phase is SLOW_START
    r.round(0.157)  # +17 ms over 140 ms (threshold 16 ms, the maximum): CSS
    assert c.hystart.phase is CSS
    assert c.hystart.css_baseline_min_rtt == pytest.approx(0.157)
    assert c.ssthresh == INFINITE_SSTHRESH  # still slow start for RFC 5681, at a quarter of the pace


def test_cubic_hystart_css_grows_at_a_quarter():
    """RFC 9406 §4.2: in CSS, cwnd += N / CSS_GROWTH_DIVISOR (4)."""
    c = Cubic(MSS)
    r = Rounds(c)
    r.round(0.1)
    r.round(0.1)
    r.round(0.2)
    assert c.hystart.phase is CSS
    before = c.cwnd
    c.on_ack(ack(4 * MSS, cwnd=c.cwnd, now=r.now, rtt=0.2, delivered=r.delivered + 4 * MSS, prior=0))
    assert c.cwnd == before + MSS


def test_cubic_hystart_css_rtt_back_below_baseline_resumes_slow_start():
    """RFC 9406 §4.2: a round in CSS whose minimum RTT falls below cssBaselineMinRtt means the rise
    was spurious: back to slow start."""
    c = Cubic(MSS)
    r = Rounds(c)
    r.round(0.1)
    r.round(0.1)
    r.round(0.2)
    assert c.hystart.phase is CSS
    r.round(0.15)
    assert c.hystart.phase is SLOW_START


def test_cubic_hystart_css_rounds_done_enters_avoidance():
    """RFC 9406 §4.2: after CSS_ROUNDS rounds in CSS, ssthresh = cwnd: congestion avoidance."""
    c = Cubic(MSS)
    r = Rounds(c)
    r.round(0.1)
    r.round(0.1)
    r.round(0.2)
    for _ in range(CSS_ROUNDS - 1):
        r.round(0.2)
    assert c.hystart.phase is CSS
    r.round(0.2, acks=1)  # the first ACK of the next round completes CSS_ROUNDS
    assert c.hystart.phase is OFF
    assert c.ssthresh == c.cwnd < INFINITE_SSTHRESH


def test_cubic_hystart_too_few_samples_no_exit():
    """RFC 9406 §4.2: fewer than N_RTT_SAMPLE (8) RTT samples in a round: no decision."""
    c = Cubic(MSS)
    r = Rounds(c)
    r.round(0.1, acks=7)
    r.round(0.1, acks=7)
    r.round(0.3, acks=7)
    assert c.hystart.phase is SLOW_START


def test_cubic_hystart_loss_in_css_ends_slow_start():
    """RFC 9406 §4.2: a loss during CSS enters congestion avoidance as any loss does."""
    c = Cubic(MSS)
    r = Rounds(c)
    r.round(0.1)
    r.round(0.1)
    r.round(0.2)
    c.on_congestion_event(c.cwnd, r.now)
    assert c.hystart.phase is OFF and c.ssthresh < INFINITE_SSTHRESH


def test_cubic_hystart_only_in_initial_slow_start():
    """RFC 9406 §4.3: after a timeout, slow start is the standard one (no HyStart++)."""
    c = Cubic(MSS)
    c.on_rto(10 * MSS, 0.0)
    assert c.hystart.phase is OFF


def test_cubic_bottleneck_with_deep_buffer_hystart_exits_before_loss():
    """RFC 9406 §1: on a path whose queue would let slow start overshoot, HyStart++ sees the RTT
    rise as the queue builds and leaves slow start with no loss (10 Mbit/s, 40 ms, 1 MB buffer)."""
    path = Path(rate=1.25e6, rtt=0.04, buffer=1e6)
    s = Sender("cubic", path)
    seen: list[str] = []
    s.run(5.0, lambda snd: seen.append(snd.cc.controller.hystart.phase))
    c = s.cc.controller
    assert CSS in seen and c.ssthresh < INFINITE_SSTHRESH
    assert s.trace.drops == 0
    bdp = path.rate * path.rtt
    assert bdp < c.ssthresh < 16 * bdp


def utilization(name: str, path: Path) -> float:
    s = Sender(name, path)
    s.run(1.0)  # past slow start
    delivered_before = s.snd_una
    s.run(11.0)
    assert s.trace.recoveries > 0
    return (s.snd_una - delivered_before) / (path.rate * 10.0)


def test_cubic_bottleneck_shallow_buffer_keeps_link_busier_than_reno():
    """RFC 9438 §4.6 and §1: backing off to 0.7 of the window (not 0.5) and growing back along the
    cubic keep a link with a small queue (a fifth of the BDP; 10 Mbit/s, 40 ms) busy through the
    losses, where Reno leaves it idle after each one."""
    path = Path(rate=1.25e6, rtt=0.04, buffer=10_000)
    cubic, reno = utilization("cubic", path), utilization("reno", path)
    assert cubic >= 0.9
    assert cubic > reno + 0.03


def test_cubic_in_connection_gets_samples_from_estimator(conn_in):
    """The connection feeds on_ack with AckSamples carrying an RTT from the rate estimator."""
    c = conn_in(State.ESTABLISHED, congestion="cubic")
    c.send(b"x" * 4 * 1460, 0.0)
    c.segments_to_send(0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 4 * 1460), 0.05)
    cubic = c.cc.controller
    assert cubic.srtt == pytest.approx(0.05)
    assert c.cc.rate.delivered == 4 * 1460
