"""The process's time in Python's cyclic garbage collector, for `tcpstack stats`. A collection stops the
event loop while it runs, and a full one walks every tracked object: many long-lived connections (TIME_WAIT
ones above all, 60 s each) make it long. One watch per process (gc.callbacks is process-wide); each stack
reports what happened since it started."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

LONG_PAUSE_NS = 10_000_000  # a pause a round trip would notice: 10 ms
# objects allocated (less those freed) between two young collections; Python's default is 700, about ten
# short connections' worth, so that most of a connection's objects were still alive at the collection
# after it opened and were promoted to be walked again
YOUNG_THRESHOLD = 10_000

COUNTERS = ("GcCollections", "GcFullCollections", "GcTimeUs", "GcPausesOver10ms")


class GcWatch:
    """Counts collections (all, and full ones: the oldest generation), their time, and the long pauses."""

    __slots__ = ("collections", "full_collections", "time_ns", "long_pauses", "_clock", "_started")

    def __init__(self, clock: Callable[[], int] = time.perf_counter_ns) -> None:
        self.collections = 0
        self.full_collections = 0
        self.time_ns = 0
        self.long_pauses = 0
        self._clock = clock
        self._started = 0

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        """gc.callbacks' signature: called at the start and at the stop of every collection."""
        if phase == "start":
            self._started = self._clock()
            return
        spent = self._clock() - self._started
        self.collections += 1
        if info.get("generation") == 2:
            self.full_collections += 1
        self.time_ns += spent
        if spent >= LONG_PAUSE_NS:
            self.long_pauses += 1

    def totals(self) -> tuple[int, int, int, int]:
        return self.collections, self.full_collections, self.time_ns // 1000, self.long_pauses


_process_watch: GcWatch | None = None


def process_watch() -> GcWatch:
    """The process's watch, installed on first use."""
    global _process_watch
    if _process_watch is None:
        _process_watch = GcWatch()
        gc.callbacks.append(_process_watch.on_gc)
    return _process_watch


def settle_for_serving() -> None:
    """Once a server has started: what is alive now (modules, classes, the stack itself) lives as long as
    the process, so it leaves the collector's generations and no full collection walks it again
    (gc.freeze); and young collections come every YOUNG_THRESHOLD allocations. A cycle of start-up objects
    that became garbage later would stay (a bounded cost: they are few and small)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


class GcSince:
    """The process's collections since this object was made (a stack's start)."""

    __slots__ = ("_watch", "_base")

    def __init__(self, watch: GcWatch | None = None) -> None:
        self._watch = watch if watch is not None else process_watch()
        self._base = self._watch.totals()

    def counters(self) -> dict[str, int]:
        now = self._watch.totals()
        return {name: now[i] - self._base[i] for i, name in enumerate(COUNTERS)}
