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


@dataclass(frozen=True, slots=True)
class TimerResolution:
    tick: float  # seconds: the loop's timers fire on multiples of this, possibly up to one tick early

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> TimerResolution:
        if type(loop).__module__.partition(".")[0] == "uvloop":
            return cls(UVLOOP_TICK)
        return cls(time.get_clock_info("monotonic").resolution)  # what asyncio's own loop uses

    def delay(self, seconds: float) -> float:
        """`seconds` rounded up to a whole number of ticks (0 for a deadline already due)."""
        if seconds <= 0:
            return 0.0
        return math.ceil(seconds / self.tick - 1e-9) * self.tick
