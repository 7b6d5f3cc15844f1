"""The event loop's timer resolution: deadlines are rounded up to it, so no timer fires before it is due.

uvloop counts time in whole milliseconds (libuv's uv_now) and runs a call_later of less than half a
millisecond as call_soon: a 0.3 ms deadline armed as is wakes the loop at once, finds nothing due and
arms again, spinning until the deadline passes.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Final

UVLOOP_TICK: Final = 1e-3
_CLOCK_MONOTONIC_COARSE: Final = 6  # (Linux; the time module does not name it)


@dataclass(frozen=True, slots=True)
class TimerResolution:
    tick: float  # seconds: the loop's timers fire on multiples of this, possibly up to one tick early
    lag: float = 0.0  # how far the loop's clock may run behind time.monotonic()

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> TimerResolution:
        if type(loop).__module__.partition(".")[0] == "uvloop":
            return cls(UVLOOP_TICK, UVLOOP_TICK if _libuv_clock_is_coarse() else 0.0)
        return cls(time.get_clock_info("monotonic").resolution)  # what asyncio's own loop uses

    def delay(self, seconds: float) -> float:
        """`seconds` rounded up to a whole number of ticks (0 for a deadline already due)."""
        if seconds <= 0:
            return 0.0
        return math.ceil(seconds / self.tick - 1e-9) * self.tick

    def earliest_fire(self, now: float, delay: float) -> float:
        """When a timer armed at `now` with `delay` may fire at the earliest: uvloop counts the delay from the
        start of the millisecond its clock is in (uv_now is whole milliseconds, rounded down)."""
        return math.floor((now - self.lag) / self.tick) * self.tick + delay

    def keeps(self, armed_for: float, fires: float, deadline: float) -> bool:
        """Whether a timer armed for `armed_for`, firing at `fires` at the earliest, serves `deadline` too: not
        too late for it, and when it fires the deadline is within the tick that counts as due, so that
        a deadline moving a little later (an ACK restarting a timer) does not re-arm the loop's timer."""
        return armed_for <= deadline <= fires + self.tick


def _libuv_clock_is_coarse() -> bool:
    """libuv's loop clock is CLOCK_MONOTONIC_COARSE where that ticks at least every millisecond (its
    uv__hrtime(UV_CLOCK_FAST)), which runs up to a tick behind CLOCK_MONOTONIC, time.monotonic()'s clock."""
    try:
        return time.clock_getres(_CLOCK_MONOTONIC_COARSE) <= 1e-3
    except OSError:
        return False
