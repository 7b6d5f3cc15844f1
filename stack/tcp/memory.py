"""One memory budget for every connection of a stack, in the spirit of Linux's tcp_mem.

Each connection's buffers have their own bounds, but nothing else bounds their sum: many peers that send
and never read could hold gigabytes. The driver charges what every connection holds (received and not
read, out of order, queued to send) to this budget; the core asks it before it takes more:

- under pressure (above 3/4 of the limit, until use falls below 1/2 of it, Linux's tcp_mem[1] and
  tcp_mem[0]): receive windows stop growing and out-of-order data is pruned (Linux tcp_prune_ofo_queue);
- at the limit (tcp_mem[2]): new data is dropped before it is acknowledged (TCPRcvQDrop), except the
  first FORCED_RECEIVE bytes of a segment for an empty receive queue, and the application may queue data
  to send only on a connection whose send buffer is empty (Linux sk_forced_mem_schedule), so every
  connection can still make progress.

Data already acknowledged is never dropped: only what the peer must still retransmit is.
"""

from __future__ import annotations

from typing import Final

FORCED_SEND: Final = 16 * 1024  # bytes an empty send buffer may take at the limit (a request's answer, a FIN's data)
FORCED_RECEIVE: Final = 16 * 1024  # bytes an empty receive queue takes of a segment at the limit (a request)


class MemoryBudget:
    __slots__ = ("limit", "used", "pressure", "pressures")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0  # bytes charged by the driver
        self.pressure = False
        self.pressures = 0  # times pressure was entered (Linux TCPMemoryPressures)

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit

    def charge(self, delta: int) -> None:
        """Use grew (or shrank, negative) by `delta` bytes."""
        self.used += delta
        if not self.pressure and self.used >= self.limit * 3 // 4:
            self.pressure = True
            self.pressures += 1
        elif self.pressure and self.used < self.limit // 2:
            self.pressure = False
