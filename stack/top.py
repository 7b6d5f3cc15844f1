"""`tcpstack top`: every connection of every running stack, refreshed live (what `watch ss -tanoi` and
`nstat` would show together): state, timer, queues, cwnd, RTT, RTO, rates and retransmissions, and
each stack's segment counters per second.

Built on Textual; reads the stacks' control sockets from a worker thread, so a slow stack never
freezes the screen. `q` quits.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

from stack import control
from stack.netstat import timer_column

COLUMNS = (
    "stack",
    "local",
    "remote",
    "state",
    "timer",
    "send-q",
    "recv-q",
    "cc",
    "cwnd",
    "ssthresh",
    "srtt ms",
    "rto ms",
    "out/s",
    "in/s",
    "segs out",
    "segs in",
    "retrans",
)
_INFINITE_SSTHRESH = 1 << 30


@dataclass
class Sample:
    """What one refresh read: rows of every stack, and when."""

    at: float
    rows: list[tuple[str, dict]]  # (stack name, netstat row)
    errors: list[str]
    stats: dict[str, dict[str, int]] = field(default_factory=dict)  # stack name -> its counters


def read_stacks(paths: list[str] | None) -> Sample:
    """One netstat from each stack (the given control sockets, or every running one)."""
    rows: list[tuple[str, dict]] = []
    errors: list[str] = []
    stats: dict[str, dict[str, int]] = {}
    for path in paths if paths is not None else control.find_control_sockets():
        name = os.path.basename(path).removesuffix(".sock")
        try:
            rows.extend((name, row) for row in control.request(path, "netstat", timeout=1.0))
            stats[name] = control.request(path, "stats", timeout=1.0)
        except (OSError, ValueError) as exc:
            errors.append(f"{name}: {exc}")
    return Sample(time.monotonic(), rows, errors, stats)


COUNTERS = ("InSegs", "OutSegs", "RetransSegs", "OutRsts")  # shown per second, as `nstat` would
GAUGES = ("CurrEstab", "CurrTimeWait")


def counter_lines(sample: Sample, previous: Sample | None) -> list[str]:
    """One line per stack: its segment counters per second since `previous`, and current gauges."""
    lines = []
    dt = sample.at - previous.at if previous is not None else 0.0
    for name, stats in sample.stats.items():
        before = previous.stats.get(name) if previous is not None else None
        parts = [name]
        for key in COUNTERS:
            if before is None or dt <= 0:
                parts.append(f"{key} {stats.get(key, 0)}")
            else:
                parts.append(f"{key} {max(stats.get(key, 0) - before.get(key, 0), 0) / dt:.0f}/s")
        parts += [f"{key} {stats.get(key, 0)}" for key in GAUGES]
        lines.append("  ".join(parts))
    return lines


def _rate(now: dict, before: dict | None, key: str, dt: float) -> str:
    if before is None or dt <= 0:
        return "-"
    per_second = max(now[key] - before[key], 0) / dt
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if per_second >= scale:
            return f"{per_second / scale:.1f}{unit}B"
    return f"{per_second:.0f}B"


def table_rows(sample: Sample, previous: Sample | None) -> list[tuple[str, tuple[str, ...]]]:
    """(row key, cells) per connection; rates are bytes acked/received per second since `previous`."""
    before = {}
    if previous is not None:
        before = {_key(n, r): r.get("info") for n, r in previous.rows}
    dt = sample.at - previous.at if previous is not None else 0.0
    out = []
    for name, row in sample.rows:
        info = row.get("info")
        cells = [name, row["local"], row["remote"], row["state"], timer_column(row), str(row["send_q"])]
        cells.append(str(row["recv_q"]))
        if info is None:  # a listener
            cells += ["", "", "", "", "", "", "", "", "", ""]
        else:
            mss = info["mss"] or 1
            old = before.get(_key(name, row))
            ssthresh = info["ssthresh"]
            cells += [
                info["cc"],
                str(info["cwnd"] // mss),
                "-" if ssthresh >= _INFINITE_SSTHRESH else str(ssthresh // mss),
                "-" if info["srtt"] is None else f"{info['srtt'] * 1000:.1f}",
                f"{info['rto'] * 1000:.0f}",
                _rate(info, old, "bytes_acked", dt),
                _rate(info, old, "bytes_received", dt),
                str(info["segs_out"]),
                str(info["segs_in"]),
                str(info["retrans"]),
            ]
        out.append((_key(name, row), tuple(cells)))
    return out


def _key(name: str, row: dict) -> str:
    return f"{name} {row['local']} {row['remote']}"


def make_app(paths: list[str] | None, interval: float):
    """The Textual app (imported here: `top` is the only command that needs Textual)."""
    from textual import work
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable, Footer, Header, Static

    class TopApp(App):
        TITLE = "tcpstack top"
        BINDINGS = [("q", "quit", "Quit")]
        CSS = "#status { height: 1; padding: 0 1; } #counters { height: auto; max-height: 6; padding: 0 1; }"

        def __init__(self) -> None:
            super().__init__()
            self.previous: Sample | None = None
            self.refreshes = 0

        def compose(self) -> ComposeResult:
            yield Header(show_clock=True)
            yield Static("reading the stacks' control sockets ...", id="status")
            yield Static("", id="counters")
            yield DataTable(id="connections", cursor_type="row", zebra_stripes=True)
            yield Footer()

        def on_mount(self) -> None:
            self.query_one(DataTable).add_columns(*COLUMNS)
            self.poll()
            self.set_interval(interval, self.poll)

        @work(thread=True, exclusive=True)
        def poll(self) -> None:
            sample = read_stacks(paths)
            self.call_from_thread(self.show, sample)

        def show(self, sample: Sample) -> None:
            table = self.query_one(DataTable)
            rows = table_rows(sample, self.previous)
            self.query_one("#counters", Static).update("\n".join(counter_lines(sample, self.previous)))
            self.previous = sample
            table.clear()
            for key, cells in rows:
                table.add_row(*cells, key=key)
            stacks = len({name for name, _ in sample.rows})
            conns = sum(1 for _, r in sample.rows if r["state"] != "LISTEN")
            status = f"{stacks} stack(s), {conns} connection(s), refreshed every {interval:g} s"
            if sample.errors:
                status += "   " + "; ".join(sample.errors)
            self.query_one("#status", Static).update(status)
            self.refreshes += 1

    return TopApp()


def run_top(paths: list[str] | None, interval: float) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):  # it draws a screen and reads keys
        print("tcpstack top: needs a terminal; `tcpstack netstat -i` and `tcpstack stats` print once", file=sys.stderr)
        return 1
    try:
        app = make_app(paths, interval)
    except ImportError:
        print("tcpstack top: needs Textual: pip install 'tcpstack[top]'", file=sys.stderr)
        return 1
    app.run()
    return 0
