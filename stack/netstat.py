"""`tcpstack netstat` as text: net-tools' `netstat -nato` table, and with `--info` the line `ss -tanoi` adds.

Client side only (no stack imports), so `tcpstack netstat` starts fast.
"""

from __future__ import annotations

_INFINITE_SSTHRESH = 1 << 30
HEADER = f"{'Proto':<6}{'Recv-Q':>7}{'Send-Q':>8} {'Local Address':<22}{'Foreign Address':<22}{'State':<12}Timer"


def timer_column(row: dict) -> str:
    """net-tools' `-o` column: `on (2.89/2/0)` = timer (seconds left/retransmissions/probes)."""
    left = row.get("timer_left")
    counts = f"{row.get('retransmits', 0)}/{row.get('probes', 0)}"
    if left is None:
        return f"off (0.00/{counts})"
    return f"{row['timer']} ({left:.2f}/{counts})"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.3f}".rstrip("0").rstrip(".")


def info_line(info: dict) -> str:
    """The `ss -i` line: controller, window scales, RTO and RTT in ms, MSS, cwnd in segments, counters."""
    mss = info["mss"] or 1
    parts = [
        info["cc"],
        f"wscale:{info['snd_wscale']},{info['rcv_wscale']}",
        f"rto:{_ms(info['rto'])}",
        f"backoff:{info['backoff']}",
        f"rtt:{_ms(info['srtt'])}/{_ms(info['rttvar'])}",
        f"mss:{info['mss']}",
        f"cwnd:{info['cwnd'] // mss}",
        f"bytes_acked:{info['bytes_acked']}",
        f"bytes_received:{info['bytes_received']}",
        f"segs_out:{info['segs_out']}",
        f"segs_in:{info['segs_in']}",
        f"retrans:{info['retrans']}",
        f"snd_wnd:{info['snd_wnd']}",
        f"rcv_wnd:{info['rcv_wnd']}",
    ]
    if info.get("rcv_rtt"):  # ss: the receiver's own RTT estimate in ms, once it has one
        parts.append(f"rcv_rtt:{info['rcv_rtt'] / 1000:g}")
    parts += [f"rcv_space:{info.get('rcv_space', 0)}", f"rcv_ssthresh:{info.get('rcv_ssthresh', 0)}"]
    if info["ssthresh"] < _INFINITE_SSTHRESH:  # ss leaves out an ssthresh that was never set
        parts.insert(7, f"ssthresh:{info['ssthresh'] // mss}")
    if info["sack"]:
        parts.append("sack")
    if info["timestamps"]:
        parts.append("ts")
    if info["srtt"]:
        parts.append(f"send {_rate(info['cwnd'] * 8 / info['srtt'])}")
    if info["pacing_rate"]:
        parts.append(f"pacing_rate {_rate(info['pacing_rate'] * 8)}")
    return " ".join(parts)


def _rate(bits_per_second: float) -> str:
    for unit, scale in (("Gbps", 1e9), ("Mbps", 1e6), ("Kbps", 1e3)):
        if bits_per_second >= scale:
            return f"{bits_per_second / scale:.1f}{unit}"
    return f"{bits_per_second:.0f}bps"


def format_rows(rows: list[dict], info: bool = False) -> str:
    lines = [HEADER]
    for r in rows:
        lines.append(
            f"{'tcp':<6}{r['recv_q']:>7}{r['send_q']:>8} {r['local']:<22}{r['remote']:<22}{r['state']:<12}"
            f"{timer_column(r)}"
        )
        if info and r.get("info"):
            lines.append("\t " + info_line(r["info"]))
    return "\n".join(lines)
