"""The receive side of one connection: what arrived, what we acknowledge and the window we offer.

It owns the receive buffer and the receive memory, delayed ACKs and Linux's quickack/ping-pong modes
(§3.8.6.3), the window we advertise (§3.8.6, receiver SWS avoidance §3.8.6.2.2), the SACK and D-SACK
blocks of our ACKs (RFC 2018 §4, RFC 2883 §4) and TS.Recent for PAWS (RFC 7323 §5.3); what arrives beyond
RCV.NXT is held by its out-of-order part (out_of_order.py), made when first needed. The connection shares
its TCB (RCV.NXT, RCV.WND, RCV.ADV) and timers with it.
"""

from __future__ import annotations

from typing import Final

from stack.tcp import rcv_space, timers
from stack.tcp.config import TcpConfig
from stack.tcp.counters import Counters
from stack.tcp.events import DataAvailable, Event, PeerClosed
from stack.tcp.memory import MemoryBudget
from stack.tcp.out_of_order import OutOfOrder
from stack.tcp.rcv_tuning import RcvTuning
from stack.tcp.sack_compression import SackCompression
from stack.tcp.tcb import Tcb
from stack.wire.flags import Flags
from stack.wire.seq import seq_add, seq_lt, seq_sub

DEFAULT_MSS: Final = 536  # RFC 9293 §3.7.1: assumed when the peer sends no MSS option
_MAX_QUICKACKS: Final = 16  # Linux TCP_MAX_QUICKACKS
_MIN_MSS: Final = 88  # Linux TCP_MIN_MSS
_TCP_HEADER: Final = 20  # sizeof(struct tcphdr): a TCP header without options
_REMNANT: Final = Flags.FIN | Flags.SYN | Flags.PSH | Flags.URG  # a segment that may end short (TCP_REMNANT)
_PUSHED: Final = 1  # a short or pushed segment came since our last ACK (Linux ICSK_ACK_PUSHED)
_PUSHED2: Final = 2  # and another short one after it (ICSK_ACK_PUSHED2)
SACK_OPTION_BASE: Final = 4  # NOP,NOP,kind,length, then a left and right edge per block
SACK_BLOCK_BYTES: Final = 8
_MASK: Final = 0xFFFFFFFF  # on the per-segment paths sequence arithmetic is inlined, modulo 2**32 (RFC 9293 §3.4)
_HALF: Final = 0x80000000
_DATA_AVAILABLE: Final = DataAvailable()  # frozen and fieldless: one instance serves every delivery
_PEER_CLOSED: Final = PeerClosed()  # (the same)


class Receiver:
    __slots__ = (
        "config",
        "tcb",
        "timers",
        "_events",
        "_buf",
        "out_of_order",
        "ack_now",
        "_quickacks",
        "_delack_started",
        "_pingpong",
        "last_data_rcv",
        "bytes_received",
        "rcv_mss",
        "_last_seg_size",
        "_pushed",
        "peer_fin",
        "ts_recent",
        "dsack",
        "memory",
        "rcvbuf",
        "rmem",
        "forward_alloc",
        "scaling_ratio",
        "window_clamp",
        "rcv_ssthresh",
        "rcv_wup",
        "owned",
        "_skbs",
        "_arriving",
        "_nomem",
        "tuning",
        "last_tsecr",
    )  # thousands of these: no instance dicts

    def __init__(self, config: TcpConfig, tcb: Tcb, deadlines: timers.Timers, events: list[Event]) -> None:
        self.config = config
        self.tcb = tcb
        self.timers = deadlines  # the connection's (Connection.watch_timers swaps both)
        self._events = events
        self._buf = bytearray()
        self.out_of_order: OutOfOrder | None = None  # what is held beyond RCV.NXT, from the first segment held
        self.ack_now = False  # an ACK is owed at once
        self._quickacks = 0  # ACKs still to send at once (Linux quickack mode)
        self._delack_started = False  # the first data segment arrived
        self._pingpong = False  # interactive: our data follows theirs, so ACKs wait to ride on it
        self.last_data_rcv = 0.0  # when data last arrived (tcpi_last_data_recv)
        self.bytes_received = 0  # in-order bytes taken, never wrapping (tcpi_bytes_received)
        # the peer's segment size (Linux icsk_ack.rcv_mss): guessed once established, then the largest sent
        self.rcv_mss = 0
        self._last_seg_size = 0  # the last short segment's size, when it was a full one of a small MSS
        self._pushed = 0  # _PUSHED and _PUSHED2 since our last ACK
        self.peer_fin = False  # the peer's FIN arrived in sequence
        self.ts_recent = 0  # TS.Recent: the peer's timestamp to echo (RFC 7323 §4.3)
        self.dsack: tuple[int, int] | None = None  # a duplicate segment to report in the next ACK
        self.memory: MemoryBudget | None = None  # the stack's budget: under pressure windows stop growing
        # receive memory as Linux counts it (stack/tcp/rcv_space.py): sk_rcvbuf is twice SO_RCVBUF
        self.rcvbuf = rcv_space.sk_rcvbuf(config.receive_buffer)
        self.rmem = 0  # truesize of what is held, in order and out of order (sk_rmem_alloc)
        # memory reserved for packets still to come, in whole pages (sk_forward_alloc, its receive share)
        self.forward_alloc = 0
        self.scaling_ratio = rcv_space.DEFAULT_SCALING_RATIO
        self.window_clamp = 0  # the largest window we may offer (0: not chosen yet)
        self.rcv_ssthresh = 0  # how far the offered window may grow for now (Linux rcv_ssthresh)
        self.rcv_wup = 0  # RCV.NXT when the last window was offered: that window's left edge
        self.owned = False  # accepted or connected: only then does the buffer grow (Linux sk->sk_socket)
        # in-order packets [unread bytes, truesize, tailroom, bytes in all]; an idle connection shares one
        # empty tuple (thousands of them: no empty lists)
        self._skbs: list[list[int]] | tuple[()] = ()
        self._arriving = (0, 0, 0)  # the segment being processed: (skb bytes, truesize, tailroom)
        self._nomem = False  # a segment was dropped for memory: the next ACK offers a zero window
        self.tuning: RcvTuning | None = None  # the buffer's right-sizing, from the first data in sequence
        # the timestamp echo of the last segment in ESTABLISHED: each echo is one RTT sample at most (Linux
        # rcv_rtt_last_tsecr; a pure ACK's is kept too, so that data echoing the same one is no sample)
        self.last_tsecr = 0

    # ------------------------------------------------------------------ the application's side

    def __len__(self) -> int:
        """In-order bytes waiting for the application (Recv-Q)."""
        return len(self._buf)

    def __bool__(self) -> bool:  # as __len__ says (compiled code tests an optional one by __bool__ only)
        return len(self._buf) != 0

    @property
    def at_eof(self) -> bool:
        """The peer's FIN arrived and every byte before it was read."""
        return self.peer_fin and not self._buf

    def peek(self, max_bytes: int) -> bytes:
        """Up to max_bytes in-order bytes, left in the buffer (MSG_PEEK)."""
        return bytes(memoryview(self._buf)[:max_bytes])

    def read(self, max_bytes: int) -> bytes:
        """Take up to max_bytes in-order bytes (all with a negative max_bytes)."""
        buf = self._buf
        if self.tuning is not None and buf and max_bytes:
            self._read_round(max_bytes)
        if max_bytes < 0 or max_bytes >= len(buf):
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(memoryview(buf)[:max_bytes])
            del buf[:max_bytes]  # bytearray drops a prefix without moving the rest
        self._uncharge_read(len(data))
        return data

    def _read_round(self, max_bytes: int) -> None:
        """Linux reads packet by packet and asks after each whether a round trip of reading is over
        (tcp_rcv_space_adjust); only the first packet's question can find it over, as each answer starts
        a new round. Its clock is the last data's arrival: Linux's cached tcp_mstamp, which reading does
        not refresh."""
        tuning = self.tuning
        assert tuning is not None
        first = len(self._buf) if max_bytes < 0 else min(max_bytes, len(self._buf))
        if self._skbs:
            first = min(first, self._skbs[0][0])
        rcv_nxt = self.tcb.rcv_nxt
        space = tuning.space
        if tuning.read(self.last_data_rcv, (rcv_nxt - len(self._buf) + first) & _MASK, rcv_nxt):
            self._grow_rcvbuf(tuning.space, space)

    def _uncharge_read(self, n: int) -> None:
        """A packet's memory is freed once all its bytes are read (Linux frees whole skbs)."""
        skbs = self._skbs
        while n > 0 and skbs:
            skb = skbs[0]
            took = min(n, skb[0])
            skb[0] -= took
            n -= took
            if skb[0] == 0:
                self._free(skb[1])
                del skbs[0]  # type: ignore[union-attr]
        if skbs and not self._buf:  # everything read: no packet can still hold a byte (a safety net)
            self._free(sum(skb[1] for skb in skbs))
            skbs = ()
        if not skbs:
            self._skbs = ()

    # ------------------------------------------------------------------ arriving text and FIN

    def deliver(self, data: bytes | memoryview) -> None:
        """In-order bytes at RCV.NXT of the arriving segment: into the buffer, charged with its packet's
        memory (copied into the previous packet's spare room when they fit, skb_try_coalesce), RCV.NXT
        advances."""
        if data:
            was_empty = not self._buf
            n = len(data)
            _, size, tailroom = self._arriving
            if not self._copied_into_last(n):
                self._push_skb([n, size, tailroom, n])
                self._charge(size)
            self._arriving = (0, 0, 0)
            self._buf += data
            self.bytes_received += n
            self.tcb.rcv_nxt = (self.tcb.rcv_nxt + n) & _MASK
            if was_empty:
                self._events.append(_DATA_AVAILABLE)

    def take_syn_data(self, data: bytes | memoryview, header_bytes: int) -> None:
        """A fast open SYN's data (Linux tcp_fastopen_add_skb): queued as its packet came, charged whatever
        the memory (sk_forced_mem_schedule), and not measured (no tcp_event_data_recv: the window stays)."""
        truesize, tailroom = rcv_space.truesize(header_bytes + len(data))
        self._arriving = (len(data), truesize, tailroom)
        self.reserve_arriving()
        self.deliver(data)
        self.rebase_window()  # the SYN,ACK offers its window from after the data (Linux: rcv_wup = rcv_nxt)

    def _copied_into_last(self, n: int) -> bool:
        """Whether `n` in-order bytes fit the room after the last packet's data, and were put there
        (skb_try_coalesce): they cost no memory of their own."""
        skbs = self._skbs
        if not skbs or n > skbs[-1][2]:
            return False
        last = skbs[-1]
        last[0] += n
        last[2] -= n
        last[3] += n
        return True

    def _push_skb(self, skb: list[int]) -> None:
        if self._skbs:
            self._skbs.append(skb)  # type: ignore[union-attr]
        else:
            self._skbs = [skb]

    def deliver_held(self) -> bool:
        """In-order data was delivered: what was held out of order and is now at RCV.NXT follows it, with
        its packets' memory (tcp_ofo_queue); a packet that continues the last one and fits the room after
        its data is copied there and freed (tcp_queue_rcv: skb_try_coalesce). The first held run that data
        repeated is reported as a D-SACK when none is owed yet (RFC 2883 §4). True if anything was held: a
        hole was filled."""
        held = self.out_of_order
        if held is None or not held.queue:
            return False
        if self.dsack is None and self.tcb.sack_ok:
            self.dsack = held.first_repeat(self.tcb.rcv_nxt)
        data, packets, freed = held.pop_ready(self.tcb.rcv_nxt)
        for own, truesize, tailroom, continues in packets:
            if continues and self._copied_into_last(own):
                freed += truesize  # (its packet is freed)
            else:
                self._push_skb([own, truesize, tailroom, own])
        self._free(freed)
        if data:
            self._append(data)
        return True

    def _append(self, data: bytes) -> None:
        was_empty = not self._buf
        self._buf += data
        self.tcb.rcv_nxt = seq_add(self.tcb.rcv_nxt, len(data))
        if was_empty:
            self._events.append(_DATA_AVAILABLE)

    def measure_segment(self, size: int, skb_len: int = 0, header_bytes: int = 40, flags: int = 0) -> None:
        """The peer's segment size as Linux estimates it (tcp_measure_rcv_mss): a segment at least as
        large as the estimate raises it, up to our MSS; `size` is a GRO packet's segment size, `skb_len`
        its payload, `flags` its TCP flags. A new size also measures the data-to-memory ratio of its
        packet (scaling_ratio), from which every window follows; the clamp follows the buffer at that
        ratio. A shorter segment is noted as pushed (an ACK may go when the application reads it), unless
        it is the second in a row of one size that looks full (more than 536 bytes, or without PSH, FIN,
        SYN or URG): that size becomes the estimate, a peer with a small MSS."""
        skb_len = skb_len or size
        truesize, tailroom = rcv_space.truesize(header_bytes + skb_len)
        self._arriving = (skb_len, truesize, tailroom)
        last_seg_size = self._last_seg_size
        self._last_seg_size = 0
        current = self.rcv_mss or self.estimated_rcv_mss()
        if size < current:
            self._measure_short(size, header_bytes - 20, flags, last_seg_size)  # (less the IPv4 header)
            return
        if flags & Flags.PSH:
            self._pushed |= _PUSHED
        if size == self.rcv_mss:
            return  # the usual case, per segment: nothing new to measure
        if size != current:
            ratio = max(skb_len * 256 // truesize, 1)
            if ratio != self.scaling_ratio:
                self.scaling_ratio = ratio
                self._set_window_clamp(self.allowed_space())
                self.rcv_ssthresh = min(self.rcv_ssthresh, self.window_clamp)
        self.rcv_mss = min(size, self.config.mss)

    def _measure_short(self, size: int, tcp_header: int, flags: int, last_seg_size: int) -> None:
        """tcp_measure_rcv_mss for a segment shorter than the estimate; `tcp_header` is its TCP header's
        length, options included, of which the length every segment has is taken off again."""
        full = size + tcp_header
        if full >= DEFAULT_MSS + _TCP_HEADER or (full >= _MIN_MSS + _TCP_HEADER and not flags & _REMNANT):
            size = full - _TCP_HEADER - (rcv_space.TIMESTAMP_OPTION if self.tcb.ts_ok else 0)
            self._last_seg_size = size
            if size == last_seg_size:
                self.rcv_mss = size
                return
        self._pushed = _PUSHED | _PUSHED2 if self._pushed else _PUSHED

    def estimated_rcv_mss(self) -> int:
        """The peer's segment size as measured, or before the connection is established Linux's guess
        (tcp_initialize_rcv_mss): the smallest of both MSSes, half the window and 536, but at least 88
        (TCP_MIN_MSS)."""
        if self.rcv_mss:
            return self.rcv_mss
        # two operands at a time: compiled, min and max of more go through the builtins, boxed
        mss = min(min(self.config.mss, self.tcb.snd_mss), min(self.tcb.rcv_wnd // 2, DEFAULT_MSS))
        return max(mss, _MIN_MSS)

    def hold(
        self,
        seq: int,
        payload: bytes | memoryview,
        fin: bool,
        now: float,
        srtt: float | None,
        counters: Counters,
    ) -> bool:
        """Out-of-order bytes (and the FIN after them), for which make_room found room, go to the
        out-of-order part and are ACKed (RFC 5681 §4.2), at once or held by SACK compression (`srtt` times
        it, `counters` count it); True if the queue's bounds dropped data (Linux TCPOFODrop): the FIN is
        then not held either, the peer resends both."""
        end = seq_add(seq, len(payload))
        held = self._out_of_order()
        flushed = self._flushed(held)
        dropped = False
        repeated, dsack = held.repeat(seq, end, self.dsack)
        if not flushed and self.tcb.sack_ok:  # (the ACK sent before it reported its D-SACK)
            self.dsack = dsack
        if not repeated:
            dropped = self._queue_out_of_order(held, seq, payload)
        if fin and not dropped:
            held.hold_fin(end)
        held.note_arrival(seq, end)
        if not flushed:
            self._ack_out_of_order(now, srtt, counters)
        return dropped

    def hold_fin(self, fin_seq: int, now: float, srtt: float | None, counters: Counters) -> None:
        """A FIN without data arrived beyond RCV.NXT: held, with a SACK block of its own, and ACKed as
        out-of-order data is (Linux queues it as a packet out of order)."""
        held = self._out_of_order()
        held.hold_fin(fin_seq)
        held.note_arrival(fin_seq, seq_add(fin_seq, 1))
        if not self._flushed(held):
            self._ack_out_of_order(now, srtt, counters)

    def take_held_fin(self) -> bool:
        """Whether a FIN held out of order is now in sequence (the hole before it filled); taken if so."""
        held = self.out_of_order
        return held is not None and held.take_fin(self.tcb.rcv_nxt)

    def _out_of_order(self) -> OutOfOrder:
        held = self.out_of_order
        if held is None:
            held = self.out_of_order = OutOfOrder(self.config.ofo_max_bytes, self.config.ofo_max_holes)
        return held

    @property
    def bytes_held(self) -> int:
        """Bytes held out of order."""
        return self.out_of_order.bytes_held if self.out_of_order is not None else 0

    def _flushed(self, held: OutOfOrder) -> bool:
        """Whether the held ACKs went before the segment being taken (flushes_held_ack): that ACK stands for
        the segment's own (Linux then has none scheduled)."""
        compression = held.compression
        if compression is None or compression.flush_blocks is None:
            return False
        compression.flush_blocks = None
        return True

    def _ack_out_of_order(self, now: float, srtt: float | None, counters: Counters) -> None:
        """The ACK a segment held out of order draws (Linux __tcp_ack_snd_check): at once when one is owed
        anyway, in quickack mode, after more than a segment in order, without SACK, and for the first three
        at one RCV.NXT; else held, 5% of the round trip (the receiver's, or the sender's when shorter), at
        most comp_sack_delay, and at most comp_sack_nr of them (Linux tcp_comp_sack_*)."""
        config = self.config
        if (
            self.ack_now
            or not self.tcb.sack_ok
            or not config.comp_sack_nr
            or (self._quickacks and not self._pingpong)
            or self._more_than_a_segment_unacked()
        ):
            self.ack_now = True
            return
        held = self._out_of_order()
        compression = held.compression
        if compression is None:
            compression = held.compression = SackCompression(counters)
        if not compression.hold(self.tcb.rcv_nxt, config.comp_sack_nr):
            self.ack_now = True
            return
        rtt = self.rcv_rtt / 1e6  # 0 before a sample: Linux then times it 0 too
        if srtt is not None and 0 < srtt < rtt:
            rtt = srtt
        self.timers.start_if_idle(timers.COMPRESSED_ACK, now + min(config.comp_sack_delay, rtt / 20))

    def flushes_held_ack(self, seq: int, end: int) -> bool:
        """While ACKs are held, an out-of-order segment [seq, end) that found room (make_room, which Linux's
        tcp_data_queue_ofo asks first) and would start a SACK block beyond the first two, or extends the
        third or a later one, sends them at once, before it is queued
        (OutOfOrder.flush_blocks): True, and that ACK's blocks are set aside, a duplicate's D-SACK goes
        with them. Its own ACK is then not owed."""
        held = self.out_of_order
        compression = held.compression if held is not None else None
        if held is None or compression is None or not compression.held:
            return False
        blocks = held.flush_blocks(seq, end, self._most_sack_blocks())
        if blocks is None:
            return False
        if self.tcb.sack_ok:
            self.dsack = held.repeat(seq, end, self.dsack)[1]
        compression.send_one()
        compression.flush_blocks = blocks
        self.ack_now = True
        return True

    def clear_held(self) -> bool:
        """Drop what is held out of order, a FIN too, and free its memory (Linux tcp_prune_ofo_queue): True
        if data was held (a FIN alone stays)."""
        held = self.out_of_order
        if held is None or not held.queue:
            return False
        self._free(held.clear())
        return True

    def _queue_out_of_order(self, held: OutOfOrder, seq: int, payload: bytes | memoryview) -> bool:
        """Hold a segment's bytes and charge its packet; True if the queue's bounds dropped data."""
        skb_len, size, tailroom = self._arriving
        if self.tcb.sack_ok:  # without SACK the window stays, so duplicate ACKs trigger fast retransmit
            self._grow_window(skb_len, size)
        memory = held.memory
        dropped, charged = held.add(self.tcb.rcv_nxt, seq, payload, size, tailroom)
        self._charge(charged)
        if dropped:
            self._free(memory + charged - held.memory)  # (packets the bounds dropped)
        if self.owned:
            space = self.rcv_space  # what the application reads per round trip (Linux rcvq_space.space)
            self._grow_rcvbuf(space, space)
        return dropped

    def peer_finished(self, now: float, half_close: bool, hole_filled: bool) -> None:
        """The peer's FIN is in sequence: it takes one sequence number, the stream ends after the buffer,
        and it resets the SACK state, so no D-SACK rides on its ACK (Linux tcp_fin). Closing ourselves, we
        ACK it at once. A half-close of an open connection starts interactive mode, as Linux's tcp_fin: the
        ACK waits for the delayed-ACK timer (RFC 9293 §3.8.6.3) and rides on our FIN or data if the
        application answers; before any data arrived Linux's ACK timeout is still 0, so it goes at once,
        and so does the ACK of a filled hole (RFC 5681 §4.2), of a full-sized segment that came with
        the FIN (more than one MSS unacknowledged, Linux __tcp_ack_snd_check), and of a FIN whose packet
        finds no receive memory left (Linux's tcp_data_queue takes it all the same and ACKs now)."""
        self.tcb.rcv_nxt = seq_add(self.tcb.rcv_nxt, 1)
        self.peer_fin = True
        self._events.append(_PEER_CLOSED)
        self.dsack = None
        if not half_close:
            self.ack_now = True
            return
        self._pingpong = True
        fits = self.rmem <= self.rcvbuf
        if not hole_filled and self._delack_started and fits and not self._more_than_a_segment_unacked():
            self.ack_now = False
            self.timers.start_if_idle(timers.DELAYED_ACK, now + self.config.delayed_ack)
        else:
            self.ack_now = True

    # ------------------------------------------------------------------ when to ACK

    def schedule_ack(self, now: float, segment_len: int, rto: float) -> None:
        """Delayed ACK (RFC 9293 §3.8.6.3): at least every second full-sized segment, else a timer.

        As Linux (tcp_event_data_recv), the first data of a connection, and data after an idle gap
        longer than the RTO, start a quickack phase that ACKs every segment at once, so slow start
        is not held back by the timer; an interactive (ping-pong) exchange delays ACKs to piggyback them.
        """
        if not self._delack_started or now - self.last_data_rcv > rto:
            self._delack_started = True
            self._add_quickacks(min(max(DEFAULT_MSS, segment_len), self.config.mss))
        self.last_data_rcv = now
        if self._more_than_a_segment_unacked() or (self._quickacks and not self._pingpong):
            self.ack_now = True
        else:
            self.timers.start_if_idle(timers.DELAYED_ACK, now + self.config.delayed_ack)

    def _more_than_a_segment_unacked(self) -> bool:
        """More than one full segment since the last ACK, and the window it would offer does not shrink
        (Linux __tcp_ack_snd_check: else the application's read sends the update)."""
        return self._full_segment_unacked() and self._select_window() >= self.tcb.rcv_wnd

    def _full_segment_unacked(self) -> bool:
        """More than one full segment (the FIN included) arrived since the last ACK went."""
        return seq_sub(self.tcb.rcv_nxt, self.rcv_wup) > (self.rcv_mss or self.estimated_rcv_mss())

    def enter_quickack(self) -> None:
        """Data was dropped out of the window: ACK the next segments at once and leave interactive mode,
        so the peer learns soon (Linux tcp_enter_quickack_mode)."""
        self._add_quickacks(self.rcv_mss or self.estimated_rcv_mss())
        self._pingpong = False

    def _add_quickacks(self, rcv_mss: int) -> None:
        """ACK at once as many segments as half the window holds, 2 when it holds none (Linux
        tcp_incr_quickack: a window of one or two segments gets one)."""
        quickacks = min(self.tcb.rcv_wnd // (2 * rcv_mss) or 2, _MAX_QUICKACKS)
        if quickacks > self._quickacks:
            self._quickacks = quickacks

    def on_delayed_ack_timeout(self) -> None:
        self.ack_now = True
        self._pingpong = False  # no data came to carry the ACK: leave ping-pong mode (as Linux)

    def on_compressed_ack_timeout(self) -> None:
        """The ACKs SACK compression held go as one (Linux tcp_compressed_ack_kick)."""
        held = self.out_of_order
        compression = held.compression if held is not None else None
        if compression is not None and compression.held:
            compression.send_one()
            self.ack_now = True

    def acknowledgment(self, now: float, payload: bytes | memoryview) -> tuple[int, tuple[tuple[int, int], ...]]:
        """What the next segment out acknowledges: the window field (scaled down) and its SACK blocks,
        D-SACK first, as many as fit beside its `payload`. The ACK owed is then paid. Data, new or resent,
        that answers what just arrived makes the exchange interactive: ACKs wait to ride on our data
        (Linux tcp_event_data_sent, called for every segment with data, ping-pong mode)."""
        tcb = self.tcb
        if payload and self._delack_started and now - self.last_data_rcv < self.config.delayed_ack:
            self._pingpong = True
        held = self.out_of_order
        sack: tuple[tuple[int, int], ...] = ()
        if held is not None:
            if held and tcb.sack_ok:
                sack = held.blocks(self._most_sack_blocks())
            compression = held.compression
            if compression is not None:  # any ACK stands for those held (Linux tcp_event_ack_sent)
                if compression.flush_blocks is not None:
                    sack = compression.flush_blocks
                compression.ack_sent()
                self.timers.stop(timers.COMPRESSED_ACK)
        if self.dsack is not None:  # D-SACK: the duplicate's range goes first (RFC 2883 §4)
            sack = (self.dsack, *sack)[: self._most_sack_blocks()]
            self.dsack = None
        if payload and sack:  # a resent full segment has no room for all blocks: the packet must fit the MTU
            sack = sack[: max(0, (tcb.snd_mss - len(payload) - SACK_OPTION_BASE) // SACK_BLOCK_BYTES)]
        window = self._offer_window()
        self.ack_now = False
        self._pushed = 0
        if self._quickacks:
            self._quickacks -= 1
        self.timers.stop(timers.DELAYED_ACK)
        return window, sack

    def request_acknowledgment(self) -> int:
        """The window field of an ACK before a passive open completes: the SYN,ACK's window, scaled down and
        left as it is, as Linux's request sock offers until the connection is made (tcp_v4_reqsk_send_ack:
        rsk_rcv_wnd >> rcv_wscale); no SACK blocks, since nothing is held yet. The ACK owed is paid."""
        tcb = self.tcb
        self.ack_now = False
        self.timers.stop(timers.DELAYED_ACK)
        return min(tcb.rcv_wnd, 0xFFFF) >> tcb.rcv_wscale

    def sack_option_bytes(self) -> int:
        """Bytes the SACK option takes on our next segment (NOP,NOP,kind,len + 8 per block), 0 if none."""
        if not self.tcb.sack_ok:
            return 0
        held = self.out_of_order
        blocks = (held.block_count() if held is not None else 0) + (self.dsack is not None)
        blocks = min(blocks, self._most_sack_blocks())
        return SACK_OPTION_BASE + SACK_BLOCK_BYTES * blocks if blocks else 0

    def sack_blocks(self) -> tuple[tuple[int, int], ...]:
        """SACK blocks for what is held out of order, the most recently received segment's first (RFC 2018 §4)."""
        held = self.out_of_order
        return held.blocks(self._most_sack_blocks()) if held is not None else ()

    def _most_sack_blocks(self) -> int:
        """The SACK blocks an ACK has room for: three beside timestamps, else four (RFC 2018 §3)."""
        return 3 if self.tcb.ts_ok else 4

    # ------------------------------------------------------------------ the window we offer

    def allowed_space(self) -> int:
        """The window the whole buffer holds at the current ratio (Linux tcp_full_space)."""
        return rcv_space.win_from_space(self.rcvbuf, self.scaling_ratio)

    def space(self) -> int:
        """The window the buffer's free memory holds, negative when overcommitted (Linux tcp_space)."""
        return rcv_space.win_from_space(self.rcvbuf - self.rmem, self.scaling_ratio)

    def free_space(self) -> int:
        """The window the free receive memory allows (0 when none)."""
        return max(self.space(), 0)

    def current_window(self) -> int:
        """What is left of the window last offered (Linux tcp_receive_window)."""
        left = (self.rcv_wup + self.tcb.rcv_wnd - self.tcb.rcv_nxt) & _MASK  # per segment: inlined
        return 0 if left >= _HALF else left

    def set_receive_buffer(self, size: int) -> None:
        """SO_RCVBUF on an open connection: sk_rcvbuf becomes twice `size`; the window follows."""
        self.rcvbuf = rcv_space.sk_rcvbuf(size)

    def open_window(self, mss: int) -> None:
        """The first window, offered on the SYN (tcp_select_initial_window): the buffer's space at the
        default ratio in whole segments of `mss`; a buffer set by SO_RCVBUF also clamps every later window."""
        tcb = self.tcb
        full = self.allowed_space()
        locked = self.config.receive_buffer_locked
        tcb.rcv_wnd = rcv_space.first_window(full, locked, mss)
        self.window_clamp = min(0xFFFF << tcb.rcv_wscale, rcv_space.buffer_clamp(full, locked))
        self.rcv_ssthresh = tcb.rcv_wnd
        self.rebase_window()

    def rebase_window(self) -> None:
        """RCV.NXT is known (or changed by the peer's SYN): the offered window starts from it."""
        tcb = self.tcb
        self.rcv_wup = tcb.rcv_nxt
        tcb.rcv_adv = seq_add(tcb.rcv_nxt, tcb.rcv_wnd)
        if not tcb.rcv_wscale:
            self.window_clamp = min(self.window_clamp, 0xFFFF)

    def init_buffer_space(self) -> None:
        """The connection is established (Linux tcp_init_buffer_space): the clamp becomes the buffer's
        space less one segment of our MSS, reserved for the application (tcp_app_win), and the window
        grows from the first one offered. The guess at the peer's segment size is made once, now, from
        that first window (tcp_initialize_rcv_mss), unless a segment measured it already."""
        if not self.rcv_mss:
            self.rcv_mss = self.estimated_rcv_mss()
        advmss = self.config.mss
        maxwin = self.allowed_space()
        if self.window_clamp >= maxwin:
            self.window_clamp = maxwin
        if self.window_clamp > 2 * advmss and self.window_clamp + advmss > maxwin:
            self.window_clamp = max(2 * advmss, maxwin - advmss)
        self.rcv_ssthresh = min(self.rcv_ssthresh, self.window_clamp)

    def _set_window_clamp(self, value: int) -> None:
        """Linux tcp_set_window_clamp: a larger clamp lets rcv_ssthresh catch up with the window offered."""
        clamp = max(value, rcv_space.MIN_WINDOW_CLAMP)
        if clamp < self.window_clamp:
            self.rcv_ssthresh = min(self.rcv_ssthresh, clamp)
        elif clamp > self.window_clamp:
            self.rcv_ssthresh = max(min(self.tcb.rcv_wnd, clamp), self.rcv_ssthresh)
        self.window_clamp = clamp

    def _grow_window(self, skb_len: int, truesize: int) -> None:
        """Linux tcp_grow_window: a packet whose data fills its memory well lets the window grow, by twice
        its data at most, towards what the buffer and the clamp allow; growth asks for a quick ACK."""
        space = (self.rcvbuf - self.rmem) * self.scaling_ratio >> rcv_space.RATIO_SHIFT  # per segment: inlined
        room = min(self.window_clamp, space) - self.rcv_ssthresh
        if room <= 0:
            return
        if self.memory is not None and self.memory.pressure:
            self.rcv_ssthresh = min(self.rcv_ssthresh, 4 * self.config.mss)  # tcp_adjust_rcv_ssthresh
            return
        ratio = self.scaling_ratio
        if rcv_space.win_from_space(truesize, ratio) <= skb_len:
            incr = 2 * self.config.mss
        else:  # __tcp_grow_window: only small windows grow for packets with much overhead
            cost = rcv_space.win_from_space(truesize, ratio) >> 1
            limit = rcv_space.win_from_space(self.config.receive_buffer_max, ratio) >> 1
            incr = 0
            while self.rcv_ssthresh <= limit:
                if cost <= skb_len:
                    incr = 2 * (self.rcv_mss or self.estimated_rcv_mss())
                    break
                cost >>= 1
                limit >>= 1
        if incr:
            self.rcv_ssthresh += min(room, max(incr, 2 * skb_len))
            self._quickacks |= 1

    def _grow_rcvbuf(self, space: int, prior: int) -> None:
        """Linux tcp_rcvbuf_grow: an unset buffer grows to hold twice what the application reads per round
        trip (`space`; "DRS is always one RTT late"), and, as in slow start the sender may double its rate,
        twice that again in the proportion the reading grew from `prior`, plus the span held out of order,
        up to tcp_rmem[2]."""
        if self.config.receive_buffer_locked:
            return
        window = 2 * space
        if space > prior > 0:
            window += (window * (space - prior) // prior) << 1
        if self.out_of_order is not None:
            window += self.out_of_order.reach(self.tcb.rcv_nxt)
        wanted = min(window * 256 // self.scaling_ratio, self.config.receive_buffer_max)
        if wanted > self.rcvbuf:
            self.rcvbuf = wanted
            self.window_clamp = self.allowed_space()  # the clamp follows the buffer

    def after_data(self, skb_len: int, now: float) -> None:
        """In-order data was queued (Linux tcp_event_data_recv): it may end the window-based sample of the
        receiver's RTT (the first data begins the buffer's right-sizing, from when the connection was
        established: `last_data_rcv` until this data's ACK is scheduled), and a packet of 128 bytes or more
        may let the window grow."""
        if not skb_len:
            return
        tcb = self.tcb
        self._tuning_started().data_arrived(now, tcb.rcv_nxt, tcb.rcv_wnd)
        if skb_len >= 128:
            self._grow_window(skb_len, self._last_truesize())

    def _tuning_started(self) -> RcvTuning:
        """The buffer's right-sizing, begun with the first data: from the space and the read point Linux's
        tcp_init_buffer_space set when the connection was established (`last_data_rcv` until then)."""
        tuning = self.tuning
        if tuning is None:
            copied_seq = (self.tcb.rcv_nxt - len(self._buf)) & _MASK
            tuning = self.tuning = RcvTuning(self._initial_space(), copied_seq, self.last_data_rcv)
        return tuning

    def _initial_space(self) -> int:
        """What the application is taken to read per round trip before it is measured: ten segments of our
        MSS within the windows (Linux tcp_init_buffer_space)."""
        return min(min(self.rcv_ssthresh, self.tcb.rcv_wnd), 10 * self.config.mss)

    def echo_seen(self, tsecr: int, ts_now: int, seg_len: int) -> None:
        """A segment of `seg_len` that arrived in ESTABLISHED echoed our timestamp `tsecr` (Linux
        tcp_rcv_rtt_measure_ts, before its data is queued); `ts_now` is our timestamp clock's reading. An
        echo not seen before, on a full-sized segment, is a sample of the receiver's RTT."""
        if tsecr == self.last_tsecr:
            return
        self.last_tsecr = tsecr
        if seg_len >= (self.rcv_mss or self.estimated_rcv_mss()):
            self._tuning_started().echo_sample(tsecr, ts_now, not self._buf)

    @property
    def rcv_rtt(self) -> int:
        """The receiver's RTT estimate in microseconds, 0 before a sample (tcpi_rcv_rtt)."""
        return self.tuning.rtt if self.tuning is not None else 0

    @property
    def rcv_space(self) -> int:
        """What the application read in a round trip, at most (tcpi_rcv_space)."""
        return self.tuning.space if self.tuning is not None else self._initial_space()

    def _last_truesize(self) -> int:
        return self._skbs[-1][1] if self._skbs else 0

    def no_memory(self) -> None:
        """An in-order segment was dropped for lack of memory: ACK at once, offering a zero window."""
        self._nomem = True
        self.ack_now = True

    def make_room(self, seq: int, counters: Counters) -> bool:
        """Whether the receive memory takes the packet arriving at `seq`: what is held does not exceed the
        buffer (Linux tcp_try_rmem_schedule, so one packet may take it past). If it does, Linux's
        tcp_prune_queue (counted as PruneCalled) clamps the window first (tcp_clamp_window: no quick ACKs,
        an unset buffer grows to what is held, up to tcp_rmem[2], and while more is held than the buffer
        rcv_ssthresh drops to two segments so the window reopens slowly), then copies what is held out of
        order and the receive queue's data into compact packets (`OutOfOrder.collapse`, `_collapse`),
        then drops held data from the top (`OutOfOrder.prune`, OfoPruned); if that is not enough the
        packet is refused (RcvPruned)."""
        if self.rmem <= self.rcvbuf:
            self.reserve_arriving()
            return True
        events = counters.events()
        events.prune_called += 1
        self._quickacks = 0
        pressure = self.memory is not None and self.memory.pressure
        if not self.config.receive_buffer_locked and not pressure and self.rcvbuf < self.config.receive_buffer_max:
            self.rcvbuf = min(self.rmem, self.config.receive_buffer_max)
        held = self.out_of_order
        if self.rmem > self.rcvbuf:
            self.rcv_ssthresh = min(self.window_clamp, 2 * self.config.mss)
            if held is not None and held.memory:
                count, made, freed = held.collapse(self.tcb.rcv_nxt, self.rcvbuf, self.scaling_ratio)
                self._charge(made)
                self._free(freed)
                events.rcv_collapsed += count
            if self._skbs:
                events.rcv_collapsed += self._collapse()
        if self.rmem > self.rcvbuf and held is not None and held.memory:
            freed = held.prune(seq, self.tcb.rcv_nxt, self.rcvbuf >> 3, self.rmem - self.rcvbuf, pressure)
            if freed:
                self._free(freed)
                self.dsack = None  # (tcp_sack_reset)
                events.ofo_pruned += 1
        if self.rmem <= self.rcvbuf:
            self.reserve_arriving()
            return True
        events.rcv_pruned += 1
        return False

    def predicts_room(self) -> bool:
        """Whether the memory reserved already takes the arriving packet: Linux's fast path takes no other
        (tcp_rcv_established: its truesize within sk_forward_alloc), and makes no room."""
        return self._arriving[1] <= self.forward_alloc

    def reserve_arriving(self) -> None:
        """Reserve what the arriving packet lacks, in whole pages (sk_rmem_schedule; sk_forced_mem_schedule
        for a packet taken beyond the buffer)."""
        lacking = self._arriving[1] - self.forward_alloc
        if lacking > 0:
            self.forward_alloc += -(-lacking // rcv_space.PAGE) * rcv_space.PAGE

    def _charge(self, truesize: int) -> None:
        """A packet of `truesize` is held: charged to the receive memory, from the reserve (sk_mem_charge;
        the reserve may go below zero for a packet nothing reserved for, as a collapse makes)."""
        self.rmem += truesize
        self.forward_alloc -= truesize

    def _free(self, truesize: int) -> None:
        """Packets of `truesize` in all were freed: their memory goes back to the reserve, of which whole
        pages go back to the system (sk_mem_uncharge, sk_mem_reclaim)."""
        self.rmem -= truesize
        reserve = self.forward_alloc + truesize
        self.forward_alloc = reserve % rcv_space.PAGE if reserve >= rcv_space.PAGE else reserve

    def _collapse(self) -> int:
        """Linux tcp_collapse on the receive queue, from the first packet whose memory holds more window
        than it has data (a small segment in a large buffer) or that was read in part: its unread bytes
        and all after them are copied into packets of up to a page (COLLAPSED_MAX), each charged as
        alloc_skb charges it; how many packets were freed (TCPRcvCollapsed)."""
        skbs = self._skbs
        ratio = self.scaling_ratio
        first = 0
        for skb in skbs:
            if skb[0] < skb[3] or skb[1] * ratio >> rcv_space.RATIO_SHIFT > skb[3]:
                break
            first += 1
        if first == len(skbs):
            return 0
        freed = skbs[first:]
        left = sum(skb[0] for skb in freed)
        compact = []
        while left:
            size = min(left, rcv_space.COLLAPSED_MAX)
            truesize, tailroom = rcv_space.collapsed(size)
            compact.append([size, truesize, tailroom, size])
            self._charge(truesize)  # (as it is made, from the reserve or below it)
            left -= size
        self._free(sum(skb[1] for skb in freed))
        self._skbs = list(skbs[:first]) + compact
        return len(freed)

    def _select_window(self) -> int:
        """Linux __tcp_select_window: the free space, at most rcv_ssthresh; zero when less than a segment
        (or a sixteenth of the buffer) is free (receiver SWS avoidance, RFC 9293 §3.8.6.2.2). Without
        window scaling the window moves in whole segments; with it, in units of the scale."""
        tcb = self.tcb
        unit = 1 << tcb.rcv_wscale
        mss = self.rcv_mss or self.estimated_rcv_mss()
        ratio = self.scaling_ratio  # per segment: space() and allowed_space() inlined
        free = (self.rcvbuf - self.rmem) * ratio >> rcv_space.RATIO_SHIFT
        allowed = self.rcvbuf * ratio >> rcv_space.RATIO_SHIFT
        full = min(self.window_clamp, allowed)
        if mss > full:
            mss = full
            if mss <= 0:
                return 0
        shrink = self.config.shrink_window and tcb.rcv_wscale
        if shrink:
            free -= free % unit
        if free < full >> 1:
            self._quickacks = 0
            if self.memory is not None and self.memory.pressure:
                self.rcv_ssthresh = min(self.rcv_ssthresh, 4 * self.config.mss)
            free -= free % unit
            if free < allowed >> 4 or free < mss or (shrink and free < unit):
                return 0
        if free > self.rcv_ssthresh:
            free = self.rcv_ssthresh
            if shrink:
                return -(-free // unit) * unit
        if shrink:
            return free
        if tcb.rcv_wscale:
            return -(-free // unit) * unit  # never scaled away to zero
        window = tcb.rcv_wnd
        if window <= free - mss or window > free:
            window = free - free % mss
        elif mss == full and free > window + (full >> 1):
            window = free
        return window

    def _offer_window(self) -> int:
        """Linux tcp_select_window: the window for the next segment, scaled down. The right edge never
        moves left (RFC 9293 §3.8.6) unless tcp_shrink_window allows it with window scaling; after a
        segment was dropped for memory the window is zero. Under the stack's memory pressure the window
        does not grow."""
        tcb = self.tcb
        if self._nomem:
            self._nomem = False
            tcb.rcv_wnd = 0
            self.rcv_wup = tcb.rcv_nxt
            return 0
        current = self.current_window()
        window = self._select_window()
        if self.memory is not None and self.memory.pressure and tcb.rcv_wnd:
            window = min(window, current)
        if window < current and not (self.config.shrink_window and tcb.rcv_wscale):
            unit = 1 << tcb.rcv_wscale
            window = -(-current // unit) * unit
        tcb.rcv_wnd = window
        self.rcv_wup = tcb.rcv_nxt
        edge = seq_add(tcb.rcv_nxt, window)
        if seq_lt(tcb.rcv_adv, edge):
            tcb.rcv_adv = edge  # the furthest edge ever offered stays acceptable (Linux rcv_mwnd_seq)
        return min(window, 0xFFFF << tcb.rcv_wscale) >> tcb.rcv_wscale

    def maybe_window_update(self) -> None:
        """After the application read (Linux tcp_cleanup_rbuf): a delayed ACK goes now for more than one
        full segment, or when the read emptied the memory and a short or pushed segment came (two, in an
        interactive exchange); and an ACK is owed if the window now possible is at least twice what is left
        of the one offered, unless the peer's FIN came: it sends no more, so a window update would be
        wasted."""
        if self.timers.running(timers.DELAYED_ACK):
            pushed = self._pushed
            drained = pushed and (pushed & _PUSHED2 or not self._pingpong) and not self.rmem
            if drained or self._full_segment_unacked():
                self.ack_now = True
                return
        if self.peer_fin:
            return
        now_left = self.current_window()
        if 2 * now_left <= self.window_clamp:
            window = self._select_window()
            if window and window >= 2 * now_left:
                self.ack_now = True
