"""CUBIC's congestion avoidance in Linux's integer arithmetic (tcp_cubic's bictcp_update), in segments.

RFC 9438 describes the same curve in real numbers; Linux's version differs where scripts recorded on
Linux can see it:
- time is counted in jiffies (HZ=1000) and the curve is evaluated one minimum RTT ahead (not one SRTT);
- the target is recomputed at most once a jiffy, and not at all while cwnd is unchanged for 1/32 s;
- before the first loss the window grows at least 5% per RTT (one segment per 20 acknowledged);
- the Reno-friendly estimate grows by one segment per cwnd * 15/8 acknowledged (beta_scale);
- the window grows by one segment per `cnt` acknowledged (tcp_cong_avoid_ai), at most one per two.
The cube root is exact here where Linux approximates it (within 0.2%), which only matters after a loss.
"""

from __future__ import annotations

import math

BETA = 717  # of 1024: cwnd after a loss (tcp_cubic's beta)
BETA_SCALE_FACTOR = 8 * (1024 + BETA) // 3 // (1024 - BETA)  # Reno-friendly rate (beta_scale, 15)
CUBE_RTT_SCALE = 41 * 10  # bic_scale * 10: C = 0.4 in the units below
CUBE_FACTOR = (1 << 40) // CUBE_RTT_SCALE  # K = cbrt(CUBE_FACTOR * (W_max - cwnd)), in 1/1024 s
HZ = 1000  # jiffies per second, as the RACK timer assumes (rack.py)
BICTCP_HZ = 10  # the curve's time unit is 1/1024 s
MIN_UPDATE = HZ // 32  # jiffies an unchanged window waits before the target is recomputed
FIRST_STAGE_CNT = 20  # before any loss, at least one segment per 20 acknowledged


class LinuxCubic:
    """One connection's CUBIC state as Linux keeps it (struct bictcp), windows in segments."""

    __slots__ = (
        "cnt",
        "last_max_cwnd",
        "last_cwnd",
        "last_time",
        "bic_origin",
        "bic_k",
        "epoch_start",
        "ack_cnt",
        "tcp_cwnd",
        "cwnd_cnt",
    )

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """All forgotten, as after a retransmission timeout (bictcp_reset)."""
        self.cnt = 0  # segments acknowledged per segment of growth
        self.last_max_cwnd = 0  # W_max; 0: no loss yet
        self.last_cwnd = 0
        self.last_time = 0
        self.bic_origin = 0
        self.bic_k = 0
        self.epoch_start = 0  # jiffy the stage began (0: none)
        self.ack_cnt = 0
        self.tcp_cwnd = 0  # the Reno-friendly estimate
        self.cwnd_cnt = 0  # acknowledged segments towards the next increment (snd_cwnd_cnt)

    def ssthresh(self, cwnd: int) -> int:
        """A loss: remember W_max (with fast convergence) and return ssthresh (bictcp_recalc_ssthresh)."""
        self.epoch_start = 0
        if cwnd < self.last_max_cwnd:
            self.last_max_cwnd = cwnd * (1024 + BETA) // (2 * 1024)
        else:
            self.last_max_cwnd = cwnd
        return max(cwnd * BETA // 1024, 2)

    def idle(self, jiffies: int, now: int) -> None:
        """Sending resumes after `jiffies` idle: the curve resumes where it stopped (CA_EVENT_TX_START)."""
        if self.epoch_start and jiffies > 0:
            self.epoch_start = min(self.epoch_start + jiffies, now)

    def grow(self, cwnd: int, acked: int, now: int, delay_min: float) -> int:
        """The window after `acked` segments were acknowledged in congestion avoidance at jiffy `now`,
        with the minimum RTT `delay_min` seconds (bictcp_update, then tcp_cong_avoid_ai)."""
        self._update(cwnd, acked, now, delay_min)
        w = self.cnt
        if self.cwnd_cnt >= w:
            self.cwnd_cnt = 0
            cwnd += 1
        self.cwnd_cnt += acked
        if self.cwnd_cnt >= w:
            delta = self.cwnd_cnt // w
            self.cwnd_cnt -= delta * w
            cwnd += delta
        return cwnd

    def _update(self, cwnd: int, acked: int, now: int, delay_min: float) -> None:
        self.ack_cnt += acked
        if self.last_cwnd == cwnd and now - self.last_time <= MIN_UPDATE:
            return
        if not (self.epoch_start and now == self.last_time):
            self.last_cwnd = cwnd
            self.last_time = now
            if not self.epoch_start:
                self.epoch_start = now or 1
                self.ack_cnt = acked
                self.tcp_cwnd = cwnd
                if self.last_max_cwnd <= cwnd:
                    self.bic_k = 0
                    self.bic_origin = cwnd
                else:
                    self.bic_k = _cube_root(CUBE_FACTOR * (self.last_max_cwnd - cwnd))
                    self.bic_origin = self.last_max_cwnd
            t = now - self.epoch_start + math.ceil(round(delay_min * 1e6) / (1e6 / HZ))
            t = (t << BICTCP_HZ) // HZ
            offs = abs(t - self.bic_k)
            delta = (CUBE_RTT_SCALE * offs * offs * offs) >> (10 + 3 * BICTCP_HZ)
            target = self.bic_origin - delta if t < self.bic_k else self.bic_origin + delta
            self.cnt = cwnd // (target - cwnd) if target > cwnd else 100 * cwnd
            if self.last_max_cwnd == 0 and self.cnt > FIRST_STAGE_CNT:
                self.cnt = FIRST_STAGE_CNT
        # the Reno-friendly estimate (tcp_friendliness)
        delta = (cwnd * BETA_SCALE_FACTOR) >> 3
        while delta and self.ack_cnt > delta:
            self.ack_cnt -= delta
            self.tcp_cwnd += 1
        if self.tcp_cwnd > cwnd:
            self.cnt = min(self.cnt, cwnd // (self.tcp_cwnd - cwnd))
        self.cnt = max(self.cnt, 2)  # at most one segment per two acknowledged: 1.5 times per RTT


def _cube_root(x: int) -> int:
    root = round(x ** (1 / 3))
    while root**3 > x:
        root -= 1
    while (root + 1) ** 3 <= x:
        root += 1
    return root
