"""Explicit Congestion Notification for one connection (RFC 3168 §6.1), off unless configured.

Negotiated on the handshake (an "ECN-setup SYN" carries ECE and CWR, its SYN,ACK ECE alone). Then our
new data goes out ECN-capable (ECT(0)); a receiver that sees a CE mark echoes ECE on its ACKs until the
sender answers with CWR; the sender reduces its window once per window of data, as for a loss.
"""

from __future__ import annotations

from typing import Final

from stack.wire.segment import Flags, Segment

NOT_ECT: Final = 0
ECT0: Final = 2  # the codepoint we send (RFC 3168 §5)
CE: Final = 3


class Ecn:
    __slots__ = ("ok", "ece_pending", "cwr_pending", "reduced_until")

    def __init__(self) -> None:
        self.ok = False  # both ends agreed on the handshake
        self.ece_pending = False  # receiver: CE seen, echo ECE until the peer's CWR (§6.1.3)
        self.cwr_pending = False  # sender: reduced the window, mark the next new data with CWR (§6.1.2)
        self.reduced_until: int | None = None  # sender: SND.MAX at the last reduction: once per window

    @staticmethod
    def setup_syn(seg: Segment) -> bool:
        """An ECN-setup SYN: SYN with ECE and CWR (§6.1.1)."""
        return seg.flags & (Flags.ECE | Flags.CWR) == Flags.ECE | Flags.CWR

    @staticmethod
    def setup_synack(seg: Segment) -> bool:
        """An ECN-setup SYN,ACK: ECE without CWR (§6.1.1)."""
        return seg.flags & (Flags.ECE | Flags.CWR) == Flags.ECE

    def on_arrival(self, seg: Segment) -> bool:
        """Receiver side of a segment that passed the acceptability test: True if it was CE-marked
        (and should be ACKed at once)."""
        if not self.ok:
            return False
        if seg.flags & Flags.CWR:
            self.ece_pending = False  # the sender has reacted (§6.1.3)
        if seg.ecn == CE:
            self.ece_pending = True
            return True
        return False
