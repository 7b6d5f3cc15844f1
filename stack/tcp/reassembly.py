"""Out-of-order receive queue (RFC 9293 §3.10.7.4, seventh step): hold segments beyond RCV.NXT."""

from __future__ import annotations

from stack.wire.seq import seq_add, seq_sub


class Reassembly:
    """Non-overlapping (offset-from-anchor, bytes) runs; duplicates and overlaps are stored once."""

    __slots__ = ("_runs", "fin_seq")

    def __init__(self) -> None:
        self._runs: list[tuple[int, bytes]] = []  # (seq, data), sorted by seq relative to rcv_nxt
        self.fin_seq: int | None = None  # sequence number of a FIN seen out of order

    def __len__(self) -> int:
        return len(self._runs)

    @property
    def bytes_held(self) -> int:
        return sum(len(d) for _, d in self._runs)

    def add(self, rcv_nxt: int, seq: int, data: bytes) -> None:
        """Insert data starting at seq (> rcv_nxt); keeps only bytes not already held."""
        start = seq_sub(seq, rcv_nxt)
        end = start + len(data)
        runs = [(seq_sub(s, rcv_nxt), d) for s, d in self._runs]
        pieces: list[tuple[int, bytes]] = []
        cursor = start
        for s, d in runs:
            e = s + len(d)
            if e <= cursor or s >= end:
                continue
            if s > cursor:
                pieces.append((cursor, data[cursor - start : s - start]))
            cursor = max(cursor, e)
        if cursor < end:
            pieces.append((cursor, data[cursor - start :]))
        merged = sorted(runs + pieces)
        self._runs = [(seq_add(rcv_nxt, s), d) for s, d in merged]

    def pop_ready(self, rcv_nxt: int) -> bytes:
        """Bytes now contiguous with rcv_nxt (trimming any overlap with what was already delivered)."""
        out: list[bytes] = []
        cursor = rcv_nxt
        keep: list[tuple[int, bytes]] = []
        for s, d in self._runs:
            off = seq_sub(cursor, s)
            if off >= len(d):
                continue  # entirely old
            if off >= 0:
                out.append(d[off:])
                cursor = seq_add(cursor, len(d) - off)
            else:
                keep.append((s, d))
        self._runs = keep
        return b"".join(out)

    def sack_blocks(self) -> list[tuple[int, int]]:
        """Held runs as (left, right) edges, merged where adjacent (RFC 2018 §3)."""
        blocks: list[list[int]] = []
        for s, d in self._runs:
            if blocks and blocks[-1][1] == s:
                blocks[-1][1] = seq_add(s, len(d))
            else:
                blocks.append([s, seq_add(s, len(d))])
        return [(a, b) for a, b in blocks]
