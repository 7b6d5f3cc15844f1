"""The interface every congestion controller implements (RFC 5681 vocabulary).

A controller owns three numbers the connection reads: `cwnd` and `ssthresh` (bytes) and `pacing_rate`
(bytes per second, or None for "send as the window allows"). The connection tells it what happens
through the hooks below; it never reads anything else, and a controller never sees the connection.

When the hooks are called:

- `on_sent` for every segment that carries data, new or retransmitted.
- `on_ack` for every ACK that advances SND.UNA, also during fast recovery, and before the recovery
  hooks for that ACK. A controller knows it is in recovery between `on_congestion_event` and
  `on_recovery_exit` (or `on_rto`); Reno and CUBIC leave the window alone there, BBR keeps its model
  up to date.
- `on_congestion_event` once when loss is detected by duplicate ACKs or SACK; then `on_dup_ack` for
  each further duplicate ACK and `on_partial_ack` for each ACK below the recovery point, until
  `on_recovery_exit` (RFC 6582 §3.2).
- `on_rto` when the retransmission timer expires (RFC 5681 §3.1, RFC 6298 (5.4)-(5.7)).

During fast recovery with SACK the connection paces what it sends by PRR (RFC 6937) and leaves cwnd to
the controller; a controller that sets its own window in recovery (BBR's packet conservation) says so
with a class attribute `owns_recovery_window = True`, and PRR then stays out of its way.

The constructor takes `(mss, initial_window_segments)`; a controller that keeps the segment size in
an `mss` attribute sees it updated when the path MTU shrinks (RFC 1191). docs/congestion.md shows how
to write one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol


@dataclass(frozen=True, slots=True)
class AckSample:
    """What one ACK that advanced SND.UNA tells a controller.

    The rate fields come from the delivery-rate estimator (stack/tcp/delivery_rate.py,
    draft-cheng-iccrg-delivery-rate-estimation); they are None when this ACK delivered no segment
    the estimator could time (for example the ACK of a SYN).
    """

    bytes_acked: int  # bytes newly acknowledged cumulatively by this ACK
    bytes_in_flight: int  # SND.MAX - SND.UNA before this ACK
    rtt: float | None  # seconds, from the newest never-retransmitted segment this ACK delivered (Karn)
    min_rtt: float | None  # the smallest RTT seen in the last 5 minutes (as Linux's tcp_min_rtt_wlen)
    delivered: int  # bytes delivered (ACKed or SACKed) since the connection started
    delivery_rate: float | None  # bytes per second over the sample's interval
    app_limited: bool  # the sample was taken while the application, not the network, limited sending
    now: float
    prior_delivered: int | None = None  # `delivered` when the newest segment in the sample was sent
    # the window limited sending lately, so it may grow (Linux tcp_is_cwnd_limited: full in the last
    # window of data, or in slow start less than twice the most in flight there)
    cwnd_limited: bool = True


# One AckSample per ACK: a frozen dataclass's __init__ sets each field through object.__setattr__, twice
# the cost of setting the slots directly as here (as stack/wire/segment.py builds arriving Segments).
_new = object.__new__
(
    _set_bytes_acked,
    _set_bytes_in_flight,
    _set_rtt,
    _set_min_rtt,
    _set_delivered,
    _set_delivery_rate,
    _set_app_limited,
    _set_now,
    _set_prior_delivered,
    _set_cwnd_limited,
) = (getattr(AckSample, f.name).__set__ for f in fields(AckSample))


def ack_sample(
    bytes_acked: int,
    bytes_in_flight: int,
    rtt: float | None,
    min_rtt: float | None,
    delivered: int,
    delivery_rate: float | None,
    app_limited: bool,
    now: float,
    prior_delivered: int | None,
    cwnd_limited: bool,
) -> AckSample:
    """AckSample(bytes_acked, ..., cwnd_limited), every field given."""
    sample = _new(AckSample)
    _set_bytes_acked(sample, bytes_acked)
    _set_bytes_in_flight(sample, bytes_in_flight)
    _set_rtt(sample, rtt)
    _set_min_rtt(sample, min_rtt)
    _set_delivered(sample, delivered)
    _set_delivery_rate(sample, delivery_rate)
    _set_app_limited(sample, app_limited)
    _set_now(sample, now)
    _set_prior_delivered(sample, prior_delivered)
    _set_cwnd_limited(sample, cwnd_limited)
    return sample


class CongestionController(Protocol):
    cwnd: int
    ssthresh: int
    pacing_rate: float | None

    def on_sent(self, bytes_sent: int, bytes_in_flight: int, now: float) -> None:
        """A segment with `bytes_sent` bytes of data left, or a run of segments sent together (TSO), told
        once; `bytes_in_flight` was in flight before it."""

    def on_ack(self, sample: AckSample) -> None:
        """An ACK advanced SND.UNA (also during fast recovery, before the recovery hooks)."""

    def on_congestion_event(self, flight_size: int, now: float) -> None:
        """Loss detected by duplicate ACKs or SACK: set ssthresh and cwnd for fast recovery (RFC 5681 §3.2)."""

    def on_dup_ack(self) -> None:
        """A duplicate ACK during fast recovery: a segment left the network (RFC 5681 §3.2 step 5)."""

    def on_partial_ack(self, bytes_acked: int) -> None:
        """An ACK that advances SND.UNA but ends below `recover` (RFC 6582 §3.2 step 4)."""

    def on_recovery_exit(self) -> None:
        """Fast recovery ended by a full ACK (RFC 6582 §3.2 step 3)."""

    def on_rto(self, flight_size: int, now: float) -> None:
        """The retransmission timer expired (RFC 5681 §3.1, equation 4)."""


HOOKS = ("on_sent", "on_ack", "on_congestion_event", "on_dup_ack", "on_partial_ack", "on_recovery_exit", "on_rto")
INFINITE_SSTHRESH = 1 << 30  # "arbitrarily high" (RFC 5681 §3.1)
