"""`tcpstack plot --ladder`: a connection's packets as the sequence (ladder) diagram textbooks draw,
with its states and timers alongside: the handshake and the close in full, the data in between
folded into one row.

From an event log (`--trace FILE`, docs/trace.md) the diagram shows what the stack did in the order
it did it: each segment in and out, each state it entered, each timer started, fired or cancelled.
From a pcap alone it shows the packets (no states or timers: a capture does not see them).
Sequence and acknowledgment numbers are relative to each side's initial sequence number, as
tcpdump -S does not and Wireshark does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from stack.plot import PlotError, check_output, figure_class, read_pcap
from stack.wire.addr import fmt_endpoint
from stack.wire.seq import seq_sub

_CONTEXT = 2  # segments kept either side of a SYN, FIN, RST or the first data
_MIN_FOLD = 3  # a shorter run of other segments is drawn, not folded


@dataclass(frozen=True, slots=True)
class Seg:
    t: float
    outgoing: bool  # from the left endpoint (the traced stack, or the client of a capture)
    flags: str  # tcpdump letters
    seq: int  # relative to the sender's ISN
    ack: int  # relative to the receiver's ISN
    length: int
    window: int
    rexmit: bool = False
    options: str = ""  # a SYN's options as tcpdump prints them, when a capture had them


@dataclass(frozen=True, slots=True)
class Note:
    t: float
    kind: str  # "state", "timer" or "recovery"
    text: str


@dataclass(frozen=True, slots=True)
class Gap:
    segments: int
    start: float
    end: float


Row = Seg | Note | Gap


@dataclass(slots=True)
class Ladder:
    left: str  # "ip:port"
    right: str
    rows: list[Row] = field(default_factory=list)
    states: bool = False  # the rows include states and timers (from an event log)


# ---------------------------------------------------------------------- reading


class _Relative:
    """Raw sequence numbers to numbers relative to each side's ISN (learned from its SYN)."""

    def __init__(self) -> None:
        self.isn: dict[bool, int] = {}

    def seg(self, t: float, outgoing: bool, flags: str, seq: int, ack: int, length: int, win: int, rexmit=False):
        if "S" in flags:
            self.isn.setdefault(outgoing, seq)
        mine = self.isn.get(outgoing, seq)
        theirs = self.isn.get(not outgoing)
        rel_ack = seq_sub(ack, theirs) if "." in flags and theirs is not None else ack if "." in flags else 0
        return Seg(t, outgoing, flags, seq_sub(seq, mine), rel_ack, length, win, rexmit)


def from_trace(path: str, port: int | None = None) -> Ladder:
    """The rows of one connection of an event log: the one using `port`, or the first one with a state change."""
    from stack.trace import read_events

    try:
        events = list(read_events(path))
    except ValueError as exc:
        raise PlotError(str(exc)) from None
    key = _pick_connection(events, port)
    if key is None:
        where = f" using port {port}" if port is not None else " with a state change"
        raise PlotError(f"{path}: no connection{where} in this log")
    t0 = next(e["t"] for e in events if (e.get("local"), e.get("remote")) == key)
    rel = _Relative()
    ladder = Ladder(key[0], key[1], states=True)
    running: set[str] = set()
    try:
        for e in events:
            if (e.get("local"), e.get("remote")) != key:
                continue
            t = e["t"] - t0
            kind = e["ev"]
            if kind == "seg":
                out = e["dir"] == "out"
                ladder.rows.append(
                    rel.seg(t, out, e["flags"], e["seq"], e["ack"], e["len"], e["win"], bool(e.get("rexmit")))
                )
            elif kind == "state":
                ladder.rows.append(Note(t, "state", e["to"]))
            elif kind == "timer":
                note = _timer_note(e, running)
                if note:
                    ladder.rows.append(Note(t, "timer", note))
            elif kind == "recovery":
                ladder.rows.append(Note(t, "recovery", f"{e['action']} {e['kind']} recovery"))
    except (KeyError, TypeError) as exc:
        raise PlotError(f"{path}: an event lacks a field or has one of the wrong type ({exc})") from None
    return ladder


def _timer_note(e: dict, running: set[str]) -> str | None:
    """Starting, firing and cancelling a timer; re-arming one that runs already is left out."""
    name, action = e["name"], e["action"]
    if action == "set":
        if name in running:
            return None
        running.add(name)
        return f"{name} timer set ({_duration(e['in'])})"
    running.discard(name)
    return f"{name} timer {'fired' if action == 'fired' else 'cancelled'}"


def _duration(seconds: float) -> str:
    """Three significant digits, in seconds from 1 s on: rounded before the unit is chosen, so that a
    second's timer set a few microseconds after its start reads "1 s", not "1e+03 ms"."""
    ms = float(f"{seconds * 1000:.3g}")
    return f"{ms / 1000:g} s" if ms >= 1000 else f"{ms:g} ms"


def _pick_connection(events: list[dict], port: int | None) -> tuple[str, str] | None:
    for e in events:
        key = (e.get("local"), e.get("remote"))
        if key[0] is None:
            continue
        if port is not None:
            if any(k.rsplit(":", 1)[1] == str(port) for k in key):
                return key
        elif e["ev"] == "state":
            return key
    return None


def from_pcap(path: str, port: int | None = None) -> Ladder:
    """The packets of one connection of a capture (the first, or the one using `port`); the client
    (the side that sent the first SYN) is on the left."""
    from stack.wire.codec import TcpPacket, decode
    from stack.wire.segment import Flags, flags_str

    packets = []
    for t, raw in read_pcap(path):
        pkt = decode(raw)
        if type(pkt) is not TcpPacket:
            continue
        seg = pkt.segment
        if port is not None and port not in (seg.src_port, seg.dst_port):
            continue
        packets.append((t, pkt))
    if not packets:
        raise PlotError(f"{path}: no TCP {'packets on port ' + str(port) if port else 'packets'} in the capture")
    first = next((p for _, p in packets if p.segment.flags & Flags.SYN), packets[0][1])
    left = (first.src, first.segment.src_port)
    right = (first.dst, first.segment.dst_port)
    ends = {left, right}
    rel = _Relative()
    ladder = Ladder(fmt_endpoint(*left), fmt_endpoint(*right))  # as the event log writes them
    t0 = packets[0][0]
    for t, pkt in packets:
        seg = pkt.segment
        src = (pkt.src, seg.src_port)
        if {src, (pkt.dst, seg.dst_port)} != ends:
            continue
        row = rel.seg(t - t0, src == left, flags_str(seg.flags), seg.seq, seg.ack, len(seg.payload), seg.window)
        ladder.rows.append(replace(row, options=syn_options(seg)))
    return ladder


def syn_options(seg) -> str:
    """A SYN's options, as tcpdump shows them: <mss 1460,sackOK,TS,wscale 7>; other segments: ''."""
    from stack.wire.segment import Flags

    if not seg.flags & Flags.SYN:
        return ""
    o = seg.options
    parts = [f"mss {o.mss}"] if o.mss is not None else []
    parts += ["sackOK"] if o.sack_permitted else []
    parts += ["TS"] if o.timestamps is not None else []
    parts += [f"wscale {o.wscale}"] if o.wscale is not None else []
    return f"<{','.join(parts)}>" if parts else ""


def add_syn_options(ladder: Ladder, pcap: str) -> None:
    """An event log does not record options: take the SYNs' from the capture of the same run."""
    capture = from_pcap(pcap, port=int(ladder.right.rsplit(":", 1)[1]))
    found = {(r.outgoing, r.flags, r.seq, r.ack): r.options for r in capture.rows if isinstance(r, Seg) and r.options}
    if {capture.left, capture.right} != {ladder.left, ladder.right}:
        return  # another connection with the same port (an earlier incarnation): no options to trust
    flip = capture.left != ladder.left
    for i, row in enumerate(ladder.rows):
        if isinstance(row, Seg) and "S" in row.flags:
            options = found.get((row.outgoing != flip, row.flags, row.seq, row.ack))
            if options:
                ladder.rows[i] = replace(row, options=options)


# ---------------------------------------------------------------------- folding the data


def fold(rows: list[Row]) -> list[Row]:
    """Keep what a textbook shows: every SYN, FIN and RST, the first segment carrying data, and
    `_CONTEXT` segments either side of each; a run of other segments becomes one Gap row. Timer and
    recovery notes inside a run are dropped with it; state changes stay."""
    segs = [i for i, r in enumerate(rows) if isinstance(r, Seg)]
    first_data = next((i for i in segs if rows[i].length), None)
    marked = [n for n, i in enumerate(segs) if i == first_data or any(f in rows[i].flags for f in "SFR")]
    keep = {n + d for n in marked for d in range(-_CONTEXT, _CONTEXT + 1)}
    folded: list[Row] = []
    run: list[Row] = []  # rows of the current run of segments not kept

    def flush() -> None:
        run_segs = [r for r in run if isinstance(r, Seg)]
        if len(run_segs) < _MIN_FOLD:
            folded.extend(run)
        else:
            folded.append(Gap(len(run_segs), run_segs[0].t, run_segs[-1].t))
            folded.extend(r for r in run if isinstance(r, Note) and r.kind == "state")
        run.clear()

    number = {i: n for n, i in enumerate(segs)}
    for i, row in enumerate(rows):
        kept = number[i] in keep if i in number else not run
        if kept:
            flush()
            folded.append(row)
        else:
            run.append(row)
    flush()
    return folded


# ---------------------------------------------------------------------- drawing

_X_LEFT, _X_RIGHT = 0.34, 0.80
_SEG_HEIGHT, _NOTE_HEIGHT = 1.0, 0.55
_COLORS = {"out": "#1f4e99", "in": "#2a7f2a", "rexmit": "#d62728", "state": "#6a3d9a", "timer": "#7f7f7f"}


def label(seg: Seg) -> str:
    parts = [_flag_words(seg.flags), f"seq={seg.seq}"]
    if "." in seg.flags:
        parts.append(f"ack={seg.ack}")
    if seg.length:
        parts.append(f"len={seg.length}")
    parts.append(f"win={seg.window}")
    if seg.options:
        parts.append(seg.options)
    return " ".join(parts) + (" (retransmission)" if seg.rexmit else "")


def _flag_words(flags: str) -> str:
    words = [w for letter, w in (("S", "SYN"), ("F", "FIN"), ("R", "RST"), ("P", "PSH")) if letter in flags]
    if "." in flags:
        words.append("ACK")
    return ",".join(words) or "-"


def render(ladder: Ladder, out: str) -> None:
    Figure = figure_class()
    from matplotlib.patches import FancyArrowPatch

    heights = [_SEG_HEIGHT if not isinstance(r, Note) else _NOTE_HEIGHT for r in ladder.rows]
    total = sum(heights) + 1.0
    fig = Figure(figsize=(11, 1.6 + 0.4 * total), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.set_xlim(0, 1)
    ax.set_ylim(-total, 1.2)
    ax.axis("off")
    left_name = "tcpstack " + ladder.left if ladder.states else ladder.left
    for x, name in ((_X_LEFT, left_name), (_X_RIGHT, ladder.right)):
        ax.plot([x, x], [0.4, -total + 0.3], color="black", lw=1.2)
        ax.text(x, 0.6, name, ha="center", va="bottom", fontsize=10, weight="bold")
    ax.text(0.0, 0.6, "time (ms)", ha="left", va="bottom", fontsize=8, color="#555555")
    y = 0.0
    for row, h in zip(ladder.rows, heights, strict=True):
        if isinstance(row, Seg):
            _draw_seg(ax, row, y, FancyArrowPatch)
        elif isinstance(row, Gap):
            ax.text(
                (_X_LEFT + _X_RIGHT) / 2,
                y - 0.5,
                f"\u22ee  {row.segments} segments, {row.start * 1000:.1f} to {row.end * 1000:.1f} ms  \u22ee",
                ha="center",
                va="center",
                fontsize=9,
                style="italic",
                color="#555555",
            )
        else:
            _draw_note(ax, row, y)
        y -= h
    fig.savefig(out)


def _draw_seg(ax, seg: Seg, y: float, arrow_class) -> None:
    color = _COLORS["rexmit"] if seg.rexmit else _COLORS["out" if seg.outgoing else "in"]
    x0, x1 = (_X_LEFT, _X_RIGHT) if seg.outgoing else (_X_RIGHT, _X_LEFT)
    top, bottom = y - 0.15, y - 0.85 * _SEG_HEIGHT
    ax.add_patch(arrow_class((x0, top), (x1, bottom), arrowstyle="-|>", mutation_scale=12, color=color, lw=1.2))
    ax.text(
        (x0 + x1) / 2,
        (top + bottom) / 2 + 0.05,
        label(seg),
        ha="center",
        va="bottom",
        fontsize=8,
        color=color,
        bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.85},
    )
    # where the arrow meets our line: below the start of one we send, above the end of one we receive
    at, va = (top, "top") if seg.outgoing else (bottom, "bottom")
    ax.text(0.0, at, f"{seg.t * 1000:.3f}", ha="left", va=va, fontsize=8, color="#333333", family="monospace")


def _draw_note(ax, note: Note, y: float) -> None:
    mid = y - _NOTE_HEIGHT / 2
    if note.kind == "state":
        ax.text(
            _X_LEFT - 0.012,
            mid,
            note.text,
            ha="right",
            va="center",
            fontsize=9,
            weight="bold",
            color=_COLORS["state"],
            bbox={"facecolor": "#f2ecf7", "edgecolor": _COLORS["state"], "boxstyle": "round,pad=0.25", "lw": 0.8},
        )
    else:
        ax.text(_X_LEFT - 0.012, mid, note.text, ha="right", va="center", fontsize=8, style="italic",
                color=_COLORS["timer"])  # fmt: skip


def ladder(out: str, pcap: str | None = None, trace: str | None = None, port: int | None = None) -> str:
    """Draw the ladder diagram of one connection; returns a one-line summary."""
    check_output(out)
    if trace is not None:
        diagram = from_trace(trace, port)
        if pcap is not None:
            add_syn_options(diagram, pcap)
    elif pcap is not None:
        diagram = from_pcap(pcap, port)
    else:
        raise PlotError("a ladder diagram needs an event log (--trace LOG) or a capture (PCAP)")
    diagram.rows = fold(diagram.rows)
    render(diagram, out)
    segs = sum(1 for r in diagram.rows if isinstance(r, Seg))
    folded = sum(r.segments for r in diagram.rows if isinstance(r, Gap))
    states = [r.text for r in diagram.rows if isinstance(r, Note) and r.kind == "state"]
    summary = f"{out}: {diagram.left} - {diagram.right}, {segs} segments drawn, {folded} folded"
    return summary + (f"; states {' '.join(states)}" if states else "")
