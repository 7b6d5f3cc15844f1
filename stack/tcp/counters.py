"""One connection's counters, each defined once with the name Linux's MIB gives it (`nstat`, `tcpstack stats`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from operator import attrgetter


def _counter(linux_name: str) -> int:
    return field(default=0, metadata={"linux": linux_name})


@dataclass(slots=True)
class Counters:
    segs_in: int = _counter("InSegsConn")  # segments received on this connection
    segs_out: int = _counter("OutSegs")
    retrans_segs: int = _counter("RetransSegs")
    resets_out: int = _counter("OutRstsConn")
    challenge_acks: int = _counter("TCPChallengeACK")  # RFC 5961 §3.2, §4.2, §5.2
    out_of_window: int = _counter("OutOfWindowDrops")  # unacceptable segments (RFC 9293 §3.10.7.4 first check)
    timeouts: int = _counter("TCPTimeouts")  # retransmission timer expiries
    fast_retransmits: int = _counter("TCPFastRetrans")  # recoveries entered on duplicate ACKs or SACK
    loss_probes: int = _counter("TCPLossProbes")  # tail loss probes sent (RFC 8985 §7)
    keepalive_probes: int = _counter("TCPKeepAlive")
    window_probes: int = _counter("TCPWinProbe")  # zero-window probes sent (RFC 9293 §3.8.6.1)
    paws_drops: int = _counter("PAWSEstabRejected")  # segments dropped by PAWS (RFC 7323 §5.3)
    attempt_fails: int = _counter("AttemptFails")  # SYN_SENT/SYN_RECEIVED -> CLOSED or back to LISTEN
    estab_resets: int = _counter("EstabResets")  # ESTABLISHED/CLOSE_WAIT -> CLOSED
    ofo_drops: int = _counter("TCPOFODrop")  # out-of-order segments that met the queue's bounds
    challenge_acks_skipped: int = _counter("TCPACKSkippedChallenge")  # held back by the RFC 5961 §7 limit
    oow_acks_skipped: int = _counter("TCPACKSkippedSeq")  # answers to unacceptable pure ACKs held back (500 ms)
    rsts_out_of_window: int = _counter("OutOfWindowRsts")  # RSTs outside the window, dropped (RFC 5961 §3.2)
    dsacks_received: int = _counter("TCPDSACKRecv")  # D-SACK blocks from the peer: we resent needlessly
    spurious_rtos: int = _counter("TCPSpuriousRTOs")  # timeouts F-RTO found spurious (RFC 5682)
    undos: int = _counter("TCPUndo")  # window reductions undone (Linux TCPDSACKUndo + TCPLossUndo)
    aborts_on_data: int = _counter("TCPAbortOnData")  # data arrived after the application closed: RST
    ce_received: int = _counter("TCPECNRcvCE")  # segments that arrived with a CE mark (RFC 3168)
    ecn_reductions: int = _counter("TCPECNReductions")  # window reductions for an ECE echo (RFC 3168 §6.1.2)
    time_wait_killed: int = _counter("TWKilled")  # TIME_WAIT ended by a RST, RFC 1337's assassination
    time_wait_recycled: int = _counter("TWRecycled")  # TIME_WAIT ended by a new SYN, RFC 6191
    rcvq_drops: int = _counter("TCPRcvQDrop")  # data dropped unacknowledged at the stack's memory limit
    beyond_window: int = _counter("BeyondWindow")  # segments past the window dropped: data waits to be read
    zero_window_drops: int = _counter("TCPZeroWindowDrop")  # in-order data met the zero window we offered
    ofo_pruned: int = _counter("OfoPruned")  # out-of-order queues emptied under memory pressure
    # segments that took the header-prediction fast path repeating the send window (as Linux counts them)
    hp_hits: int = _counter("TCPHPHits")  # in-order data segments
    hp_acks: int = _counter("TCPHPAcks")  # pure ACKs (stack/tcp/header_prediction.py)
    mtu_probes: int = _counter("TCPMTUPProbes")  # path MTU probes sent (RFC 4821, stack/tcp/mtu_probing.py)
    mtu_probe_successes: int = _counter("TCPMTUPSuccess")  # probes acknowledged: larger segments pass
    mtu_probe_failures: int = _counter("TCPMTUPFail")  # probes lost

    def by_linux_name(self) -> dict[str, int]:
        """The counters under Linux's names."""
        return dict(zip(_LINUX_NAMES, _values(self), strict=True))

    def add(self, other: Counters) -> None:
        """Add another connection's counters to these (a stack's total of its closed connections)."""
        for name, value in zip(_NAMES, _values(other), strict=True):
            if value:
                setattr(self, name, getattr(self, name) + value)


_NAMES = tuple(f.name for f in fields(Counters))
_LINUX_NAMES = tuple(f.metadata["linux"] for f in fields(Counters))
_values = attrgetter(*_NAMES)  # every counter in one call
