"""RACK: time-based loss detection (RFC 8985 §6).

A segment is lost when a segment sent after it has been delivered and more than an RTT plus a
reordering window has passed since it was sent. Pure bookkeeping: the connection feeds it the
records each ACK delivered and asks which outstanding records are lost, or when to ask again.
"""

from __future__ import annotations

from typing import Final

from stack.tcp.scoreboard import Scoreboard, SentSegment, sent_before

DUP_THRESH: Final = 3  # RFC 8985 §6.2 step 4 uses RFC 5681's DupThresh for the reordering window
_REO_WND_MULT_MAX: Final = 255  # as Linux (reo_wnd_steps); the window itself is capped at SRTT (§6.2 step 4)
_CLOCK: Final = 1e-6  # Linux's RACK clock: microseconds
_REO_WND_PERSIST: Final = 16  # recoveries before a grown window shrinks back (RFC 8985 §6.2 step 4)


class Rack:
    __slots__ = (
        "xmit_ts",
        "end",
        "rtt",
        "min_rtt",
        "reordering_seen",
        "reo_wnd_mult",
        "_reo_wnd_persist",
        "_dsack_round_end",
    )

    def __init__(self) -> None:
        self.xmit_ts = -1.0  # send time of the most recently sent segment that was delivered
        self.end = -1  # and its end offset (ties on time are broken by sequence)
        self.rtt = 0.0  # RTT measured on that segment
        self.min_rtt: float | None = None
        self.reordering_seen = False
        self.reo_wnd_mult = 1
        self._reo_wnd_persist = 0
        self._dsack_round_end: int | None = None

    def on_delivered(self, rec: SentSegment, now: float, ts_says_original: bool = False) -> None:
        """RFC 8985 §6.2 steps 1-3 for one newly ACKed or SACKed record."""
        # a timer's `now` is its deadline, up to a tick ahead of the clock an ACK reads: never below 0,
        # as Linux's tcp_stamp_us_delta clamps
        rtt = max(now - rec.xmit_ts, 0.0)
        if rec.retransmitted:
            # step 2: the ACK may be for the original transmission; ignore it when that is possible (sooner
            # than min_rtt by a microsecond or more: Linux compares whole ones, tcp_rack_advance)
            if ts_says_original or (self.min_rtt is not None and rtt <= self.min_rtt - _CLOCK):
                return
        if self.min_rtt is None or rtt < self.min_rtt:
            self.min_rtt = rtt
        # RFC 8985 §6.2 step 3 keeps the RTT of the most recently sent segment delivered; Linux
        # (tcp_rack_advance) that of the last one delivered, in the order the ACK delivers them (SACK blocks
        # by sequence, then the cumulative ACK). We follow Linux.
        self.rtt = rtt
        if rec.xmit_ts > self.xmit_ts or (rec.xmit_ts == self.xmit_ts and rec.end > self.end):
            self.xmit_ts = rec.xmit_ts
            self.end = rec.end

    def on_dsack(self, snd_max_off: int) -> None:
        """Step 4: a D-SACK means we retransmitted needlessly; widen the window once per round trip."""
        if self._dsack_round_end is None or self.end >= self._dsack_round_end:
            self._dsack_round_end = snd_max_off
            self.reo_wnd_mult = min(self.reo_wnd_mult + 1, _REO_WND_MULT_MAX)
            self._reo_wnd_persist = _REO_WND_PERSIST

    def on_recovery_end(self) -> None:
        if self._reo_wnd_persist:
            self._reo_wnd_persist -= 1
            if not self._reo_wnd_persist:
                self.reo_wnd_mult = 1

    def reo_wnd(
        self, in_recovery: bool, sacked_segments: int, srtt: float | None, dupthresh: int = DUP_THRESH
    ) -> float:
        """RFC 8985 §6.2 step 4: no window before reordering is seen once loss is evident. `dupthresh` is
        the connection's reordering degree, which Linux compares the SACKed segments with (tcp_rack_reo_wnd)."""
        if not self.reordering_seen and (in_recovery or sacked_segments >= dupthresh):
            return 0.0
        if self.min_rtt is None:
            return 0.0
        wnd = self.reo_wnd_mult * self.min_rtt / 4
        return min(wnd, srtt) if srtt is not None else wnd

    def detect_loss(self, board: Scoreboard, now: float, reo_wnd: float) -> tuple[list[SentSegment], float | None]:
        """Step 5: mark lost every record sent before the last delivered one whose time is up.
        Returns the newly lost records and, if some may still be lost, seconds until that is known."""
        lost: list[SentSegment] = []
        wait: float | None = None
        if self.xmit_ts < 0:
            return lost, None
        # neither SACKed nor lost, oldest first, those sent together in sequence order
        for rec in board.by_send_time():
            if not sent_before(rec, self.xmit_ts, self.end):
                break  # this and all after it were sent after the last delivered segment, or with it
            remaining = rec.xmit_ts + self.rtt + reo_wnd - now
            if remaining < _CLOCK:  # due now (times are floats; Linux counts whole microseconds)
                if board.mark_lost(rec):
                    lost.append(rec)
            else:
                # none sent after it is due either; the one sent last before the delivered segment has
                # the longest to wait (the RFC's max over them all)
                last = board.last_sent_before(rec, self.xmit_ts, self.end)
                wait = last.xmit_ts + self.rtt + reo_wnd - now
                break
        lost.sort(key=_start)  # in sequence order
        return lost, wait


def _start(rec: SentSegment) -> int:
    return rec.start
