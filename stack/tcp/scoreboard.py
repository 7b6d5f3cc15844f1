"""What we sent and what became of it, between SND.UNA and SND.MAX, one record per run of segments.

The sender's scoreboard of RFC 6675 §3, with what RACK (RFC 8985 §5.2) needs: each record knows when it
was last sent, whether that was a retransmission, whether the receiver SACKed it and whether loss
detection declared it lost. A record holds a run of segments sent together with the same marks: a run
of `seg`-byte segments from `anchor` on (a TSO super-segment is recorded with O(1) work), or one
segment (`seg` its length). The segments are its pieces: cut at every multiple of `seg` from `anchor`,
and at the record's own ends. A record is split where a SACK block, a cumulative ACK or a mark
divides it, and a piece is split off where one segment alone is resent or declared lost (RFC 6675
§5: a lost segment is resent alone), so every answer is the one a record per segment would give.
Positions are stream offsets (bytes since the first data byte), plain ints that never wrap;
`seq_of`/`offset_of` convert at the edges.

Besides the sequence order, the records neither SACKed nor lost are chained in the order they were
(last) sent, oldest first, as Linux's tsorted list: RACK walks that chain only as far as the last
delivered segment's send time, and no operation on one ACK walks the whole flight.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator

from stack.tcp.counters import Counters
from stack.wire.seq import seq_add, seq_sub


class SentSegment:
    __slots__ = ("start", "end", "xmit_ts", "retransmitted", "sacked", "lost", "seg", "anchor", "prev", "next")

    def __init__(self, start: int, end: int, xmit_ts: float, seg: int = 0, anchor: int | None = None) -> None:
        self.start = start
        self.end = end  # one past the last offset; a FIN counts as one
        self.xmit_ts = xmit_ts  # when it was last (re)transmitted
        self.retransmitted = False
        self.sacked = False
        self.lost = False  # declared lost and not sent again since
        self.seg = seg or end - start  # the size of its segments, cut from `anchor` on
        self.anchor = start if anchor is None else anchor
        # neighbours in send-time order while neither SACKed nor lost (None: not in that chain)
        self.prev: SentSegment | None = None
        self.next: SentSegment | None = None

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def segments(self) -> int:
        """How many segments (pieces) it holds."""
        seg, anchor = self.seg, self.anchor
        return (self.end - anchor - 1) // seg - (self.start - anchor) // seg + 1

    def boundary_after(self, offset: int) -> int:
        """The first piece boundary beyond `offset` (the record's end at most)."""
        seg, anchor = self.seg, self.anchor
        return min(anchor + ((offset - anchor) // seg + 1) * seg, self.end)

    @property
    def first_length(self) -> int:
        """The length of its first piece."""
        return self.boundary_after(self.start) - self.start

    def pieces(self) -> list[tuple[int, int]]:
        """Its segments as (start, end) offsets."""
        out = []
        start = self.start
        while start < self.end:
            end = self.boundary_after(start)
            out.append((start, end))
            start = end
        return out

    def __repr__(self) -> str:
        marks = "".join(m for m, on in (("R", self.retransmitted), ("S", self.sacked), ("L", self.lost)) if on)
        run = f" x{self.segments}" if self.segments > 1 else ""
        return f"<{self.start}:{self.end}{run} @{self.xmit_ts:.3f} {marks}>"


class Scoreboard:
    __slots__ = (
        "_segs",
        "_starts",
        "_base_seq",
        "_base_off",
        "sacked_bytes",
        "sacked_packets",
        "lost_bytes",
        "lost_packets",
        "pipe_packets",
        "retrans_packets",
        "_chain",
        "_lost_from",
        "_counters",
        "_sacked_ranges",
    )

    def __init__(self, first_seq: int, counters: Counters | None = None) -> None:
        self._segs: list[SentSegment] = []
        self._starts: list[int] = []  # record starts, for bisect
        self._base_seq = first_seq  # sequence number of offset _base_off
        self._base_off = 0
        self.sacked_bytes = 0
        self.sacked_packets = 0  # the segments among them (Linux's sacked_out)
        self.lost_bytes = 0  # lost and not yet retransmitted
        self.lost_packets = 0  # the segments among them
        # segments neither SACKed nor lost, the records in the send-time chain: Linux's
        # tcp_packets_in_flight, which a congestion window in packets is checked against
        self.pipe_packets = 0
        self.retrans_packets = 0  # the segments among them that were resent (Linux's retrans_out)
        self._chain: SentSegment | None = None  # the send-time chain's ends meet here (None: empty)
        self._lost_from = 0  # no record before this offset is lost
        self._counters = counters  # the connection's, for resends presumed lost again
        # ranges (offsets) of SACK blocks taken: every whole piece inside one is SACKed, so a block that
        # repeats or extends one starts its work where it ends (Linux's recv_sack_cache in
        # tcp_sacktag_write_queue). Their ends were piece boundaries and pieces are only ever cut, so no
        # piece that is not SACKed lies inside one (forget_sacks, and join_next, which makes one piece of two,
        # forget them); None while there are none
        self._sacked_ranges: list[tuple[int, int]] | None = None

    # ------------------------------------------------------------------ positions

    def offset_of(self, seq: int) -> int:
        return self._base_off + seq_sub(seq, self._base_seq)

    def seq_of(self, offset: int) -> int:
        return seq_add(self._base_seq, offset - self._base_off)

    def __len__(self) -> int:
        return len(self._segs)

    def __bool__(self) -> bool:  # as __len__ says (compiled code tests an optional one by __bool__ only)
        return bool(self._segs)

    def __iter__(self):
        return iter(self._segs)

    @property
    def segments(self) -> int:
        """Segments outstanding (the pieces of every record, each in flight, SACKed or lost: Linux's
        packets_out)."""
        return self.pipe_packets + self.sacked_packets + self.lost_packets

    def one_segment_out(self) -> bool:
        """Exactly one segment is outstanding (`segments` == 1, without summing over the records)."""
        segs = self._segs
        return len(segs) == 1 and segs[0].segments == 1

    @property
    def outstanding(self) -> int:
        segs = self._segs
        return segs[-1].end - segs[0].start if segs else 0

    # ------------------------------------------------------------------ sending

    def sent(self, seq: int, length: int, now: float, seg: int = 0) -> list[SentSegment]:
        """Record a transmission of [seq, seq+length), a run of `seg`-byte segments (one segment when 0):
        new data is appended as one record, data sent before is marked retransmitted. Returns the records
        that were retransmissions."""
        start = self._base_off + seq_sub(seq, self._base_seq)
        end = start + length
        segs = self._segs
        top = segs[-1].end if segs else start
        if start >= top:  # new data: the common case
            if end > start:
                rec = SentSegment(start, end, now, seg)
                segs.append(rec)
                self._starts.append(start)
                self._chain_last(rec)
            return []
        resent: list[SentSegment] = []
        for rec in self._split_range(start, min(end, top)):
            if rec.lost:
                self._unmark_lost(rec)
            elif not rec.sacked:
                self._unchain(rec)  # to be chained again as the last sent
            rec.retransmitted = True
            rec.xmit_ts = now
            if not rec.sacked:
                self._chain_last(rec)
            resent.append(rec)
        if end > top:
            rec = SentSegment(top, end, now, seg or length, start)
            segs.append(rec)
            self._starts.append(top)
            self._chain_last(rec)
        return resent

    def mark_lost(self, rec: SentSegment) -> bool:
        """Declare a record lost (not SACKed, not already lost); True if it was newly marked."""
        if rec.sacked or rec.lost:
            return False
        if rec.retransmitted and self._counters is not None:  # a resend lost too (Linux tcp_mark_skb_lost)
            self._counters.events().lost_retransmits += rec.segments
        rec.lost = True
        self.lost_bytes += rec.length
        self.lost_packets += rec.segments
        self._unchain(rec)
        if rec.start < self._lost_from:
            self._lost_from = rec.start
        return True

    def _unmark_lost(self, rec: SentSegment) -> None:
        """A lost record is lost no more (resent, SACKed, or its mark forgotten): the counts follow."""
        rec.lost = False
        self.lost_bytes -= rec.length
        self.lost_packets -= rec.segments

    def mark_all_lost(self) -> None:
        """Every record the receiver does not hold is lost (a retransmission timeout, RFC 5681 §3.1)."""
        for rec in self._segs:
            self.mark_lost(rec)

    def mark_lost_on_timeout(self, sent_by: float) -> None:
        """A retransmission timeout: the first segment, and every other one last sent at or before
        `sent_by` that the receiver does not hold, are lost; those sent since may still arrive (Linux
        tcp_timeout_mark_lost, which spares what went out within RACK's round trip)."""
        segs = self._segs
        if segs and segs[0].xmit_ts > sent_by:
            self.mark_lost(self._head_piece(0))  # the first segment only: the rest of its run is as recent
        for rec in segs:
            if rec.xmit_ts <= sent_by:
                self.mark_lost(rec)

    def mark_lost_from(self, seq: int) -> None:
        """Every segment from `seq` on that the receiver does not hold is lost."""
        i = self._piece_index(self.offset_of(seq))
        for rec in self._segs[i:]:
            self.mark_lost(rec)

    def forget_losses(self, retransmitted_too: bool) -> None:
        """What was marked lost is in flight after all (a spurious timeout, an undone recovery); with
        `retransmitted_too` False only the records never resent are."""
        for rec in self._segs:
            if rec.lost and (retransmitted_too or not rec.retransmitted):
                self._unmark_lost(rec)
        self._rechain()

    def first_lost(self) -> SentSegment | None:
        """The first segment marked lost, split off its run."""
        if self.lost_bytes:
            segs = self._segs
            for i in range(max(bisect_right(self._starts, self._lost_from) - 1, 0), len(segs)):
                if segs[i].lost:
                    self._lost_from = segs[i].start
                    return self._head_piece(i)
        return None

    def last(self) -> SentSegment | None:
        """The last segment sent (the highest), split off its run."""
        segs = self._segs
        if not segs:
            return None
        rec = segs[-1]
        seg, anchor = rec.seg, rec.anchor
        at = anchor + (rec.end - anchor - 1) // seg * seg  # where its last piece starts
        if at > rec.start:
            self._split(len(segs) - 1, at)
        return segs[-1]

    def first(self) -> SentSegment | None:
        """The first segment outstanding, split off its run."""
        return self._head_piece(0) if self._segs else None

    def head_sent_at(self) -> float | None:
        """When the first record outstanding was last sent (Linux's rtx queue head's tstamp)."""
        segs = self._segs
        return segs[0].xmit_ts if segs else None

    def first_sent_below(self, ack_seq: int) -> float | None:
        """When the first segment below `ack_seq` not SACKed before was sent: what a cumulative ACK's RTT
        sample is timed from, as Linux times every ACK (tcp_clean_rtx_queue's first_ackt). None if any
        segment below it was ever resent (Karn's rule, RFC 6298 §3)."""
        upto = self.offset_of(ack_seq)
        sent_at: float | None = None
        for rec in self._segs:
            if rec.start >= upto:
                break
            if rec.retransmitted:
                return None
            if sent_at is None and not rec.sacked:
                sent_at = rec.xmit_ts
        return sent_at

    def head_sacked(self) -> bool:
        """The receiver SACKed the data at SND.UNA: a cumulative ACK stopped below data it said it held."""
        segs = self._segs
        return bool(segs) and segs[0].sacked

    def retransmissions_out(self) -> bool:
        """Some resent data is neither acknowledged nor SACKed (Linux tcp_any_retrans_done)."""
        return any(rec.retransmitted and not rec.sacked for rec in self._segs)

    def forget_sacks(self) -> None:
        """The receiver dropped data it had SACKed (reneging, RFC 2018 §8): none of it counts as held."""
        for rec in self._segs:
            rec.sacked = False
        self.sacked_bytes = self.sacked_packets = 0
        self._sacked_ranges = None
        self._rechain()

    def first_from(self, seq: int) -> SentSegment | None:
        """The first segment that starts at or after `seq`, split off its run."""
        i = self._piece_index(self.offset_of(seq))
        return self._head_piece(i) if i < len(self._segs) else None

    # ------------------------------------------------------------------ acknowledgments

    def sacked_below(self, ack_seq: int) -> int:
        """Bytes below ack_seq the peer had SACKed already: a cumulative ACK of them delivers nothing new."""
        if not self.sacked_bytes:
            return 0
        upto = self.offset_of(ack_seq)
        total = 0
        for rec in self._segs:
            if rec.start >= upto:
                break
            if rec.sacked:
                total += min(rec.end, upto) - rec.start
        return total

    def packets_below(self, ack_seq: int) -> int:
        """Segments a cumulative ACK of ack_seq delivers: those wholly below it, not SACKed before (a segment
        cut by the ACK counts once the ACK covers it, as Linux's tcp_tso_acked counts)."""
        upto = self.offset_of(ack_seq)
        total = 0
        for rec in self._segs:
            if rec.start >= upto:
                break
            if not rec.sacked:
                if rec.end <= upto:
                    total += rec.segments
                else:
                    total += (upto - rec.anchor) // rec.seg - (rec.start - rec.anchor) // rec.seg
        return total

    def ack(self, ack_seq: int) -> list[SentSegment]:
        """Cumulative ACK up to ack_seq: drops the records it covers (a record cut in two keeps its
        tail). Returns the records delivered by this ACK that were not SACKed before."""
        upto = self.offset_of(ack_seq)
        segs = self._segs
        n = bisect_right(self._starts, upto - 1)  # records starting before upto
        if n and segs[n - 1].end > upto:
            self._split(n - 1, upto)
        if self.sacked_bytes or self.lost_bytes:
            delivered = []
            for rec in segs[:n]:
                if rec.sacked:
                    self.sacked_bytes -= rec.length
                    self.sacked_packets -= rec.segments
                else:
                    delivered.append(rec)
                if rec.lost:
                    self.lost_bytes -= rec.length
                    self.lost_packets -= rec.segments
                self._unchain(rec)
        else:
            delivered = segs[:n]
            for rec in delivered:
                self._unchain(rec)
        del segs[:n]
        del self._starts[:n]
        if not segs:
            self._drop_chain()  # every record left it
            self._sacked_ranges = None
        self._base_seq = ack_seq
        self._base_off = upto
        return delivered

    def sack(self, left_seq: int, right_seq: int) -> list[SentSegment]:
        """Mark the segments wholly inside [left, right) SACKed; returns the records newly SACKed. A block
        that covers only part of a segment says nothing of it, as in Linux (tcp_match_skb_to_sack)."""
        left, right = self.offset_of(left_seq), self.offset_of(right_seq)
        segs = self._segs
        if not segs:
            return []
        left, right = self._whole_pieces(max(left, segs[0].start), min(right, segs[-1].end))
        if left >= right:
            return []
        newly = []
        first = self._past_sacked_range(left)
        if first < right:
            for rec in self._split_range(first, right):
                if not rec.sacked:
                    rec.sacked = True
                    self.sacked_bytes += rec.length
                    self.sacked_packets += rec.segments
                    if rec.lost:
                        self._unmark_lost(rec)
                    self._unchain(rec)
                    newly.append(rec)
        self._note_sacked_range(left, right)
        return newly

    def _past_sacked_range(self, left: int) -> int:
        """Where a block from `left` (a piece boundary) has work to do: past the whole pieces of a range
        SACKed before that holds `left`, at the piece that range's end cuts, if any."""
        for low, high in self._sacked_ranges or ():
            if low <= left < high:
                return max(left, self._piece_floor(high))
        return left

    def _note_sacked_range(self, left: int, right: int) -> None:
        """Every whole piece of [left, right) (piece boundaries) is SACKed now: one range with those it
        overlaps or touches (no piece straddles `left` or `right`), the four latest kept, as Linux keeps the
        blocks of the last ACK."""
        kept: list[tuple[int, int]] = []
        for low, high in self._sacked_ranges or ():
            if low <= right and left <= high:
                left, right = min(low, left), max(high, right)
            else:
                kept.append((low, high))
        kept.insert(0, (left, right))
        self._sacked_ranges = kept[:4]

    def by_send_time(self) -> Iterator[SentSegment]:
        """The records neither SACKed nor lost, the longest sent first, those sent at the same time in
        sequence order (a record may leave the chain, by mark_lost, while it is being walked)."""
        chain = self._chain
        if chain is None:
            return
        rec = chain.next
        while rec is not chain and rec is not None:  # (linked both ways while chained)
            after = rec.next
            yield rec
            rec = after

    def last_sent_before(self, first: SentSegment, xmit_ts: float, end: int) -> SentSegment:
        """The last record of the send-time chain that was sent before (`xmit_ts`, `end`) (see
        sent_before), from `first` on, one that was: sought from both ends at once, so that it costs the
        shorter of the walks from `first` and from the last sent."""
        chain = self._chain
        ahead = first
        behind: SentSegment = chain.prev  # type: ignore[union-attr,assignment]  # (first is chained)
        while True:
            if sent_before(behind, xmit_ts, end):
                return behind  # (first at the latest)
            behind = behind.prev  # type: ignore[assignment]
            following = ahead.next
            if following is chain or not sent_before(following, xmit_ts, end):  # type: ignore[arg-type]
                return ahead
            ahead = following  # type: ignore[assignment]

    def after(self, rec: SentSegment) -> SentSegment | None:
        """The record that follows `rec` in sequence, if any."""
        i = bisect_left(self._starts, rec.end)
        segs = self._segs
        return segs[i] if i < len(segs) and segs[i].start == rec.end else None

    def join_next(self, rec: SentSegment) -> None:
        """`rec` (one segment, not SACKed) takes in the record after it (one segment, not SACKed) and stays one segment
        (Linux tcp_collapse_retrans): the packet it stood for is gone, a resend mark goes with it."""
        i = bisect_left(self._starts, rec.end)
        joined = self._segs[i]
        self._unchain(joined)
        if joined.lost:
            self.lost_bytes -= joined.length
            self.lost_packets -= 1
        if rec.lost:
            self.lost_bytes += joined.length
        del self._segs[i]
        del self._starts[i]
        rec.end = joined.end
        rec.seg = rec.end - rec.start
        rec.anchor = rec.start
        if joined.retransmitted and not rec.retransmitted:
            rec.retransmitted = True
            if rec.prev is not None:  # (in the chain)
                self.retrans_packets += 1
        self._sacked_ranges = None  # (a piece grew)

    def cut(self, rec: SentSegment, length: int) -> None:
        """Cut `rec` after its first `length` bytes (0 < length < its length); the rest becomes a record of
        its own with the same marks."""
        self._split(bisect_left(self._starts, rec.start), rec.start + length)

    def resegment(self, size: int, lost: bool = True) -> bool:
        """Cut every segment not SACKed that is longer than `size` into pieces of at most `size` bytes and
        mark the pieces lost (the whole segment was dropped for being too big), unless `lost` is False:
        then they wait to be resent by the timer; True if any was cut."""
        self._explode()
        cut = False
        i = 0
        while i < len(self._segs):
            rec = self._segs[i]
            if rec.length > size and not rec.sacked:
                cut = True
                while rec.length > size:
                    self._split(i, rec.start + size)
                    if lost:
                        self.mark_lost(rec)
                    i += 1
                    rec = self._segs[i]
                if lost:
                    self.mark_lost(rec)
            i += 1
        return cut

    def clear(self) -> None:
        self._segs.clear()
        self._starts.clear()
        self.sacked_bytes = self.sacked_packets = self.lost_bytes = self.lost_packets = 0
        self._sacked_ranges = None
        self._drop_chain()

    # ------------------------------------------------------------------ splitting

    def _piece_index(self, offset: int) -> int:
        """Index of the first record that starts at or after the first piece boundary at or after
        `offset`, splitting the record that holds that boundary inside it."""
        i = bisect_left(self._starts, offset)
        if i:
            rec = self._segs[i - 1]
            if rec.end > offset:
                at = rec.boundary_after(offset - 1)  # the first boundary at or after offset
                if at < rec.end:
                    self._split(i - 1, at)
                    return i
        return i

    def _whole_pieces(self, left: int, right: int) -> tuple[int, int]:
        """[left, right) narrowed to the piece boundaries inside it."""
        segs = self._segs
        i = bisect_right(self._starts, left) - 1
        if i >= 0 and segs[i].start < left < segs[i].end:
            left = segs[i].boundary_after(left - 1)
        return left, self._piece_floor(right)

    def _piece_floor(self, offset: int) -> int:
        """The piece boundary at or before `offset` (itself where no record holds it inside)."""
        segs = self._segs
        j = bisect_right(self._starts, offset) - 1
        if j >= 0 and segs[j].start < offset < segs[j].end:
            rec = segs[j]
            return max(rec.anchor + (offset - rec.anchor) // rec.seg * rec.seg, rec.start)
        return offset

    def _head_piece(self, i: int) -> SentSegment:
        """Record i cut down to its first piece (the rest of its run follows as its own record)."""
        rec = self._segs[i]
        at = rec.boundary_after(rec.start)
        if at < rec.end:
            self._split(i, at)
        return rec

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
        """Cut record i at offset `at`; both halves keep its marks, send time and segment grid."""
        rec = self._segs[i]
        before = rec.segments
        tail = SentSegment(at, rec.end, rec.xmit_ts, rec.seg, rec.anchor)
        tail.retransmitted, tail.sacked, tail.lost = rec.retransmitted, rec.sacked, rec.lost
        rec.end = at
        self._segs.insert(i + 1, tail)
        self._starts.insert(i + 1, at)
        # a cut inside a segment makes two (as Linux's tcp_fragment counts them again)
        more = rec.segments + tail.segments - before
        after = rec.next
        if after is not None:  # sent at the same time: right after it in the chain
            tail.prev, tail.next = rec, after
            rec.next = after.prev = tail
            self.pipe_packets += more
            if rec.retransmitted:
                self.retrans_packets += more
        elif rec.sacked:
            self.sacked_packets += more
        elif rec.lost:
            self.lost_packets += more

    def _explode(self) -> None:
        """One record per segment (for the rare operations that work segment by segment)."""
        if all(rec.segments == 1 for rec in self._segs):
            return
        segs: list[SentSegment] = []
        for rec in self._segs:
            for start, end in rec.pieces():
                piece = SentSegment(start, end, rec.xmit_ts)
                piece.retransmitted, piece.sacked, piece.lost = rec.retransmitted, rec.sacked, rec.lost
                segs.append(piece)
        self._segs = segs
        self._starts = [rec.start for rec in segs]
        self._rechain()

    # ------------------------------------------------------------------ the send-time chain

    def _chain_last(self, rec: SentSegment) -> None:
        """Chain a record just (re)sent: at the end, behind any sent later (`now` never goes back), and
        among those sent at the same time in sequence order, so that RACK's walk can stop at the first
        one sent with or after its last delivered segment (as Linux's stops, tcp_rack_detect_loss)."""
        chain = self._chain
        if chain is None:  # made when needed: an idle connection holds none
            chain = self._chain = SentSegment(0, 0, 0.0, 1)
            chain.prev = chain.next = chain
        # (every record in the chain is linked both ways: its prev and next are never None)
        before: SentSegment = chain.prev  # type: ignore[assignment]
        sent_at, start = rec.xmit_ts, rec.start
        while before is not chain and (
            before.xmit_ts > sent_at or (before.xmit_ts == sent_at and before.start > start)
        ):
            before = before.prev  # type: ignore[assignment]
        after: SentSegment = before.next  # type: ignore[assignment]
        rec.prev, rec.next = before, after
        before.next = after.prev = rec
        self.pipe_packets += rec.segments
        if rec.retransmitted:
            self.retrans_packets += rec.segments

    def _unchain(self, rec: SentSegment) -> None:
        """Take a record out of the send-time chain (SACKed, lost or acknowledged), if it is in it."""
        before = rec.prev
        if before is not None:
            after: SentSegment = rec.next  # type: ignore[assignment]  # (chained: linked both ways)
            before.next, after.prev = after, before
            rec.prev = rec.next = None
            self.pipe_packets -= rec.segments
            if rec.retransmitted:
                self.retrans_packets -= rec.segments

    def _drop_chain(self) -> None:
        """Let the chain go: its sentinel is unlinked first, as an empty one links to itself, a cycle only
        the garbage collector would free (one per flight of a short connection)."""
        chain = self._chain
        if chain is not None:
            chain.prev = chain.next = None
            self._chain = None
        self.pipe_packets = self.retrans_packets = 0

    def _rechain(self) -> None:
        """Chain every record neither SACKed nor lost again, by send time (after marks changed wholesale)."""
        self._drop_chain()
        for rec in self._segs:
            rec.prev = rec.next = None
        for rec in sorted((r for r in self._segs if not r.sacked and not r.lost), key=_sent_at):
            self._chain_last(rec)


def sent_before(rec: SentSegment, xmit_ts: float, end: int) -> bool:
    """`rec` was sent before the segment sent at `xmit_ts` that ends at `end`: earlier, or at the same time
    and before it in sequence (Linux's tcp_skb_sent_after breaks the tie by end_seq)."""
    return rec.xmit_ts < xmit_ts or (rec.xmit_ts == xmit_ts and rec.end < end)


def _sent_at(rec: SentSegment) -> float:
    return rec.xmit_ts
