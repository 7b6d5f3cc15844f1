"""The send buffer: bytes the application queued, from SND.UNA on (sent but unacknowledged, then unsent).

The bytes are copied once, on SEND, into arenas: fixed-size bytearrays written front to back and never
written again, so a segment's payload is a read-only view into an arena, not a copy; the device's
batch builder copies it once into the packet (a segment that straddles two arenas is joined, one copy
more). ACKs drop whole arenas; a view still held elsewhere (a queued segment, the pcap) keeps its
arena alive, unchanged.
"""

from __future__ import annotations

from stack.wire.seq import seq_add, seq_sub

_ARENA_MIN = 2048  # a small write takes a small arena
_ARENA_MAX = 1 << 20  # a bulk sender's arenas grow to this (or to one write, if larger)


class SendBuffer:
    __slots__ = ("_arenas", "_head", "_fill", "_len", "seq")

    def __init__(self) -> None:
        # each arena and a read-only view of it; an empty tuple while there is none (idle connections)
        self._arenas: list[tuple[bytearray, memoryview]] | tuple[()] = ()
        self._head = 0  # where the first byte held is in the first arena
        self._fill = 0  # bytes written into the last arena (the others are full)
        self._len = 0
        self.seq = 0  # sequence number of the first byte held

    def __len__(self) -> int:
        return self._len

    def offset(self, seq: int) -> int:
        """Index of sequence number `seq` in the buffer."""
        return seq_sub(seq, self.seq)

    def append(self, data: bytes, limit: int) -> int:
        """Queue up to `limit` bytes of data (copied: the caller may reuse its buffer); returns how many
        were taken."""
        n = min(len(data), max(limit, 0))
        if n <= 0:
            return 0
        src = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        arenas = self._arenas
        if not arenas:
            arenas = self._arenas = []
        done = 0
        while done < n:
            room = len(arenas[-1][0]) - self._fill if arenas else 0
            if room == 0:
                size = max(n - done, min(_ARENA_MAX, max(_ARENA_MIN, 2 * (self._len + n))))
                arena = bytearray(size)
                arenas.append((arena, memoryview(arena).toreadonly()))
                self._fill, room = 0, size
            m = min(room, n - done)
            arenas[-1][0][self._fill : self._fill + m] = src[done : done + m]
            self._fill += m
            done += m
        self._len += n
        return n

    def take(self, offset: int, n: int) -> bytes:
        """n bytes from `offset`, for a segment's payload: a read-only view into the arena that holds them."""
        if n <= 0:
            return b""
        pos = offset + self._head
        for i, (arena, view) in enumerate(self._arenas):
            size = len(arena)
            if pos < size:
                if pos + n <= size:
                    return view[pos : pos + n]
                return self._join(i, pos, n)
            pos -= size
        raise IndexError("take beyond the buffer")

    def _join(self, i: int, pos: int, n: int) -> bytes:
        """n bytes from `pos` in arena i on, across arenas (a copy)."""
        pieces = []
        for _arena, view in self._arenas[i:]:
            piece = view[pos : pos + n]
            pieces.append(piece)
            n -= len(piece)
            pos = 0
            if not n:
                break
        return b"".join(pieces)

    def ack(self, ack: int) -> int:
        """Forget the bytes before sequence number `ack`; returns how many were freed."""
        n = min(max(seq_sub(ack, self.seq), 0), self._len)
        if n:
            self.seq = seq_add(self.seq, n)
            self._len -= n
            if not self._len:
                self.clear()
                return n
            head = self._head + n
            arenas = self._arenas
            while head >= len(arenas[0][0]):  # (the last arena still holds bytes)
                head -= len(arenas.pop(0)[0])
            self._head = head
        return n

    def clear(self) -> None:
        self._arenas = ()
        self._head = self._fill = self._len = 0
