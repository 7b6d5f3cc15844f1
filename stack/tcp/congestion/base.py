"""The interface every congestion controller implements (RFC 5681 vocabulary).

A controller owns three numbers the connection reads: `cwnd` and `ssthresh` (bytes) and `pacing_rate`
(bytes per second, or None for "send as the window allows"). The connection tells it what happens
through the hooks below; it never reads anything else, and a controller never sees the connection.

When the hooks are called:

- `on_sent` for every segment that carries data, new or retransmitted.
- `on_ack` for every ACK that advances SND.UNA, also during fast recovery: after the hooks with which
  that ACK ends a recovery (`on_recovery_exit`) and before `on_congestion_event` if it
  starts one, as Linux counts an ACK (tcp_cong_control) after its state changes (tcp_fastretrans_alert);
  what an ACK that starts fast recovery grew the window by is taken back before the reduction, unless the
  controller owns its recovery window. A controller knows it is in recovery between `on_congestion_event` and
  `on_recovery_exit` (or `on_rto`); Reno and CUBIC leave the window alone there, BBR keeps its model
  up to date.
- `on_congestion_event` once when loss is detected by duplicate ACKs or SACK, then `on_recovery_exit`
  when an ACK covers what was outstanding then (RFC 6582 §3.2 step 3; without SACK, one that goes
  beyond it).
- `on_rto` when the retransmission timer expires (RFC 5681 §3.1, RFC 6298 (5.4)-(5.7)); a timeout within
  a loss episode that already reduced ssthresh (during fast recovery, or repeating a timeout no ACK has
  answered) keeps that ssthresh whatever the hook sets, as Linux (tcp_enter_loss). After the hook, cwnd
  becomes what is still in flight plus one when segments sent within the last round trip are.

During fast recovery the connection paces what it sends by PRR (RFC 6937) and leaves cwnd to the
controller; a controller that sets its own window in recovery (BBR's packet conservation) says so
with a class attribute `owns_recovery_window = True`, and PRR then stays out of its way.

Two hooks are optional: `on_established(srtt)` when the handshake is over (BBR starts its pacing rate
from the RTT it measured), and `min_tso_segs()`, the fewest segments of one paced packet.

The constructor takes `(mss, initial_window_segments)`; a controller that keeps the segment size in
an `mss` attribute sees it updated when the path MTU shrinks (RFC 1191). docs/congestion.md shows how
to write one.
"""

from __future__ import annotations

from typing import Protocol

from stack.tcp.congestion.ack_sample import AckSample as AckSample


class CongestionController(Protocol):
    cwnd: int
    ssthresh: int
    pacing_rate: float | None

    def on_sent(self, bytes_sent: int, bytes_in_flight: int, now: float) -> None:
        """A segment with `bytes_sent` bytes of data left, or a run of segments sent together (TSO), told
        once; `bytes_in_flight` was in flight before it."""

    def on_ack(self, sample: AckSample) -> None:
        """An ACK advanced SND.UNA (also during fast recovery; after the hooks that end one, before those
        that start one)."""

    def on_congestion_event(self, flight_size: int, now: float) -> None:
        """Loss detected by duplicate ACKs or SACK: set ssthresh and cwnd for fast recovery (RFC 5681 §3.2)."""

    def on_recovery_exit(self) -> None:
        """Fast recovery ended by a full ACK (RFC 6582 §3.2 step 3)."""

    def on_rto(self, flight_size: int, now: float) -> None:
        """The retransmission timer expired (RFC 5681 §3.1, equation 4)."""


HOOKS = ("on_sent", "on_ack", "on_congestion_event", "on_recovery_exit", "on_rto")
INFINITE_SSTHRESH = 1 << 30  # "arbitrarily high" (RFC 5681 §3.1)
