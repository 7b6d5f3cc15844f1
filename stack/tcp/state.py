"""TCP states (RFC 9293 §3.3.2) and the transition table: the one place transitions are defined."""

from __future__ import annotations

from enum import Enum


class State(Enum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN_SENT"
    SYN_RECEIVED = "SYN_RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT_1"
    FIN_WAIT_2 = "FIN_WAIT_2"
    CLOSE_WAIT = "CLOSE_WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST_ACK"
    TIME_WAIT = "TIME_WAIT"

    @property
    def linux_name(self) -> str:
        """The name `netstat -nat` prints."""
        return _LINUX_NAMES[self]

    @property
    def synchronized(self) -> bool:
        return self not in (State.CLOSED, State.LISTEN, State.SYN_SENT, State.SYN_RECEIVED)


_LINUX_NAMES = {
    State.CLOSED: "CLOSE",
    State.LISTEN: "LISTEN",
    State.SYN_SENT: "SYN_SENT",
    State.SYN_RECEIVED: "SYN_RECV",
    State.ESTABLISHED: "ESTABLISHED",
    State.FIN_WAIT_1: "FIN_WAIT1",
    State.FIN_WAIT_2: "FIN_WAIT2",
    State.CLOSE_WAIT: "CLOSE_WAIT",
    State.CLOSING: "CLOSING",
    State.LAST_ACK: "LAST_ACK",
    State.TIME_WAIT: "TIME_WAIT",
}

S = State

# RFC 9293 §3.3.2 figure 5, plus the edges every real TCP has that the figure leaves implicit:
# RST / ABORT / timeouts from any synchronized state go to CLOSED (§3.10.7.4 second check, §3.10.4, §3.8.3).
# Not here because tcpstack never takes them: LISTEN -> SYN_SENT (SEND on a listening socket, which the
# API does not offer) and a direct SYN_RECEIVED -> CLOSE_WAIT (an ACK+FIN goes through ESTABLISHED).
TRANSITIONS: frozenset[tuple[State, State]] = frozenset(
    {
        (S.CLOSED, S.LISTEN),  # passive OPEN
        (S.CLOSED, S.SYN_SENT),  # active OPEN, send SYN
        (S.LISTEN, S.SYN_RECEIVED),  # rcv SYN, send SYN,ACK
        (S.LISTEN, S.CLOSED),  # CLOSE
        (S.SYN_SENT, S.SYN_RECEIVED),  # simultaneous open: rcv SYN, send SYN,ACK
        (S.SYN_SENT, S.ESTABLISHED),  # rcv SYN,ACK, send ACK
        (S.SYN_SENT, S.CLOSED),  # CLOSE, RST, or SYN retries exhausted
        (S.SYN_RECEIVED, S.ESTABLISHED),  # rcv ACK of SYN
        (S.SYN_RECEIVED, S.FIN_WAIT_1),  # CLOSE, send FIN
        (S.SYN_RECEIVED, S.LISTEN),  # RST, when it came from LISTEN (§3.10.7.4)
        (S.SYN_RECEIVED, S.CLOSED),  # RST (from active open), ABORT, SYN-ACK retries exhausted
        (S.ESTABLISHED, S.FIN_WAIT_1),  # CLOSE, send FIN
        (S.ESTABLISHED, S.CLOSE_WAIT),  # rcv FIN, send ACK
        (S.ESTABLISHED, S.CLOSED),  # RST, ABORT, retransmission timeout
        (S.FIN_WAIT_1, S.FIN_WAIT_2),  # rcv ACK of FIN
        (S.FIN_WAIT_1, S.CLOSING),  # rcv FIN, send ACK (simultaneous close)
        (S.FIN_WAIT_1, S.TIME_WAIT),  # rcv FIN together with ACK of our FIN
        (S.FIN_WAIT_1, S.CLOSED),  # RST, ABORT, retransmission timeout
        (S.FIN_WAIT_2, S.TIME_WAIT),  # rcv FIN, send ACK
        (S.FIN_WAIT_2, S.CLOSED),  # RST, ABORT, FIN_WAIT_2 timeout (orphaned)
        (S.CLOSE_WAIT, S.LAST_ACK),  # CLOSE, send FIN
        (S.CLOSE_WAIT, S.CLOSED),  # RST, ABORT, retransmission timeout
        (S.CLOSING, S.TIME_WAIT),  # rcv ACK of FIN
        (S.CLOSING, S.CLOSED),  # RST, ABORT, retransmission timeout
        (S.LAST_ACK, S.CLOSED),  # rcv ACK of FIN, RST, retransmission timeout
        (S.TIME_WAIT, S.CLOSED),  # 2*MSL timeout, RST, ABORT
    }
)


def is_legal(src: State, dst: State) -> bool:
    return (src, dst) in TRANSITIONS
