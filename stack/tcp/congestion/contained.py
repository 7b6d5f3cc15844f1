"""What the connection talks to: one controller, contained, fed by a delivery-rate estimator.

The connection reports segments sent, SACK blocks and ACKs here; this module turns them into the
controller's hooks (an `AckSample` per ACK). Every hook runs under containment: if the controller
raises, or leaves cwnd, ssthresh or pacing_rate unusable, the error is logged once and a fresh Reno
takes over with the last good cwnd and ssthresh, so the connection goes on instead of crashing.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Final

from stack.tcp.congestion.ack_sample import AckSample
from stack.tcp.congestion.base import CongestionController
from stack.tcp.congestion.reno import Reno
from stack.tcp.delivery_rate import DeliveryRateEstimator
from stack.wire.seq import seq_ge

log: Final = logging.getLogger("stack.tcp.congestion")
_MAX_WINDOW: Final = 1 << 31
_logged: set[str] = set()  # controller names whose failure was logged with a traceback


class Contained:
    """Stands for the controller towards the connection: `cwnd`, `ssthresh`, `pacing_rate` and hooks."""

    __slots__ = (
        "controller",
        "name",
        "_mss",
        "initial_window_segments",
        "rate",
        "failure",
        "owns_recovery_window",
        "in_recovery",
        "_cwnd",
        "_ssthresh",
        "pacing_rate",
        "_seen",
        "_window_limited",
        "_max_flight",
        "_usage_end",
    )

    def __init__(self, controller: CongestionController, name: str, mss: int, initial_window_segments: int) -> None:
        self.controller = controller
        self.name = name
        self._mss = mss
        self.initial_window_segments = initial_window_segments
        self.rate = DeliveryRateEstimator()
        self.failure: str | None = None  # why the controller was replaced by Reno, if it was
        # the controller sets its window during loss recovery itself (BBR); else PRR paces what is sent
        # (asked with hasattr: compiled, a getattr with a default builds the AttributeError it then drops)
        flagged: Any = controller  # an attribute a controller may have, outside the protocol
        self.owns_recovery_window = hasattr(flagged, "owns_recovery_window") and flagged.owns_recovery_window is True
        self.in_recovery = False
        self._cwnd = initial_window_segments * mss
        self._ssthresh = _MAX_WINDOW
        self.pacing_rate: float | None = None
        self._seen: tuple[object, object, object] | None = None  # the controller's values last validated
        # cwnd validation as Linux (tcp_cwnd_validate): in the window of data sent until `_usage_end`, was
        # the window full at some point, or how much was in flight at most
        self._window_limited = False
        self._max_flight = 0
        self._usage_end: int | None = None
        try:
            self._take_values()
        except Exception as exc:  # noqa: BLE001 - any failure of a controller is contained
            self._fall_back("__init__", exc)

    @property
    def mss(self) -> int:
        return self._mss

    @mss.setter
    def mss(self, value: int) -> None:
        """A smaller path MTU (RFC 1191): the controller counts in the new segment size from now on."""
        self._mss = value
        if hasattr(self.controller, "mss"):
            try:
                self.controller.mss = value
            except Exception as exc:  # noqa: BLE001
                self._fall_back("mss", exc)

    # ---------------------------------------------------------------- the window, both ways

    @property
    def cwnd(self) -> int:
        return self._cwnd

    @cwnd.setter
    def cwnd(self, value: int) -> None:
        """A window set from outside the controller's hooks (TCP_CONGESTION's handover, undo, ECN): the
        controller learns it too, so its next hook starts from there."""
        self._set("cwnd", value)

    @property
    def ssthresh(self) -> int:
        return self._ssthresh

    @ssthresh.setter
    def ssthresh(self, value: int) -> None:
        self._set("ssthresh", value)

    def undo(self, cwnd: int, ssthresh: int) -> None:
        """A reduction turned out needless (a spurious timeout, every retransmission D-SACKed): the window
        and ssthresh from before it come back, or stay larger (Linux tcp_undo_cwnd_reduction)."""
        self.cwnd = max(self.cwnd, cwnd)
        self.ssthresh = max(self.ssthresh, ssthresh)

    def set_loss_window(self, packets_in_flight: int) -> None:
        """After a timeout and the controller's `on_rto`: the window is what is still in flight plus one
        segment (Linux tcp_enter_loss), RFC 5681 §3.1's loss window of one segment when nothing is."""
        self.cwnd = (packets_in_flight + 1) * self._mss

    def reduce_for_ecn(self, flight_size: int, now: float) -> None:
        """An ECE echo is congestion without loss (RFC 3168 §6.1.2): the controller's reduction, as for a
        loss, and the window halved at once, as there is no segment to resend."""
        self.on_congestion_event(flight_size, now)
        self.cwnd = max(self.ssthresh, self.mss)

    def _set(self, name: str, value: int) -> None:
        try:
            setattr(self.controller, name, int(value))
            self._take_values()
        except Exception as exc:  # noqa: BLE001
            self._fall_back(name, exc)

    # ---------------------------------------------------------------- from the connection
    # Each hook runs in its own try block (no closures: this is the per-segment path).

    def data_sent(self, seq: int, length: int, bytes_in_flight: int, now: float, seg: int = 0) -> None:
        """A segment carrying [seq, seq+length) left, or a run of `seg`-byte segments sent together (TSO);
        `bytes_in_flight` were outstanding before it. The controller hears of a run once, with all its bytes."""
        self.rate.on_sent(seq, length, bytes_in_flight, now, seg)
        try:
            self.controller.on_sent(length, bytes_in_flight, now)
            self._take_values()
        except Exception as exc:  # noqa: BLE001
            self._fall_back("on_sent", exc)

    def sack_received(self, blocks: tuple[tuple[int, int], ...], now: float) -> None:
        self.rate.on_sack(blocks, now)

    def ack_received(self, ack: int, bytes_acked: int, packets: int, bytes_in_flight: int, now: float) -> None:
        """An ACK advanced SND.UNA to `ack`, delivering `bytes_acked` in `packets` segments; call it after
        the recovery's exits for the same ACK and before its loss detection."""
        rate = self.rate
        rate.on_cumulative_ack(ack, now)
        rs = rate.take_sample(now)
        if rs is None:
            sample = self._sample_without_rate(bytes_acked, packets, bytes_in_flight, now)
        else:
            sample = AckSample(
                bytes_acked,
                bytes_in_flight,
                rs.rtt,
                rate.min_rtt,
                rate.delivered,
                rs.delivery_rate,
                rs.app_limited,
                now,
                rs.prior_delivered,
                self._window_was_limiting(),
                packets,
            )
        try:
            self.controller.on_ack(sample)
            self._take_values()
        except Exception as exc:  # noqa: BLE001
            self._fall_back("on_ack", exc)

    def sack_delivered(self, bytes_sacked: int, packets: int, bytes_in_flight: int, now: float) -> None:
        """An ACK that only SACKed `bytes_sacked` (in `packets` segments) may grow the window (Linux
        tcp_may_raise_cwnd with a high reordering degree): the controller hears it as an ACK of that many
        bytes, without a rate sample.
        A controller with its own window in recovery (BBR: Linux's cong_control) runs on its samples alone."""
        if self.owns_recovery_window:
            return
        sample = self._sample_without_rate(bytes_sacked, packets, bytes_in_flight, now)
        try:
            self.controller.on_ack(sample)
            self._take_values()
        except Exception as exc:  # noqa: BLE001
            self._fall_back("on_ack", exc)

    def _sample_without_rate(self, acked: int, packets: int, bytes_in_flight: int, now: float) -> AckSample:
        """An ACK's sample when the rate sampler has none to give: no RTT, no delivery rate."""
        rate = self.rate
        return AckSample(
            acked,
            bytes_in_flight,
            None,
            rate.min_rtt,
            rate.delivered,
            None,
            rate.app_limited_until != 0,
            now,
            None,
            self._window_was_limiting(),
            packets,
        )

    def window_used(self, snd_una: int, snd_nxt: int, window_full: bool, flight: int) -> None:
        """A send attempt with data waiting ended, sending or with the window full, `flight` in flight (in
        packets' room: MSS bytes each). Linux (tcp_cwnd_validate) remembers, per window of data, whether the
        window was ever full, else the most that was in flight; RFC 7661 validates the window differently
        (pipeACK over a sampling period); we follow Linux."""
        end = self._usage_end
        round_over = end is None or seq_ge(snd_una, end)
        if round_over or window_full or (not self._window_limited and flight > self._max_flight):
            self._window_limited = window_full
            self._max_flight = flight
            self._usage_end = snd_nxt

    def _window_was_limiting(self) -> bool:
        """Linux tcp_is_cwnd_limited: the window was full in this window of data; in slow start it may also
        grow to twice the most that was in flight."""
        if self._window_limited:
            return True
        return self._cwnd < self._ssthresh and self._cwnd < 2 * self._max_flight

    def sending_stopped(self, unsent: int, bytes_in_flight: int, retransmitting: bool) -> None:
        """The output path ran out of data or window: mark an app-limited phase if the data ran out."""
        self.rate.check_app_limited(unsent, bytes_in_flight, self.cwnd, self.mss, retransmitting)

    def on_congestion_event(self, flight_size: int, now: float) -> None:
        self.in_recovery = True
        try:
            self.controller.on_congestion_event(flight_size, now)
            self._take_values()
        except Exception as exc:  # noqa: BLE001
            self._fall_back("on_congestion_event", exc)

    def on_recovery_exit(self) -> None:
        self.in_recovery = False
        try:
            self.controller.on_recovery_exit()
            self._take_values()
        except Exception as exc:  # noqa: BLE001
            self._fall_back("on_recovery_exit", exc)

    def on_rto(self, flight_size: int, now: float, new_episode: bool = True) -> None:
        """The controller's timeout hook; a timeout within the episode of an earlier reduction keeps that
        episode's ssthresh, whatever the hook computes (Linux tcp_enter_loss asks the controller only for
        a new episode)."""
        self.in_recovery = False
        ssthresh = self._ssthresh
        try:
            self.controller.on_rto(flight_size, now)
            self._take_values()
        except Exception as exc:  # noqa: BLE001
            self._fall_back("on_rto", exc)
        if not new_episode and self._ssthresh != ssthresh:
            self.ssthresh = ssthresh

    def established(self, srtt: float | None) -> None:
        """The handshake is over, having measured `srtt` (or not): the controller's optional
        `on_established(srtt)` runs (Linux starts a controller there, tcp_init_transfer)."""
        c: Any = self.controller
        if not hasattr(c, "on_established"):
            return
        try:
            c.on_established(srtt)
            self._take_values()
        except Exception as exc:  # noqa: BLE001
            self._fall_back("on_established", exc)

    def min_tso_segs(self, default: int) -> int:
        """The fewest segments of a GSO packet: what the controller's optional `min_tso_segs()` says (Linux
        ca_ops->min_tso_segs: BBR's depends on its pacing rate), else `default` (tcp_min_tso_segs)."""
        c: Any = self.controller
        if not hasattr(c, "min_tso_segs"):
            return default
        try:
            return max(int(c.min_tso_segs()), 1)
        except Exception as exc:  # noqa: BLE001
            self._fall_back("min_tso_segs", exc)
            return default

    # ---------------------------------------------------------------- containment

    def _take_values(self) -> None:
        """Read cwnd, ssthresh and pacing_rate back; anything unusable raises (and is contained)."""
        c: Any = self.controller  # whatever a user's controller holds: checked here, not by its annotations
        seen = (c.cwnd, c.ssthresh, getattr(c, "pacing_rate", None))
        if seen == self._seen:
            return  # unchanged since they were last checked (the common case on every segment sent)
        cwnd = _number(seen[0], "cwnd")
        ssthresh = _number(seen[1], "ssthresh")
        pacing = seen[2]
        if pacing is not None:
            pacing = _number(pacing, "pacing_rate")
        # a window below one segment would stall the connection: one MSS is the floor (RFC 5681 §3.1)
        self._cwnd = max(min(int(cwnd), _MAX_WINDOW), self.mss)
        self._ssthresh = max(min(int(ssthresh), _MAX_WINDOW), 2 * self.mss)
        self.pacing_rate = float(pacing) if pacing is not None else None
        self._seen = seen

    def _fall_back(self, hook_name: str, exc: Exception) -> None:
        failure = f"{self.name}.{hook_name} failed: {type(exc).__name__}: {exc}"
        if self.name not in _logged:
            _logged.add(self.name)
            log.error("congestion control %s; falling back to reno", failure, exc_info=exc)
        else:
            log.debug("congestion control %s; falling back to reno", failure)
        self.failure = failure
        reno = Reno(self.mss, self.initial_window_segments)
        reno.cwnd, reno.ssthresh = self.cwnd, self.ssthresh  # the last values the controller got right
        reno.in_recovery = self.in_recovery
        self.controller = reno
        self.owns_recovery_window = False
        self.name = "reno"
        self.pacing_rate = None


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive finite number, got {value!r}")
    return value
