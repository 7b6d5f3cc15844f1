"""Reno congestion control: slow start, congestion avoidance (RFC 5681 §3.1) and the reduction for a
loss (RFC 5681 §3.2). Which segments to resend, and how fast during recovery (PRR), is the
connection's business."""

from __future__ import annotations

from stack.tcp.congestion.base import INFINITE_SSTHRESH, AckSample


class Reno:
    __slots__ = ("mss", "cwnd", "ssthresh", "pacing_rate", "in_recovery", "_avoidance_acc")

    def __init__(self, mss: int, initial_window_segments: int = 10) -> None:
        self.mss = mss
        self.cwnd = initial_window_segments * mss  # RFC 6928 initial window, as Linux
        self.ssthresh = INFINITE_SSTHRESH
        self.pacing_rate: float | None = None  # Reno sends as the window allows
        self.in_recovery = False  # between on_congestion_event and on_recovery_exit / on_rto
        self._avoidance_acc = 0

    def on_sent(self, bytes_sent: int, bytes_in_flight: int, now: float) -> None:
        pass  # Reno is clocked by ACKs alone

    def on_ack(self, sample: AckSample) -> None:
        if self.in_recovery:
            return  # the window stays reduced until the full ACK (RFC 6582 §3.2)
        if not sample.cwnd_limited:
            return  # a window not in use does not grow (RFC 7661 §4, as Linux tcp_reno_cong_avoid decides it)
        if self.cwnd < self.ssthresh:
            self.cwnd += min(sample.bytes_acked, self.mss)  # RFC 5681 eq. 2 (with RFC 3465 L=1)
        else:
            self._avoidance_acc += sample.bytes_acked  # RFC 5681 eq. 3 via byte counting
            if self._avoidance_acc >= self.cwnd:
                self._avoidance_acc -= self.cwnd
                self.cwnd += self.mss

    def on_congestion_event(self, flight_size: int, now: float) -> None:
        self.ssthresh = max(flight_size // 2, 2 * self.mss)  # RFC 5681 eq. 4
        self.cwnd = self.ssthresh  # (PRR, RFC 6937, paces the flight down to it)
        self.in_recovery = True

    def on_recovery_exit(self) -> None:
        self.cwnd = self.ssthresh  # RFC 6582 §3.2 step 3, "full ACK" option (1)
        self.in_recovery = False

    def on_rto(self, flight_size: int, now: float) -> None:
        self.ssthresh = max(flight_size // 2, 2 * self.mss)
        self.cwnd = self.mss  # loss window (RFC 5681 §3.1)
        self._avoidance_acc = 0
        self.in_recovery = False
