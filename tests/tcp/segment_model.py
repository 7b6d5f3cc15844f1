"""A reference for the scoreboard: one record per segment, every operation a plain walk over the list.

Written to be obviously right rather than fast; the property tests hold the run-level scoreboard
(stack/tcp/scoreboard.py) to it. Positions are stream offsets; sequence numbers do not appear.
"""

from __future__ import annotations


class Piece:
    __slots__ = ("start", "end", "xmit_ts", "retransmitted", "sacked", "lost")

    def __init__(self, start: int, end: int, xmit_ts: float) -> None:
        self.start, self.end, self.xmit_ts = start, end, xmit_ts
        self.retransmitted = self.sacked = self.lost = False

    @property
    def length(self) -> int:
        return self.end - self.start

    def key(self) -> tuple:
        return (self.start, self.end, self.xmit_ts, self.retransmitted, self.sacked, self.lost)


class SegmentModel:
    def __init__(self) -> None:
        self.recs: list[Piece] = []
        self.una = 0

    def __iter__(self):
        return iter(list(self.recs))

    @property
    def sacked_bytes(self) -> int:
        return sum(r.length for r in self.recs if r.sacked)

    @property
    def lost_bytes(self) -> int:
        return sum(r.length for r in self.recs if r.lost)

    def in_flight(self) -> int:
        return sum(r.length for r in self.recs if not r.sacked and not r.lost)

    @property
    def pipe_packets(self) -> int:
        return sum(1 for r in self.recs if not r.sacked and not r.lost)

    @property
    def sacked_packets(self) -> int:
        return sum(1 for r in self.recs if r.sacked)

    def _cut(self, at: int) -> None:
        for i, r in enumerate(self.recs):
            if r.start < at < r.end:
                tail = Piece(at, r.end, r.xmit_ts)
                tail.retransmitted, tail.sacked, tail.lost = r.retransmitted, r.sacked, r.lost
                r.end = at
                self.recs.insert(i + 1, tail)
                return

    def sent(self, start: int, length: int, now: float, seg: int) -> int:
        """A run of `seg`-byte segments from `start` (each one its own record); returns how many
        segments were retransmissions."""
        top = self.recs[-1].end if self.recs else self.una
        resent = 0
        for s in range(start, start + length, seg):
            e = min(s + seg, start + length)
            if s >= top:
                self.recs.append(Piece(s, e, now))
                continue
            self._cut(s)
            self._cut(min(e, top))
            for r in self.recs:
                if s <= r.start and r.end <= min(e, top):
                    r.lost, r.retransmitted, r.xmit_ts = False, True, now
                    resent += 1
            if e > top:
                self.recs.append(Piece(top, e, now))
        return resent

    def mark_lost(self, rec: Piece) -> bool:
        if rec.sacked or rec.lost:
            return False
        rec.lost = True
        return True

    def mark_all_lost(self) -> None:
        for r in self.recs:
            self.mark_lost(r)

    def mark_lost_on_timeout(self, sent_by: float) -> None:
        for i, r in enumerate(self.recs):
            if i == 0 or r.xmit_ts <= sent_by:
                self.mark_lost(r)

    def mark_lost_from(self, offset: int) -> None:
        for r in self.recs:
            if r.start >= offset:
                self.mark_lost(r)

    def forget_losses(self, retransmitted_too: bool) -> None:
        for r in self.recs:
            if r.lost and (retransmitted_too or not r.retransmitted):
                r.lost = False

    def first_lost(self) -> Piece | None:
        return next((r for r in self.recs if r.lost), None)

    def first(self) -> Piece | None:
        return self.recs[0] if self.recs else None

    def last(self) -> Piece | None:
        return self.recs[-1] if self.recs else None

    def first_from(self, offset: int) -> Piece | None:
        return next((r for r in self.recs if r.start >= offset), None)

    def sacked_below(self, upto: int) -> int:
        return sum(min(r.end, upto) - r.start for r in self.recs if r.sacked and r.start < upto)

    def ack(self, upto: int) -> list[Piece]:
        self._cut(upto)
        delivered = [r for r in self.recs if r.end <= upto and not r.sacked]
        self.recs = [r for r in self.recs if r.end > upto]
        self.una = upto
        return delivered

    def sack(self, left: int, right: int) -> list[Piece]:
        newly = []  # whole segments only (Linux tcp_match_skb_to_sack)
        for r in self.recs:
            if left <= r.start and r.end <= right and not r.sacked:
                r.sacked, r.lost = True, False
                newly.append(r)
        return newly

    def resegment(self, size: int) -> bool:
        cut = False
        for r in list(self.recs):
            if r.length > size and not r.sacked:
                cut = True
                start, end = r.start, r.end
                for at in range(start + size, end, size):
                    self._cut(at)
                for p in self.recs:
                    if start <= p.start < end:
                        p.lost = True
        return cut


def detect_loss(rack, model: SegmentModel, now: float, reo_wnd: float) -> tuple[list[Piece], float | None]:
    """RFC 8985 §6.2 step 5 on the reference, walking every record in sequence order."""
    lost: list[Piece] = []
    wait: float | None = None
    if rack.xmit_ts < 0:
        return lost, None
    for rec in model.recs:
        if rec.sacked or rec.lost:
            continue
        if rec.xmit_ts > rack.xmit_ts or (rec.xmit_ts == rack.xmit_ts and rec.end >= rack.end):
            continue
        remaining = rec.xmit_ts + rack.rtt + reo_wnd - now
        if remaining < 1e-6:
            model.mark_lost(rec)
            lost.append(rec)
        else:
            wait = remaining if wait is None else max(wait, remaining)
    return lost, wait
