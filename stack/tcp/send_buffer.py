"""The send buffer: bytes the application queued, from SND.UNA on (sent but unacknowledged, then unsent).

One bytearray: ACKs drop a prefix (CPython's bytearray does that without moving the rest), segments
copy their payload out once through a memoryview.
"""

from __future__ import annotations

from stack.wire.seq import seq_add, seq_sub


class SendBuffer:
    __slots__ = ("_buf", "seq")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.seq = 0  # sequence number of the first byte held

    def __len__(self) -> int:
        return len(self._buf)

    def offset(self, seq: int) -> int:
        """Index of sequence number `seq` in the buffer."""
        return seq_sub(seq, self.seq)

    def append(self, data: bytes, limit: int) -> int:
        """Queue up to `limit` bytes of data; returns how many were taken."""
        n = min(len(data), max(limit, 0))
        if n == len(data):
            self._buf += data
        elif n:
            self._buf += memoryview(data)[:n]
        return n

    def take(self, offset: int, n: int) -> bytes:
        """A copy of n bytes from `offset`, for a segment's payload."""
        if n <= 0:
            return b""
        with memoryview(self._buf) as view:
            return bytes(view[offset : offset + n])

    def ack(self, ack: int) -> int:
        """Forget the bytes before sequence number `ack`; returns how many were freed."""
        n = min(max(seq_sub(ack, self.seq), 0), len(self._buf))
        if n:
            del self._buf[:n]
            self.seq = seq_add(self.seq, n)
        return n

    def clear(self) -> None:
        self._buf.clear()
