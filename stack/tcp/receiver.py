"""The receive side of one connection: what arrived, what we acknowledge and the window we offer.

It owns the receive buffer and the out-of-order queue (RFC 9293 §3.10.7.4 seventh check), delayed ACKs
and Linux's quickack/ping-pong modes (§3.8.6.3), the window we advertise (§3.8.6, receiver SWS
avoidance §3.8.6.2.2), the SACK and D-SACK blocks of our ACKs (RFC 2018 §4, RFC 2883 §4) and TS.Recent
for PAWS (RFC 7323 §5.3). The connection shares its TCB (RCV.NXT, RCV.WND, RCV.ADV) and timers with it.
"""

from __future__ import annotations

from stack.tcp import timers
from stack.tcp.config import TcpConfig
from stack.tcp.events import DataAvailable, Event, PeerClosed
from stack.tcp.memory import MemoryBudget
from stack.tcp.reassembly import Reassembly
from stack.tcp.tcb import Tcb
from stack.wire.seq import in_window, seq_add, seq_le, seq_sub

DEFAULT_MSS = 536  # RFC 9293 §3.7.1: assumed when the peer sends no MSS option
_MAX_QUICKACKS = 16  # Linux TCP_MAX_QUICKACKS
SACK_OPTION_BASE, SACK_BLOCK_BYTES = 4, 8  # NOP,NOP,kind,length, then a left and right edge per block
_MASK = 0xFFFFFFFF  # on the per-segment paths sequence arithmetic is inlined, modulo 2**32 (RFC 9293 §3.4)
_HALF = 0x80000000
_DATA_AVAILABLE = DataAvailable()  # frozen and fieldless: one instance serves every delivery


class Receiver:
    __slots__ = (
        "config",
        "tcb",
        "timers",
        "_events",
        "_buf",
        "reassembly",
        "ack_now",
        "_unacked_segments",
        "_quickacks",
        "_delack_started",
        "_pingpong",
        "last_data_rcv",
        "bytes_received",
        "rcv_mss",
        "peer_fin",
        "ts_recent",
        "_ooo_arrivals",
        "dsack",
        "memory",
    )  # thousands of these: no instance dicts

    def __init__(self, config: TcpConfig, tcb: Tcb, deadlines: timers.Timers, events: list[Event]) -> None:
        self.config = config
        self.tcb = tcb
        self.timers = deadlines  # the connection's (Connection.watch_timers swaps both)
        self._events = events
        self._buf = bytearray()
        self.reassembly = Reassembly(config.ofo_max_bytes, config.ofo_max_holes)
        self.ack_now = False  # an ACK is owed at once
        self._unacked_segments = 0
        self._quickacks = 0  # ACKs still to send at once (Linux quickack mode)
        self._delack_started = False  # the first data segment arrived
        self._pingpong = False  # interactive: our data follows theirs, so ACKs wait to ride on it
        self.last_data_rcv = 0.0  # when data last arrived (tcpi_last_data_recv)
        self.bytes_received = 0  # in-order bytes taken, never wrapping (tcpi_bytes_received)
        self.rcv_mss = 0  # the largest segment the peer sent so far (Linux icsk_ack.rcv_mss); 0: none yet
        self.peer_fin = False  # the peer's FIN arrived in sequence
        self.ts_recent = 0  # TS.Recent: the peer's timestamp to echo (RFC 7323 §4.3)
        self._ooo_arrivals: list[int] = []  # the last 8 out-of-order arrivals, newest last (not a deque: 760 B)
        self.dsack: tuple[int, int] | None = None  # a duplicate segment to report in the next ACK
        self.memory: MemoryBudget | None = None  # the stack's budget: under pressure windows stop growing

    # ------------------------------------------------------------------ the application's side

    def __len__(self) -> int:
        """In-order bytes waiting for the application (Recv-Q)."""
        return len(self._buf)

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
        if max_bytes < 0 or max_bytes >= len(buf):
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(memoryview(buf)[:max_bytes])
            del buf[:max_bytes]  # bytearray drops a prefix without moving the rest
        return data

    # ------------------------------------------------------------------ arriving text and FIN

    def deliver(self, data: bytes) -> None:
        """In-order bytes at RCV.NXT: into the buffer, RCV.NXT advances."""
        if data:
            was_empty = not self._buf
            n = len(data)
            self._buf += data
            self.bytes_received += n
            self.tcb.rcv_nxt = (self.tcb.rcv_nxt + n) & _MASK
            if was_empty:
                self._events.append(_DATA_AVAILABLE)

    def measure_segment(self, size: int) -> None:
        """The peer's segment size as Linux estimates it (tcp_measure_rcv_mss): a segment at least as
        large as the estimate raises it, up to our MSS; `size` is a GRO packet's segment size."""
        if size >= (self.rcv_mss or self.estimated_rcv_mss()):
            self.rcv_mss = min(size, self.config.mss)

    def estimated_rcv_mss(self) -> int:
        """Before any full segment, Linux's guess (tcp_initialize_rcv_mss): the smallest of both MSSes,
        half the window and 536, but at least 88 (TCP_MIN_MSS)."""
        if self.rcv_mss:
            return self.rcv_mss
        return max(min(self.config.mss, self.tcb.snd_mss, self.tcb.rcv_wnd // 2, DEFAULT_MSS), 88)

    def hold(self, seq: int, payload: bytes) -> bool:
        """Out-of-order bytes go to the reassembly queue and are ACKed at once (RFC 5681 §4.2); True if the
        queue's bounds dropped data (Linux TCPOFODrop)."""
        end = seq_add(seq, len(payload))
        if self.tcb.sack_ok and any(seq_le(a, seq) and seq_le(end, b) for a, b in self.reassembly.sack_blocks()):
            self.dsack = (seq, end)  # a duplicate of data held out of order (RFC 2883 §4.1.3)
        dropped = self.reassembly.add(self.tcb.rcv_nxt, seq, payload) > 0
        self._ooo_arrivals.append(seq)
        if len(self._ooo_arrivals) > 8:
            del self._ooo_arrivals[0]
        self.ack_now = True
        return dropped

    def peer_finished(self, now: float, half_close: bool, hole_filled: bool) -> None:
        """The peer's FIN is in sequence: it takes one sequence number, the stream ends after the buffer,
        and it resets the SACK state, so no D-SACK rides on its ACK (Linux tcp_fin). Closing ourselves, we
        ACK it at once. A half-close of an open connection starts interactive mode, as Linux's tcp_fin: the
        ACK waits for the delayed-ACK timer (RFC 9293 §3.8.6.3) and rides on our FIN or data if the
        application answers; before any data arrived Linux's ACK timeout is still 0, so it goes at once,
        and so does the ACK of a filled hole (RFC 5681 §4.2), of a full-sized segment that came with
        the FIN (more than one MSS unacknowledged, Linux __tcp_ack_snd_check), and of a FIN that finds
        the buffer full (Linux's tcp_data_queue has no memory for it and ACKs now, with the zero window)."""
        self.tcb.rcv_nxt = seq_add(self.tcb.rcv_nxt, 1)
        self.peer_fin = True
        self._events.append(PeerClosed())
        self.dsack = None
        if not half_close:
            self.ack_now = True
            return
        self._pingpong = True
        if self._unacked_segments == 0 and not hole_filled and self._delack_started and self.free_space():
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
            rcv_mss = min(max(DEFAULT_MSS, segment_len), self.config.mss)
            self._quickacks = max(self._quickacks, min(max(self.tcb.rcv_wnd // (2 * rcv_mss), 2), _MAX_QUICKACKS))
        self.last_data_rcv = now
        if segment_len >= self.tcb.snd_mss:  # a super-segment from TUN offloads counts as the segments it holds
            self._unacked_segments += segment_len // self.tcb.snd_mss
        if self._unacked_segments >= 2 or (self._quickacks and not self._pingpong):
            self.ack_now = True
        else:
            self.timers.start_if_idle(timers.DELAYED_ACK, now + self.config.delayed_ack)

    def on_delayed_ack_timeout(self) -> None:
        self.ack_now = True
        self._pingpong = False  # no data came to carry the ACK: leave ping-pong mode (as Linux)

    def acknowledgment(self, now: float, payload: bytes, new_data: bool) -> tuple[int, tuple[tuple[int, int], ...]]:
        """What the next segment out acknowledges: the window field (scaled down) and its SACK blocks,
        D-SACK first, as many as fit beside its `payload`. The ACK owed is then paid. New data that
        answers what just arrived makes the exchange interactive: ACKs wait to ride on our data (Linux
        tcp_event_data_sent, ping-pong mode)."""
        tcb = self.tcb
        if new_data and self._delack_started and now - self.last_data_rcv < self.config.delayed_ack:
            self._pingpong = True
        sack = self.sack_blocks() if self.tcb.sack_ok and len(self.reassembly) else ()
        if self.dsack is not None:  # D-SACK: the duplicate's range goes first (RFC 2883 §4)
            sack = (self.dsack, *sack)[: 3 if self.tcb.ts_ok else 4]
            self.dsack = None
        if payload and sack:  # a resent full segment has no room for all blocks: the packet must fit the MTU
            sack = sack[: max(0, (tcb.snd_mss - len(payload) - SACK_OPTION_BASE) // SACK_BLOCK_BYTES)]
        # the window never shrinks the right edge (§3.8.6) and moves in MSS-sized steps (receiver SWS
        # avoidance, §3.8.6.2.2)
        limit = 0xFFFF << tcb.rcv_wscale
        offered = (tcb.rcv_adv - tcb.rcv_nxt) & _MASK  # RCV.ADV - RCV.NXT, negative beyond the edge
        if offered >= _HALF:
            offered -= 1 << 32
        free = self._growable_window(offered)
        step = min(tcb.snd_mss, self.config.receive_buffer // 2)
        if free - max(offered, 0) >= step or free >= limit:
            offered = free
        offered = max(offered, 0)
        offered -= offered & ((1 << tcb.rcv_wscale) - 1)  # representable after scaling
        tcb.rcv_wnd = offered
        new_edge = (tcb.rcv_nxt + offered) & _MASK
        if 0 < (new_edge - tcb.rcv_adv) & _MASK < _HALF:  # beyond RCV.ADV
            tcb.rcv_adv = new_edge
        self.ack_now = False
        self._unacked_segments = 0
        if self._quickacks:
            self._quickacks -= 1
        self.timers.stop(timers.DELAYED_ACK)
        return offered >> tcb.rcv_wscale, sack

    def sack_option_bytes(self) -> int:
        """Bytes the SACK option takes on our next segment (NOP,NOP,kind,len + 8 per block), 0 if none."""
        if not self.tcb.sack_ok:
            return 0
        blocks = min(len(self.reassembly) + (self.dsack is not None), 3 if self.tcb.ts_ok else 4)
        return SACK_OPTION_BASE + SACK_BLOCK_BYTES * blocks if blocks else 0

    def sack_blocks(self) -> tuple[tuple[int, int], ...]:
        """SACK blocks for held out-of-order data: the block of the most recently received segment first,
        then the others in the order their data last arrived (RFC 2018 §4)."""
        blocks = self.reassembly.sack_blocks()
        arrivals = self._ooo_arrivals

        def last_arrival(block: tuple[int, int]) -> int:
            size = seq_sub(block[1], block[0])
            return max((i for i, seq in enumerate(arrivals) if in_window(seq, block[0], size)), default=-1)

        blocks.sort(key=last_arrival, reverse=True)  # stable: blocks with no known arrival keep sequence order
        return tuple(blocks[: 3 if self.tcb.ts_ok else 4])

    # ------------------------------------------------------------------ the window we offer

    def free_space(self) -> int:
        """Receive-buffer space left: what neither the application's unread bytes nor held ones take."""
        free = self.config.receive_buffer - len(self._buf) - self.reassembly.bytes_held
        return max(free, 0)

    def _growable_window(self, offered: int) -> int:
        """The window the buffer allows, but no more than `offered` under memory pressure: windows stop
        growing (Linux tcp_mem[1]); a new connection still gets its initial window."""
        free = min(self.free_space(), 0xFFFF << self.tcb.rcv_wscale)
        if self.memory is not None and self.memory.pressure:
            return min(free, max(offered, 0))
        return free

    def open_window(self) -> None:
        """The first window, offered on the handshake."""
        tcb = self.tcb
        limit = 0xFFFF << tcb.rcv_wscale
        tcb.rcv_wnd = min(self.free_space(), limit)
        tcb.rcv_adv = seq_add(tcb.rcv_nxt, tcb.rcv_wnd)

    def maybe_window_update(self) -> None:
        """After the application read: owe an ACK if the window grew enough to announce."""
        tcb = self.tcb
        offered = max(seq_sub(tcb.rcv_adv, tcb.rcv_nxt), 0)
        free = self._growable_window(offered)
        step = min(tcb.snd_mss, self.config.receive_buffer // 2)
        # RFC 9293 §3.8.6.2.2 (grow by at least min(RCV.BUFF/2, MSS)); like Linux, only announce a
        # window that at least doubles, unless the offered one has shrunk below that step
        if free - offered >= step and (free >= 2 * offered or offered < step):
            self.ack_now = True
