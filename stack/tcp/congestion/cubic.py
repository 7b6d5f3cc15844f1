"""CUBIC congestion control (RFC 9438) with HyStart++ (RFC 9406) for the initial slow start; or, when
given tcp_cubic's parameters, as Linux's tcp_cubic: its HyStart (hystart.py) and its integer window
arithmetic (cubic_linux.py).

Windows are kept in bytes; the RFC's formulas work in segments (W_max, W_est, W_cubic), so they are
evaluated on cwnd / MSS. In fast recovery PRR (RFC 6937) paces the flight down to the reduced window
(RFC 9438 §4.6 leaves fast retransmit and recovery to other RFCs). Not done: undo after a
spurious congestion event (RFC 9438 §4.9), which needs a hook the interface does not have yet.
"""

from __future__ import annotations

import math

from stack.tcp.congestion.base import INFINITE_SSTHRESH, AckSample
from stack.tcp.congestion.cubic_linux import HZ, LinuxCubic
from stack.tcp.congestion.hystart import FRESH_EPOCH, HyStartParams, LinuxHyStart
from stack.tcp.congestion.reno import Reno

C = 0.4  # RFC 9438 §5.1
BETA = 0.7  # β_cubic, RFC 9438 §4.6
ALPHA = 3 * (1 - BETA) / (1 + BETA)  # α_cubic for the Reno-friendly estimate, RFC 9438 §4.3
FAST_CONVERGENCE = True  # RFC 9438 §4.7

# RFC 9406 §4.3
MIN_RTT_THRESH = 0.004
MAX_RTT_THRESH = 0.016
MIN_RTT_DIVISOR = 8
N_RTT_SAMPLE = 8
CSS_GROWTH_DIVISOR = 4
CSS_ROUNDS = 5

SLOW_START, CSS, OFF = "slow start", "conservative slow start", "off"


def cube_root(x: float) -> float:
    return math.copysign(abs(x) ** (1 / 3), x)


class HyStartPlusPlus:
    """RFC 9406 §4.2: leave slow start when the round's minimum RTT rises, through CSS rounds."""

    __slots__ = (
        "phase",
        "round_end",
        "rounds",
        "last_round_min_rtt",
        "current_round_min_rtt",
        "rtt_sample_count",
        "css_baseline_min_rtt",
        "css_rounds",
    )

    def __init__(self) -> None:
        self.phase = SLOW_START
        self.round_end: int | None = None  # `delivered` at the start of the round (BBR-style rounds)
        self.rounds = 0
        self.last_round_min_rtt = math.inf
        self.current_round_min_rtt = math.inf
        self.rtt_sample_count = 0
        self.css_baseline_min_rtt = math.inf
        self.css_rounds = 0

    def on_ack(self, sample: AckSample) -> None:
        """Round and RTT bookkeeping; moves between SLOW_START and CSS, and to OFF after CSS_ROUNDS."""
        if self.phase is OFF:
            return
        prior = sample.prior_delivered
        if self.round_end is None or (prior is not None and prior >= self.round_end):
            # a segment sent after the round began was acknowledged: a new round starts (§4.2, windowEnd)
            self.round_end = sample.delivered
            self.rounds += 1
            self.last_round_min_rtt = self.current_round_min_rtt
            self.current_round_min_rtt = math.inf
            self.rtt_sample_count = 0
            if self.phase is CSS:
                self.css_rounds += 1
                if self.css_rounds >= CSS_ROUNDS:
                    self.phase = OFF  # the caller enters congestion avoidance: ssthresh = cwnd
                    return
        if sample.rtt is not None:
            self.current_round_min_rtt = min(self.current_round_min_rtt, sample.rtt)
            self.rtt_sample_count += 1
        if self.rtt_sample_count < N_RTT_SAMPLE or self.current_round_min_rtt == math.inf:
            return
        if self.phase is SLOW_START:
            if self.last_round_min_rtt == math.inf:
                return
            rtt_thresh = max(MIN_RTT_THRESH, min(self.last_round_min_rtt / MIN_RTT_DIVISOR, MAX_RTT_THRESH))
            if self.current_round_min_rtt >= self.last_round_min_rtt + rtt_thresh:
                self.css_baseline_min_rtt = self.current_round_min_rtt
                self.phase = CSS
                self.css_rounds = 0
        elif self.current_round_min_rtt < self.css_baseline_min_rtt:
            # the RTT rise was spurious: resume slow start (§4.2)
            self.css_baseline_min_rtt = math.inf
            self.phase = SLOW_START

    @property
    def growth_divisor(self) -> int:
        return CSS_GROWTH_DIVISOR if self.phase is CSS else 1


class Cubic(Reno):
    __slots__ = (
        "_cwnd",
        "hystart",
        "linux_hystart",
        "linux",
        "w_max",
        "k",
        "epoch",
        "cwnd_epoch",
        "w_est",
        "cwnd_prior",
        "srtt",
        "_after_rto",
        "_rto_unanswered",
        "_last_sent",
    )

    def __init__(self, mss: int, initial_window_segments: int = 10, hystart: HyStartParams | None = None) -> None:
        self._cwnd = float(initial_window_segments * mss)
        super().__init__(mss, initial_window_segments)
        self.hystart = HyStartPlusPlus()
        # Linux's tcp_cubic (its HyStart, its arithmetic) when its parameters are given
        self.linux_hystart = LinuxHyStart(hystart) if hystart is not None else None
        self.linux = LinuxCubic() if hystart is not None else None
        self.w_max: float | None = None  # segments, before the last reduction (§4.2)
        self.k = 0.0  # seconds until W_cubic reaches W_max again (§4.2, Figure 2)
        self.epoch: float | None = None  # start of the current congestion avoidance stage
        self.cwnd_epoch = 0.0  # segments, cwnd when the stage began
        self.w_est = 0.0  # segments, the Reno-friendly estimate (§4.3)
        self.cwnd_prior = 0.0  # segments, cwnd when ssthresh was last set
        self.srtt: float | None = None
        self._after_rto = False  # the next stage starts with K = 0 and W_max = cwnd (§4.8)
        self._rto_unanswered = False  # an RTO fired and no ACK has advanced since
        self._last_sent: float | None = None

    @property
    def cwnd(self) -> int:
        return int(self._cwnd)

    @cwnd.setter
    def cwnd(self, value: float) -> None:
        self._cwnd = float(value)

    def w_cubic(self, t: float) -> float:
        """RFC 9438 §4.2, Figure 1: W_cubic(t) = C*(t-K)^3 + W_max, in segments."""
        w_max = self.w_max if self.w_max is not None else self.cwnd_epoch
        return C * (t - self.k) ** 3 + w_max

    # ---------------------------------------------------------------- hooks

    def on_sent(self, bytes_sent: int, bytes_in_flight: int, now: float) -> None:
        # after an idle period the curve resumes where it stopped instead of jumping (as Linux's
        # CA_EVENT_TX_START; the cwnd is not validated while idle, RFC 7661)
        if bytes_in_flight == 0 and self._last_sent is not None:
            if self.linux is not None:
                self.linux.idle(_jiffies(now) - _jiffies(self._last_sent), _jiffies(now))
            elif self.epoch is not None:
                self.epoch = min(self.epoch + max(now - self._last_sent, 0.0), now)
        self._last_sent = now

    def on_ack(self, sample: AckSample) -> None:
        self._rto_unanswered = False
        if sample.rtt is not None:
            self.srtt = sample.rtt if self.srtt is None else 0.875 * self.srtt + 0.125 * sample.rtt
        if self.in_recovery:
            return
        if self.linux_hystart is not None and self.linux is not None:  # (set together)
            self._linux_hystart(self.linux_hystart, self.linux, sample)
        if self._cwnd < self.ssthresh:
            self._slow_start(sample)
        elif self._cwnd_limited(sample):
            self._avoidance(sample)

    def _cwnd_limited(self, sample: AckSample) -> bool:
        """RFC 9438 §4.6: an implementation that bases ssthresh on cwnd must not grow cwnd while the
        flight is smaller (cwnd validation), as Linux decides it (bictcp_cong_avoid, tcp_is_cwnd_limited)."""
        return sample.cwnd_limited

    def _linux_hystart(self, hs: LinuxHyStart, linux: LinuxCubic, sample: AckSample) -> None:
        """Linux's HyStart looks at each ACK before the window grows (cubictcp_acked before cong_avoid)."""
        epoch = linux.epoch_start
        if epoch and _jiffies(sample.now) - epoch < FRESH_EPOCH * HZ:
            return  # RTT samples right after a reduction say little about the path
        slow_start = self._cwnd < self.ssthresh
        # Linux's pacing rate in slow start: twice cwnd per smoothed RTT (tcp_pacing_ss_ratio = 200%)
        rate = 2 * self._cwnd / self.srtt if self.srtt else 0.0
        if hs.on_ack(sample, self.cwnd // self.mss, slow_start, rate):
            self.ssthresh = self.cwnd

    def _slow_start(self, sample: AckSample) -> None:
        hs = self.hystart
        # HyStart++ only in the initial slow start (RFC 9406 §4.3)
        if self.linux_hystart is None and self.ssthresh == INFINITE_SSTHRESH:
            hs.on_ack(sample)
            if hs.phase is OFF:
                self.ssthresh = self.cwnd  # CSS_ROUNDS done: congestion avoidance (RFC 9406 §4.2)
                return
        if not self._cwnd_limited(sample):
            return
        # all that the ACK delivered, as Linux's tcp_slow_start: RFC 9406 §4.2 would cap one ACK's share
        # at L = 8 segments for a sender that does not pace, Linux does not. Counted in segments, as
        # Linux's window is: a short one grows it by a whole segment
        increase = sample.segments_delivered(self.mss) * self.mss / hs.growth_divisor
        self._cwnd += increase

    def _avoidance(self, sample: AckSample) -> None:
        mss = self.mss
        if self.linux is not None and self.linux_hystart is not None:  # (set together)
            segments = sample.segments_delivered(mss)  # as Linux counts them
            delay_min = self.linux_hystart.delay_min
            self._cwnd = float(self.linux.grow(self.cwnd // mss, segments, _jiffies(sample.now), delay_min) * mss)
            return
        cwnd = self._cwnd / mss
        now = sample.now
        if self.epoch is None:  # a congestion avoidance stage begins (§4.2)
            self.epoch = now
            self.cwnd_epoch = self.w_est = cwnd
            if self._after_rto or self.w_max is None:
                self.w_max = cwnd  # §4.8 after a timeout; no congestion event yet otherwise
                self._after_rto = False
            self.k = cube_root((self.w_max - cwnd) / C)
        t = now - self.epoch
        rtt = self.srtt if self.srtt is not None else (sample.min_rtt or 0.0)
        target = min(max(self.w_cubic(t + rtt), cwnd), 1.5 * cwnd)  # §4.2
        acked = sample.segments_delivered(mss)  # (segments_acked, §4.3: each segment as one, short or not)
        alpha = ALPHA if self.w_est < self.cwnd_prior else 1.0  # §4.3
        self.w_est += alpha * acked / cwnd
        if self.w_cubic(t) < self.w_est:
            new = max(self.w_est, cwnd)  # Reno-friendly region (§4.3)
        else:
            new = cwnd + (target - cwnd) / cwnd * acked  # concave and convex regions (§4.4, §4.5)
        self._cwnd = new * mss

    def _reduce(self) -> None:
        """§4.6 (and §4.7 fast convergence): remember W_max, ssthresh = cwnd * β_cubic."""
        if self.linux is not None:  # in whole segments, 717/1024 of them
            self.ssthresh = self.linux.ssthresh(self.cwnd // self.mss) * self.mss
            self.epoch = None
            self.hystart.phase = OFF
            return
        cwnd = self._cwnd / self.mss
        if FAST_CONVERGENCE and self.w_max is not None and cwnd < self.w_max:
            self.w_max = cwnd * (1 + BETA) / 2
        else:
            self.w_max = cwnd
        self.cwnd_prior = cwnd
        self.ssthresh = max(int(self._cwnd * BETA), 2 * self.mss)
        self.epoch = None
        self.hystart.phase = OFF

    def on_congestion_event(self, flight_size: int, now: float) -> None:
        self._reduce()
        self.cwnd = self.ssthresh  # (PRR, RFC 6937, paces the flight down to it)
        self.in_recovery = True

    def on_rto(self, flight_size: int, now: float) -> None:
        # §4.8: ssthresh with β_cubic, cwnd to the loss window; a repeated timeout, or one during
        # fast recovery, keeps the ssthresh already set for this loss episode (as Linux)
        if not self._rto_unanswered and not self.in_recovery:
            self._reduce()
        self.epoch = None
        self._after_rto = True
        self._rto_unanswered = True
        self.hystart.phase = OFF
        if self.linux_hystart is not None and self.linux is not None:  # (set together)
            self.linux_hystart.restart()
            self.linux.reset()
        self._cwnd = float(self.mss)
        self._avoidance_acc = 0
        self.in_recovery = False


def _jiffies(now: float) -> int:
    """Linux's clock for CUBIC: whole jiffies (tcp_jiffies32)."""
    return int(now * HZ)
