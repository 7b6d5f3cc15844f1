"""Fixtures for driving the sans-I/O core in virtual time, segment in, segment out (smoltcp style).

Directions follow packetdrill: `seg()` builds a segment into the stack (remote -> local);
`brief()` reduces what the stack sends to (flags, seq, ack, payload) for comparison.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from stack.tcp.config import TcpConfig
from stack.tcp.connection import Connection
from stack.tcp.state import TRANSITIONS, State, Transition
from stack.wire.segment import NO_OPTIONS, Flags, Segment, TcpOptions, flags_str
from stack.wire.seq import seq_le, seq_lt, seq_sub

LOCAL = (0x0A070002, 80)
REMOTE = (0x0A070001, 40000)
ISS = 1000
IRS = 5000


class IssDraws(random.Random):
    """Randomness injected through TcpConfig.rng: every 32-bit draw (the F of RFC 6528's ISN = M + F, the
    timestamp offset) is `iss`, so a connection opened at time 0 (M = 0) has ISS = iss; the rest is seeded."""

    def __init__(self, iss: int) -> None:
        super().__init__(iss)
        self.iss = iss & 0xFFFFFFFF

    def getrandbits(self, k: int) -> int:
        return self.iss if k == 32 else super().getrandbits(k)


CONFIG = TcpConfig(mss=1460, msl=1.0, window_scaling=False, receive_buffer=65535, delayed_ack=0.04, rng=IssDraws(ISS))

_FLAG_CHARS = {"S": Flags.SYN, "F": Flags.FIN, "R": Flags.RST, "P": Flags.PSH, ".": Flags.ACK, "U": Flags.URG}


def flags_of(text: str) -> Flags:
    f = Flags(0)
    for ch in text:
        f |= _FLAG_CHARS[ch]
    return f


TEMPLATE = Segment(REMOTE[1], LOCAL[1], 0, 0, Flags.ACK, 65535)  # what seg() fills unspecified fields from


def seg(
    flags: str,
    seq: int,
    ack: int = 0,
    data: bytes = b"",
    win: int = TEMPLATE.window,
    options: TcpOptions = NO_OPTIONS,
    urgent: int = 0,
) -> Segment:
    """A segment arriving at the stack from REMOTE (sequence numbers taken modulo 2**32)."""
    return replace(
        TEMPLATE,
        seq=seq & 0xFFFFFFFF,
        ack=ack & 0xFFFFFFFF,
        flags=flags_of(flags),
        window=win,
        payload=data,
        options=options,
        urgent=urgent,
    )


def brief(s: Segment) -> tuple[str, int, int, bytes]:
    return flags_str(s.flags), s.seq, s.ack if s.flags & Flags.ACK else 0, s.payload


def sent(conn: Connection, now: float) -> list[tuple[str, int, int, bytes]]:
    return [brief(s) for s in conn.segments_to_send(now)]


def timeouts_while(conn: Connection, state: State) -> list[float]:
    """Let every timer fire, sending what each makes, while the connection stays in `state`: the deadlines."""
    deadlines = []
    while conn.state is state:
        now = conn.next_deadline()
        assert now is not None
        deadlines.append(now)
        conn.handle_timer(now)
        conn.segments_to_send(now)
    return deadlines


def events(conn: Connection) -> list[str]:
    out = []
    while (e := conn.next_event()) is not None:
        out.append(type(e).__name__)
    return out


def _syn_received(config: TcpConfig, iss: int, irs: int) -> Connection:
    config = replace(config, rng=IssDraws(iss))
    c = Connection.from_syn(config, LOCAL, REMOTE, seg("S", irs, options=TcpOptions(mss=1460)), 0.0)
    c.segments_to_send(0.0)
    return c


def _established(config: TcpConfig, iss: int, irs: int) -> Connection:
    c = _syn_received(config, iss, irs)
    c.receive_segment(seg(".", irs + 1, iss + 1), 0.0)
    c.segments_to_send(0.0)
    events(c)
    return c


def _build(state: State, config: TcpConfig, iss: int = ISS, irs: int = IRS) -> Connection:
    """A connection driven into `state` by real segments (passive open, then closes), at time 0."""
    iss &= 0xFFFFFFFF
    irs &= 0xFFFFFFFF
    if state is State.SYN_SENT:
        c = Connection.connect(replace(config, rng=IssDraws(iss)), LOCAL, REMOTE, 0.0)
        c.segments_to_send(0.0)
        return c
    if state is State.SYN_RECEIVED:
        return _syn_received(config, iss, irs)
    c = _established(config, iss, irs)
    if state is State.ESTABLISHED:
        return c
    if state in (State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSING, State.TIME_WAIT):
        c.close(0.0)
        c.segments_to_send(0.0)  # our FIN, seq iss+1
        if state is State.FIN_WAIT_2 or state is State.TIME_WAIT:
            c.receive_segment(seg(".", irs + 1, iss + 2), 0.0)
        if state is State.CLOSING:
            c.receive_segment(seg("F.", irs + 1, iss + 1), 0.0)
        if state is State.TIME_WAIT:
            c.receive_segment(seg("F.", irs + 1, iss + 2), 0.0)
    elif state in (State.CLOSE_WAIT, State.LAST_ACK):
        c.receive_segment(seg("F.", irs + 1, iss + 1), 0.0)
        if state is State.LAST_ACK:
            c.segments_to_send(0.0)
            c.close(0.0)
    c.segments_to_send(0.0)
    events(c)
    assert c.state is state
    return c


def check_history(history: list[Transition], state: State) -> None:
    """A history is one unbroken walk through TRANSITIONS from CLOSED to `state`: it breaks if anything
    changes the state past `enter()`, or records an event the table does not map to that change."""
    at = State.CLOSED
    for t in history:
        assert t.old is at, f"history jumps from {at.name} to {t}"
        assert TRANSITIONS.get((t.old, t.event)) is t.new, f"{t} is not in the table"
        at = t.new
    assert at is state, f"history ends in {at.name}, the state is {state.name}"


def check_receive_memory(c: Connection) -> None:
    """Receive memory as Linux's skbs: the charge is what the packets cost (else the window closes), the
    packets held out of order are in sequence order, as Linux's rb-tree of them, and every held byte is
    in a packet still charged (pruning drops the bytes above the packets it keeps)."""
    receiver = c.receiver
    held = receiver.out_of_order
    held_memory = 0
    if held is not None:
        packets = held._packets
        assert held.memory == sum(packet[2] for packet in packets)
        starts = [seq_sub(packet[0], c.tcb.rcv_nxt) for packet in packets]
        assert starts == sorted(starts), packets
        held_memory = held.memory
        for left, right in held.queue.sack_blocks():
            covered = left
            for seq, end, _, _ in packets:
                if seq_le(seq, covered) and seq_lt(covered, end):
                    covered = end
            assert not seq_lt(covered, right), (left, right, packets)
    assert receiver.rmem == sum(skb[1] for skb in receiver._skbs) + held_memory


@pytest.fixture
def conn_in():
    """conn_in(State.X, iss=1000, irs=5000, **config_changes) -> a connection in state X at time 0."""

    def make(state: State, iss: int = ISS, irs: int = IRS, **changes) -> Connection:
        return _build(state, replace(CONFIG, **changes), iss, irs)

    return make
