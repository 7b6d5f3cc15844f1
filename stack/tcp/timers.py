"""The connection's timers as named absolute deadlines; `now` always comes from the caller."""

from __future__ import annotations

from collections.abc import Callable
from math import ceil
from typing import Final, TypeAlias

# Linux TCP_TIMEOUT_MIN (2 jiffies at HZ=1000): the shortest timeout Linux arms, and the slack it adds to some
TIMEOUT_MIN: Final = 0.002

RETRANSMIT: Final = "retransmit"
PERSIST: Final = "persist"
DELAYED_ACK: Final = "delayed_ack"
COMPRESSED_ACK: Final = "compressed_ack"
TIME_WAIT: Final = "time_wait"
FIN_WAIT_2: Final = "fin_wait_2"
KEEPALIVE: Final = "keepalive"
LOSS_PROBE: Final = "loss_probe"
RACK_REORDER: Final = "rack_reorder"
PACING: Final = "pacing"


def in_jiffies(seconds: float) -> float:
    """`seconds` rounded up to Linux's timer resolution (a jiffy, 1 ms at HZ=1000: usecs_to_jiffies), for
    the timers whose deadlines we take from Linux."""
    return ceil(round(seconds * 1e6) / 1000) / 1000


# What `netstat -o` calls each timer.
NETSTAT_NAMES: Final = {
    RETRANSMIT: "on",
    LOSS_PROBE: "on",
    RACK_REORDER: "on",
    PACING: "on",
    PERSIST: "probe",
    TIME_WAIT: "timewait",
    FIN_WAIT_2: "timewait",
    KEEPALIVE: "keepalive",
    DELAYED_ACK: "delack",
}


class Timers:
    __slots__ = ("_deadlines",)

    def __init__(self) -> None:
        self._deadlines: dict[str, float] = {}

    def start(self, name: str, deadline: float) -> None:
        self._deadlines[name] = deadline

    def start_if_idle(self, name: str, deadline: float) -> None:
        self._deadlines.setdefault(name, deadline)

    def stop(self, name: str) -> None:
        self._deadlines.pop(name, None)

    def stop_all(self) -> None:
        self._deadlines.clear()

    def running(self, name: str) -> bool:
        return name in self._deadlines

    def deadline(self, name: str) -> float | None:
        return self._deadlines.get(name)

    def next_deadline(self) -> float | None:
        earliest: float | None = None
        for deadline in self._deadlines.values():  # a loop, not min(): compiled, it stays native
            if earliest is None or deadline < earliest:
                earliest = deadline
        return earliest

    def expired(self, now: float) -> list[str]:
        """Names whose deadline has passed, removed from the set, earliest first."""
        due = sorted((d, n) for n, d in self._deadlines.items() if d <= now)
        for _, name in due:
            del self._deadlines[name]
        return [name for _, name in due]

    def items(self) -> list[tuple[str, float]]:
        return sorted(self._deadlines.items(), key=lambda item: item[1])


# (action, timer name, deadline): action is "set" (deadline given), "fired" or "cancel" (deadline None)
TimerObserver: TypeAlias = Callable[[str, str, float | None], None]


class ObservedTimers(Timers):
    """Timers that report every set, fire and cancel to an observer (the `--trace` event log).

    A subclass rather than a hook inside `Timers`, so connections nobody watches pay nothing:
    the stack swaps a connection's `timers` for one of these with `watching()` when it traces.
    """

    __slots__ = ("observer",)

    def __init__(self, observer: TimerObserver) -> None:
        super().__init__()
        self.observer = observer

    @classmethod
    def watching(cls, timers: Timers, observer: TimerObserver) -> ObservedTimers:
        """An observed copy of `timers`; timers already running are carried over unreported."""
        observed = cls(observer)
        observed._deadlines.update(timers.items())
        return observed

    def start(self, name: str, deadline: float) -> None:
        if self._deadlines.get(name) != deadline:  # re-arming at the same deadline is no news
            self._deadlines[name] = deadline
            self.observer("set", name, deadline)

    def start_if_idle(self, name: str, deadline: float) -> None:
        if name not in self._deadlines:
            self.start(name, deadline)

    def stop(self, name: str) -> None:
        if self._deadlines.pop(name, None) is not None:
            self.observer("cancel", name, None)

    def stop_all(self) -> None:
        for name, _ in self.items():
            self.observer("cancel", name, None)
        self._deadlines.clear()

    def expired(self, now: float) -> list[str]:
        names = super().expired(now)
        for name in names:
            self.observer("fired", name, None)
        return names
