"""BBR v1, following draft-cardwell-iccrg-bbr-congestion-control-00 (July 2017).

The model: BtlBw, the largest delivery rate of the last 10 rounds (windowed max filter, §4.1.1),
and RTprop, the smallest RTT of the last 10 seconds (§4.1.2). From them: pacing_rate =
pacing_gain * BtlBw (§4.2.1) and cwnd = cwnd_gain * BtlBw * RTprop plus three send quanta (§4.2.3).
States (§4.3): STARTUP (gain 2/ln 2 until the bandwidth stops growing 25% for three rounds),
DRAIN (inverse gain until the queue is gone), PROBE_BW (gains 5/4, 3/4, then six of 1, one phase
per RTprop), PROBE_RTT (4 segments for at least 200 ms and a round when RTprop is 10 s old).

Where this stack differs from the draft: windows and rates are in bytes; a round trip is counted
with `AckSample.prior_delivered` as the draft does; the loss count of an ACK is not known here, so
the window is not reduced by lost packets during recovery (§4.2.3.4) — packet conservation (cwnd =
bytes in flight plus what the ACK delivered, for one round) and the restore of the saved cwnd on
exit are done. The delivery rate comes from stack/tcp/delivery_rate.py. As Linux's tcp_bbr, the
pacing rate starts from the handshake's RTT, is 1% below pacing_gain * BtlBw, and a paced packet holds
at least two segments from 1.2 Mbit/s (bbr_min_tso_segs).
"""

from __future__ import annotations

import math
import random
from collections import deque

from stack.tcp.congestion.base import INFINITE_SSTHRESH, AckSample

HIGH_GAIN = 2 / math.log(2)  # BBRHighGain, §4.3.2.1
DRAIN_GAIN = 1 / HIGH_GAIN
PROBE_BW_CWND_GAIN = 2.0
PACING_GAIN_CYCLE = (5 / 4, 3 / 4, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)  # §4.3.4.3
BTLBW_FILTER_LEN = 10  # rounds
RTPROP_FILTER_LEN = 10.0  # seconds
PROBE_RTT_DURATION = 0.2  # seconds
MIN_PIPE_CWND_SEGMENTS = 4
FULL_BW_THRESH = 1.25
FULL_BW_COUNT = 3
MIN_TSO_RATE = 1.2e6 / 8  # bytes per second: below it a send quantum or GSO packet is one segment
PACING_MARGIN = 0.99  # Linux paces 1% below the model's rate (bbr_pacing_margin_percent): no standing queue

STARTUP, DRAIN, PROBE_BW, PROBE_RTT = "STARTUP", "DRAIN", "PROBE_BW", "PROBE_RTT"


class WindowedMax:
    """The largest value of the last `window` rounds (exact; a monotonic queue of (round, value))."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._q: deque[tuple[int, float]] = deque()

    def update(self, value: float, round_count: int) -> None:
        q = self._q
        while q and q[-1][1] <= value:
            q.pop()
        q.append((round_count, value))
        while q[0][0] <= round_count - self.window:
            q.popleft()

    @property
    def best(self) -> float:
        return self._q[0][1] if self._q else 0.0


class Bbr:
    # in recovery BBR sets the window itself, by packet conservation (§4.2.3.4): no PRR over it, as Linux
    # runs tcp_cwnd_reduction only for controllers without their own cong_control
    owns_recovery_window = True

    def __init__(self, mss: int, initial_window_segments: int = 10, rng: random.Random | None = None) -> None:
        self.mss = mss
        self.initial_cwnd = initial_window_segments * mss
        self.cwnd = self.initial_cwnd
        self.ssthresh = INFINITE_SSTHRESH  # BBR does not use it
        self._rng = rng or random.Random()
        self.btlbw_filter = WindowedMax(BTLBW_FILTER_LEN)
        self.rtprop = math.inf
        self.rtprop_stamp: float | None = None  # set by the first ACK: the constructor has no clock
        self.rtprop_expired = False
        self.probe_rtt_done_stamp: float | None = None
        self.probe_rtt_round_done = False
        self.packet_conservation = False
        self.prior_cwnd = 0
        self.idle_restart = False
        self.in_recovery = False
        # round counting (§4.1.1.3)
        self.next_round_delivered = 0
        self.round_count = 0
        self.round_start = False
        self._delivered = 0  # C.delivered as of the last ACK
        # full pipe (§4.3.2.2)
        self.filled_pipe = False
        self.full_bw = 0.0
        self.full_bw_count = 0
        self.cycle_index = 0
        self.cycle_stamp = 0.0
        self.send_quantum = mss
        # §4.2.1 initial pacing rate: the initial window over a nominal 1 ms RTT (no SRTT yet); the
        # handshake's SRTT or else the first RTT sample replaces that guess (as Linux's has_seen_rtt)
        self.pacing_rate: float | None = HIGH_GAIN * self.initial_cwnd / 0.001 * PACING_MARGIN
        self.has_seen_rtt = False
        self._enter_startup()

    @property
    def btlbw(self) -> float:
        return self.btlbw_filter.best

    # ---------------------------------------------------------------- states (§4.3)

    def _enter_startup(self) -> None:
        self.state = STARTUP
        self.pacing_gain = HIGH_GAIN
        self.cwnd_gain = HIGH_GAIN

    def _enter_drain(self) -> None:
        self.state = DRAIN
        self.pacing_gain = DRAIN_GAIN
        self.cwnd_gain = HIGH_GAIN

    def _enter_probe_bw(self, now: float) -> None:
        self.state = PROBE_BW
        self.pacing_gain = 1.0
        self.cwnd_gain = PROBE_BW_CWND_GAIN
        # start in a random phase other than the 3/4 one (§4.3.4.3)
        self.cycle_index = len(PACING_GAIN_CYCLE) - 1 - self._rng.randrange(len(PACING_GAIN_CYCLE) - 1)
        self._advance_cycle_phase(now)

    def _enter_probe_rtt(self) -> None:
        self.state = PROBE_RTT
        self.pacing_gain = 1.0
        self.cwnd_gain = 1.0

    def _advance_cycle_phase(self, now: float) -> None:
        self.cycle_stamp = now
        self.cycle_index = (self.cycle_index + 1) % len(PACING_GAIN_CYCLE)
        self.pacing_gain = PACING_GAIN_CYCLE[self.cycle_index]

    # ---------------------------------------------------------------- the model (§4.1)

    def inflight(self, gain: float) -> int:
        """BBRInflight(gain): gain * BDP plus three send quanta (§4.2.3.2)."""
        if self.rtprop == math.inf or self.btlbw <= 0:
            return self.initial_cwnd
        return int(gain * self.btlbw * self.rtprop) + 3 * self.send_quantum

    def _update_round(self, sample: AckSample) -> None:
        prior = sample.prior_delivered
        if prior is not None and prior >= self.next_round_delivered:
            self.next_round_delivered = sample.delivered
            self.round_count += 1
            self.round_start = True
        else:
            self.round_start = False

    def _update_btlbw(self, sample: AckSample) -> None:
        self._update_round(sample)
        rate = sample.delivery_rate
        if rate is not None and (rate >= self.btlbw or not sample.app_limited):
            self.btlbw_filter.update(rate, self.round_count)

    def _update_rtprop(self, sample: AckSample) -> None:
        now = sample.now
        if self.rtprop_stamp is None:
            self.rtprop_stamp = now
        self.rtprop_expired = now > self.rtprop_stamp + RTPROP_FILTER_LEN
        if sample.rtt is not None and (sample.rtt <= self.rtprop or self.rtprop_expired):
            self.rtprop = sample.rtt
            self.rtprop_stamp = now

    def _check_full_pipe(self, sample: AckSample) -> None:
        if self.filled_pipe or not self.round_start or sample.app_limited:
            return
        if self.btlbw >= self.full_bw * FULL_BW_THRESH:  # still growing
            self.full_bw = self.btlbw
            self.full_bw_count = 0
            return
        self.full_bw_count += 1
        if self.full_bw_count >= FULL_BW_COUNT:
            self.filled_pipe = True

    def _check_drain(self, inflight: int, now: float) -> None:
        if self.state == STARTUP and self.filled_pipe:
            self._enter_drain()
        if self.state == DRAIN and inflight <= self.inflight(1.0):
            self._enter_probe_bw(now)

    def _check_cycle_phase(self, sample: AckSample) -> None:
        if self.state != PROBE_BW:
            return
        now = sample.now
        full_length = now - self.cycle_stamp > self.rtprop
        gain = self.pacing_gain
        if gain == 1.0:
            next_phase = full_length
        elif gain > 1.0:  # probe until the extra data is in flight (losses are not counted here)
            next_phase = full_length and sample.bytes_in_flight >= self.inflight(gain)
        else:  # drain until the queue is gone, or a whole RTprop
            next_phase = full_length or sample.bytes_in_flight <= self.inflight(1.0)
        if next_phase:
            self._advance_cycle_phase(now)

    def _check_probe_rtt(self, inflight: int, now: float) -> None:
        if self.state != PROBE_RTT and self.rtprop_expired and not self.idle_restart:
            self._enter_probe_rtt()
            self._save_cwnd()
            self.probe_rtt_done_stamp = None
        if self.state == PROBE_RTT:
            if self.probe_rtt_done_stamp is None and inflight <= self._min_pipe_cwnd:
                self.probe_rtt_done_stamp = now + PROBE_RTT_DURATION
                self.probe_rtt_round_done = False
                self.next_round_delivered = self._delivered
            elif self.probe_rtt_done_stamp is not None:
                if self.round_start:
                    self.probe_rtt_round_done = True
                if self.probe_rtt_round_done and now > self.probe_rtt_done_stamp:
                    self.rtprop_stamp = now
                    self._restore_cwnd()
                    if self.filled_pipe:
                        self._enter_probe_bw(now)
                    else:
                        self._enter_startup()
        self.idle_restart = False

    # ---------------------------------------------------------------- control parameters (§4.2)

    @property
    def _min_pipe_cwnd(self) -> int:
        return MIN_PIPE_CWND_SEGMENTS * self.mss

    def _set_pacing_rate_with_gain(self, gain: float) -> None:
        rate = gain * self.btlbw * PACING_MARGIN
        if rate > 0 and (self.filled_pipe or self.pacing_rate is None or rate > self.pacing_rate):
            self.pacing_rate = rate

    def min_tso_segs(self) -> int:
        """The fewest segments of a GSO packet (Linux bbr_min_tso_segs): one below 1.2 Mbit/s, else two."""
        return 1 if (self.pacing_rate or 0.0) < MIN_TSO_RATE else 2

    def _set_send_quantum(self) -> None:
        rate = self.pacing_rate or 0.0
        if rate < MIN_TSO_RATE:
            self.send_quantum = self.mss
        elif rate < 24e6 / 8:
            self.send_quantum = 2 * self.mss
        else:
            self.send_quantum = min(int(rate * 0.001), 64 * 1024)

    def _set_cwnd(self, delivered: int, inflight: int) -> None:
        target = self.inflight(self.cwnd_gain)
        if self.packet_conservation:
            self.cwnd = max(self.cwnd, inflight + delivered)
        elif self.filled_pipe:
            self.cwnd = min(self.cwnd + delivered, target)
        elif self.cwnd < target or self._delivered < self.initial_cwnd:
            self.cwnd += delivered
        self.cwnd = max(self.cwnd, self._min_pipe_cwnd)
        if self.state == PROBE_RTT:
            self.cwnd = min(self.cwnd, self._min_pipe_cwnd)

    def _save_cwnd(self) -> None:
        if not self.in_recovery and self.state != PROBE_RTT:
            self.prior_cwnd = self.cwnd
        else:
            self.prior_cwnd = max(self.prior_cwnd, self.cwnd)

    def _restore_cwnd(self) -> None:
        self.cwnd = max(self.cwnd, self.prior_cwnd)

    # ---------------------------------------------------------------- hooks

    def on_sent(self, bytes_sent: int, bytes_in_flight: int, now: float) -> None:
        if bytes_in_flight == 0 and self.round_count > 0:  # restarting from idle (§4.3.4.4)
            self.idle_restart = True
            if self.state == PROBE_BW:
                self._set_pacing_rate_with_gain(1.0)

    def on_established(self, srtt: float | None) -> None:
        """§4.2.1: with an RTT from the handshake the initial pacing rate is the initial window over it
        (Linux bbr_init_pacing_rate_from_rtt)."""
        self._init_pacing_rate(srtt)

    def _init_pacing_rate(self, rtt: float | None) -> None:
        if not self.has_seen_rtt and rtt is not None and rtt > 0:
            self.has_seen_rtt = True
            self.pacing_rate = HIGH_GAIN * self.initial_cwnd / rtt * PACING_MARGIN

    def on_ack(self, sample: AckSample) -> None:
        """BBRUpdateOnACK (§4.4): the model and state first, then pacing rate, quantum and cwnd."""
        delivered = max(sample.delivered - self._delivered, 0)
        self._delivered = sample.delivered
        self._init_pacing_rate(sample.rtt)
        inflight = max(sample.bytes_in_flight - sample.bytes_acked, 0)  # after this ACK
        self._update_btlbw(sample)
        if self.packet_conservation and self.round_start:
            self.packet_conservation = False  # conservation lasts one round (§4.2.3.4)
        self._check_cycle_phase(sample)
        self._check_full_pipe(sample)
        self._check_drain(inflight, sample.now)
        self._update_rtprop(sample)
        self._check_probe_rtt(inflight, sample.now)
        self._set_pacing_rate_with_gain(self.pacing_gain)
        self._set_send_quantum()
        self._set_cwnd(delivered, inflight)

    def on_congestion_event(self, flight_size: int, now: float) -> None:
        # §4.2.3.4: on entering recovery keep what is in flight plus one segment, for one round
        self._save_cwnd()
        self.in_recovery = True
        self.cwnd = max(flight_size + self.mss, self._min_pipe_cwnd)
        self.packet_conservation = True
        self.next_round_delivered = self._delivered  # the conservation round starts now

    def on_recovery_exit(self) -> None:
        self.in_recovery = False
        self.packet_conservation = False
        self._restore_cwnd()

    def on_rto(self, flight_size: int, now: float) -> None:
        # §4.2.3.4: save the window, then the loss window; the model is kept
        self._save_cwnd()
        self.in_recovery = False
        self.packet_conservation = False
        self.cwnd = self.mss
        self.round_start = True
        self.full_bw = 0.0
