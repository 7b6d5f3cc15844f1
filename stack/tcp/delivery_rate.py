"""Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation-02), sans I/O.

Every data segment sent takes a snapshot of the connection's delivery counters; when an ACK or SACK
delivers it, the bytes delivered since that snapshot over the time they took give a rate sample.
The interval is the longer of the send and the ACK intervals, so neither ACK compression nor a burst
of sends inflates the rate (draft §3.3). Samples taken while the application had nothing to send
are marked app-limited (§3.4): they show what the application offered, not what the path can carry.

The estimator also times every segment it has not retransmitted (Karn's rule), which gives an RTT
sample on nearly every ACK, and keeps the minimum RTT over the last five minutes.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Final

from stack.tcp.rate_sample import RateSample
from stack.wire.seq import seq_ge, seq_gt, seq_le, seq_lt, seq_sub

MIN_RTT_WINDOW: Final = 300.0  # seconds, as Linux's tcp_min_rtt_wlen
_MASK: Final = (1 << 32) - 1
_HALF: Final = 1 << 31


class _Sent:
    """One transmitted segment [start, end), or a run of `seg`-byte segments cut from `anchor` on that
    left together (TSO), and the counters when it left (the draft's P.*, the same for every segment of
    a run). A run is delivered segment by segment: the part delivered is split off."""

    __slots__ = (
        "start",
        "end",
        "sent_time",
        "delivered",
        "delivered_time",
        "first_sent_time",
        "app_limited",
        "retransmitted",
        "seg",
        "anchor",
        "acked",
    )

    def __init__(
        self,
        start: int,
        end: int,
        sent_time: float,
        delivered: int,
        delivered_time: float,
        first_sent_time: float,
        app_limited: bool,
        retransmitted: bool,
        seg: int,
        anchor: int,
        acked: bool = False,
    ) -> None:
        self.start = start
        self.end = end
        self.sent_time = sent_time
        self.delivered = delivered  # C.delivered when sent
        self.delivered_time = delivered_time  # C.delivered_time when sent
        self.first_sent_time = first_sent_time  # C.first_sent_time when sent
        self.app_limited = app_limited
        self.retransmitted = retransmitted
        self.seg = seg  # the size of its segments (its length: one segment)
        self.anchor = anchor  # where its first segment starts; the others follow every `seg` bytes
        self.acked = acked  # delivered already (by SACK); the draft marks this with delivered_time = 0


class DeliveryRateEstimator:
    __slots__ = (
        "delivered",
        "delivered_time",
        "first_sent_time",
        "app_limited_until",
        "min_rtt",
        "_min_rtt_stamp",
        "_segments",
        "_una",
        "_highest_end",
        "_prior_delivered",
        "_prior_time",
        "_send_elapsed",
        "_sample_app_limited",
        "_rtt",
        "_rtt_sent_time",
        "_delivered_at_reset",
    )

    def __init__(self) -> None:
        self.delivered = 0  # C.delivered: bytes ACKed or SACKed so far
        self.delivered_time = 0.0  # C.delivered_time
        self.first_sent_time = 0.0  # C.first_sent_time
        self.app_limited_until = 0  # C.app_limited: 0, or the `delivered` at which the phase ends
        self.min_rtt: float | None = None
        self._min_rtt_stamp = 0.0
        self._segments: list[_Sent] = []  # in sequence order, none acknowledged cumulatively
        self._una: int | None = None  # the base that orders sequence numbers
        self._highest_end: int | None = None
        self._reset_pending()

    def _reset_pending(self) -> None:
        self._prior_delivered: int | None = None  # rs.prior_delivered, None: nothing delivered yet
        self._prior_time = 0.0
        self._send_elapsed = 0.0
        self._sample_app_limited = False
        self._rtt: float | None = None
        self._rtt_sent_time: float | None = None
        self._delivered_at_reset = self.delivered

    @property
    def in_flight_records(self) -> int:
        return len(self._segments)

    # ---------------------------------------------------------------- sending (draft §3.2)

    def on_sent(self, seq: int, length: int, bytes_in_flight: int, now: float, seg: int = 0) -> None:
        """A segment [seq, seq+length) left, or a run of `seg`-byte segments sent together (TSO);
        `bytes_in_flight` were outstanding before it."""
        if length <= 0:
            return
        if bytes_in_flight <= 0:  # the pipe was empty: the first interval starts now
            self.first_sent_time = self.delivered_time = now
        end = (seq + length) & _MASK
        record = _Sent(
            seq,
            end,
            now,
            self.delivered,
            self.delivered_time,
            self.first_sent_time,
            self.app_limited_until != 0,
            False,
            seg or length,
            seq,
        )
        if seq == self._highest_end:  # new data right after the last: the common case, kept short
            self._segments.append(record)
            self._highest_end = end
            return
        if self._una is None:
            self._una = seq
        record.retransmitted = self._highest_end is not None and seq_lt(seq, self._highest_end)
        segments = self._segments
        if not segments or seq_ge(seq, segments[-1].end):
            segments.append(record)  # new data, the common case
        else:
            self._replace_range(record)
        if self._highest_end is None or seq_gt(end, self._highest_end):
            self._highest_end = end

    def _index_after(self, seq: int) -> int:
        """Index of the first segment that starts after `seq`."""
        base = self._una
        assert base is not None  # (set before anything is resent or SACKed)
        return bisect_right(self._segments, seq_sub(seq, base), key=lambda s: seq_sub(s.start, base))

    def _replace_range(self, new: _Sent) -> None:
        """A resend covers [start, end): it replaces what it overlaps; the parts of those segments
        outside it keep their own snapshot."""
        segments = self._segments
        i = max(self._index_after(new.start) - 1, 0)
        while i < len(segments) and seq_le(segments[i].end, new.start):
            i += 1
        j = i
        pieces: list[_Sent] = []
        all_acked = True
        while j < len(segments) and seq_lt(segments[j].start, new.end):
            old = segments[j]
            all_acked = all_acked and old.acked
            if seq_lt(old.start, new.start):
                pieces.append(_copy(old, old.start, new.start))
            if seq_gt(old.end, new.end):
                pieces.append(_copy(old, new.end, old.end))
            j += 1
        new.acked = j > i and all_acked  # resending delivered data must not count it twice
        pieces.append(new)
        base = self._una
        assert base is not None
        segments[i:j] = sorted(pieces, key=lambda s: seq_sub(s.start, base))

    # ---------------------------------------------------------------- delivery (draft §3.3)

    def on_cumulative_ack(self, ack: int, now: float) -> None:
        """Everything below `ack` arrived: deliver each whole segment below it once."""
        segments = self._segments
        n = 0
        count = len(segments)
        while n < count and (ack - segments[n].end) & _MASK < _HALF:  # seq_le(end, ack), inlined
            self._deliver(segments[n], now)
            n += 1
        if n:
            del segments[:n]
        if segments and seq_lt(segments[0].start, ack):  # the whole segments of a run below it
            s = segments[0]
            cut = (s.anchor + ((ack - s.anchor) & _MASK) // s.seg * s.seg) & _MASK
            if seq_gt(cut, s.start):
                self._deliver(_copy(s, s.start, cut), now)
                s.start = cut
        if self._una is None or seq_gt(ack, self._una):
            self._una = ack  # a segment only partly below it is delivered whole, later

    def on_sack(self, blocks: tuple[tuple[int, int], ...], now: float) -> None:
        """SACK blocks (RFC 2018): deliver each whole segment inside one of them once."""
        if not self._segments or self._una is None:
            return
        for left, right in blocks:
            if not seq_lt(left, right):
                continue
            i = max(self._index_after(left) - 1, 0)
            segments = self._segments
            while i < len(segments) and seq_lt(segments[i].start, right):
                s = segments[i]
                i += 1
                if s.acked:
                    continue
                # the part of it made of whole segments inside the block
                lo = s.start if seq_ge(s.start, left) else _boundary(s, left, 1)
                hi = s.end if seq_le(s.end, right) else _boundary(s, right, 0)
                if not seq_lt(lo, hi):
                    continue
                if lo != s.start:
                    segments.insert(i - 1, _copy(s, s.start, lo))
                    s.start = lo
                    i += 1
                if hi != s.end:
                    segments.insert(i, _copy(s, hi, s.end))
                    s.end = hi
                    i += 1
                self._deliver(s, now)
                # a delivered segment needs only its extent from now on: one record with a delivered one
                # before it, so a block that grows walks what it adds (as Linux merges SACKed skbs)
                if i >= 2:
                    before = segments[i - 2]
                    if before.acked and before.end == s.start:
                        before.end = s.end
                        del segments[i - 1]
                        i -= 1

    def _deliver(self, s: _Sent, now: float) -> None:
        """UpdateRateSample(P) of the draft."""
        if s.acked:
            return
        s.acked = True
        self.delivered += (s.end - s.start) & _MASK
        self.delivered_time = now
        if self._prior_delivered is None or s.delivered >= self._prior_delivered:
            # the most recently sent segment delivered so far decides the interval
            self._prior_delivered = s.delivered
            self._prior_time = s.delivered_time
            self._sample_app_limited = s.app_limited
            self._send_elapsed = s.sent_time - s.first_sent_time
            self.first_sent_time = s.sent_time
        if not s.retransmitted and (self._rtt_sent_time is None or s.sent_time >= self._rtt_sent_time):
            self._rtt_sent_time = s.sent_time
            self._rtt = now - s.sent_time

    def take_sample(self, now: float) -> RateSample | None:
        """GenerateRateSample() of the draft: one sample from everything delivered since the last call."""
        if self.app_limited_until and self.delivered > self.app_limited_until:
            self.app_limited_until = 0  # the app-limited phase is over
        rtt = self._rtt
        if rtt is not None:
            self._update_min_rtt(rtt, now)
        prior = self._prior_delivered
        if prior is None:
            self._reset_pending()
            return None
        delivered = self.delivered - prior
        ack_elapsed = self.delivered_time - self._prior_time
        interval = max(self._send_elapsed, ack_elapsed)
        rate: float | None = None
        # an interval shorter than the minimum RTT cannot be right (draft §3.3): no rate
        if interval > 0 and (self.min_rtt is None or interval >= self.min_rtt):
            rate = delivered / interval
        sample = RateSample(
            delivered, interval, rate, prior, self._sample_app_limited, rtt, self.delivered - self._delivered_at_reset
        )
        self._reset_pending()
        return sample

    def _update_min_rtt(self, rtt: float, now: float) -> None:
        if self.min_rtt is None or rtt <= self.min_rtt or now - self._min_rtt_stamp > MIN_RTT_WINDOW:
            self.min_rtt = rtt
            self._min_rtt_stamp = now

    # ---------------------------------------------------------------- app-limited phases (draft §3.4)

    def check_app_limited(self, unsent: int, bytes_in_flight: int, cwnd: int, mss: int, retransmitting: bool) -> None:
        """Called when the sender stops sending: less than a segment waits, nothing is being
        retransmitted and the window is not full, so the application is what limits the rate."""
        if unsent < mss and not retransmitting and bytes_in_flight < cwnd:
            self.app_limited_until = max(self.delivered + bytes_in_flight, 1)


def _copy(s: _Sent, start: int, end: int) -> _Sent:
    """The part [start, end) of `s`, with its snapshot."""
    return _Sent(
        start,
        end,
        s.sent_time,
        s.delivered,
        s.delivered_time,
        s.first_sent_time,
        s.app_limited,
        s.retransmitted,
        s.seg,
        s.anchor,
        s.acked,
    )


def _boundary(s: _Sent, seq: int, up: int) -> int:
    """The segment boundary of `s` at or after `seq` (up=1) or at or before it (up=0); `seq` lies inside s."""
    rel = (seq - s.anchor) & _MASK
    return (s.anchor + (-(-rel // s.seg) if up else rel // s.seg) * s.seg) & _MASK
