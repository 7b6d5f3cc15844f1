"""IPv4 and IPv6 fragment reassembly (RFC 791 §3.2, RFC 8200 §4.5) in bounded memory, with time passed
in as `now`. Both families share the one reassembler and its bounds; their keys never collide (an IPv6
address carries bit 128, stack/wire/addr.py). stack/ip6.py hands over IPv6 fragments as `IpPacket`s whose
header is the fixed header leading to the fragmentable part.

Any fragment that overlaps another (other than an exact duplicate) discards the whole datagram and every
later fragment of it until its timer runs out: RFC 5722's rule for IPv6, which Linux also applies to
IPv4 since 2018. Memory is charged like Linux charges an skb's truesize: the payload plus a fixed cost
per held fragment and per datagram; when a new fragment would exceed a limit, the oldest datagrams are
evicted (Linux before 4.17; later kernels drop the newcomer, which lets a flood lock legitimate
traffic out for a whole ipfrag_time).
"""

from __future__ import annotations

import bisect
import struct
from collections import Counter, OrderedDict
from dataclasses import dataclass

from stack.wire.addr import MAX4
from stack.wire.checksum import fill_ipv4_checksum
from stack.wire.codec import IpPacket

_MAX_DATAGRAM = 0xFFFF  # RFC 791 §3.1: total length is a 16-bit field
FRAGMENT_OVERHEAD = 128  # bytes charged per held fragment besides its payload (the Python objects)
DATAGRAM_OVERHEAD = 512  # bytes charged per datagram in progress (its entry, key and header)

Key = tuple[int, int, int, int]  # (source, destination, protocol, identification): RFC 791 §3.2


@dataclass(frozen=True, slots=True)
class FragmentLimits:
    high_thresh: int = 4 * 1024 * 1024  # bytes held across all datagrams (Linux ipfrag_high_thresh)
    max_datagrams: int = 4096  # datagrams in progress (and discarded ones still absorbing fragments)
    timeout: float = 30.0  # seconds from the first fragment to giving up (Linux ipfrag_time)


class _Datagram:
    """The fragments of one datagram so far, sorted by offset and never overlapping."""

    __slots__ = ("deadline", "starts", "pieces", "covered", "total", "header", "arrived", "charge", "dead")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.starts: list[int] = []  # offsets of `pieces`, for bisect
        self.pieces: list[bytes] = []
        self.covered = 0  # payload bytes held (no overlaps, so the sum of the pieces)
        self.total: int | None = None  # payload length, known once the last fragment (MF=0) arrived
        self.header: bytes | None = None  # the IP header of the fragment at offset 0
        self.arrived = b""  # the headers before that fragment's payload as they came, to quote
        self.charge = DATAGRAM_OVERHEAD
        self.dead = False  # discarded: later fragments are dropped until the deadline

    def overlaps(self, start: int, end: int, data: bytes) -> bool | None:
        """True if [start, end) overlaps a held piece, None if it exactly duplicates one, else False."""
        i = bisect.bisect_right(self.starts, start) - 1
        if i >= 0:
            prev_start, prev = self.starts[i], self.pieces[i]
            if prev_start == start and prev == data:
                return None
            if prev_start + len(prev) > start:
                return True
        return i + 1 < len(self.starts) and self.starts[i + 1] < end


class Reassembler:
    """Collects fragments per (src, dst, proto, ident); `add` returns the whole datagram when complete."""

    def __init__(self, limits: FragmentLimits | None = None, counters: Counter[str] | None = None) -> None:
        self.limits = limits or FragmentLimits()
        # ReasmReqds (fragments in), ReasmOKs, ReasmFails, ReasmTimeout, ReasmOverlaps: the RFC 2011 names
        self.counters: Counter[str] = Counter() if counters is None else counters
        self.bytes_held = 0
        self._datagrams: OrderedDict[Key, _Datagram] = OrderedDict()  # oldest first: deadlines ascend
        # the key, headers as they came and payload of the first fragment of each datagram that timed out
        # incomplete, for an ICMP time exceeded to quote (RFC 792, RFC 8200 §4.5); take_timed_out()
        # empties it, and no more than max_datagrams wait for it
        self._timed_out: list[tuple[Key, bytes, bytes]] = []

    def __len__(self) -> int:
        return len(self._datagrams)

    def next_deadline(self) -> float | None:
        return next(iter(self._datagrams.values())).deadline if self._datagrams else None

    def expire(self, now: float) -> int:
        """Discard datagrams whose timer ran out (RFC 791 §3.2); returns how many were incomplete."""
        expired = 0
        datagrams = self._datagrams
        while datagrams:
            key, dg = next(iter(datagrams.items()))
            if dg.deadline > now:
                break
            if not dg.dead:
                expired += 1
                self.counters["ReasmTimeout"] += 1
                self.counters["ReasmFails"] += 1
                if dg.header is not None and len(self._timed_out) < self.limits.max_datagrams:  # (bounded)
                    self._timed_out.append((key, dg.arrived, dg.pieces[0]))  # the first fragment came
            self._remove(key)
        return expired

    def take_timed_out(self, now: float) -> list[tuple[Key, bytes, bytes]]:
        """Expire what is due, then hand over the first fragment of each datagram that timed out
        incomplete since the last call (its key, headers as they came and payload), once."""
        self.expire(now)
        taken, self._timed_out = self._timed_out, []
        return taken

    def add(self, pkt: IpPacket, now: float, arrived: bytes | None = None) -> bytes | None:
        """Take one fragment; returns the reassembled datagram as raw IP bytes once it is whole. `arrived`:
        the headers before the payload as the fragment came, where they are not pkt.header (IPv6: the
        fixed header, the extension headers before the fragment header and the fragment header)."""
        self.expire(now)
        counters = self.counters
        counters["ReasmReqds"] += 1
        data = pkt.payload
        start = pkt.frag_offset
        end = start + len(data)
        key = (pkt.src, pkt.dst, pkt.proto, pkt.ident)
        if pkt.more_fragments and (len(data) == 0 or len(data) % 8):
            counters["ReasmFails"] += 1  # RFC 791 §3.2: all but the last fragment carry 8-byte multiples
            return None
        dg = self._datagrams.get(key)
        if dg is not None and dg.dead:
            return None
        if _too_long(pkt, end):  # would reassemble beyond 65535 bytes ("ping of death")
            self._fail(key, dg, now)
            return None
        if dg is None:
            dg = self._create(key, now)
        if pkt.more_fragments:
            if dg.total is not None and end > dg.total:
                self._fail(key, dg, now)  # beyond the end the last fragment set
                return None
        else:
            if (dg.total is not None and dg.total != end) or (dg.pieces and dg.starts[-1] + len(dg.pieces[-1]) > end):
                self._fail(key, dg, now)  # a second, different end, or data already held beyond it
                return None
        overlap = dg.overlaps(start, end, data)
        if overlap is None:
            return None  # an exact duplicate (RFC 5722 §4 allows dropping just the copy)
        if overlap:
            counters["ReasmOverlaps"] += 1
            self._fail(key, dg, now)
            return None
        cost = len(data) + FRAGMENT_OVERHEAD
        quote = b""
        if start == 0:  # its headers as they came, kept to quote: what they hold beyond its header is charged
            quote = pkt.header if arrived is None else arrived
            cost += len(quote) - len(pkt.header)
        self._make_room(cost, keep=key)
        if self.bytes_held + cost > self.limits.high_thresh:
            self._fail(key, dg, now)  # this datagram alone is over the limit
            return None
        i = bisect.bisect_left(dg.starts, start)
        dg.starts.insert(i, start)
        dg.pieces.insert(i, data)
        dg.covered += len(data)
        dg.charge += cost
        self.bytes_held += cost
        if start == 0:
            dg.header, dg.arrived = pkt.header, quote
        if not pkt.more_fragments:
            dg.total = end
        if dg.total is None or dg.covered != dg.total:
            return None
        if len(dg.header) + dg.total > _MAX_DATAGRAM + (40 if pkt.src > MAX4 else 0):  # a longer first header
            self._fail(key, dg, now)
            return None
        self._remove(key)
        counters["ReasmOKs"] += 1
        return _datagram_bytes(dg.header, b"".join(dg.pieces))

    def _create(self, key: Key, now: float) -> _Datagram:
        while len(self._datagrams) >= self.limits.max_datagrams:
            self._evict_oldest()
        self._make_room(DATAGRAM_OVERHEAD)
        dg = _Datagram(now + self.limits.timeout)
        self._datagrams[key] = dg
        self.bytes_held += dg.charge
        return dg

    def _make_room(self, cost: int, keep: Key | None = None) -> None:
        """Evict the oldest datagrams (not `keep`) until `cost` more bytes fit under high_thresh."""
        while self.bytes_held + cost > self.limits.high_thresh:
            oldest = next((k for k in self._datagrams if k != keep), None)  # the first or the second
            if oldest is None:
                return
            self._evict(oldest)

    def _evict_oldest(self) -> None:
        self._evict(next(iter(self._datagrams)))

    def _evict(self, key: Key) -> None:
        if not self._datagrams[key].dead:
            self.counters["ReasmFails"] += 1
        self._remove(key)

    def _fail(self, key: Key, dg: _Datagram | None, now: float) -> None:
        """Discard what is held and absorb the datagram's later fragments until its deadline."""
        self.counters["ReasmFails"] += 1
        if dg is None:
            dg = self._create(key, now)
        self.bytes_held -= dg.charge - DATAGRAM_OVERHEAD
        dg.charge = DATAGRAM_OVERHEAD
        dg.starts, dg.pieces, dg.header, dg.arrived, dg.dead = [], [], None, b"", True

    def _remove(self, key: Key) -> None:
        self.bytes_held -= self._datagrams.pop(key).charge


def _too_long(pkt: IpPacket, end: int) -> bool:
    """IPv4 counts the header in its 16-bit total length, IPv6 only the payload (RFC 8200 §4.5)."""
    return len(pkt.header) + end > _MAX_DATAGRAM if pkt.src <= MAX4 else end > _MAX_DATAGRAM


def _datagram_bytes(header: bytes, payload: bytes) -> bytes:
    """The reassembled datagram: the first fragment's header with the new length, MF and offset cleared
    and the checksum recomputed (RFC 791 §3.2), so that it decodes like any unfragmented packet. An
    IPv6 header only needs its payload length."""
    h = bytearray(header)
    if h[0] >> 4 == 6:
        struct.pack_into("!H", h, 4, len(payload))
        return bytes(h) + payload
    struct.pack_into("!H", h, 2, len(h) + len(payload))
    struct.pack_into("!H", h, 6, 0)  # flags and fragment offset
    fill_ipv4_checksum(h)
    return bytes(h) + payload
