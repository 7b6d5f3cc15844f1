"""What one connection holds beyond RCV.NXT (RFC 9293 §3.10.7.4 seventh check) and how its ACKs report it.

The bytes themselves are in `reassembly.py`; this part adds the packets they were charged as (Linux's
out-of-order skbs, for the receive memory), the order they arrived in, a FIN held behind a hole, the SACK
blocks that describe them (RFC 2018 §4), the D-SACK of a segment that repeats them (RFC 2883 §4) and the
bookkeeping of SACK compression (`sack_compression.py`), and the room it makes when the receive memory is
full (copying its packets into compact ones, dropping the highest). The receiver makes it with the first
segment or FIN it holds out of order, decides when to ACK and keeps the memory total; most connections
never need one.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Final, TypeAlias

from stack.tcp import rcv_space
from stack.tcp.reassembly import Reassembly
from stack.tcp.sack_compression import SackCompression
from stack.wire.seq import seq_add, seq_gt, seq_le, seq_lt, seq_sub

_ARRIVALS_KEPT: Final = 8  # arrivals remembered to order the blocks: more than an ACK has room for
_SACK_BLOCKS_EXPECTED: Final = 2  # Linux: the blocks an ACK is sure to carry; a segment beyond them flushes

Block: TypeAlias = tuple[int, int]  # a SACK or D-SACK block: [left, right)
# a held packet moving to the receive queue: (bytes of its own, truesize, tailroom, whether all its bytes
# are its own, so that it continues the packet before it)
Moved: TypeAlias = tuple[int, int, int, bool]


def grown_by(left: int, right: int, seq: int, end: int) -> Block | None:
    """The block [left, right) grown by [seq, end) when they overlap or touch, else None (Linux
    tcp_sack_extend, for SACK and D-SACK blocks alike)."""
    if seq_lt(right, seq) or seq_lt(end, left):
        return None
    return (seq if seq_lt(seq, left) else left, end if seq_lt(right, end) else right)


class OutOfOrder:
    __slots__ = ("queue", "_arrivals", "_packets", "memory", "compression", "_forgotten")

    def __init__(self, max_bytes: int, max_runs: int) -> None:
        self.queue = Reassembly(max_bytes, max_runs)
        self._arrivals: list[int] = []  # where the last out-of-order segments (or a FIN) began, newest last
        # [seq, end, truesize, tailroom] of each packet held, in sequence order (of seq; they may overlap)
        self._packets: list[list[int]] = []
        self.memory = 0  # the packets' truesize: the receiver's share of sk_rmem_alloc for them
        self.compression: SackCompression | None = None  # from the first out-of-order ACK it could hold
        # held data the SACK blocks no longer report: held when pruning reset them, not arrived since
        self._forgotten: list[Block] = []

    def __bool__(self) -> bool:
        """Anything held: data, or a FIN (compiled code tests an optional one by __bool__ only)."""
        return bool(self.queue) or self.queue.fin_seq is not None

    @property
    def bytes_held(self) -> int:
        return self.queue.bytes_held

    # ------------------------------------------------------------------ holding

    def add(
        self, rcv_nxt: int, seq: int, payload: bytes | memoryview, truesize: int, tailroom: int
    ) -> tuple[bool, int]:
        """Hold a segment's bytes, copied into the room left in the held packet they continue when they fit
        (Linux tcp_ooo_try_coalesce), else as a packet of `truesize` with `tailroom` to spare; whether the
        queue's bounds dropped data (from the top: the packets that begin above what is left are then
        freed), and the memory newly charged (`memory`): `truesize`, or 0 when copied."""
        queue = self.queue
        dropped = queue.add(rcv_nxt, seq, payload) > 0
        n = len(payload)
        end = seq_add(seq, n)
        charged = truesize
        packets = self._packets
        i = bisect_right(packets, seq_sub(seq, rcv_nxt), key=lambda packet: seq_sub(packet[0], rcv_nxt))
        before = packets[i - 1] if i else None  # the packet that begins last at or below it
        if before is not None and before[1] == seq and n <= before[3]:
            before[1] = end
            before[3] -= n
            charged = 0
        else:
            packets.insert(i, [seq, end, truesize, tailroom])
            self.memory += truesize
        if dropped:  # the bounds drop from the top: the packets that began at or above what is left go
            top = self.reach(rcv_nxt)
            kept = [p for p in self._packets if seq_sub(p[0], rcv_nxt) < top]
            self.memory = sum(p[2] for p in kept)
            self._packets = kept
        return dropped, charged

    def hold_fin(self, fin_seq: int) -> None:
        """A FIN beyond RCV.NXT, held until the bytes before it come."""
        self.queue.fin_seq = fin_seq

    def take_fin(self, rcv_nxt: int) -> bool:
        """Whether a FIN held out of order is now in sequence; if so it is no longer held."""
        if self.queue.fin_seq != rcv_nxt:
            return False
        self.queue.fin_seq = None
        return True

    def note_arrival(self, seq: int, end: int) -> None:
        """Out-of-order data [seq, end) (or a FIN) arrived: its SACK block goes first (RFC 2018 §4), and
        held data it repeats that pruning had left unreported is reported again."""
        arrivals = self._arrivals
        arrivals.append(seq)
        if len(arrivals) > _ARRIVALS_KEPT:
            del arrivals[0]
        if self._forgotten:
            self._forgotten = _without(self._forgotten, [(seq, end)])

    def pop_ready(self, rcv_nxt: int) -> tuple[bytes, list[Moved], int]:
        """The held bytes now at RCV.NXT, the packets that move with them to the receive queue in sequence
        order (`Moved`: each byte counted in one packet only), and the memory of those freed: packets that
        end at or before RCV.NXT with nothing new (the in-order segment or another packet brought their
        bytes; Linux tcp_ofo_queue), and any left once nothing is held."""
        first = self.queue.first_run()
        if first is None or seq_lt(rcv_nxt, first[0]):
            return b"", [], 0  # nothing reaches RCV.NXT, so no packet ends below it either
        data = self.queue.pop_ready(rcv_nxt)
        end = seq_add(rcv_nxt, len(data))
        moved: list[Moved] = []
        kept = []
        freed = 0
        cursor = 0  # bytes from RCV.NXT already given to a packet of the receive queue
        for packet in self._packets:
            packet_end, size = packet[1], packet[2]
            if seq_le(packet_end, end):
                self.memory -= size
                fresh = seq_sub(packet_end, rcv_nxt) - cursor
                if fresh > 0:
                    moved.append((fresh, size, packet[3], fresh == seq_sub(packet_end, packet[0])))
                    cursor += fresh
                else:
                    freed += size
            else:
                kept.append(packet)
        if kept and not self.queue:  # packets whose bytes beyond RCV.NXT the bounds dropped: nothing left
            stranded = sum(packet[2] for packet in kept)
            self.memory -= stranded
            freed += stranded
            kept = []
        self._packets = kept
        if self._forgotten:
            self._forgotten = [block for block in self._forgotten if seq_lt(end, block[1])]
        return data, moved, freed

    def clear(self) -> int:
        """Drop everything held, a FIN too (the stack's memory pressure); the memory freed."""
        self.queue.clear()
        freed = self.memory
        self._packets = []
        self.memory = 0
        self._forgotten = []
        return freed

    # ------------------------------------------------------------------ making room (Linux tcp_prune_queue)

    def collapse(self, rcv_nxt: int, rcvbuf: int, ratio: int) -> tuple[int, int, int]:
        """Linux tcp_collapse_ofo_queue: each range of packets that overlap or touch is copied into compact
        packets (`_collapse_range`) when it has more than one packet or spans a page; ranges of one small
        packet are left, and once those left exceed an eighth of `rcvbuf` nothing more is tried. The
        packets freed (TCPRcvCollapsed), the memory of the compact ones made and of those freed."""
        packets = self._packets
        fin = self.queue.fin_seq
        kept: list[list[int]] = []
        count = made = freed = tiny = 0
        i = 0
        while i < len(packets):
            head = i
            start, end = packets[i][0], packets[i][1]
            range_truesize = packets[i][2]
            i += 1
            while i < len(packets) and not seq_gt(packets[i][0], end) and not seq_lt(packets[i][1], start):
                range_truesize += packets[i][2]
                if seq_gt(packets[i][1], end):
                    end = packets[i][1]
                i += 1
            if range_truesize != packets[head][2] or seq_sub(end, start) >= rcv_space.COLLAPSED_MAX:
                compact, range_count, range_made, range_freed = _collapse_range(packets[head:i], start, end, fin, ratio)
                kept += compact
                count += range_count
                made += range_made
                freed += range_freed
            else:
                kept.append(packets[head])
                tiny += range_truesize
                if tiny > rcvbuf >> 3:
                    kept += packets[i:]
                    break
        self._packets = kept
        self.memory += made - freed
        return count, made, freed

    def prune(self, seq: int, rcv_nxt: int, goal: int, excess: int, pressure: bool) -> int:
        """Linux tcp_prune_ofo_queue for an arriving segment at `seq`: held packets are dropped from the
        highest sequence number down, `goal` bytes of memory at a time, until they freed `excess` (and the
        stack is not under memory pressure), but none below the segment: one that would be held above
        them all prunes nothing. The held bytes above the packets that remain go with them, and the SACK
        blocks are reset (tcp_sack_reset): what is still held is reported again only where data arrives
        anew. The memory freed, 0 when nothing was pruned."""
        packets = self._packets
        freed = 0
        left = goal
        while packets and not seq_gt(seq, packets[-1][0]):
            size = packets.pop()[2]
            freed += size
            left -= size
            if not packets or left <= 0:
                if freed >= excess and not pressure:
                    break
                left = goal
        if freed:
            self.memory -= freed
            reach = max((packet[1] for packet in packets), key=lambda end: seq_sub(end, rcv_nxt), default=rcv_nxt)
            self.queue.drop_from(reach)
            self._forgotten = self.queue.sack_blocks()
        return freed

    def reach(self, rcv_nxt: int) -> int:
        """How far beyond RCV.NXT the held data reaches (0 when none)."""
        held_end = self.queue.reach_end()
        return seq_sub(held_end, rcv_nxt) if held_end is not None else 0

    # ------------------------------------------------------------------ duplicates (D-SACK, RFC 2883 §4)

    def repeat(self, seq: int, end: int, dsack: Block | None) -> tuple[bool, Block | None]:
        """Whether all of [seq, end) is held already, and the D-SACK owed once the held data it repeats is
        reported, `dsack` being the one owed before: as Linux's tcp_data_queue_ofo finds it, here on held
        runs, all of the segment when a run holds it, else the part of the run it begins in (or that run
        whole when both begin together), then grown by what it covers of the runs after, while they touch
        (tcp_dsack_set, tcp_dsack_extend: an earlier D-SACK not sent yet is grown only if they touch)."""
        for left, right in self.queue.overlapping(seq, end):
            if seq_le(left, seq):  # the run the segment begins in
                if seq_le(end, right):
                    return True, (seq, end)
                dsack = _extended(dsack, left, right) if seq == left else (seq, right)
            else:  # a run it reaches into, or covers
                dsack = _extended(dsack, left, end if seq_lt(end, right) else right)
        return False, dsack

    def first_repeat(self, end: int) -> Block | None:
        """The first held run that in-order data ending at `end` repeats, up to `end` (Linux tcp_ofo_queue
        reports it as a D-SACK)."""
        first = self.queue.first_run()  # (the runs after it begin later still)
        if first is None or not seq_lt(first[0], end):
            return None
        return (first[0], first[1] if seq_le(first[1], end) else end)

    # ------------------------------------------------------------------ SACK blocks (RFC 2018 §4)

    def blocks(self, most: int) -> tuple[Block, ...]:
        """At most `most` SACK blocks: the block of the most recently received segment first, then the
        others in the order their data last arrived."""
        return tuple(self._blocks_by_arrival(most))

    def block_count(self) -> int:
        """How many SACK blocks describe what is held."""
        queue = self.queue
        return len(queue) if queue.fin_seq is None and not self._forgotten else len(self._held_blocks())

    def flush_blocks(self, seq: int, end: int, most: int) -> tuple[Block, ...] | None:
        """While ACKs are held (the receiver asks), the blocks of the held ACK that an out-of-order segment
        [seq, end) sends before it is queued: one that would start a SACK block beyond the first two, or
        extends the third or a later one (Linux tcp_sack_new_ofo_skb, tcp_sack_compress_send_ack); the
        blocks as they were, the one it extends grown, in their order. None when it sends nothing."""
        blocks = self._blocks_by_arrival(most)  # (one it extends beyond these changes none of them)
        for i, (left, right) in enumerate(blocks):
            grown = grown_by(left, right, seq, end)
            if grown is not None:
                if i < _SACK_BLOCKS_EXPECTED:
                    return None
                blocks[i] = grown
                break
        else:
            if self.block_count() < _SACK_BLOCKS_EXPECTED:
                return None
        return tuple(blocks)

    def _held_blocks(self) -> list[Block]:
        """What is held, in sequence order; a FIN held so takes its sequence number too, in the block of
        the data it ends or alone (Linux: its packet's end_seq)."""
        queue = self.queue
        blocks = queue.sack_blocks()
        if self._forgotten:
            blocks = _without(blocks, self._forgotten)
        fin = queue.fin_seq
        if fin is not None:
            ends = [i for i, (_, right) in enumerate(blocks) if right == fin]
            if ends:
                blocks[ends[0]] = (blocks[ends[0]][0], seq_add(fin, 1))
            else:
                blocks.append((fin, seq_add(fin, 1)))
        return blocks

    def _blocks_by_arrival(self, most: int) -> list[Block]:
        """The first `most` blocks: those the latest arrivals fell in, newest first, then the others in
        sequence order (each arrival found by bisection: a queue may hold hundreds of runs)."""
        blocks = self._held_blocks()
        if len(blocks) <= 1:
            return blocks
        base = blocks[0][0]

        def offset(block: Block) -> int:
            return seq_sub(block[0], base)

        chosen: list[int] = []
        for seq in reversed(self._arrivals):
            i = bisect_right(blocks, seq_sub(seq, base), key=offset) - 1
            if i >= 0 and seq_lt(seq, blocks[i][1]) and i not in chosen:
                chosen.append(i)
                if len(chosen) == most:
                    break
        first = [blocks[i] for i in chosen]
        for i, block in enumerate(blocks):
            if len(first) >= most:
                break
            if i not in chosen:
                first.append(block)
        return first


def _extended(dsack: Block | None, left: int, right: int) -> Block:
    """Linux tcp_dsack_extend: the D-SACK owed grows by [left, right) if they touch; none owed, it is that."""
    if dsack is None:
        return (left, right)
    return grown_by(dsack[0], dsack[1], left, right) or dsack


def _without(blocks: list[Block], holes: list[Block]) -> list[Block]:
    """`blocks` less what `holes` cover; both in sequence order and each without overlaps, the result too
    (one pass over both)."""
    out: list[Block] = []
    h = 0
    for left, right in blocks:
        while h < len(holes) and seq_le(holes[h][1], left):
            h += 1  # holes wholly before this block are before every later one too
        k = h
        while k < len(holes) and seq_lt(holes[k][0], right) and seq_lt(left, right):
            hole_left, hole_right = holes[k]
            if seq_lt(left, hole_left):
                out.append((left, hole_left))
            if seq_lt(left, hole_right):
                left = hole_right
            k += 1
        if seq_lt(left, right):
            out.append((left, right))
    return out


def _collapse_range(
    packets: list[list[int]], start: int, end: int, fin: int | None, ratio: int
) -> tuple[list[list[int]], int, int, int]:
    """Linux tcp_collapse on one range [start, end) of held packets in sequence order: packets that add
    nothing are freed; those that fill their memory well, end where the next begins and carry no FIN are
    kept; from the first other one (a packet whose memory holds more window than it has data, or that
    overlaps) its bytes and all after them are copied into packets of up to a page, each charged as
    alloc_skb charges it, up to a FIN's packet. The packets that remain, how many were freed, the memory
    made and freed."""
    kept: list[list[int]] = []
    count = made = freed = 0
    j = 0
    while j < len(packets):
        seq, packet_end, size = packets[j][0], packets[j][1], packets[j][2]
        if not seq_lt(start, packet_end):  # nothing new in it
            count += 1
            freed += size
            j += 1
            continue
        if packet_end != fin and (
            rcv_space.win_from_space(size, ratio) > seq_sub(packet_end, seq) or seq_lt(seq, start)
        ):
            break
        if j + 1 < len(packets) and packets[j + 1][0] != packet_end:
            break
        kept.append(packets[j])
        start = packet_end
        j += 1
    if j == len(packets) or packets[j][1] == fin:
        return kept + packets[j:], count, made, freed
    while seq_lt(start, end) and j < len(packets):
        copy = min(seq_sub(end, start), rcv_space.COLLAPSED_MAX)
        truesize, tailroom = rcv_space.collapsed(copy)
        made += truesize
        first = start
        while copy > 0:
            packet_end = packets[j][1]
            fresh = seq_sub(packet_end, start)
            if fresh > 0:
                took = min(copy, fresh)
                copy -= took
                start = seq_add(start, took)
            if not seq_lt(start, packet_end):
                count += 1
                freed += packets[j][2]
                j += 1
                if j == len(packets) or packets[j][1] == fin:
                    break
        kept.append([first, start, truesize, tailroom + copy])  # (a FIN's packet may stop it short)
        if j < len(packets) and packets[j][1] == fin:
            break
    return kept + packets[j:], count, made, freed
