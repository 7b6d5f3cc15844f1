"""Linux's dynamic right-sizing of the receive buffer: the receiver's own round-trip estimate and what the
application reads per round trip, which grows sk_rcvbuf when reading keeps up with arrivals
(tcp_rcv_rtt_measure, tcp_rcv_rtt_measure_ts, tcp_rcv_space_adjust; receiver.py grows the buffer).

Pure bookkeeping in Linux's units: microseconds, the estimate kept eight times over as rcv_rtt_est.rtt_us.
A connection gets one with its first data in sequence; an idle one has none.
"""

from __future__ import annotations

from typing import Final

_MASK: Final = 0xFFFFFFFF
_HALF: Final = 0x80000000
_TS_DELTA_MAX: Final = 0x7FFFFFFF // 1000  # Linux: a timestamp echo older than INT_MAX microseconds is no sample


def _usecs(seconds: float) -> int:
    return int(round(seconds * 1e6))


class RcvTuning:
    __slots__ = ("rtt_us", "_est_seq", "_est_time", "space", "_space_seq", "_space_time")

    def __init__(self, space: int, copied_seq: int, since: float) -> None:
        self.rtt_us = 0  # eight times the receiver's RTT estimate, microseconds (Linux rcv_rtt_est.rtt_us)
        self._est_seq = 0  # the window-based sample ends when RCV.NXT reaches this
        self._est_time: float | None = None  # and began then (None: no sample begun)
        self.space = space  # what the application read in a round trip, at most (Linux rcvq_space.space)
        self._space_seq = copied_seq  # where the current round of reading began
        self._space_time = since

    @property
    def rtt(self) -> int:
        """The estimate in microseconds (tcpi_rcv_rtt)."""
        return self.rtt_us >> 3

    def _update(self, sample_us: int, window_based: bool, queue_empty: bool) -> None:
        """Linux tcp_rcv_rtt_update: a lower sample is taken as it is; a higher one, from a timestamp echo
        and with nothing waiting to be read, is averaged in by an eighth; a window's never raises it."""
        m = sample_us << 3
        old = self.rtt_us
        if old == 0 or m < old:
            self.rtt_us = m
        elif not window_based and queue_empty:
            self.rtt_us = old - (old >> 3) + sample_us

    def data_arrived(self, now: float, rcv_nxt: int, rcv_wnd: int) -> None:
        """In-order data arrived (Linux tcp_rcv_rtt_measure): a round trip is the time a whole window, as
        offered when it began, takes to arrive."""
        if self._est_time is not None:
            if (rcv_nxt - self._est_seq) & _MASK >= _HALF:
                return
            self._update(max(_usecs(now - self._est_time), 1), True, False)
        self._est_seq = (rcv_nxt + rcv_wnd) & _MASK
        self._est_time = now

    def echo_sample(self, tsecr: int, ts_now: int, queue_empty: bool) -> None:
        """A full-sized segment echoed `tsecr`, an echo not seen before (Linux tcp_rcv_rtt_measure_ts): a
        sample of the time since our timestamp clock (milliseconds) showed it."""
        delta = (ts_now - tsecr) & _MASK
        if delta < _TS_DELTA_MAX:
            self._update(max(delta, 1) * 1000, False, queue_empty)

    def read(self, now: float, copied_seq: int, rcv_nxt: int) -> bool:
        """The application read up to `copied_seq` (Linux tcp_rcv_space_adjust, for the first packet a read
        takes: it alone can find a round trip over). Once per round trip of the estimate, what was read in
        it less what still waits is compared with the space, which grows to it if larger: True then."""
        if not self.rtt_us or _usecs(now - self._space_time) < self.rtt_us >> 3:
            return False
        copied = ((copied_seq - self._space_seq) & _MASK) - ((rcv_nxt - copied_seq) & _MASK)
        self._space_seq = copied_seq
        self._space_time = now
        if copied <= self.space:
            return False
        self.space = copied
        return True
