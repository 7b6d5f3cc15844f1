"""The interface every congestion controller implements (RFC 5681 vocabulary)."""

from __future__ import annotations

from typing import Protocol


class CongestionController(Protocol):
    cwnd: int
    ssthresh: int

    def on_ack(self, bytes_acked: int, flight_size: int, rtt: float | None, now: float) -> None:
        """New data was cumulatively acknowledged (outside fast recovery)."""

    def on_congestion_event(self, flight_size: int, now: float) -> None:
        """Loss detected by duplicate ACKs: set ssthresh and cwnd for fast recovery (RFC 5681 §3.2)."""

    def on_dup_ack(self) -> None:
        """A duplicate ACK during fast recovery: a segment left the network (RFC 5681 §3.2 step 5)."""

    def on_partial_ack(self, bytes_acked: int) -> None:
        """An ACK that advances SND.UNA but ends below `recover` (RFC 6582 §3.2 step 4)."""

    def on_recovery_exit(self) -> None:
        """Fast recovery ended by a full ACK (RFC 6582 §3.2 step 3)."""

    def on_rto(self, flight_size: int, now: float) -> None:
        """The retransmission timer expired (RFC 5681 §3.1, equation 4)."""
