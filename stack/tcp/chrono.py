"""How long a connection was busy sending, and what held it back: Linux's send chronographs.

Linux times three conditions (tcp_chrono_start/stop, reported as tcpi_busy_time, tcpi_rwnd_limited and
tcpi_sndbuf_limited): BUSY while data waits to be sent or acknowledged, RWND_LIMITED while the peer's
receive window stops the next segment, SNDBUF_LIMITED while the application waits for send-buffer space
with nothing else left to send. One condition is timed at a time; a later one in that order takes over
when it starts, and when it stops the clock goes back to BUSY, or stops if nothing is queued.
Busy time is the sum of the three.
"""

from __future__ import annotations

from typing import Final

UNSPEC: Final = 0
BUSY: Final = 1
RWND_LIMITED: Final = 2
SNDBUF_LIMITED: Final = 3


class Chrono:
    __slots__ = ("kind", "since", "busy", "rwnd_limited", "sndbuf_limited")  # one per connection: no lists

    def __init__(self) -> None:
        self.kind = UNSPEC
        self.since = 0.0
        self.busy = self.rwnd_limited = self.sndbuf_limited = 0.0  # seconds each condition was timed

    def _switch(self, kind: int, now: float) -> None:
        if self.kind == BUSY:
            self.busy += now - self.since
        elif self.kind == RWND_LIMITED:
            self.rwnd_limited += now - self.since
        elif self.kind == SNDBUF_LIMITED:
            self.sndbuf_limited += now - self.since
        self.since = now
        self.kind = kind

    def start(self, kind: int, now: float) -> None:
        """A condition began: it is timed if it ranks above the one being timed (tcp_chrono_start)."""
        if kind > self.kind:
            self._switch(kind, now)

    def stop(self, kind: int, now: float, queues_empty: bool) -> None:
        """A condition ended (tcp_chrono_stop): with nothing queued the clock stops, else an ended
        condition that was being timed gives way to BUSY."""
        if queues_empty:
            self._switch(UNSPEC, now)
        elif kind == self.kind:
            self._switch(BUSY, now)

    def elapsed(self, now: float) -> tuple[float, float, float]:
        """(busy, rwnd_limited, sndbuf_limited) in seconds; busy includes the other two."""
        running = now - self.since
        busy = self.busy + (running if self.kind == BUSY else 0.0)
        rwnd = self.rwnd_limited + (running if self.kind == RWND_LIMITED else 0.0)
        sndbuf = self.sndbuf_limited + (running if self.kind == SNDBUF_LIMITED else 0.0)
        return busy + rwnd + sndbuf, rwnd, sndbuf
