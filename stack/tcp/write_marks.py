"""What the application's writes said about the bytes they queued: where PSH goes, where records end, and
whether the sender should wait for more (MSG_MORE, TCP_CORK).

Linux keeps these on the skbs of its write queue; here they are positions in the sequence space:
- PSH (RFC 9293 §3.9.1 SEND "PUSH flag"): Linux marks the last byte of every write that is not
  MSG_MORE (tcp_push, tcp_mark_push), so a segment, first sent or resent, carries PSH when it ends where
  such a write ended, unless a later write added bytes to the skb that write ended in (the flag is the
  skb's; tcp_sendmsg_locked clears it then), and the end of a record (below) is always pushed; so is
  the end of a full skb a long write filled more than half the peer's largest window past the last PSH
  (forced_push, write_queue.py).
- MSG_EOR (Linux tcp_sendmsg, "eor"): the write ends a record; no segment, first sent or retransmitted,
  ever carries bytes of both sides of that boundary.
- MSG_MORE: the writer has more to say, so a partial last segment waits (as under TCP_CORK) until the next
  write or an ACK pushes the queue (Linux's tcp_push with TCP_NAGLE_CORK for that call only).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable

from stack.wire.seq import seq_gt, seq_sub


class RecordEnds:
    """The ends of MSG_EOR records not yet acknowledged, ascending: found by bisection, so that a writer of
    many tiny records costs a logarithm per segment, not a walk over every record in flight."""

    __slots__ = ("_ends", "_start", "flagless")

    def __init__(self) -> None:
        self._ends: list[int] = []
        self._start = 0  # the first live end; the ones before it were acknowledged
        # (as WriteMarks' forced PSH marks) a pushed_end whose mark is not a write's own one there: the
        # list holds it (forced, or kept by keep_pushed), or it moved with its skb's end (WriteMarks.moved)
        self.flagless: int | None = None

    def __len__(self) -> int:
        return len(self._ends) - self._start

    def __bool__(self) -> bool:  # as __len__ says (compiled code tests an optional one by __bool__ only)
        return len(self._ends) != self._start

    def append(self, end: int) -> None:
        self._ends.append(end)

    def _key(self) -> Callable[[int], int]:
        base = self._ends[self._start]  # every live end lies within one send buffer of it
        return lambda seq: seq_sub(seq, base)

    def first_after(self, seq: int) -> int | None:
        key = self._key()
        i = bisect_right(self._ends, key(seq), lo=self._start, key=key)
        return self._ends[i] if i < len(self._ends) else None

    def _index(self, seq: int) -> int:
        """Where the live end at `seq` is in the list, -1 if there is none."""
        if self._start == len(self._ends):
            return -1  # none left
        key = self._key()
        i = bisect_left(self._ends, key(seq), lo=self._start, key=key)
        return i if i < len(self._ends) and self._ends[i] == seq else -1

    def __contains__(self, seq: int) -> bool:
        return self._index(seq) >= 0

    def move(self, old: int, new: int) -> bool:
        """The end at `old`, if there is one, goes to `new`, before the next end (or onto it)."""
        i = self._index(old)
        if i < 0:
            return False
        if i + 1 < len(self._ends) and self._ends[i + 1] == new:
            del self._ends[i]
        else:
            self._ends[i] = new
        return True

    def discard(self, seq: int) -> None:
        """Forget the end at `seq`, if there is one."""
        i = self._index(seq)
        if i < 0:
            return
        del self._ends[i]
        if self._start == len(self._ends):
            self._ends.clear()
            self._start = 0

    def drop_through(self, seq: int) -> None:
        """Forget the ends at or before `seq`."""
        key = self._key()
        self._start = bisect_right(self._ends, key(seq), lo=self._start, key=key)
        if self._start == len(self._ends):
            self._ends.clear()
            self._start = 0
        elif self._start > 64 and 2 * self._start > len(self._ends):
            del self._ends[: self._start]  # amortized: each end is moved at most once more
            self._start = 0


class WriteMarks:
    __slots__ = ("pushed_end", "more", "push_once", "_records", "_forced")  # one per connection

    def __init__(self) -> None:
        self.pushed_end: int | None = None  # where the last PSH mark was put (Linux pushed_seq)
        self.more = False  # the last write was MSG_MORE and nothing has pushed the queue since
        self.push_once = False  # TCP_NODELAY was just set: send what is queued now, corked or not
        self._records: RecordEnds | None = None  # made at the first MSG_EOR
        # PSH marks a long write forced, that moved with the end of their skb, or that a write left on an
        # skb it did not add to (keep_pushed), not yet acknowledged
        self._forced: RecordEnds | None = None

    def wrote(self, end: int, more: bool, eor: bool) -> None:
        """A write queued bytes up to sequence number `end`."""
        self.more = more and not eor
        if not self.more:
            self.pushed_end = end
        if eor:
            if self._records is None:
                self._records = RecordEnds()
            self._records.append(end)

    def keep_pushed(self, snd_una: int) -> None:
        """The next write starts a new skb: the last write's own PSH mark stays where it is, as Linux keeps
        PSH as a flag of the skb and clears it only when a later write adds bytes to that skb
        (tcp_sendmsg_locked)."""
        end = self.pushed_end
        forced = self._forced
        if end is None or not seq_gt(end, snd_una) or (forced is not None and forced.flagless == end):
            return  # no mark, one on acknowledged data, or one the list holds already (forced, moved)
        forced = self._forced_marks()
        forced.append(end)
        forced.flagless = end

    def force_push(self, end: int) -> None:
        """A long write marks PSH at `end`, in the middle of the write (Linux forced_push)."""
        forced = self._forced_marks()
        forced.append(end)
        forced.flagless = self.pushed_end = end

    def moved(self, old: int, new: int) -> None:
        """The skb that ended at `old` ends at `new` now, having taken bytes of the next one (Linux
        tcp_grow_skb): a PSH mark at `old` goes with it, as Linux keeps PSH as a flag of the skb; Linux's
        pushed_seq stays where it was."""
        forced = self._forced
        if forced is not None and forced.move(old, new):
            return
        if old == self.pushed_end and (forced is None or forced.flagless != old):
            # a write's own mark: every forced one lies before it, so `new` goes last
            forced = self._forced_marks()
            forced.append(new)
            forced.flagless = old

    def appended(self, old: int, new: int, first: bool) -> None:
        """A write added bytes to the unsent skb that ended at `old` and ends at `new` now. Linux keeps PSH
        as the skb's flag: a forced mark there goes with the skb's end, unless these are the first bytes
        of a write, which clear the flag (tcp_sendmsg_locked)."""
        forced = self._forced
        if forced is None:
            return
        if first:
            forced.discard(old)
        else:
            forced.move(old, new)

    def _forced_marks(self) -> RecordEnds:
        """The list of kept PSH marks, made at its first mark (a connection that never needs one has none)."""
        if self._forced is None:
            self._forced = RecordEnds()
        return self._forced

    def pushed_seq(self, start: int) -> int:
        """Where the last PSH mark is; `start` (the first byte queued) before any."""
        return start if self.pushed_end is None else self.pushed_end

    def ends_record(self, end: int) -> bool:
        """A MSG_EOR record ends at `end`: the skb there takes no more bytes."""
        return self._records is not None and end in self._records

    def unsent_in_record(self, snd_nxt: int, unsent: int) -> int:
        """Of the `unsent` bytes from snd_nxt, how many belong to the record snd_nxt is in."""
        records = self._records
        if not records:
            return unsent
        end = records.first_after(snd_nxt)
        return unsent if end is None else min(unsent, seq_sub(end, snd_nxt))

    def pushes(self, end: int) -> bool:
        """A segment ending at sequence number `end` carries PSH."""
        forced = self._forced
        return (
            (end == self.pushed_end and (forced is None or forced.flagless != end))
            or (self._records is not None and end in self._records)
            or (forced is not None and end in forced)
        )

    def acked(self, snd_una: int) -> None:
        """Records the peer acknowledged whole need no boundary any more."""
        if self._records:
            self._records.drop_through(snd_una)
        if self._forced:
            self._forced.drop_through(snd_una)
            if not self._forced:
                self._forced = None  # (an idle connection keeps no list)

    def clear(self) -> None:
        self.pushed_end = None
        self.more = self.push_once = False
        self._records = self._forced = None
