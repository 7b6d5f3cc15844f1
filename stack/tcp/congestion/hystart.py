"""Linux's HyStart for CUBIC's initial slow start (Ha and Rhee, "Hybrid Slow Start for High-Bandwidth
and Long-Distance Networks", 2008), as Linux's tcp_cubic does it: the alternative to HyStart++ (RFC 9406)
that scripts written for Linux expect (the module parameters hystart_detect, hystart_low_window,
hystart_ack_delta_us).

Two detectors, each one bit of `detect`:
- ACK train: ACKs that keep arriving at most `ack_delta` apart for longer than half the minimum RTT
  (the whole of it when the flow is paced, since pacing spreads the round's ACKs) mean the window
  already fills the path.
- Delay: once a round has given MIN_SAMPLES RTT samples, a round minimum above the connection's minimum
  RTT by an eighth of it (clamped to 4..16 ms) means a queue is building.
Either one ends slow start at the current cwnd (ssthresh = cwnd); HyStart stays quiet below
`low_window` segments and after it fired, until a retransmission timeout restarts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stack.tcp.congestion.base import AckSample

ACK_TRAIN = 1  # hystart_detect bits, as Linux's HYSTART_ACK_TRAIN and HYSTART_DELAY
DELAY = 2
MIN_SAMPLES = 8  # RTT samples of a round before the delay detector decides
DELAY_MIN = 0.004  # the delay detector's threshold: min_rtt / 8 clamped to these bounds
DELAY_MAX = 0.016
GSO_MAX_BYTES = 65536  # the largest burst a device takes at once, for the ACK-train cushion
ACK_CUSHION_MAX = 0.001  # at most 1 ms of cushion for that burst
FRESH_EPOCH = 1.0  # seconds into a congestion avoidance stage whose RTT samples HyStart does not take


@dataclass(frozen=True, slots=True)
class HyStartParams:
    """Linux tcp_cubic's module parameters and whether a qdisc paces the flow (fq)."""

    enabled: bool = True  # the module parameter hystart: 0 leaves slow start only on loss
    detect: int = ACK_TRAIN | DELAY  # Linux's default
    low_window: int = 16  # segments below which HyStart does not act
    ack_delta: float = 0.002  # seconds: ACKs closer than this form a train
    paced: bool = False  # a pacing qdisc spreads the round: the ACK train may last a whole min RTT


class LinuxHyStart:
    """Round and delay bookkeeping; `on_ack` says when slow start should end."""

    __slots__ = ("params", "found", "delay_min", "round_end", "round_start", "last_ack", "curr_rtt", "sample_cnt")

    def __init__(self, params: HyStartParams) -> None:
        self.params = params
        self.restart()

    def restart(self) -> None:
        """A new slow start after a retransmission timeout may exit early again (as cubictcp_state)."""
        self.found = False
        self.delay_min = 0.0  # the minimum RTT seen (0: none yet)
        self.round_end: int | None = None  # `delivered` when the round began: None, a round starts at once
        self.round_start = self.last_ack = 0.0
        self.curr_rtt = math.inf
        self.sample_cnt = 0

    def on_ack(self, sample: AckSample, cwnd_segments: int, slow_start: bool, pacing_rate: float) -> bool:
        """One ACK outside recovery; True when it ends slow start (the caller sets ssthresh = cwnd).
        The minimum RTT is kept in every phase, the detectors act only in slow start."""
        rtt = sample.rtt
        if rtt is None:
            return False
        rtt = max(rtt, 1e-6)
        if self.delay_min == 0.0 or rtt < self.delay_min:
            self.delay_min = rtt
        params = self.params
        if self.found or not slow_start or not params.enabled or cwnd_segments < params.low_window:
            return False
        now = sample.now
        prior = sample.prior_delivered
        if self.round_end is None or (prior is not None and prior >= self.round_end):
            # a segment sent after the round began was acknowledged (Linux: snd_una after end_seq)
            self.round_end = sample.delivered
            self.round_start = self.last_ack = now
            self.curr_rtt = math.inf
            self.sample_cnt = 0
        if params.detect & ACK_TRAIN and now - self.last_ack <= params.ack_delta:
            self.last_ack = now
            cushion = min(ACK_CUSHION_MAX, GSO_MAX_BYTES * 4 / pacing_rate) if pacing_rate > 0 else 0.0
            threshold = self.delay_min + cushion
            if not params.paced:
                threshold /= 2
            if now - self.round_start > threshold:
                self.found = True
        if params.detect & DELAY:
            self.curr_rtt = min(self.curr_rtt, rtt)
            if self.sample_cnt < MIN_SAMPLES:
                self.sample_cnt += 1
            elif self.curr_rtt > self.delay_min + min(max(self.delay_min / 8, DELAY_MIN), DELAY_MAX):
                self.found = True
        return self.found
