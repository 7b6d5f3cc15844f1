"""The send buffer: bytes the application queued, from SND.UNA on (sent but unacknowledged, then unsent).

The bytes live in arenas, each a run of the stream, so that a segment's payload is a read-only view
into an arena, not a copy. What cannot change is kept as it is: a large part of an immutable buffer
(bytes, or a view of bytes) becomes an arena of its own, a view of the application's bytes, and SEND
copies nothing. What can change (a bytearray, a view of one) and small writes are copied once, into
bytearrays written front to back and never written again while anything views them. One more copy puts
a payload into the packet (the kernel's, from the view, on a TUN device with offloads; else the batch
builder's), and a segment that straddles two arenas is joined, one copy more. ACKs drop whole arenas; a
view still held elsewhere (a queued segment, the pcap) keeps its arena alive, unchanged. A full-sized
copy arena that nothing views any more goes to a small spare list instead, and the next bulk write takes
it as it is: a bulk sender then allocates, zeroes and faults in no new memory per megabyte.

The buffer also keeps where Linux's socket buffers (skbs) would end, because Linux charges a sender for
the memory its queue takes, not for its bytes (sk_wmem_queued): each skb costs SKB_OVERHEAD besides its
data. A write fills the last unsent skb and starts new ones (write_queue.py); sending cuts an skb where
a GSO packet ends (tso_fragment), so the unsent rest is an skb of its own, and lets an skb shorter than
a packet take bytes from the next one (tcp_grow_skb); an ACK frees the skbs it covers whole
(tcp_clean_rtx_queue) and trims the one it covers in part.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Final, TypeAlias

from stack.wire.seq import MOD as _MOD

_MASK: Final = _MOD - 1  # (sequence arithmetic inlined: these run for every segment sent and ACK taken)
_HALF: Final = _MOD >> 1
_ARENA_MIN: Final = 2048  # a small write takes a small arena
_ARENA_MAX: Final = 1 << 20  # a bulk sender's arenas grow to this (or to one write, if larger)
# what an empty skb of Linux's write queue costs (SKB_TRUESIZE of tcp_stream_alloc_skb's head on x86-64,
# Linux 6.18: a 576-byte small head for MAX_TCP_HEADER and skb_shared_info, 256 usable, plus the sk_buff
# and shared info; measured: the data a nonblocking write queues against a given SO_SNDBUF)
SKB_OVERHEAD: Final = 832
_SPARES_MAX: Final = 4  # full-sized arenas kept for reuse, for the whole process (4 MB at most)
# an immutable write keeps at least this much of itself as an arena; less is copied (few small arenas)
_KEEP_MIN: Final = 16384
# a kept arena keeps its whole bytes object alive: all of them together at most twice the bytes held and
# this much more, so that small parts of large objects cannot hold much memory
_PIN_SLACK: Final = 256 * 1024
_spares: list[bytearray] = []
# an arena and a read-only view of it: a copy arena is a bytearray, a kept one the bytes object (or view of
# one) a write handed over
_Arena: TypeAlias = tuple[bytes | bytearray | memoryview, memoryview]


def _unviewed(arena: bytearray) -> bool:
    """No view of the arena is left anywhere: a bytearray with exported buffers cannot be resized."""
    try:
        arena.append(0)
    except BufferError:
        return False
    arena.pop()
    return True


def _drop(arena: bytes | bytearray | memoryview, view: memoryview) -> None:
    """An arena the buffer no longer needs: a spare if it is a full-sized copy arena and nothing views it."""
    try:
        view.release()  # (its slices, if any are left, keep their own hold on the arena)
    except BufferError:
        return  # a buffer taken from the view itself is still held
    if type(arena) is bytearray and len(arena) == _ARENA_MAX and len(_spares) < _SPARES_MAX and _unviewed(arena):
        _spares.append(arena)


def _immutable_size(data: bytes | bytearray | memoryview) -> int:
    """The size of the bytes object whose bytes `data` is or views (nothing can change them), 0 if it
    views anything else."""
    if type(data) is bytes:
        return len(data)
    if type(data) is memoryview and type(data.obj) is bytes:
        return len(data.obj)
    return 0


def _new_arena(size: int) -> bytearray:
    """An arena of `size` bytes: a spare when there is one that size (its old bytes are never read:
    only what an append wrote is)."""
    if size == _ARENA_MAX and _spares:
        return _spares.pop()
    return bytearray(size)


class SendBuffer:
    __slots__ = ("_arenas", "_origins", "_fill", "_kept_at", "_pinned", "_len", "seq", "_base", "_ends", "_new_skb")

    def __init__(self) -> None:
        # each arena and a read-only view of it; an empty tuple while there is none (idle connections).
        # A copy arena is a bytearray; a kept one is the view a write handed over, its view the part of it
        # from where the arena starts. Every arena's view but the last holds exactly its bytes; the last
        # holds _fill of them (and a kept one already has the rest of its write in place).
        self._arenas: list[_Arena] | tuple[()] = ()
        # the stream position of each arena's first byte, for bisect (see _base); () while none
        self._origins: list[int] | tuple[()] = ()
        self._fill = 0  # bytes written into (or kept of) the last arena
        self._kept_at = 0  # where in its write the last arena, if kept, goes on
        self._pinned = 0  # the sizes of the bytes objects the kept arenas view
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

    def __bool__(self) -> bool:  # as __len__ says (compiled code tests an optional one by __bool__ only)
        return self._len != 0

    def offset(self, seq: int) -> int:
        """Index of sequence number `seq` in the buffer (negative before it: seq_sub, inlined)."""
        d = (seq - self.seq) & _MASK
        return d - _MOD if d >= _HALF else d

    def append(self, data: bytes | bytearray | memoryview, limit: int, reserve: int = 0, start: int = 0) -> int:
        """Queue up to `limit` bytes of data[start:]; returns how many were taken. Immutable bytes are kept
        as they are, the others copied (the caller may reuse its buffer). `reserve`: the whole write is this
        long, so a new copy arena makes room for all of it and its segments stay views of one arena. A
        caller that queues a write in parts hands the same `data` with a growing `start`: the parts of a
        kept write then extend its arena."""
        n = min(len(data) - start, max(limit, 0))
        if n <= 0:
            return 0
        arenas = self._arenas
        if arenas and arenas[-1][0] is data and self._kept_at == start:  # the kept write goes on: in place
            self._fill += n
            self._kept_at += n
        else:
            pin = _immutable_size(data)
            if pin and n >= _KEEP_MIN and self._pinned + pin <= 2 * (self._len + n) + _PIN_SLACK:
                self._keep(data, start, n, pin)
            else:  # (an immutable write's rest that will be kept needs no room here)
                self._copy(data, start, n, n if pin and reserve - n >= _KEEP_MIN else max(n, reserve))
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

    def _close_last(self) -> tuple[list[_Arena], list[int]]:
        """The arenas and their origins, the last arena made to hold exactly its bytes if it is a kept one (a
        new arena follows it; a copy arena is full when one follows, _keep and _copy see to it)."""
        arenas, origins = self._arenas, self._origins
        if not arenas or not origins:  # (both or neither)
            arenas = self._arenas = []
            origins = self._origins = []
        elif type(arenas[-1][0]) is not bytearray and len(arenas[-1][1]) != self._fill:
            arena, view = arenas[-1]
            arenas[-1] = (arena, view[: self._fill])
        return arenas, origins

    def _copy_room(self) -> int:
        """Bytes the last arena still takes by copy: 0 if there is none or it is a kept one."""
        arenas = self._arenas
        return len(arenas[-1][0]) - self._fill if arenas and type(arenas[-1][0]) is bytearray else 0

    def _keep(self, data: bytes | bytearray | memoryview, start: int, n: int, pin: int) -> None:
        """n bytes of the immutable data[start:]: what the last copy arena has room for is copied into it
        (so that it is full), the rest becomes an arena of its own, a view of data; all is copied if that
        rest would be small."""
        arenas, origins = self._close_last()
        room = self._copy_room()
        if n - room < _KEEP_MIN:
            self._copy(data, start, n, n)
            return
        if room:
            arenas[-1][0][self._fill :] = memoryview(data)[start : start + room]  # type: ignore[index]  # (room: a copy arena)
        arenas.append((data, memoryview(data)[start + room :]))  # (data, as handed, names the write)
        self._pinned += pin
        origins.append(self._base + self._len + room)
        self._fill = n - room
        self._kept_at = start + n

    def _copy(self, data: bytes | bytearray | memoryview, start: int, n: int, want: int) -> None:
        """Copy n bytes of data[start:] into copy arenas: the last one's room, then new ones."""
        src = memoryview(data).cast("B")  # (a slice of bytes would be a copy of its own)
        after_kept = type(self._arenas[-1][0]) is not bytearray if self._arenas else False
        arenas, origins = self._close_last()
        done = 0
        while done < n:
            room = self._copy_room()
            if room == 0:
                # a bulk sender's arenas grow to _ARENA_MAX; after a kept arena, only what this write needs
                grow = 0 if after_kept else 2 * (self._len + want)
                size = max(want - done, min(_ARENA_MAX, max(_ARENA_MIN, grow)))
                arena = _new_arena(size)
                arenas.append((arena, memoryview(arena).toreadonly()))
                origins.append(self._base + self._len + done)
                self._fill, room = 0, size
                after_kept = False
            m = min(room, n - done)
            arenas[-1][0][self._fill : self._fill + m] = src[start + done : start + done + m]  # type: ignore[index]  # (a copy arena)
            self._fill += m
            done += m

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

    def grow(self, end: int, n: int) -> int | None:
        """The skb that ends at sequence number `end` takes up to `n` bytes from the next one, and the
        whole of it if that is all it holds (Linux tcp_grow_skb); returns where the skb ends now, None if
        no skb follows it."""
        ends = self._ends
        at = self._base + self.offset(end)
        i = bisect_left(ends, at)
        if i + 1 >= len(ends) or ends[i] != at or not isinstance(ends, list):
            return None
        grown = min(at + n, ends[i + 1])
        if grown == ends[i + 1]:
            del ends[i]
        else:
            ends[i] = grown
        return (self.seq + grown - self._base) & _MASK

    def take(self, offset: int, n: int) -> bytes | memoryview:
        """n bytes from `offset`, for a segment's payload: a read-only view into the arena that holds them."""
        if n <= 0:
            return b""
        pos = self._base + offset
        origins = self._origins
        i = bisect_right(origins, pos) - 1
        at = pos - origins[i]
        view = self._arenas[i][1]
        if at + n <= len(view):  # (the last arena's view may be longer than what it holds: n never is)
            return view[at : at + n]
        return self._join(i, at, n)

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
            base = self._base = self._base + n
            self._len -= n
            if not self._len:
                self.clear()
                return n
            ends = self._ends
            done = bisect_right(ends, base)  # the skbs acknowledged whole are freed
            if done and isinstance(ends, list):
                del ends[:done]
            arenas, origins = self._arenas, self._origins
            # each first arena acknowledged whole goes (the arenas are a list while bytes are held)
            while len(origins) > 1 and origins[1] <= base and isinstance(arenas, list):
                del origins[0]
                arena, view = arenas.pop(0)
                if type(arena) is not bytearray:
                    self._pinned -= _immutable_size(arena)  # (what _keep added for it)
                _drop(arena, view)
        return n

    def clear(self) -> None:
        for arena, view in self._arenas:
            _drop(arena, view)
        self._arenas = self._origins = ()
        self._fill = self._kept_at = self._pinned = self._len = 0
        self._ends = ()
        self._new_skb = False
