"""TCP states (RFC 9293 §3.3.2) and the transition table: the one place transitions are defined.

A transition is `(state, event) -> state`. `Connection.enter(event, now)` and `Listener.enter` look the
new state up here, so a change the table does not name cannot happen, and the diagram
(tools/state_diagram.py) and the script suite's coverage report read their edges from here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final, TypeAlias

from stack.tcp.errors import LocalProtocolError


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

    __hash__ = object.__hash__  # members are singletons: identity hashes them without Enum's Python call

    @property
    def linux_name(self) -> str:
        """The name `netstat -nat` prints."""
        return _LINUX_NAMES[self]

    @property
    def synchronized(self) -> bool:
        return self not in UNSYNCHRONIZED


# On Python 3.11 every attribute of an Enum class is looked up through EnumType's __getattr__ hook (about
# 90 ns, against a few for a global), about 30 times per segment in and out: the per-segment paths test
# states against these sets and module globals instead of tuples of State.X.
UNSYNCHRONIZED: Final = frozenset({State.CLOSED, State.LISTEN, State.SYN_SENT, State.SYN_RECEIVED})
SENDS_NO_ACK: Final = frozenset({State.CLOSED, State.LISTEN, State.SYN_SENT})  # no ACK of theirs to send yet
OPEN_FOR_DATA: Final = frozenset({State.ESTABLISHED, State.CLOSE_WAIT})  # data queued may leave now
ACCEPTS_SEND: Final = frozenset({State.SYN_SENT, State.SYN_RECEIVED, State.ESTABLISHED, State.CLOSE_WAIT})
OPENING: Final = frozenset({State.SYN_SENT, State.SYN_RECEIVED})  # the handshake is under way

_LINUX_NAMES: Final = {
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


class Event(Enum):
    """What moves a connection from one state to another; the value labels the diagram's edges."""

    __hash__ = object.__hash__  # as State's: the transition table is looked up by (state, event)

    PASSIVE_OPEN = "passive open"  # OPEN call, passive (§3.10.1)
    ACTIVE_OPEN = "active open"  # OPEN call, active: send SYN (§3.10.1)
    SYN = "SYN"  # a SYN arrives (§3.10.7.2, §3.10.7.3)
    SYN_COOKIE = "ACK of SYN cookie"  # an ACK returns a valid SYN cookie (RFC 4987 §3.6)
    SYN_ACK = "SYN,ACK"  # the peer's SYN with the ACK of ours (§3.10.7.3)
    ACK_OF_SYN = "ACK of SYN"  # §3.10.7.4 fifth check, SYN-RECEIVED
    FIN = "FIN"  # the peer's FIN in sequence (§3.10.7.4 eighth check)
    FIN_ACK_OF_FIN = "FIN with ACK of FIN"  # FIN-WAIT-1: the peer's FIN acknowledges ours too
    ACK_OF_FIN = "ACK of FIN"  # our FIN is acknowledged
    RST = "RST"  # an acceptable RST (§3.10.7.4 second check, RFC 5961 §3.2)
    REFUSED = "refused"  # a RST before the handshake of our open completed (§3.10.7.3)
    ICMP = "ICMP error"  # an ICMP error ends an opening: Linux tcp_req_err, tcp_v4_err and tcp_v6_err
    CLOSE = "CLOSE"  # CLOSE call (§3.10.4)
    ABORT = "ABORT"  # ABORT call (§3.10.5)
    DATA_AFTER_CLOSE = "data after close"  # new data for a closed socket: RST (RFC 1122 §4.2.2.13)
    RETRANSMIT_TIMEOUT = "retransmission timeout"  # retries exhausted (§3.8.3, RFC 6298)
    KEEPALIVE_TIMEOUT = "keepalive timeout"  # keepalive probes unanswered (RFC 1122 §4.2.3.6)
    TIME_WAIT_TIMEOUT = "2*MSL timeout"  # §3.4.2
    FIN_WAIT_2_TIMEOUT = "FIN_WAIT_2 timeout"  # an orphan waited too long for the FIN (Linux tcp_fin_timeout)


S: TypeAlias = State
E: TypeAlias = Event

# RFC 9293 §3.10.7.4 (RST), §3.10.5 (ABORT), §3.8.3 (retransmission timeout), RFC 1122 §4.2.3.6 (keepalive)
_SYNCHRONIZED_ENDS: Final = (E.RST, E.ABORT, E.RETRANSMIT_TIMEOUT, E.KEEPALIVE_TIMEOUT)

# RFC 9293 §3.3.2 figure 5, plus the edges every real TCP has that the figure leaves implicit.
# Not here because tcpstack never takes them: LISTEN -> SYN_SENT (SEND on a listening socket, which the
# API does not offer) and a direct SYN_RECEIVED -> CLOSE_WAIT (an ACK+FIN goes through ESTABLISHED).
TRANSITIONS: Final[dict[tuple[State, Event], State]] = {
    (S.CLOSED, E.PASSIVE_OPEN): S.LISTEN,
    (S.CLOSED, E.ACTIVE_OPEN): S.SYN_SENT,
    (S.LISTEN, E.SYN): S.SYN_RECEIVED,  # send SYN,ACK
    (S.LISTEN, E.SYN_COOKIE): S.SYN_RECEIVED,  # our SYN,ACK went out statelessly
    (S.LISTEN, E.CLOSE): S.CLOSED,
    (S.LISTEN, E.ABORT): S.CLOSED,  # a passive child back in LISTEN is dropped
    (S.SYN_SENT, E.SYN): S.SYN_RECEIVED,  # simultaneous open: send SYN,ACK
    (S.SYN_SENT, E.SYN_ACK): S.ESTABLISHED,  # send ACK
    (S.SYN_SENT, E.REFUSED): S.CLOSED,
    (S.SYN_SENT, E.CLOSE): S.CLOSED,
    (S.SYN_SENT, E.ABORT): S.CLOSED,
    (S.SYN_SENT, E.RETRANSMIT_TIMEOUT): S.CLOSED,  # SYN retries exhausted
    (S.SYN_SENT, E.ICMP): S.CLOSED,  # an ICMP error about our SYN (Linux tcp_v4_err)
    (S.SYN_RECEIVED, E.ACK_OF_SYN): S.ESTABLISHED,
    (S.SYN_RECEIVED, E.CLOSE): S.FIN_WAIT_1,  # send FIN
    (S.SYN_RECEIVED, E.RST): S.LISTEN,  # a passive open returns to LISTEN (§3.10.7.4 second check)
    (S.SYN_RECEIVED, E.SYN): S.LISTEN,  # so does one a new SYN reaches (§3.10.7.4 fourth check)
    (S.SYN_RECEIVED, E.REFUSED): S.CLOSED,  # a simultaneous open refused, a fast open connection reset
    (S.SYN_RECEIVED, E.ICMP): S.CLOSED,
    (S.SYN_RECEIVED, E.ABORT): S.CLOSED,
    (S.SYN_RECEIVED, E.RETRANSMIT_TIMEOUT): S.CLOSED,  # SYN,ACK retries exhausted
    (S.ESTABLISHED, E.CLOSE): S.FIN_WAIT_1,  # send FIN
    (S.ESTABLISHED, E.FIN): S.CLOSE_WAIT,  # send ACK
    (S.FIN_WAIT_1, E.ACK_OF_FIN): S.FIN_WAIT_2,
    (S.FIN_WAIT_1, E.FIN): S.CLOSING,  # simultaneous close: send ACK
    (S.FIN_WAIT_1, E.FIN_ACK_OF_FIN): S.TIME_WAIT,  # send ACK
    (S.FIN_WAIT_1, E.DATA_AFTER_CLOSE): S.CLOSED,
    (S.FIN_WAIT_2, E.FIN): S.TIME_WAIT,  # send ACK
    (S.FIN_WAIT_2, E.FIN_WAIT_2_TIMEOUT): S.CLOSED,
    (S.FIN_WAIT_2, E.DATA_AFTER_CLOSE): S.CLOSED,
    (S.FIN_WAIT_2, E.SYN): S.CLOSED,  # an orphan's, answered by a RST (Linux's FIN_WAIT2 time-wait sock)
    (S.CLOSE_WAIT, E.CLOSE): S.LAST_ACK,  # send FIN
    (S.CLOSING, E.ACK_OF_FIN): S.TIME_WAIT,
    (S.LAST_ACK, E.ACK_OF_FIN): S.CLOSED,
    (S.TIME_WAIT, E.TIME_WAIT_TIMEOUT): S.CLOSED,
    (S.TIME_WAIT, E.SYN): S.CLOSED,  # a new incarnation's SYN ends it (RFC 6191 §2)
    (S.TIME_WAIT, E.RST): S.CLOSED,  # TIME-WAIT assassination, allowed as Linux (RFC 1337)
    (S.TIME_WAIT, E.ABORT): S.CLOSED,
    **{
        (s, e): S.CLOSED
        for s in (S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK)
        for e in _SYNCHRONIZED_ENDS
    },
}


def next_state(state: State, event: Event) -> State:
    """Where `event` takes a connection in `state`; LocalProtocolError if the table has no such transition."""
    new = TRANSITIONS.get((state, event))
    if new is None:
        raise LocalProtocolError(f"no transition from {state.name} on {event.name}")
    return new


@dataclass(init=False, unsafe_hash=True, slots=True)
class Transition:
    """One entry of a connection's (or listener's) history. Immutable: its fields are Final (compiled, an
    assignment raises AttributeError); the constructor is written out so that compiled code builds it
    natively (a generated one runs as Python)."""

    old: Final[State]
    new: Final[State]
    event: Final[Event]
    time: Final[float]

    def __init__(self, old: State, new: State, event: Event, time: float) -> None:
        self.old = old
        self.new = new
        self.event = event
        self.time = time

    def __str__(self) -> str:
        return f"{self.old.linux_name} -> {self.new.linux_name} ({self.event.value})"
