"""The bottleneck's queue: drop-tail FIFO, or CoDel (RFC 8289) on top of the same limit.

A queue holds packets with their enqueue time. `enqueue` refuses a packet that does not fit (tail
drop); `dequeue` returns the next packet to transmit and reports, through `on_drop`, any it dropped
on the way (CoDel drops at the head, when the packet's sojourn time has stayed above target).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Protocol


class Queued(Protocol):
    size: int  # bytes on the wire
    enqueued: float


class DropTail:
    """A FIFO of at most `limit` packets (`in_bytes` False) or `limit` bytes (True)."""

    def __init__(self, limit: int, in_bytes: bool = False) -> None:
        self.limit = limit
        self.in_bytes = in_bytes
        self.packets: deque[Queued] = deque()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self.packets)

    def fits(self, size: int) -> bool:
        if self.in_bytes:
            return self.bytes + size <= self.limit
        return len(self.packets) < self.limit

    def enqueue(self, pkt: Queued, now: float) -> bool:
        if not self.fits(pkt.size):
            return False
        pkt.enqueued = now
        self.packets.append(pkt)
        self.bytes += pkt.size
        return True

    def pop(self) -> Queued | None:
        if not self.packets:
            return None
        pkt = self.packets.popleft()
        self.bytes -= pkt.size
        return pkt

    def dequeue(self, now: float, on_drop: Callable[[Queued, str], None]) -> Queued | None:
        return self.pop()


class CoDel(DropTail):
    """Controlled Delay (RFC 8289): drop at the head once every packet for `interval` has waited more
    than `target`, then at intervals shrinking as interval/sqrt(count) (§4.2, the control law), until
    the sojourn time falls below target again. The pseudocode of RFC 8289 §5, written out here."""

    def __init__(
        self, limit: int, in_bytes: bool = False, target: float = 0.005, interval: float = 0.100, mtu: int = 1500
    ) -> None:
        super().__init__(limit, in_bytes)
        self.target = target  # §4.4: 5 ms
        self.interval = interval  # §4.3: 100 ms, a worst-case RTT
        self.mtu = mtu  # maxpacket: a queue holding one packet is never "standing"
        self.first_above_time: float | None = None
        self.drop_next = 0.0
        self.count = 0
        self.lastcount = 0
        self.dropping = False

    def _control_law(self, t: float) -> float:
        return t + self.interval / math.sqrt(self.count)

    def _do_dequeue(self, now: float) -> tuple[Queued | None, bool]:
        """§5.4 dodequeue: the head packet and whether it may be dropped (sojourn above target for an interval)."""
        pkt = self.pop()
        if pkt is None:
            self.first_above_time = None
            return None, False
        sojourn = now - pkt.enqueued
        if sojourn < self.target or self.bytes <= self.mtu:
            self.first_above_time = None  # below target, or too little queued to be a standing queue
            return pkt, False
        if self.first_above_time is None:
            self.first_above_time = now + self.interval
            return pkt, False
        return pkt, now >= self.first_above_time

    def dequeue(self, now: float, on_drop: Callable[[Queued, str], None]) -> Queued | None:
        """§5.5 dequeue."""
        pkt, ok_to_drop = self._do_dequeue(now)
        if pkt is None:
            self.dropping = False
            return None
        if self.dropping:
            if not ok_to_drop:
                self.dropping = False  # sojourn time below target: leave the dropping state
            while self.dropping and now >= self.drop_next:
                on_drop(pkt, "codel")
                self.count += 1
                pkt, ok_to_drop = self._do_dequeue(now)
                if not ok_to_drop:
                    self.dropping = False
                else:
                    self.drop_next = self._control_law(self.drop_next)
        elif ok_to_drop:
            on_drop(pkt, "codel")
            pkt, _ = self._do_dequeue(now)
            self.dropping = True
            # §5.5: if dropping stopped recently, start from the drop rate that controlled the queue then
            delta = self.count - self.lastcount
            self.count = delta if delta > 1 and now - self.drop_next < 16 * self.interval else 1
            self.drop_next = self._control_law(now)
            self.lastcount = self.count
        return pkt
