"""Reno congestion control: slow start and congestion avoidance (RFC 5681 §3.1)."""

from __future__ import annotations


class Reno:
    def __init__(self, mss: int, initial_window_segments: int = 10) -> None:
        self.mss = mss
        self.cwnd = initial_window_segments * mss  # RFC 6928 initial window, as Linux
        self.ssthresh = 1 << 30  # "arbitrarily high" (RFC 5681 §3.1)
        self._avoidance_acc = 0

    def on_ack(self, bytes_acked: int, flight_size: int, rtt: float | None, now: float) -> None:
        if self.cwnd < self.ssthresh:
            self.cwnd += min(bytes_acked, self.mss)  # RFC 5681 eq. 2 (with RFC 3465 L=1)
        else:
            self._avoidance_acc += bytes_acked  # RFC 5681 eq. 3 via byte counting
            if self._avoidance_acc >= self.cwnd:
                self._avoidance_acc -= self.cwnd
                self.cwnd += self.mss

    def on_congestion_event(self, flight_size: int, now: float) -> None:
        self.ssthresh = max(flight_size // 2, 2 * self.mss)  # RFC 5681 eq. 4
        self.cwnd = self.ssthresh + 3 * self.mss

    def on_recovery_exit(self) -> None:
        self.cwnd = self.ssthresh

    def on_rto(self, flight_size: int, now: float) -> None:
        self.ssthresh = max(flight_size // 2, 2 * self.mss)
        self.cwnd = self.mss  # loss window (RFC 5681 §3.1)
        self._avoidance_acc = 0
