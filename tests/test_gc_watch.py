"""`tcpstack stats` shows the process's time in Python's garbage collector, which stops the loop while it runs."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys

import uvloop

from stack.aio.gc_watch import COUNTERS, YOUNG_THRESHOLD, GcSince, GcWatch
from stack.aio.stack import Stack
from stack.aio.tun import SocketPairDevice


class _Clock:
    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


def _collect(watch: GcWatch, clock: _Clock, generation: int, spent_ns: int) -> None:
    watch.on_gc("start", {"generation": generation})
    clock.ns += spent_ns
    watch.on_gc("stop", {"generation": generation, "collected": 0, "uncollectable": 0})


def test_gc_watch_counts_collections_full_ones_their_time_and_long_pauses():
    clock = _Clock()
    watch = GcWatch(clock)
    _collect(watch, clock, 0, 200_000)
    _collect(watch, clock, 2, 12_000_000)  # a full collection that stops the loop for 12 ms
    _collect(watch, clock, 1, 9_999_000)
    assert watch.totals() == (3, 1, 22_199, 1)


def test_gc_since_counts_only_what_happened_after_it_was_made():
    clock = _Clock()
    watch = GcWatch(clock)
    _collect(watch, clock, 2, 30_000_000)
    since = GcSince(watch)
    assert since.counters() == dict.fromkeys(COUNTERS, 0)
    _collect(watch, clock, 0, 5_000)
    assert since.counters() == {"GcCollections": 1, "GcFullCollections": 0, "GcTimeUs": 5, "GcPausesOver10ms": 0}


def test_stack_stats_count_a_full_collection_of_the_process():
    async def main() -> tuple[dict, dict]:
        da, _ = SocketPairDevice.pair()
        stack = Stack(da, "10.0.0.1")
        try:
            before = stack.stats()
            gc.collect()
            return before, stack.stats()
        finally:
            await stack.close()

    before, after = uvloop.run(main())
    assert after["GcFullCollections"] >= before["GcFullCollections"] + 1
    assert after["GcCollections"] >= before["GcCollections"] + 1
    assert after["GcTimeUs"] >= before["GcTimeUs"]


def test_stack_stats_show_the_collector_counters_at_zero_for_a_new_stack_without_collections():
    """The counters are there from the start, so that `tcpstack stats` always lists them."""

    async def main() -> dict:
        da, _ = SocketPairDevice.pair()
        gc.disable()  # no collection can fall between the stack's start and its stats
        try:
            stack = Stack(da, "10.0.0.1")
            stats = stack.stats()
            await stack.close()
            return stats
        finally:
            gc.enable()

    stats = asyncio.run(main())
    assert {name: stats[name] for name in COUNTERS} == dict.fromkeys(COUNTERS, 0)


_SETTLE = """
import gc
from stack.aio.gc_watch import settle_for_serving
started = [[n] for n in range(1000)]  # start-up's lists: tracked
settle_for_serving()
later = [[n] for n in range(10)]
walked = {id(o) for o in gc.get_objects()}
print(gc.get_freeze_count() >= 1000, any(id(o) in walked for o in started), all(id(o) in walked for o in later))
print(gc.get_threshold()[0])
"""


def test_settle_for_serving_leaves_the_start_up_heap_out_of_every_collection():
    """What is alive when a server has started is frozen (no collection walks it again); what comes later
    is walked, and young collections come every YOUNG_THRESHOLD allocations (in a process of its own:
    freezing is process-wide)."""
    result = subprocess.run([sys.executable, "-c", _SETTLE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "True", str(YOUNG_THRESHOLD)]
