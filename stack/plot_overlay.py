"""`tcpstack plot --overlay`: several runs or flows in one figure, one colour per connection, labelled
by the controller its event log says ran: data acknowledged, throughput, cwnd and smoothed RTT.

Each log's data-sending connections are read from its `seg` and `cc` events (docs/trace.md). Logs of
`tcpstack sim` share a virtual clock that starts at 0, so flows keep their start times; logs of real
runs (wall-clock times) are each drawn from their own first event.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from stack.plot import PlotError, check_output, figure_class
from stack.wire.seq import seq_sub

_WALL_CLOCK = 1e8  # a log whose first event is later than this (1973) carries wall-clock times


@dataclass(slots=True)
class Series:
    """One data-sending connection of one log."""

    label: str
    controller: str = "?"
    iss: int | None = None
    acked_t: list[float] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)  # bytes cumulatively acknowledged
    cc_t: list[float] = field(default_factory=list)
    cwnd: list[int] = field(default_factory=list)
    srtt: list[float] = field(default_factory=list)  # seconds, NaN before the first sample
    sent: int = 0  # payload bytes sent, retransmissions included
    data_end: int = 0  # the highest data byte sent, relative: a FIN's sequence number is not data

    def throughput(self, step: float) -> tuple[list[float], list[float]]:
        """Mbit/s acknowledged in consecutive windows of `step` seconds."""
        if len(self.acked_t) < 2:
            return [], []
        times, rates = [], []
        start, i = self.acked_t[0], 0
        base = 0
        while start < self.acked_t[-1]:
            end = start + step
            while i < len(self.acked_t) and self.acked_t[i] < end:
                i += 1
            level = self.acked[i - 1] if i else 0
            times.append(end)
            rates.append((level - base) * 8 / step / 1e6)
            base = level
            start = end
        return times, rates


def read_series(path: str) -> list[Series]:
    """The connections of an event log that sent data, each as a Series on the log's time axis."""
    from stack.trace import read_events

    conns: dict[tuple[str, str], Series] = {}
    t0: float | None = None
    try:
        for ev in read_events(path):
            if t0 is None:
                t0 = ev["t"] if ev["t"] > _WALL_CLOCK else 0.0
            key = (ev.get("local"), ev.get("remote"))
            if key[0] is None:
                continue
            s = conns.get(key)
            if s is None:
                s = conns[key] = Series(f"{key[0]} \u2192 {key[1]}")
            t = ev["t"] - t0
            kind = ev["ev"]
            if kind == "seg":
                _segment(s, ev, t)
            elif kind == "cc":
                s.controller = ev.get("controller", s.controller)
                s.cc_t.append(t)
                s.cwnd.append(ev["cwnd"])
                s.srtt.append(math.nan if ev["srtt"] is None else ev["srtt"])
    except ValueError as exc:
        raise PlotError(str(exc)) from None
    except (KeyError, TypeError) as exc:
        raise PlotError(f"{path}: an event lacks a field or has one of the wrong type ({exc})") from None
    return [s for s in conns.values() if s.sent and s.cc_t]


def _segment(s: Series, ev: dict, t: float) -> None:
    flags = ev["flags"]
    if ev["dir"] == "out":
        if "S" in flags:
            s.iss = ev["seq"]
        s.sent += ev["len"]
        if ev["len"] and s.iss is not None:
            s.data_end = max(s.data_end, seq_sub(ev["seq"], s.iss) - 1 + ev["len"])
    elif "." in flags and s.iss is not None:
        acked = min(max(0, seq_sub(ev["ack"], s.iss) - 1), s.data_end)  # the SYN takes one sequence number
        if not s.acked or acked > s.acked[-1]:
            s.acked_t.append(t)
            s.acked.append(acked)


def overlay(logs: list[str], out: str) -> str:
    """Draw every data-sending connection of `logs` in one figure; returns a one-line summary."""
    check_output(out)
    series: list[Series] = []
    for path in logs:
        found = read_series(path)
        if not found:
            raise PlotError(f"{path}: no connection that sent data (with cc events) in this log")
        name = os.path.splitext(os.path.basename(path))[0]
        for s in found:
            s.label = f"{s.controller} ({name})" if len(found) == 1 else f"{s.controller} ({name}, {s.label})"
        series += found
    _render(series, out)
    return f"{out}: " + ", ".join(s.label for s in series)


def _render(series: list[Series], out: str) -> None:
    Figure = figure_class()
    from matplotlib.ticker import EngFormatter

    fig = Figure(figsize=(11, 10), dpi=100, layout="constrained")
    ax_acked, ax_rate, ax_cwnd, ax_rtt = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2, 2, 2]})
    span = max((s.acked_t[-1] for s in series if s.acked_t), default=1.0)
    step = max(span / 80, 0.05)
    colors = [f"C{i % 10}" for i in range(len(series))]
    for s, color in zip(series, colors, strict=True):
        ax_acked.step(s.acked_t, s.acked, where="post", color=color, lw=1.4, label=s.label)
        times, rates = s.throughput(step)
        ax_rate.step(times, rates, where="pre", color=color, lw=1.2)
        ax_cwnd.step(s.cc_t, s.cwnd, where="post", color=color, lw=1.0)
        ax_rtt.step(s.cc_t, [v * 1000 for v in s.srtt], where="post", color=color, lw=1.0)
    ax_acked.set_ylabel("data acknowledged")
    ax_acked.yaxis.set_major_formatter(EngFormatter(unit="B"))
    ax_acked.legend(loc="upper left", fontsize=9)
    ax_acked.set_title(f"{len(series)} connections compared", fontsize=10)
    ax_rate.set_ylabel(f"throughput (Mbit/s, {step * 1000:.0f} ms bins)")
    ax_cwnd.set_ylabel("cwnd")
    ax_cwnd.yaxis.set_major_formatter(EngFormatter(unit="B"))
    ax_rtt.set_ylabel("srtt (ms)")
    ax_rtt.set_xlabel("time (s)")
    for ax in (ax_acked, ax_rate, ax_cwnd, ax_rtt):
        ax.grid(True, lw=0.3, alpha=0.5)
        ax.set_ylim(bottom=0)
    fig.savefig(out)
