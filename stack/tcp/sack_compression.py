"""Linux's SACK compression (tcp_comp_sack_*, since 4.18), the bookkeeping of it.

While data is held out of order, the first three segments above RCV.NXT are ACKed at once: the
duplicate ACKs fast retransmit counts (RFC 5681 §3.2). The ACKs of the next ones are held and go as one,
5% of the round trip later and at most 1 ms (config.comp_sack_delay), or sooner when another ACK goes
(__tcp_ack_snd_check, tcp_compressed_ack_kick). The receiver decides and sends; this counts.
"""

from __future__ import annotations

from typing import Final

from stack.tcp.counters import Counters

_DUPACKS: Final = 3  # Linux TCP_FASTRETRANS_THRESH: duplicate ACKs sent at once for one RCV.NXT


class SackCompression:
    """Made with the first out-of-order segment whose ACK could be held: most connections never need it."""

    __slots__ = ("_rcv_nxt", "_dupacks", "held", "flush_blocks", "_counters")

    def __init__(self, counters: Counters) -> None:
        self._rcv_nxt = -1  # the RCV.NXT the duplicate ACKs were counted for (compressed_ack_rcv_nxt)
        self._dupacks = 0  # duplicate ACKs sent at once for it (dup_ack_counter)
        self.held = 0  # ACKs held (compressed_ack)
        # the SACK blocks of a held ACK that an arriving segment sends before it is queued
        self.flush_blocks: tuple[tuple[int, int], ...] | None = None
        self._counters = counters

    def hold(self, rcv_nxt: int, limit: int) -> bool:
        """Whether the ACK a segment held out of order draws may wait: not when `limit` wait already, nor
        for the first three at one RCV.NXT."""
        if self.held >= limit:
            return False
        if rcv_nxt != self._rcv_nxt:
            self._rcv_nxt = rcv_nxt
            self._dupacks = 0
        if self._dupacks < _DUPACKS:
            self._dupacks += 1
            return False
        self.held += 1
        return True

    def send_one(self) -> None:
        """The held ACKs go as one (their timer, or a segment that sends them early): that one is not
        counted as compressed."""
        self.held -= 1

    def ack_sent(self) -> None:
        """An ACK went: it stands for every one held (tcp_event_ack_sent counts them as TCPAckCompressed)."""
        if self.held:
            self._counters.events().ack_compressed += self.held
            self.held = 0
