"""Retransmission timeout estimation (RFC 6298)."""

from __future__ import annotations


class RtoEstimator:
    __slots__ = ("srtt", "rttvar", "min_rto", "max_rto", "_base", "backoff")
    K = 4
    ALPHA = 0.125  # 1/8
    BETA = 0.25  # 1/4
    CLOCK_GRANULARITY = 0.001  # G: we time with a fine clock

    def __init__(self, initial_rto: float, min_rto: float, max_rto: float) -> None:
        self.srtt: float | None = None
        self.rttvar: float = 0.0
        self.min_rto = min_rto
        self.max_rto = max_rto
        self._base = initial_rto  # RFC 6298 (2.1)
        self.backoff = 0

    @property
    def rto(self) -> float:
        """Current RTO including exponential backoff (RFC 6298 (5.5)), bounded by max_rto."""
        return min(self._base * (1 << self.backoff), self.max_rto)

    def on_sample(self, r: float) -> None:
        if self.srtt is None:  # RFC 6298 (2.2)
            self.srtt = r
            self.rttvar = r / 2
        else:  # RFC 6298 (2.3): RTTVAR first, with the old SRTT
            self.rttvar = (1 - self.BETA) * self.rttvar + self.BETA * abs(self.srtt - r)
            self.srtt = (1 - self.ALPHA) * self.srtt + self.ALPHA * r
        # RFC 6298 (2.3) adds max(G, K*RTTVAR); Linux (tcp_set_rto) adds max(K*RTTVAR, RTO min), so the
        # minimum is a floor on the variance term, not on the whole RTO: RTO >= SRTT + 200 ms
        rto = self.srtt + max(max(self.CLOCK_GRANULARITY, self.K * self.rttvar), self.min_rto)
        self._base = min(rto, self.max_rto)  # RFC 6298 (2.5)
        self.backoff = 0

    def on_timeout(self) -> None:
        """RFC 6298 (5.5): back off the timer."""
        if self._base * (1 << self.backoff) < self.max_rto:
            self.backoff += 1

    def reset_backoff(self) -> None:
        self.backoff = 0


def retries_time(retries: int, rto_base: float, rto_max: float) -> float:
    """How long `retries` retransmissions take when each doubles the timeout from `rto_base`, up to
    `rto_max` (Linux retransmits_timed_out): a time budget that caps a count of retries."""
    doublings = max(int(rto_max / rto_base).bit_length() - 1, 0)  # ilog2(rto_max / rto_base)
    if retries <= doublings:
        return ((2 << retries) - 1) * rto_base
    return ((2 << doublings) - 1) * rto_base + (retries - doublings) * rto_max


def ts_clock(now: float, offset: int) -> int:
    """Our timestamp clock at `now`: milliseconds plus a per-connection offset (RFC 7323 §5.4)."""
    return (int(now * 1000) + offset) & 0xFFFFFFFF
