"""The path between senders and receivers: a bottleneck (rate and queue) followed by a wire (delay,
jitter, loss, duplication, reordering), and an uncongested wire for the way back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from random import Random

from stack.sim.aqm import DropTail
from stack.sim.events import EventQueue
from stack.wire.segment import Segment


@dataclass(slots=True, eq=False)
class Packet:
    """One IP packet in flight: the segment, its addresses, its size on the wire, and which flow it belongs to."""

    flow: int
    src: int
    dst: int
    segment: Segment
    size: int  # bytes of the IP packet
    enqueued: float = 0.0  # when it entered the bottleneck queue
    sojourn: float = 0.0  # how long it waited there


DropHook = Callable[[Packet, str], None]  # (packet, reason: "queue", "codel", "loss")


class Wire:
    """Propagation: every packet arrives `delay` seconds (plus or minus up to `jitter`) after it
    leaves. Jitter alone never reorders (a packet is never delivered before the one sent before it,
    as in a real path whose delay varies); a packet picked for reordering (probability `reorder`)
    is held `reorder_delay` longer and lets later ones overtake it. Loss and duplication apply first."""

    def __init__(
        self,
        events: EventQueue,
        rng: Random,
        deliver: Callable[[Packet], None],
        delay: float,
        jitter: float = 0.0,
        loss=None,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        reorder_delay: float = 0.0,
        on_drop: DropHook | None = None,
    ) -> None:
        self.events = events
        self.deliver = deliver
        self.delay = delay
        self.jitter = jitter
        self.loss = loss  # an object with lost() -> bool (loss.py), or None
        self.duplicate = duplicate
        self.reorder = reorder
        self.reorder_delay = reorder_delay
        self.on_drop = on_drop
        self._rng = rng
        self._last_arrival = 0.0
        self.carried = 0
        self.lost = 0
        self.duplicated = 0
        self.reordered = 0

    def carry(self, pkt: Packet) -> None:
        self.carried += 1
        if self.loss is not None and self.loss.lost():
            self.lost += 1
            if self.on_drop is not None:
                self.on_drop(pkt, "loss")
            return
        copies = 1
        if self.duplicate and self._rng.random() < self.duplicate:
            copies = 2
            self.duplicated += 1
        for _ in range(copies):
            self._propagate(pkt)

    def _propagate(self, pkt: Packet) -> None:
        now = self.events.now
        delay = self.delay
        if self.jitter:
            delay = max(0.0, delay + self._rng.uniform(-self.jitter, self.jitter))
        if self.reorder and self._rng.random() < self.reorder:
            self.reordered += 1
            self.events.at(now + delay + self.reorder_delay, self.deliver, pkt)
            return
        arrival = max(now + delay, self._last_arrival)
        self._last_arrival = arrival
        self.events.at(arrival, self.deliver, pkt)


class Bottleneck:
    """A link of `rate` bits per second behind a queue (aqm.py): a packet waits its turn, is serialized
    (size * 8 / rate seconds) and handed to the wire."""

    def __init__(self, events: EventQueue, rate: float, queue: DropTail, wire: Wire, on_drop: DropHook) -> None:
        self.events = events
        self.rate = rate
        self.queue = queue
        self.wire = wire
        self.on_drop = on_drop
        self.busy = False
        self._busy_time = 0.0  # seconds spent on transmissions that ended
        self._started = 0.0  # when the transmission under way began
        self.sent = 0
        self.dropped = 0

    def send(self, pkt: Packet) -> None:
        if not self.queue.enqueue(pkt, self.events.now):
            self._drop(pkt, "queue")
            return
        if not self.busy:
            self._transmit_next()

    def busy_time(self, until: float) -> float:
        """Seconds spent transmitting up to `until` (a transmission under way counts up to it)."""
        return self._busy_time + (max(0.0, until - self._started) if self.busy else 0.0)

    def _drop(self, pkt: Packet, reason: str) -> None:
        self.dropped += 1
        self.on_drop(pkt, reason)

    def _transmit_next(self) -> None:
        now = self.events.now
        pkt = self.queue.dequeue(now, self._drop)
        if pkt is None:
            self.busy = False
            return
        self.busy = True
        self._started = now
        pkt.sojourn = now - pkt.enqueued
        self.events.at(now + pkt.size * 8 / self.rate, self._transmitted, pkt)

    def _transmitted(self, pkt: Packet) -> None:
        self.sent += 1
        self._busy_time += self.events.now - self._started
        self.wire.carry(pkt)
        self._transmit_next()
