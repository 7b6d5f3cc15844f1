"""The send buffer: bytes the application queued, from SND.UNA on (sent but unacknowledged, then unsent).

The bytes are copied once, on SEND, into arenas: bytearrays written front to back, never written again
while anything views them, so a segment's payload is a read-only view into an arena, not a copy; one
more copy puts it into the packet (the kernel's, from the view, on a TUN device with offloads; else the
batch builder's), and a segment that straddles two arenas is joined, one copy more. ACKs drop whole
arenas; a view still held elsewhere (a queued segment, the pcap) keeps its arena alive, unchanged. A
full-sized arena that nothing views any more goes to a small spare list instead, and the next bulk
write takes it as it is: a bulk sender then allocates, zeroes and faults in no new memory per megabyte.

The buffer also keeps where Linux's socket buffers (skbs) would end, because Linux charges a sender for
the memory its queue takes, not for its bytes (sk_wmem_queued): each skb costs SKB_OVERHEAD besides its
data. A write fills the last unsent skb and starts new ones (write_queue.py); sending cuts an skb where
a GSO packet ends (tso_fragment), so the unsent rest is an skb of its own; an ACK frees the skbs it
covers whole (tcp_clean_rtx_queue) and trims the one it covers in part.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from stack.wire.seq import MOD as _MOD

_MASK = _MOD - 1  # (sequence arithmetic inlined: these run for every segment sent and ACK taken)
_HALF = _MOD >> 1
_ARENA_MIN = 2048  # a small write takes a small arena
_ARENA_MAX = 1 << 20  # a bulk sender's arenas grow to this (or to one write, if larger)
# what an empty skb of Linux's write queue costs (SKB_TRUESIZE of tcp_stream_alloc_skb's head on x86-64:
# a 1 KB kmalloc for MAX_TCP_HEADER and skb_shared_info, 704 usable, plus the sk_buff and shared info)
SKB_OVERHEAD = 1280
_SPARES_MAX = 4  # full-sized arenas kept for reuse, for the whole process (4 MB at most)
_spares: list[bytearray] = []


def _unviewed(arena: bytearray) -> bool:
    """No view of the arena is left anywhere: a bytearray with exported buffers cannot be resized."""
    try:
        arena.append(0)
    except BufferError:
        return False
    arena.pop()
    return True


def _drop(arena: bytearray, view: memoryview) -> None:
    """An arena the buffer no longer needs: a spare if it is full-sized and nothing views it."""
    try:
        view.release()  # (its slices, if any are left, keep their own hold on the arena)
    except BufferError:
        return  # a buffer taken from the view itself is still held
    if len(arena) == _ARENA_MAX and len(_spares) < _SPARES_MAX and _unviewed(arena):
        _spares.append(arena)


def _new_arena(size: int) -> bytearray:
    """An arena of `size` bytes: a spare when there is one that size (its old bytes are never read:
    only what an append wrote is)."""
    if size == _ARENA_MAX and _spares:
        return _spares.pop()
    return bytearray(size)


class SendBuffer:
    __slots__ = ("_arenas", "_head", "_fill", "_len", "seq", "_base", "_ends", "_new_skb")

    def __init__(self) -> None:
        # each arena and a read-only view of it; an empty tuple while there is none (idle connections)
        self._arenas: list[tuple[bytearray, memoryview]] | tuple[()] = ()
        self._head = 0  # where the first byte held is in the first arena
        self._fill = 0  # bytes written into the last arena (the others are full)
        self._len = 0
        self.seq = 0  # sequence number of the first byte held
        # positions in the byte stream, which never wrap (bisect compares them as they are): the first
        # byte held is at _base (the bytes acknowledged so far), and each skb ends at one of _ends, in
        # order, the first starting at _base; () while empty
        self._base = 0
        self._ends: list[int] | tuple[()] = ()
        self._new_skb = False  # the next byte appended starts an skb

    def __len__(self) -> int:
        return self._len

    def offset(self, seq: int) -> int:
        """Index of sequence number `seq` in the buffer (negative before it: seq_sub, inlined)."""
        d = (seq - self.seq) & _MASK
        return d - _MOD if d >= _HALF else d

    def append(self, data: bytes, limit: int, reserve: int = 0) -> int:
        """Queue up to `limit` bytes of data (copied: the caller may reuse its buffer); returns how many
        were taken. `reserve`: the whole write is this long, so a new arena makes room for all of it and
        its segments stay views of one arena."""
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
                want = max(n, reserve)
                size = max(want - done, min(_ARENA_MAX, max(_ARENA_MIN, 2 * (self._len + want))))
                arena = _new_arena(size)
                arenas.append((arena, memoryview(arena).toreadonly()))
                self._fill, room = 0, size
            m = min(room, n - done)
            arenas[-1][0][self._fill : self._fill + m] = src[done : done + m]
            self._fill += m
            done += m
        self._len += n
        end = self._base + self._len
        if not self._ends:
            self._ends = [end]
        elif self._new_skb:
            self._ends.append(end)
        else:
            self._ends[-1] = end
        self._new_skb = False
        return n

    # ------------------------------------------------------------------ the skbs

    @property
    def truesize(self) -> int:
        """What Linux would charge for the queue (sk_wmem_queued): the bytes and each skb's overhead."""
        return self._len + len(self._ends) * SKB_OVERHEAD

    @property
    def skbs(self) -> int:
        return len(self._ends)

    def start_skb(self) -> None:
        """The next append starts a new skb (the last one is full, or ends a record)."""
        self._new_skb = True

    def tail(self) -> tuple[int, int] | None:
        """(start, length) of the last skb, None if there is none or the next append starts one."""
        ends = self._ends
        if not ends or self._new_skb:
            return None
        start = ends[-2] if len(ends) > 1 else self._base
        return (self.seq + start - self._base) & _MASK, ends[-1] - start

    def skb_end(self, seq: int) -> int | None:
        """Where the skb holding sequence number `seq` ends."""
        ends = self._ends
        i = bisect_right(ends, self._base + self.offset(seq))
        return (self.seq + ends[i] - self._base) & _MASK if i < len(ends) else None

    def split(self, seq: int) -> None:
        """Cut the skb holding `seq` there (Linux tso_fragment: the rest becomes an skb of its own)."""
        off = self.offset(seq)
        if off <= 0 or off >= self._len:
            return
        ends = self._ends
        at = self._base + off
        i = bisect_left(ends, at)
        if isinstance(ends, list) and i < len(ends) and ends[i] != at:
            ends.insert(i, at)

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
        n = min(max(self.offset(ack), 0), self._len)
        if n:
            self.seq = (self.seq + n) & _MASK
            self._base += n
            self._len -= n
            if not self._len:
                self.clear()
                return n
            ends = self._ends
            done = bisect_right(ends, self._base)  # the skbs acknowledged whole are freed
            if done and isinstance(ends, list):
                del ends[:done]
            head = self._head + n
            arenas = self._arenas
            while head >= len(arenas[0][0]):  # (the last arena still holds bytes)
                arena, view = arenas.pop(0)
                head -= len(arena)
                _drop(arena, view)
            self._head = head
        return n

    def clear(self) -> None:
        for arena, view in self._arenas:
            _drop(arena, view)
        self._arenas = ()
        self._head = self._fill = self._len = 0
        self._ends = ()
        self._new_skb = False
