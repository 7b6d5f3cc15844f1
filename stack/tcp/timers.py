"""The connection's timers as named absolute deadlines; `now` always comes from the caller."""

from __future__ import annotations

RETRANSMIT = "retransmit"
PERSIST = "persist"
DELAYED_ACK = "delayed_ack"
TIME_WAIT = "time_wait"
FIN_WAIT_2 = "fin_wait_2"
KEEPALIVE = "keepalive"
LOSS_PROBE = "loss_probe"
RACK_REORDER = "rack_reorder"

# What `netstat -o` calls each timer.
NETSTAT_NAMES = {
    RETRANSMIT: "on",
    LOSS_PROBE: "on",
    RACK_REORDER: "on",
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
        return min(self._deadlines.values()) if self._deadlines else None

    def expired(self, now: float) -> list[str]:
        """Names whose deadline has passed, removed from the set, earliest first."""
        due = sorted((d, n) for n, d in self._deadlines.items() if d <= now)
        for _, name in due:
            del self._deadlines[name]
        return [name for _, name in due]

    def items(self) -> list[tuple[str, float]]:
        return sorted(self._deadlines.items(), key=lambda item: item[1])
