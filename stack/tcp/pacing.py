"""Pacing: when a packet may leave, and the rate a pacing qdisc (Linux's sch_fq) gives a flow whose
controller sets no pacing rate of its own.

With fq on the device, Linux paces every TCP flow at sk_pacing_rate (tcp_update_pacing_rate): the window
per smoothed RTT, times tcp_pacing_ss_ratio (200%) in slow start (cwnd below half of ssthresh) and
tcp_pacing_ca_ratio (120%) after, so a flow that fills its window sends at about the rate its ACKs come
back. A controller with a rate of its own (BBR) sets sk_pacing_rate itself and TCP paces the flow.
Either way TCP stamps each packet (one GSO packet: an skb) with its departure time (the Early Departure
Time model, tcp_update_skb_after_send): the first 10 data segments of a connection leave unpaced, as fq
never paced a flow's first packets; after that each packet leaves its length at the rate after the
previous one, less up to half of that for time the flow lost being idle (OS jitter).
"""

from __future__ import annotations

from typing import Final

UNPACED_SEGMENTS: Final = 10  # data segments a connection sends before pacing starts (tcp_update_skb_after_send)


def fq_rate(cwnd: int, ssthresh: int, in_flight: int, srtt: float | None, ss_ratio: int, ca_ratio: int) -> float | None:
    """Bytes per second (Linux tcp_update_pacing_rate); None before the first RTT sample (no pacing)."""
    if not srtt:
        return None
    ratio = ss_ratio if cwnd < ssthresh // 2 else ca_ratio
    return max(cwnd, in_flight) * ratio / 100 / srtt


def next_departure(departure: float, now: float, length: int, rate: float, slack: float = 0.0) -> float:
    """When the packet after one of `length` bytes may leave, the one just sent having been due at
    `departure` (Linux tcp_wstamp_ns, which a segment without data also moves up to when it left): its
    time at the rate, less up to half of it for idle time. A timer that fires up to `slack` late (an
    event loop's resolution, where Linux has hrtimers) is made up for in full."""
    sent_at = max(departure, now)
    gap = length / rate
    return sent_at + gap - min(max(gap / 2, slack), sent_at - departure)
