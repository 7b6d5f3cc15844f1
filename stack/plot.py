"""`tcpstack plot`: one TCP connection from a pcap, drawn as a time-sequence graph in the Stevens style
(tcptrace, Wireshark), with the congestion state from a `--trace FILE` event log underneath.

Reading and classifying (`read_pcap`, `time_sequence`, `congestion_series`) need nothing beyond the
stack itself; drawing (`render`) needs matplotlib, the `plot` extra.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from stack.wire import addr
from stack.wire.segment import Flags

FORMATS = (".png", ".svg")
PCAP_HEADER_SIZE = 24  # a classic pcap file's global header, before its first record
_MAX_RECORD = 262144  # the largest snaplen libpcap writes
_INSTALL_HINT = "pip install 'tcpstack[plot]'"

# libpcap link types read (see _ip_of for where each puts the IP header)
_RAW = (101, 12, 14)  # LINKTYPE_RAW and the DLT_RAW values some systems store
_ETHERNET = 1
_LINUX_SLL = 113
_LINUX_SLL2 = 276
_IP_ETHERTYPES = (b"\x08\x00", b"\x86\xdd")  # IPv4, IPv6


class PlotError(Exception):
    """A problem with the input or the environment, explained in one line."""


# ---------------------------------------------------------------------- pcap


def read_pcap(path: str) -> list[tuple[float, bytes]]:
    """(timestamp, IPv4 or IPv6 packet) of a classic libpcap file: raw IP, Ethernet or Linux cooked captures.
    A record cut off at the end (the capture was killed) is ignored."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < PCAP_HEADER_SIZE:
        raise PlotError(f"{path}: too short for a pcap file")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    elif magic == b"\x0a\x0d\x0d\x0a":
        raise PlotError(f"{path}: pcapng is not supported; convert it with `editcap -F pcap IN OUT`")
    else:
        raise PlotError(f"{path}: not a pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    if linktype not in (*_RAW, _ETHERNET, _LINUX_SLL, _LINUX_SLL2):
        raise PlotError(f"{path}: link type {linktype} is not supported (raw IP, Ethernet, Linux cooked)")
    record = struct.Struct(endian + "IIII")
    scale = 1e-9 if nano else 1e-6
    packets = []
    pos = PCAP_HEADER_SIZE
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = record.unpack_from(data, pos)
        if incl > _MAX_RECORD:
            raise PlotError(f"{path}: corrupt record at byte {pos} ({incl} bytes)")
        pos += 16
        if pos + incl > len(data):
            break
        ip = _ip_of(data[pos : pos + incl], linktype)
        pos += incl
        if ip is not None:
            packets.append((sec + frac * scale, ip))
    return packets


def _ip_of(frame: bytes, linktype: int) -> bytes | None:
    if linktype in _RAW:
        ip = frame
    elif linktype == _ETHERNET:
        ip = frame[14:] if frame[12:14] in _IP_ETHERTYPES else None
    elif linktype == _LINUX_SLL:
        ip = frame[16:] if frame[14:16] in _IP_ETHERTYPES else None
    else:
        ip = frame[20:] if frame[0:2] in _IP_ETHERTYPES else None
    return ip if ip and ip[0] >> 4 in (4, 6) else None


# ---------------------------------------------------------------------- classification


@dataclass(frozen=True, slots=True)
class DataSegment:
    t: float  # seconds since the connection's first packet
    start: int  # sequence numbers relative to the sender's ISN + 1, unwrapped
    end: int
    rexmit: bool  # starts below the highest byte sent before: a retransmission


@dataclass(frozen=True, slots=True)
class AckPoint:
    t: float
    ack: int  # relative, like DataSegment
    window: int  # bytes, scaled when the handshake was captured
    sack: tuple[tuple[int, int], ...]


@dataclass(slots=True)
class TimeSequence:
    """The data direction of one connection: who sent, who acknowledged, what and when."""

    sender: str  # "ip:port"
    receiver: str
    t0: float  # pcap time of the connection's first packet
    data: list[DataSegment] = field(default_factory=list)
    acks: list[AckPoint] = field(default_factory=list)
    window_scaled: bool = True  # False: no handshake in the capture, window scaling unknown
    skipped: int = 0  # packets that were not valid TCP (bad checksum, truncated, other protocols)

    @property
    def retransmissions(self) -> list[DataSegment]:
        return [d for d in self.data if d.rexmit]


class _Unwrap:
    """Sequence numbers as offsets from a base, carried past 2**32 (RFC 9293 §3.4 arithmetic)."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.last = 0

    def __call__(self, seq: int) -> int:
        delta = (seq - self.base - self.last) & 0xFFFFFFFF
        if delta >= 1 << 31:
            delta -= 1 << 32
        value = self.last + delta
        if value > self.last:
            self.last = value
        return value


def _endpoint(ip: int, port: int) -> str:
    return addr.fmt_endpoint(ip, port)


def time_sequence(packets: Iterable[tuple[float, bytes]], port: int | None = None) -> TimeSequence:
    """Pick one connection (the one with most payload bytes, or the one using `port`) and classify its
    data direction: data segments (retransmitted or not) and the receiver's ACKs, windows and SACKs."""
    from stack.wire.codec import TcpPacket, decode

    flows: dict[frozenset, list] = {}
    skipped = 0
    for t, raw in packets:
        pkt = decode(raw)
        if type(pkt) is not TcpPacket:
            skipped += 1
            continue
        seg = pkt.segment
        if port is not None and port not in (seg.src_port, seg.dst_port):
            continue
        key = frozenset(((pkt.src, seg.src_port), (pkt.dst, seg.dst_port)))
        flows.setdefault(key, []).append((t, pkt.src, seg))
    if not flows:
        where = f" on port {port}" if port is not None else ""
        raise PlotError(f"no TCP connection{where} in the capture")

    def payload(item) -> int:
        return sum(len(s.payload) for _, _, s in item[1])

    key, flow = max(flows.items(), key=payload)
    a, b = sorted(key) if len(key) == 2 else (next(iter(key)),) * 2

    def sent_by(end: tuple[int, int]) -> int:
        return sum(len(s.payload) for _, src, s in flow if (src, s.src_port) == end)

    sender, receiver = (a, b) if sent_by(a) >= sent_by(b) else (b, a)
    return _classify(flow, sender, receiver, skipped)


def _classify(flow: list, sender: tuple[int, int], receiver: tuple[int, int], skipped: int) -> TimeSequence:
    t0 = flow[0][0]
    syn_out = next((s for _, src, s in flow if (src, s.src_port) == sender and s.flags & Flags.SYN), None)
    syn_in = next((s for _, src, s in flow if (src, s.src_port) == receiver and s.flags & Flags.SYN), None)
    if syn_out is not None:
        base = (syn_out.seq + 1) & 0xFFFFFFFF
    else:
        base = next((s.seq for _, src, s in flow if (src, s.src_port) == sender and s.payload), 0)
    scaled = syn_out is not None and syn_in is not None
    # RFC 7323 §2.2: the receiver's windows are scaled by the shift it offered, if both SYNs carried one
    shift = 0
    if scaled and syn_out.options.wscale is not None and syn_in.options.wscale is not None:
        shift = min(syn_in.options.wscale, 14)  # RFC 7323 §2.3: larger shifts are taken as 14
    rel = _Unwrap(base)
    ts = TimeSequence(_endpoint(*sender), _endpoint(*receiver), t0, window_scaled=scaled, skipped=skipped)
    highest: int | None = None
    for t, src, seg in flow:
        x = t - t0
        if (src, seg.src_port) == sender:
            if seg.payload:
                start = rel(seg.seq)
                end = start + len(seg.payload)
                ts.data.append(DataSegment(x, start, end, highest is not None and start < highest))
                highest = end if highest is None else max(highest, end)
        elif seg.flags & Flags.ACK:
            window = seg.window if seg.flags & Flags.SYN else seg.window << shift
            ack = rel(seg.ack)
            sack = tuple((rel(left), rel(right)) for left, right in seg.options.sack_blocks)
            ts.acks.append(AckPoint(x, ack, window, sack))
    return ts


# ---------------------------------------------------------------------- the event log


@dataclass(slots=True)
class CongestionSeries:
    """The sender's congestion state over time, from `cc`, `recovery` and `timer` events."""

    t: list[float] = field(default_factory=list)
    cwnd: list[int] = field(default_factory=list)
    ssthresh: list[float] = field(default_factory=list)  # NaN while "arbitrarily high"
    flight: list[int] = field(default_factory=list)
    srtt: list[float] = field(default_factory=list)  # seconds, NaN before the first sample
    rto: list[float] = field(default_factory=list)
    recoveries: list[tuple[float, float, str]] = field(default_factory=list)  # (start, end, kind)
    rto_fired: list[float] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.t)


def congestion_series(events: Iterable[dict], ts: TimeSequence) -> CongestionSeries:
    """The events of the connection `ts` shows, on its time axis (both clocks are wall-clock seconds)."""
    from stack.trace import ssthresh_is_infinite

    ends = {ts.sender, ts.receiver}
    series = CongestionSeries()
    open_since: dict[str, float] = {}
    last = None
    for ev in events:
        if {ev.get("local"), ev.get("remote")} != ends:
            continue
        x = ev["t"] - ts.t0
        last = x
        kind = ev["ev"]
        if kind == "cc":
            series.t.append(x)
            series.cwnd.append(ev["cwnd"])
            series.ssthresh.append(math.nan if ssthresh_is_infinite(ev["ssthresh"]) else ev["ssthresh"])
            series.flight.append(ev["flight"])
            series.srtt.append(math.nan if ev["srtt"] is None else ev["srtt"])
            series.rto.append(ev["rto"])
        elif kind == "recovery":
            if ev["action"] == "enter":
                open_since[ev["kind"]] = x
            elif ev["kind"] in open_since:
                series.recoveries.append((open_since.pop(ev["kind"]), x, ev["kind"]))
        elif kind == "timer" and ev["action"] == "fired" and ev["name"] == "retransmit":
            series.rto_fired.append(x)
    for kind, start in open_since.items():
        series.recoveries.append((start, last, kind))
    return series


# ---------------------------------------------------------------------- drawing

_COLORS = {
    "data": "#1f4e99",
    "rexmit": "#d62728",
    "ack": "#2ca02c",
    "window": "#c9a100",
    "sack": "#9467bd",
    "cwnd": "#1f77b4",
    "ssthresh": "#ff7f0e",
    "flight": "#bbbbbb",
    "srtt": "#2ca02c",
    "rto": "#d62728",
    "fast": "#d62728",
    "rto_span": "#7f7f7f",
}


Span = tuple[float, float]  # seconds since the connection's first packet


def _in_span(times: list[float], span: Span | None) -> list[int]:
    """Indices of the points drawn inside `span`, with the step that enters it from the left."""
    if span is None:
        return list(range(len(times)))
    inside = [i for i, t in enumerate(times) if span[0] <= t <= span[1]]
    before = [i for i, t in enumerate(times) if t < span[0]]
    return before[-1:] + inside


def figure_class():
    """matplotlib's Figure (no pyplot, no display needed), or a PlotError saying how to get it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError(f"drawing needs matplotlib: {_INSTALL_HINT}") from None
    return Figure


def check_output(out: str) -> None:
    """Fail before the work, not after it: the format must be known and matplotlib installed."""
    if not out.lower().endswith(FORMATS):
        raise PlotError(f"{out}: the output must end in .png or .svg")
    figure_class()


def render(ts: TimeSequence, cc: CongestionSeries | None, out: str, span: Span | None = None) -> None:
    """Draw and save to `out` (.png or .svg); `span` zooms into part of the time axis."""
    Figure = figure_class()
    from matplotlib.ticker import EngFormatter

    fig = Figure(figsize=(11, 8.5 if cc else 5.5), dpi=110, layout="constrained")
    if cc:
        ax, ax_cc = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    else:
        ax, ax_cc = fig.subplots(1, 1), None
    _draw_time_sequence(ax, ts, span)
    ax.yaxis.set_major_formatter(EngFormatter(unit="B"))
    if cc:
        _draw_congestion(ax_cc, cc, EngFormatter(unit="B"), span)
        for start, end, kind in cc.recoveries:
            for axis in (ax, ax_cc):
                color = _COLORS["fast"] if kind == "fast" else _COLORS["rto_span"]
                axis.axvspan(start, end, color=color, alpha=0.08 if kind == "fast" else 0.15, lw=0)
        ax_cc.set_xlabel("time (s)")
    else:
        ax.set_xlabel("time (s)")
    if span is not None:
        ax.set_xlim(*span)
    fig.savefig(out)


def _draw_time_sequence(ax, ts: TimeSequence, span: Span | None) -> None:
    new = [d for d in ts.data if not d.rexmit]
    again = ts.retransmissions
    if ts.acks:
        t = [a.t for a in ts.acks]
        ax.step(t, [a.ack for a in ts.acks], where="post", color=_COLORS["ack"], lw=1, label="ACK")
        window = [a.ack + a.window for a in ts.acks]
        ax.step(t, window, where="post", color=_COLORS["window"], lw=1, label="receive window (ACK + window)")
        blocks = [(a.t, left, right) for a in ts.acks for left, right in a.sack]
        if blocks:
            x, low, high = zip(*blocks, strict=True)
            ax.vlines(x, low, high, color=_COLORS["sack"], lw=3, alpha=0.7, zorder=3, label="SACK blocks")
    for segs, color, label, marker, size in (
        (new, _COLORS["data"], "data", ".", 2.5),
        (again, _COLORS["rexmit"], "retransmission", "o", 3.5),
    ):
        if segs:
            ax.vlines([d.t for d in segs], [d.start for d in segs], [d.end for d in segs], color=color, lw=1)
            ax.plot([d.t for d in segs], [d.end for d in segs], marker, color=color, ms=size, label=label)
    data_bytes = max((d.end for d in ts.data), default=0)
    # limits from the data and the ACKs shown: a window line far above them does not limit the
    # sender and may leave the picture
    shown = [y for i in _in_span([d.t for d in ts.data], span) for y in (ts.data[i].start, ts.data[i].end)]
    shown += [ts.acks[i].ack for i in _in_span([a.t for a in ts.acks], span)]
    low, high = (min(shown), max(shown)) if shown else (0, data_bytes)
    height = high - low + 1
    ax.set_ylim(bottom=low - 0.02 * height, top=high + 0.15 * height)
    title = (
        f"{ts.sender} \u2192 {ts.receiver}: {len(ts.data)} data segments ({data_bytes:,} bytes), "
        f"{len(again)} retransmitted"
    )
    if not ts.window_scaled:
        title += " (no handshake captured: windows unscaled)"
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("sequence number (relative)")
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.legend(loc="upper left", fontsize=8, markerscale=2)


def _draw_congestion(ax, cc: CongestionSeries, bytes_fmt, span: Span | None) -> None:
    ax.fill_between(cc.t, cc.flight, step="post", color=_COLORS["flight"], alpha=0.5, lw=0, label="bytes in flight")
    ax.step(cc.t, cc.cwnd, where="post", color=_COLORS["cwnd"], lw=1.2, label="cwnd")
    ax.step(cc.t, cc.ssthresh, where="post", color=_COLORS["ssthresh"], lw=1.2, label="ssthresh")
    # unclipped, so that a marker on the axis shows whole: so only those inside --time, or the layout
    # would make room for the others beside the axes
    fired = [t for t in cc.rto_fired if span is None or span[0] <= t <= span[1]]
    if fired:
        ax.plot(fired, [0.0] * len(fired), "^", color=_COLORS["rto"], ms=7, clip_on=False, label="RTO fired")
    ax.yaxis.set_major_formatter(bytes_fmt)
    ax.set_ylabel("window")
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.set_ylim(bottom=0)
    rtt = ax.twinx()
    rtt.step(cc.t, [v * 1000 for v in cc.srtt], where="post", color=_COLORS["srtt"], lw=1, label="srtt")
    rtt.step(cc.t, [v * 1000 for v in cc.rto], where="post", color=_COLORS["rto"], lw=1, ls="--", label="rto")
    rtt.set_ylabel("srtt, rto (ms, log scale)")
    rtt.set_yscale("log")  # a LAN's srtt of a millisecond and a 200 ms minimum RTO on one axis
    shown = _in_span(cc.t, span)
    values = [v for i in shown for v in (cc.cwnd[i], cc.flight[i], cc.ssthresh[i]) if not math.isnan(v)]
    ax.set_ylim(top=1.3 * max(values, default=1) + 1)
    lines = ax.get_legend_handles_labels()
    more = rtt.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8, ncol=6)


# ---------------------------------------------------------------------- the command


def plot(pcap: str, out: str, trace: str | None = None, port: int | None = None, span: Span | None = None) -> str:
    """Read, classify, draw; returns a one-line summary."""
    check_output(out)
    ts = time_sequence(read_pcap(pcap), port)
    if not ts.data:
        raise PlotError(f"{pcap}: the connection {ts.sender} - {ts.receiver} carries no data")
    cc = None
    if trace is not None:
        from stack.trace import read_events

        try:
            cc = congestion_series(read_events(trace), ts)
        except ValueError as exc:
            raise PlotError(str(exc)) from None
        except (KeyError, TypeError) as exc:
            raise PlotError(f"{trace}: an event lacks a field or has one of the wrong type ({exc})") from None
        if not cc:
            raise PlotError(f"{trace}: no congestion events for {ts.sender} - {ts.receiver}")
    render(ts, cc, out, span)
    summary = (
        f"{out}: {ts.sender} -> {ts.receiver}, {len(ts.data)} data segments, {len(ts.retransmissions)} retransmitted"
    )
    if cc:
        summary += f", {len(cc.recoveries)} recoveries, {len(cc.rto_fired)} RTOs"
    return summary
