"""What we sent and what became of it: one record per segment between SND.UNA and SND.MAX.

The sender's scoreboard of RFC 6675 §3, kept per transmitted segment as RACK (RFC 8985 §5.2) needs:
each record knows when it was last sent, whether that was a retransmission, whether the receiver
SACKed it and whether loss detection declared it lost. Positions are stream offsets (bytes since the
first data byte), plain ints that never wrap; `seq_of`/`offset_of` convert at the edges.
"""

from __future__ import annotations

from bisect import bisect_right

from stack.wire.seq import seq_add, seq_sub


class SentSegment:
    __slots__ = ("start", "end", "xmit_ts", "retransmitted", "sacked", "lost")

    def __init__(self, start: int, end: int, xmit_ts: float) -> None:
        self.start = start
        self.end = end  # one past the last offset; a FIN counts as one
        self.xmit_ts = xmit_ts  # when it was last (re)transmitted
        self.retransmitted = False
        self.sacked = False
        self.lost = False  # declared lost and not sent again since

    @property
    def length(self) -> int:
        return self.end - self.start

    def __repr__(self) -> str:
        marks = "".join(m for m, on in (("R", self.retransmitted), ("S", self.sacked), ("L", self.lost)) if on)
        return f"<{self.start}:{self.end} @{self.xmit_ts:.3f} {marks}>"


class Scoreboard:
    __slots__ = ("_segs", "_starts", "_base_seq", "_base_off", "sacked_bytes", "lost_bytes")

    def __init__(self, first_seq: int) -> None:
        self._segs: list[SentSegment] = []
        self._starts: list[int] = []  # record starts, for bisect
        self._base_seq = first_seq  # sequence number of offset _base_off
        self._base_off = 0
        self.sacked_bytes = 0
        self.lost_bytes = 0  # lost and not yet retransmitted

    # ------------------------------------------------------------------ positions

    def offset_of(self, seq: int) -> int:
        return self._base_off + seq_sub(seq, self._base_seq)

    def seq_of(self, offset: int) -> int:
        return seq_add(self._base_seq, offset - self._base_off)

    def __len__(self) -> int:
        return len(self._segs)

    def __iter__(self):
        return iter(self._segs)

    @property
    def outstanding(self) -> int:
        segs = self._segs
        return segs[-1].end - segs[0].start if segs else 0

    def in_flight(self) -> int:
        """RFC 6675 §4 "pipe": sent bytes neither SACKed nor lost (retransmissions count again)."""
        return self.outstanding - self.sacked_bytes - self.lost_bytes

    # ------------------------------------------------------------------ sending

    def sent(self, seq: int, length: int, now: float) -> list[SentSegment]:
        """Record a transmission of [seq, seq+length): new data is appended, data sent before is marked
        retransmitted. Returns the records that were retransmissions."""
        start = self.offset_of(seq)
        end = start + length
        segs = self._segs
        resent: list[SentSegment] = []
        top = segs[-1].end if segs else start
        if start < top:
            for rec in self._split_range(start, min(end, top)):
                if rec.lost:
                    rec.lost = False
                    self.lost_bytes -= rec.length
                rec.retransmitted = True
                rec.xmit_ts = now
                resent.append(rec)
            start = top
        if end > start:
            segs.append(SentSegment(start, end, now))
            self._starts.append(start)
        return resent

    def mark_lost(self, rec: SentSegment) -> bool:
        """Declare a record lost (not SACKed, not already lost); True if it was newly marked."""
        if rec.sacked or rec.lost:
            return False
        rec.lost = True
        self.lost_bytes += rec.length
        return True

    def mark_all_lost(self) -> None:
        """Every record the receiver does not hold is lost (a retransmission timeout, RFC 5681 §3.1)."""
        for rec in self._segs:
            self.mark_lost(rec)

    def forget_losses(self, retransmitted_too: bool) -> None:
        """What was marked lost is in flight after all (a spurious timeout, an undone recovery); with
        `retransmitted_too` False only the records never resent are."""
        for rec in self._segs:
            if rec.lost and (retransmitted_too or not rec.retransmitted):
                rec.lost = False
                self.lost_bytes -= rec.length

    def first_lost(self) -> SentSegment | None:
        if self.lost_bytes:
            for rec in self._segs:
                if rec.lost:
                    return rec
        return None

    def last(self) -> SentSegment | None:
        return self._segs[-1] if self._segs else None

    def first(self) -> SentSegment | None:
        return self._segs[0] if self._segs else None

    # ------------------------------------------------------------------ acknowledgments

    def sacked_below(self, ack_seq: int) -> int:
        """Bytes below ack_seq the peer had SACKed already: a cumulative ACK of them delivers nothing new."""
        upto = self.offset_of(ack_seq)
        return sum(min(rec.end, upto) - rec.start for rec in self._segs if rec.sacked and rec.start < upto)

    def ack(self, ack_seq: int) -> list[SentSegment]:
        """Cumulative ACK up to ack_seq: drops the records it covers (a record cut in two keeps its
        tail). Returns the records delivered by this ACK that were not SACKed before."""
        upto = self.offset_of(ack_seq)
        segs = self._segs
        n = bisect_right(self._starts, upto - 1)  # records starting before upto
        if n and segs[n - 1].end > upto:
            self._split(n - 1, upto)
        delivered = [rec for rec in segs[:n] if not rec.sacked]
        for rec in segs[:n]:
            if rec.sacked:
                self.sacked_bytes -= rec.length
            if rec.lost:
                self.lost_bytes -= rec.length
        del segs[:n]
        del self._starts[:n]
        self._base_seq = ack_seq
        self._base_off = upto
        return delivered

    def sack(self, left_seq: int, right_seq: int) -> list[SentSegment]:
        """Mark [left, right) SACKed; returns the records newly SACKed."""
        left, right = self.offset_of(left_seq), self.offset_of(right_seq)
        segs = self._segs
        if not segs:
            return []
        left = max(left, segs[0].start)
        right = min(right, segs[-1].end)
        if left >= right:
            return []
        newly = []
        for rec in self._split_range(left, right):
            if not rec.sacked:
                rec.sacked = True
                self.sacked_bytes += rec.length
                if rec.lost:
                    rec.lost = False
                    self.lost_bytes -= rec.length
                newly.append(rec)
        return newly

    def resegment(self, size: int) -> bool:
        """Cut every record not SACKed that is longer than `size` into pieces of at most `size` bytes and
        mark the pieces lost (the whole segment was dropped for being too big); True if any was cut."""
        cut = False
        i = 0
        while i < len(self._segs):
            rec = self._segs[i]
            if rec.length > size and not rec.sacked:
                cut = True
                while rec.length > size:
                    self._split(i, rec.start + size)
                    self.mark_lost(rec)
                    i += 1
                    rec = self._segs[i]
                self.mark_lost(rec)
            i += 1
        return cut

    def clear(self) -> None:
        self._segs.clear()
        self._starts.clear()
        self.sacked_bytes = self.lost_bytes = 0

    # ------------------------------------------------------------------ splitting

    def _split_range(self, start: int, end: int) -> list[SentSegment]:
        """The records exactly covering [start, end), splitting the ones that straddle its edges."""
        starts = self._starts
        i = bisect_right(starts, start) - 1
        if i < 0:
            i = 0
        if self._segs[i].start < start < self._segs[i].end:
            self._split(i, start)
            i += 1
        j = i
        segs = self._segs
        while j < len(segs) and segs[j].start < end:
            if segs[j].end > end:
                self._split(j, end)
            j += 1
        return segs[i:j]

    def _split(self, i: int, at: int) -> None:
        """Cut record i at offset `at`; both halves keep its marks and send time."""
        rec = self._segs[i]
        tail = SentSegment(at, rec.end, rec.xmit_ts)
        tail.retransmitted, tail.sacked, tail.lost = rec.retransmitted, rec.sacked, rec.lost
        rec.end = at
        self._segs.insert(i + 1, tail)
        self._starts.insert(i + 1, at)
