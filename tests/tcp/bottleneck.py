"""A tiny virtual-time path for congestion-control tests: one sender, one bottleneck link, one receiver.

The sender sends MSS-sized segments as its controller allows (cwnd, and pacing_rate when it has
one); the bottleneck serializes them at `rate` bytes/s behind a FIFO of `buffer` bytes (a new
segment that does not fit is dropped); the receiver acknowledges every segment cumulatively, and
the ACK reaches the sender `rtt` seconds after the segment left the bottleneck, with SACK blocks for
everything held above the cumulative point (RFC 2018, without the limit of four blocks). Loss
recovery is a plain RFC 6675: the third duplicate ACK starts recovery, every hole below the highest
SACKed byte is retransmitted once, and the ACK of everything sent before recovery ends it. New data
goes out while the pipe (SND.NXT - SND.UNA less the segments the receiver SACKed, RFC 6675 §2) is
below cwnd. To keep the model free of retransmission timeouts, retransmissions are never dropped
(they jump the queue's limit).

The controller is driven through `Contained`, the wrapper connections use, so the delivery-rate
estimator and the AckSamples are the real ones.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from stack.tcp.congestion import Contained, attach


@dataclass
class Path:
    rate: float  # bytes per second at the bottleneck
    rtt: float  # seconds of propagation, round trip
    buffer: float = float("inf")  # bytes the bottleneck queue holds


@dataclass
class Trace:
    states: list[tuple[float, str]] = field(default_factory=list)  # (time, controller state) at each change
    drops: int = 0
    recoveries: int = 0

    def state_order(self) -> list[str]:
        return [s for _, s in self.states]


class Sender:
    def __init__(self, name: str, path: Path, mss: int = 1000, iw: int = 10) -> None:
        self.cc: Contained = attach(name, mss, iw)
        self.path = path
        self.mss = mss
        self.now = 0.0
        self.snd_nxt = 0
        self.snd_una = 0
        self.link_free_at = 0.0
        self.next_send_at = 0.0  # pacing
        self.acks: list[tuple[float, int, tuple[tuple[int, int], ...]]] = []  # (arrival, ACK, SACK blocks)
        self.rcv_nxt = 0  # the receiver: in-order point and what it holds beyond it
        self.rcv_held: set[int] = set()
        self.dupacks = 0
        self.recover: int | None = None  # snd_nxt when recovery began (RFC 6582)
        self.sacked: set[int] = set()  # segments above snd_una the receiver reported holding
        self.resent: set[int] = set()  # holes retransmitted in this recovery
        self.trace = Trace()

    @property
    def flight(self) -> int:
        return self.snd_nxt - self.snd_una

    def _send_allowed(self) -> bool:
        pipe = self.flight - len(self.sacked) * self.mss
        return pipe + self.mss <= self.cc.cwnd and self.now >= self.next_send_at - 1e-12

    def _transmit(self, seq: int, retransmission: bool) -> None:
        path = self.path
        self.cc.data_sent(seq, self.mss, self.flight, self.now)
        queued = max(self.link_free_at - self.now, 0.0) * path.rate
        if not retransmission and queued + self.mss > path.buffer:
            self.trace.drops += 1
            return
        self.link_free_at = max(self.link_free_at, self.now) + self.mss / path.rate
        # the receiver gets it as it leaves the bottleneck and answers with a cumulative ACK
        self.rcv_held.add(seq)
        while self.rcv_nxt in self.rcv_held:
            self.rcv_held.discard(self.rcv_nxt)
            self.rcv_nxt += self.mss
        heapq.heappush(self.acks, (self.link_free_at + path.rtt, self.rcv_nxt, self._sack_blocks()))

    def _sack_blocks(self) -> tuple[tuple[int, int], ...]:
        blocks: list[tuple[int, int]] = []
        for seq in sorted(self.rcv_held):
            if blocks and blocks[-1][1] == seq:
                blocks[-1] = (blocks[-1][0], seq + self.mss)
            else:
                blocks.append((seq, seq + self.mss))
        return tuple(blocks)

    def _send_new(self) -> None:
        self._transmit(self.snd_nxt, False)
        self.snd_nxt += self.mss
        pacing = self.cc.pacing_rate
        if pacing:
            self.next_send_at = max(self.next_send_at, self.now) + self.mss / pacing

    def _on_ack(self, ack: int, blocks: tuple[tuple[int, int], ...]) -> None:
        self.cc.sack_received(blocks, self.now)
        self.sacked = {q for a, b in blocks for q in range(a, b, self.mss) if q >= max(ack, self.snd_una)}
        if ack > self.snd_una:
            acked, flight_before = ack - self.snd_una, self.flight
            self.snd_una = ack
            self.dupacks = 0
            self.cc.ack_received(ack, acked, acked // self.mss, flight_before, self.now)
            if self.recover is not None:
                if ack >= self.recover:
                    self.recover = None
                    self.resent.clear()
                    self.cc.on_recovery_exit()
                else:
                    self._retransmit_holes()
        elif ack == self.snd_una and self.flight > 0:
            self.dupacks += 1
            if self.recover is not None:
                self._retransmit_holes()
            elif self.dupacks == 3:
                self.recover = self.snd_nxt
                self.trace.recoveries += 1
                self.cc.on_congestion_event(self.flight, self.now)
                self._retransmit_holes()

    def _retransmit_holes(self) -> None:
        """RFC 6675 §5: every segment below the highest SACKed one that is not SACKed, once."""
        top = max(self.sacked, default=self.snd_una + self.mss)
        for seq in range(self.snd_una, top, self.mss):
            if seq not in self.sacked and seq not in self.resent:
                self.resent.add(seq)
                self._transmit(seq, True)

    def run(self, until: float, on_step: Callable[[Sender], None] | None = None) -> Trace:
        self._record()
        while self.now < until:
            while self._send_allowed():
                self._send_new()
            self.cc.sending_stopped(self.mss, self.flight, self.recover is not None)  # never app-limited
            self.cc.window_used(self.snd_una, self.snd_nxt, self.flight + self.mss > self.cc.cwnd, self.flight)
            candidates = []
            if self.acks:
                candidates.append(self.acks[0][0])
            if self.flight + self.mss <= self.cc.cwnd and self.now < self.next_send_at:
                candidates.append(self.next_send_at)  # held back by pacing
            if not candidates:
                break
            self.now = min(candidates)
            while self.acks and self.acks[0][0] <= self.now:
                _, ack, blocks = heapq.heappop(self.acks)
                self._on_ack(ack, blocks)
            self._record()
            if on_step is not None:
                on_step(self)
        return self.trace

    def _record(self) -> None:
        state = getattr(self.cc.controller, "state", None)
        t = self.trace
        if state is not None and (not t.states or t.states[-1][1] != state):
            t.states.append((self.now, state))
