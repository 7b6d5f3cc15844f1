"""What a simulation run measured, as a table for people and JSON for programs. Nothing here
depends on the wall clock: the same run prints the same bytes."""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The nearest-rank percentile (q in 0..100) of sorted values; None when there are none."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def jain_index(values: list[float]) -> float | None:
    """Jain's fairness index, (sum x)^2 / (n * sum x^2): 1 when all are equal, 1/n when one takes all."""
    squares = sum(v * v for v in values)
    if not values or squares == 0:
        return None
    return sum(values) ** 2 / (len(values) * squares)


@dataclass(frozen=True, slots=True)
class FlowResult:
    index: int
    controller: str
    start: float
    size: int | None
    delivered: int  # bytes the receiving application read
    progress: list[tuple[float, int]]  # (time, bytes read by then), at every read
    completed: float | None  # when its last byte was read, if the flow ended
    end: float  # when the run ended
    data_segments: int
    retransmissions: int
    timeouts: int
    rtt: list[float]  # sorted samples, seconds
    qdelay: list[float]  # sorted bottleneck sojourn times of its data packets, seconds
    drops: dict[str, int]
    failure: str | None

    @property
    def duration(self) -> float:
        return (self.completed if self.completed is not None else self.end) - self.start

    @property
    def goodput(self) -> float:
        """Bits per second the receiving application got, over the flow's life (or the run's rest)."""
        return self.delivered * 8 / self.duration if self.duration > 0 else 0.0

    def read_by(self, t: float) -> int:
        """Bytes the receiving application had read at time t."""
        i = bisect.bisect_right(self.progress, (t, math.inf))
        return self.progress[i - 1][1] if i else 0

    def goodput_between(self, start: float, end: float) -> float:
        return (self.read_by(end) - self.read_by(start)) * 8 / (end - start)


@dataclass(frozen=True, slots=True)
class LinkResult:
    rate: float
    delay: float
    queue_limit: int
    queue_in_bytes: bool
    aqm: str
    busy_time: float
    end: float

    @property
    def utilization(self) -> float:
        return self.busy_time / self.end if self.end > 0 else 0.0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def _bytes(n: int | None) -> str:
    if n is None:
        return "unlimited"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.4g}{unit}"
    return f"{n}B"


@dataclass(frozen=True, slots=True)
class Report:
    seed: int
    link: LinkResult
    flows: list[FlowResult]

    @property
    def fairness(self) -> float | None:
        """Jain's index of the flows' goodputs, each over its own life."""
        return jain_index([f.goodput for f in self.flows])

    @property
    def shared(self) -> tuple[float, float] | None:
        """The time every flow was running (from the last start to the first end), if there was any."""
        start = max(f.start for f in self.flows)
        end = min(f.completed if f.completed is not None else f.end for f in self.flows)
        return (start, end) if end > start else None

    @property
    def shared_fairness(self) -> float | None:
        """Jain's index of the goodputs while every flow was running: how they shared the bottleneck."""
        span = self.shared
        if span is None or len(self.flows) < 2:
            return None
        return jain_index([f.goodput_between(*span) for f in self.flows])

    def table(self) -> str:
        link = self.link
        queue = f"{link.queue_limit} {'bytes' if link.queue_in_bytes else 'packets'}"
        lines = [
            f"link: {link.rate / 1e6:g} Mbit/s, {link.delay * 1000:g} ms one way ({link.delay * 2000:g} ms RTT), "
            f"queue {queue}, {link.aqm}; seed {self.seed}",
            "",
            f"{'flow':<5}{'controller':<14}{'start':>7}{'size':>10}{'done':>11}{'goodput':>12}{'rexmit':>14}"
            f"{'RTT p50/p95/p99 (ms)':>23}{'queue p50/p95 (ms)':>20}{'drops':>7}",
        ]
        for f in self.flows:
            done = f"{f.completed:.2f}s" if f.completed is not None else (f.failure or "running")
            share = f" ({f.retransmissions / f.data_segments:.1%})" if f.data_segments else ""
            rtt = "/".join(_ms(percentile(f.rtt, q)) for q in (50, 95, 99))
            qdelay = "/".join(_ms(percentile(f.qdelay, q)) for q in (50, 95))
            lines.append(
                f"{f.index:<5}{f.controller[:13]:<14}{f.start:>6.2f}s{_bytes(f.size):>10}{done:>11}"
                f"{f.goodput / 1e6:>7.2f} Mb/s{f.retransmissions:>6}{share:>8}{rtt:>23}{qdelay:>20}"
                f"{sum(f.drops.values()):>7}"
            )
        fairness = self.fairness
        lines += [
            "",
            f"simulated {link.end:.3f} s; bottleneck utilization {link.utilization:.1%}; "
            f"Jain's fairness index {'-' if fairness is None else f'{fairness:.3f}'} over {len(self.flows)} flows",
        ]
        shared = self.shared_fairness
        if shared is not None:
            start, end = self.shared
            rates = ", ".join(f"{f.goodput_between(start, end) / 1e6:.2f}" for f in self.flows)
            lines.append(f"while all ran ({start:.2f}-{end:.2f} s): Jain's index {shared:.3f}, goodputs {rates} Mb/s")
        return "\n".join(lines)

    def to_json(self) -> str:
        def flow(f: FlowResult) -> dict:
            return {
                "flow": f.index,
                "controller": f.controller,
                "start": f.start,
                "size": f.size,
                "delivered": f.delivered,
                "completed": f.completed,
                "goodput_bps": round(f.goodput, 3),
                "data_segments": f.data_segments,
                "retransmissions": f.retransmissions,
                "timeouts": f.timeouts,
                "rtt_ms": {f"p{q}": _round_ms(percentile(f.rtt, q)) for q in (50, 95, 99)},
                "queue_delay_ms": {f"p{q}": _round_ms(percentile(f.qdelay, q)) for q in (50, 95)},
                "drops": f.drops,
                "failure": f.failure,
            }

        link = self.link
        data = {
            "seed": self.seed,
            "link": {
                "rate_bps": link.rate,
                "delay_s": link.delay,
                "queue_limit": link.queue_limit,
                "queue_unit": "bytes" if link.queue_in_bytes else "packets",
                "aqm": link.aqm,
                "utilization": round(link.utilization, 6),
            },
            "simulated_s": round(link.end, 6),
            "fairness": None if self.fairness is None else round(self.fairness, 6),
            "shared": None if self.shared is None else [round(t, 6) for t in self.shared],
            "shared_fairness": None if self.shared_fairness is None else round(self.shared_fairness, 6),
            "flows": [flow(f) for f in self.flows],
        }
        return json.dumps(data, indent=1) + "\n"


def _round_ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)
