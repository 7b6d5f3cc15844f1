"""Packetization-layer path MTU discovery (RFC 4821) as Linux's tcp_mtu_probing does it.

Where ICMP "fragmentation needed" never arrives (a black hole) or a path grows, the sender learns the
path MTU by sending one larger segment, a probe, among ordinary ones: acknowledged, its size is known
to pass and becomes the floor of the search; lost, it becomes the ceiling, without a congestion response
for it. The search is binary, between `search_low` (an MTU known to work) and `search_high` (the peer's
MSS plus headers), and stops when the two are closer than the probe threshold; after the probe interval
it starts over. Segments are never larger than `search_low` allows while probing is on.

Linux's modes (sysctl tcp_mtu_probing): 0 off, 1 on once a black hole is suspected (retransmission
timeouts, RFC 4821 §7.7), 2 always on. MTUs here include the IP and TCP headers and the TCP options
every segment carries (Linux tcp_mss_to_mtu): `headers` is their length.
"""

from __future__ import annotations

from typing import Final

from stack.wire.seq import seq_ge

MIN_CWND_SEGMENTS: Final = 11  # Linux probes only with at least this window (tcp_mtu_probe)
PROBE_FLOOR: Final = 48  # the smallest MSS a black hole may bring the search down to (tcp_mtu_probe_floor)
BLACK_HOLE_RETRIES: Final = 3  # timeouts of one segment after which the path is suspected (Linux tcp_retries1)


class MtuProber:
    """One connection's search for its path MTU."""

    __slots__ = (
        "mode",
        "base_mss",
        "threshold",
        "interval",
        "headers",
        "mss_clamp",
        "enabled",
        "search_low",
        "search_high",
        "probe_mtu",
        "probe_end",
        "probe_stamp",
        "route_mtu",
    )

    def __init__(self, mode: int, base_mss: int, threshold: int, interval: float) -> None:
        self.mode = mode
        self.base_mss = base_mss  # where the search starts (tcp_base_mss)
        self.threshold = threshold  # bytes: a narrower search range ends the search (tcp_probe_threshold)
        self.interval = interval  # seconds before a finished search starts over (tcp_probe_interval)
        self.headers = 40
        self.mss_clamp = 536
        self.enabled = False
        self.search_low = self.search_high = 0
        self.probe_mtu = 0  # the probe in flight (0: none)
        self.probe_end = 0  # sequence number just past it
        self.probe_stamp = 0.0  # when the current search began
        # a route's new MTU: (mtu, False) until a transmission noticed it, then (mtu, True) until applied
        self.route_mtu: tuple[int, bool] | None = None

    def start(self, mss_clamp: int, headers: int, now: float) -> None:
        """The connection is established (Linux tcp_mtup_init): search from tcp_base_mss up to the peer's
        MSS; mode 2 probes from now on, mode 1 only after a black hole is suspected."""
        self.mss_clamp = mss_clamp
        self.headers = headers
        self.enabled = self.mode >= 2
        self.search_high = mss_clamp + headers
        self.search_low = self.base_mss + headers
        self.probe_mtu = 0
        self.probe_stamp = now

    def clamp(self, mss: int) -> int:
        """The MSS to use on a path of that MSS: no larger than the search has shown to pass."""
        return min(mss, self.search_low - self.headers) if self.enabled else mss

    def path_mtu(self, mtu: int) -> None:
        """The route or an ICMP message gave the path MTU: nothing above it is searched (tcp_sync_mss)."""
        self.search_high = min(self.search_high, mtu)

    def size(self, now: float, mss: int, cwnd: int, in_flight: int, unsent: int, snd_wnd: int, reordering: int) -> int:
        """Payload bytes of a probe to send now, or 0 (tcp_mtu_probe). `cwnd` and `in_flight` count segments;
        the caller checks that no recovery is under way and no SACK blocks ride on its segments."""
        if not self.enabled or self.probe_mtu or cwnd < MIN_CWND_SEGMENTS:
            return 0
        size = (self.search_high + self.search_low) // 2 - self.headers
        if size > self.search_high - self.headers or self.search_high - self.search_low < self.threshold:
            self._maybe_restart(now, mss)
            return 0
        # enough data behind the probe for duplicate ACKs to report its loss without a timeout
        needed = size + (reordering + 1) * mss
        if unsent < needed or snd_wnd < needed or in_flight + 2 > cwnd:
            return 0
        return size

    def sent(self, end: int, size: int) -> None:
        self.probe_mtu = size + self.headers
        self.probe_end = end

    def acked(self, snd_una: int) -> int:
        """An ACK moved SND.UNA: the MTU a probe it covers proved (0: none). That MTU is the new floor."""
        if not self.probe_mtu or not seq_ge(snd_una, self.probe_end):
            return 0
        mtu, self.probe_mtu = self.probe_mtu, 0
        self.search_low = mtu
        return mtu

    def lost(self) -> None:
        """The probe was lost: nothing that large passes (tcp_mtup_probe_failed)."""
        self.search_high = self.probe_mtu - 1
        self.probe_mtu = 0

    def black_hole(self, now: float) -> None:
        """Retransmission timeouts kept repeating (RFC 4821 §7.7, Linux tcp_mtu_probing): mode 1 starts
        probing; with probing on the floor drops to half, at most tcp_base_mss."""
        if not self.mode:
            return
        if not self.enabled:
            self.enabled = True
            self.probe_stamp = now
            return
        mss = min(self.base_mss, (self.search_low - self.headers) // 2)
        self.search_low = max(mss, PROBE_FLOOR) + self.headers

    def _maybe_restart(self, now: float, mss: int) -> None:
        """A finished search starts over after the probe interval, from the current MSS up to the peer's
        (tcp_mtu_check_reprobe): the path may have grown."""
        if now - self.probe_stamp >= self.interval:
            self.search_high = self.mss_clamp + self.headers
            self.search_low = mss + self.headers
            self.probe_stamp = now


def cwnd_after_probe(cwnd_segments: int, mss: int, headers: int, probe_mtu: int) -> int:
    """The window in segments of the proved size that holds what `cwnd_segments` of `mss` held
    (tcp_mtup_probe_success): the bytes in flight stay, the segments get larger."""
    return max(1, cwnd_segments * (mss + headers) // probe_mtu)
