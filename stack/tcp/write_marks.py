"""What the application's writes said about the bytes they queued: where PSH goes, where records end, and
whether the sender should wait for more (MSG_MORE, TCP_CORK).

Linux keeps these on the skbs of its write queue; here they are positions in the sequence space:
- PSH (RFC 9293 §3.9.1 SEND "PUSH flag"): Linux marks the last byte of every write that is not
  MSG_MORE (tcp_push, tcp_mark_push), so a segment carries PSH when it ends where such a write ended, and
  the end of a record (below) is always pushed.
- MSG_EOR (Linux tcp_sendmsg, "eor"): the write ends a record; no segment, first sent or retransmitted,
  ever carries bytes of both sides of that boundary.
- MSG_MORE: the writer has more to say, so a partial last segment waits (as under TCP_CORK) until the next
  write or an ACK pushes the queue (Linux's tcp_push with TCP_NAGLE_CORK for that call only).
"""

from __future__ import annotations

from collections import deque

from stack.wire.seq import seq_gt, seq_le, seq_sub


class WriteMarks:
    __slots__ = ("pushed_end", "more", "push_once", "_records")  # one per connection

    def __init__(self) -> None:
        self.pushed_end: int | None = None  # where the last pushed write ended
        self.more = False  # the last write was MSG_MORE and nothing has pushed the queue since
        self.push_once = False  # TCP_NODELAY was just set: send what is queued now, corked or not
        self._records: deque[int] | None = None  # ends of MSG_EOR records not yet acknowledged, ascending

    def wrote(self, end: int, more: bool, eor: bool) -> None:
        """A write queued bytes up to sequence number `end`."""
        self.more = more and not eor
        if not self.more:
            self.pushed_end = end
        if eor:
            if self._records is None:
                self._records = deque()
            self._records.append(end)

    def unsent_in_record(self, snd_nxt: int, unsent: int) -> int:
        """Of the `unsent` bytes from snd_nxt, how many belong to the record snd_nxt is in."""
        records = self._records
        if not records:
            return unsent
        for end in records:
            if seq_gt(end, snd_nxt):
                return min(unsent, seq_sub(end, snd_nxt))
        return unsent

    def pushes(self, end: int) -> bool:
        """A segment ending at sequence number `end` carries PSH."""
        return end == self.pushed_end or (self._records is not None and end in self._records)

    def acked(self, snd_una: int) -> None:
        """Records the peer acknowledged whole need no boundary any more."""
        records = self._records
        while records and seq_le(records[0], snd_una):
            records.popleft()

    def clear(self) -> None:
        self.pushed_end = None
        self.more = self.push_once = False
        self._records = None
