"""Virtual time: a clock and a queue of callbacks, run in (time, insertion) order."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from itertools import count


class EventQueue:
    """Callbacks at absolute times. Ties run in the order they were scheduled, so a run is repeatable."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable, tuple]] = []
        self._order = count()

    def at(self, time: float, callback: Callable, *args) -> None:
        heapq.heappush(self._heap, (max(time, self.now), next(self._order), callback, args))

    def next_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def run_one(self) -> None:
        time, _, callback, args = heapq.heappop(self._heap)
        self.now = time
        callback(*args)

    def run(self, until: float = float("inf")) -> None:
        """Run every callback due up to `until` (those it schedules too); the clock ends at the last one run."""
        while self._heap and self._heap[0][0] <= until:
            self.run_one()
