"""Out-of-order receive queue (RFC 9293 §3.10.7.4, seventh step): hold segments beyond RCV.NXT."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from stack.wire.seq import seq_add, seq_sub


class Reassembly:
    """Disjoint runs of held bytes, sorted; duplicates and overlaps are stored once.

    Runs are keyed by their distance from an anchor sequence number (RCV.NXT when the first run was
    added), so they sort as plain ints across the 2**32 wrap. Each insert touches only the runs it
    overlaps (bisect), and the byte count is kept, not summed.

    The queue is bounded by bytes and by runs (each run sits behind its own hole). Beyond a bound the
    data furthest from RCV.NXT goes first, as Linux's tcp_prune_ofo_queue drops from the highest sequence
    number: the new segment itself when it lies above what is held, else held data above it. The sender
    keeps everything not cumulatively acknowledged (RFC 2018 §8), so it is sent again.
    """

    __slots__ = ("_anchor", "_starts", "_runs", "bytes_held", "fin_seq", "max_bytes", "max_runs")

    def __init__(self, max_bytes: int = 1 << 30, max_runs: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self.max_runs = max_runs
        self._anchor = 0
        self._starts: list[int] = []  # run start offsets from _anchor, ascending
        self._runs: list[bytes] = []  # run data, parallel to _starts
        self.bytes_held = 0
        self.fin_seq: int | None = None  # sequence number of a FIN seen out of order

    def __len__(self) -> int:
        return len(self._runs)

    def __bool__(self) -> bool:  # as __len__ says (compiled code tests an optional one by __bool__ only)
        return bool(self._runs)

    def add(self, rcv_nxt: int, seq: int, data: bytes | memoryview) -> int:
        """Insert data starting at seq (> rcv_nxt), keeping only bytes not already held; returns how many
        bytes (new or held) the bounds made it drop, 0 normally."""
        if not data:
            return 0
        self._insert(rcv_nxt, seq, data)
        if len(self._runs) <= self.max_runs and self.bytes_held <= self.max_bytes:
            return 0
        return self._prune()

    def clear(self) -> None:
        """Drop everything held (memory pressure: the sender still has it, RFC 2018 §8); a FIN held
        out of order goes too, so the peer sends it again."""
        self._starts.clear()
        self._runs.clear()
        self.bytes_held = 0
        self.fin_seq = None

    def drop_from(self, seq: int) -> int:
        """Drop every held byte at or beyond `seq` (at or beyond RCV.NXT), and a FIN held out of order,
        which lies above them; how many bytes went."""
        self.fin_seq = None
        starts, runs = self._starts, self._runs
        if not runs:
            return 0
        cut = seq_sub(seq, self._anchor)
        dropped = 0
        while runs and starts[-1] >= cut:
            starts.pop()
            dropped += len(runs.pop())
        if runs and starts[-1] + len(runs[-1]) > cut:
            keep = cut - starts[-1]
            dropped += len(runs[-1]) - keep
            runs[-1] = runs[-1][:keep]
        self.bytes_held -= dropped
        return dropped

    def _prune(self) -> int:
        """Drop from the highest sequence number down until both bounds hold."""
        starts, runs = self._starts, self._runs
        dropped = 0
        while len(runs) > self.max_runs:
            starts.pop()
            dropped += len(runs.pop())
        excess = self.bytes_held - dropped - self.max_bytes
        while excess > 0:
            last = runs[-1]
            if len(last) <= excess:
                starts.pop()
                runs.pop()
                cut = len(last)
            else:
                runs[-1] = last[: len(last) - excess]
                cut = excess
            dropped += cut
            excess -= cut
        self.bytes_held -= dropped
        self.fin_seq = None  # a FIN held out of order lies at the top: it went first
        return dropped

    def _insert(self, rcv_nxt: int, seq: int, data: bytes | memoryview) -> None:
        if not self._runs:
            self._anchor = rcv_nxt
        start = seq_sub(seq, self._anchor)
        end = start + len(data)
        starts, runs = self._starts, self._runs
        # the runs that overlap or touch [start, end) are merged into one
        lo = bisect_right(starts, start) - 1
        if lo < 0 or starts[lo] + len(runs[lo]) < start:
            lo += 1
        hi = bisect_left(starts, end + 1)
        if lo == hi:
            starts.insert(lo, start)
            runs.insert(lo, bytes(data))
            self.bytes_held += len(data)
            return
        first_start = starts[lo]
        last_end = starts[hi - 1] + len(runs[hi - 1])
        new_start = min(start, first_start)
        parts: list[bytes | memoryview] = []
        if start < first_start:
            parts.append(data[: first_start - start])
        cursor = first_start
        for i in range(lo, hi):
            s, run = starts[i], runs[i]
            if s > cursor:  # the gap between two held runs is filled from the new data
                parts.append(data[cursor - start : s - start])
            parts.append(run)
            cursor = s + len(run)
        if end > last_end:
            parts.append(data[last_end - start :])
        merged = b"".join(parts)
        self.bytes_held += len(merged) - sum(len(r) for r in runs[lo:hi])
        starts[lo:hi] = [new_start]
        runs[lo:hi] = [merged]

    def pop_ready(self, rcv_nxt: int) -> bytes:
        """Bytes now contiguous with rcv_nxt (trimming any overlap with what was already delivered)."""
        if not self._runs:
            return b""
        cursor = seq_sub(rcv_nxt, self._anchor)
        starts, runs = self._starts, self._runs
        out = b""
        n = 0
        while n < len(starts) and starts[n] <= cursor:
            end = starts[n] + len(runs[n])
            if end > cursor:
                out = runs[n][cursor - starts[n] :]
            n += 1  # runs are disjoint and not adjacent, so at most one reaches past the cursor
        if n:
            self.bytes_held -= sum(len(r) for r in runs[:n])
            del starts[:n]
            del runs[:n]
        if cursor > 1 << 30:  # keep offsets far from the 2**31 limit of seq_sub on long transfers
            self._anchor = rcv_nxt
            self._starts = [s - cursor for s in starts]
        return out

    def first_run(self) -> tuple[int, int] | None:
        """The lowest held run as (left, right) edges (None when nothing is held)."""
        if not self._runs:
            return None
        a, start = self._anchor, self._starts[0]
        return seq_add(a, start), seq_add(a, start + len(self._runs[0]))

    def reach_end(self) -> int | None:
        """The sequence number after the highest byte held (None when nothing is)."""
        if not self._runs:
            return None
        return seq_add(self._anchor, self._starts[-1] + len(self._runs[-1]))

    def overlapping(self, seq: int, end: int) -> list[tuple[int, int]]:
        """The held runs that share a byte with [seq, end), as (left, right) edges (found by bisection)."""
        if not self._runs or seq == end:
            return []
        a = self._anchor
        start, stop = seq_sub(seq, a), seq_sub(end, a)
        starts, runs = self._starts, self._runs
        lo = bisect_right(starts, start) - 1
        if lo < 0 or starts[lo] + len(runs[lo]) <= start:
            lo += 1
        hi = bisect_left(starts, stop)
        return [(seq_add(a, starts[i]), seq_add(a, starts[i] + len(runs[i]))) for i in range(lo, hi)]

    def sack_blocks(self) -> list[tuple[int, int]]:
        """Held runs as (left, right) edges (RFC 2018 §3); adjacent runs are already merged."""
        a = self._anchor
        return [(seq_add(a, s), seq_add(a, s + len(r))) for s, r in zip(self._starts, self._runs, strict=True)]
