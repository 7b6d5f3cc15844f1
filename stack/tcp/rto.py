"""Retransmission timeout estimation (RFC 6298, computed as Linux does)."""

from __future__ import annotations

from stack.wire.seq import seq_gt


class RtoEstimator:
    """SRTT, RTTVAR and the RTO of RFC 6298, computed as Linux's tcp_rtt_estimator, which takes a sample
    from every ACK where RFC 6298's gains were chosen for one per round trip:

    - SRTT moves by an eighth of the error, RTTVAR (Linux's mdev) by a quarter of |error| - RTTVAR, but
      by a 32nd when the RTT fell by more than RTTVAR (damped, so that a faster path does not first raise
      the RTO);
    - the RTO is SRTT plus a variance term: 4*RTTVAR at its largest in the current round trip of data (a
      round ends when SND.UNA passes what SND.NXT was when it began), which then falls a quarter of the
      way towards the next round's largest, and never below min_rto (Linux's rttvar_us, mdev_max_us and
      tcp_rto_min)."""

    __slots__ = ("srtt", "rttvar", "min_rto", "max_rto", "backoff", "_var", "_var_max", "_round_end")

    def __init__(self, initial_rto: float, min_rto: float, max_rto: float) -> None:
        self.srtt: float | None = None
        self.rttvar: float = 0.0
        self.min_rto = min_rto
        self.max_rto = max_rto
        self.backoff = 0
        # the RTO's variance term (Linux rttvar_us); before the first sample, the initial RTO (RFC 6298 (2.1))
        self._var = initial_rto
        self._var_max = 0.0  # 4*RTTVAR at its largest this round, at least min_rto (Linux mdev_max_us)
        self._round_end = 0  # this round ends when SND.UNA passes it (Linux rtt_seq)

    @property
    def rto(self) -> float:
        """Current RTO including exponential backoff (RFC 6298 (5.5)), bounded by max_rto."""
        return min(self._base() * (1 << self.backoff), self.max_rto)

    def _base(self) -> float:
        """The RTO before backoff: SRTT plus the variance term, at most max_rto (RFC 6298 (2.5))."""
        srtt = self.srtt
        return self._var if srtt is None else min(srtt + self._var, self.max_rto)

    def on_sample(self, r: float, snd_una: int, snd_nxt: int) -> None:
        """An RTT sample `r` from an ACK that leaves SND.UNA at `snd_una`, SND.NXT being `snd_nxt`."""
        srtt = self.srtt
        if srtt is None:  # RFC 6298 (2.2)
            self.srtt = r
            self.rttvar = r / 2
            self._var = self._var_max = max(4 * self.rttvar, self.min_rto)
            self._round_end = snd_nxt
        else:  # RFC 6298 (2.3), RTTVAR first with the old SRTT
            error = r - srtt
            self.srtt = srtt + error / 8
            step = abs(error) - self.rttvar
            if error < 0 and step > 0:
                step /= 8
            self.rttvar += step / 4
            var = 4 * self.rttvar
            if var > self._var_max:
                self._var_max = var
                if var > self._var:
                    self._var = var
            if seq_gt(snd_una, self._round_end):  # a round trip of data is over
                if self._var_max < self._var:
                    self._var -= (self._var - self._var_max) / 4
                self._round_end = snd_nxt
                self._var_max = self.min_rto
        self.backoff = 0

    def on_timeout(self) -> None:
        """RFC 6298 (5.5): back off the timer."""
        if self._base() * (1 << self.backoff) < self.max_rto:
            self.backoff += 1

    def revert_backoff(self) -> None:
        """Undo the last doubling (RFC 6069 §4: an ICMP unreachable said the path, not congestion, lost the
        segment; Linux tcp_ld_RTO_revert)."""
        if self.backoff:
            self.backoff -= 1

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
