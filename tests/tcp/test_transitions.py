"""The transition table is the single authority on state changes (RFC 9293 §3.3.2)."""

from dataclasses import astuple, fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack import core_build
from stack.tcp.errors import LocalProtocolError
from stack.tcp.state import (
    ACCEPTS_SEND,
    OPEN_FOR_DATA,
    OPENING,
    SENDS_NO_ACK,
    TRANSITIONS,
    UNSYNCHRONIZED,
    Event,
    State,
    Transition,
)
from stack.wire.segment import Flags, Segment
from tests.tcp.conftest import CONFIG, IRS, ISS, _build, check_history


def test_established_event_without_transition_raises_and_keeps_state(conn_in):
    """RFC 9293 §3.3.2: a SYN,ACK moves only SYN-SENT; the table has no such edge from ESTABLISHED."""
    c = conn_in(State.ESTABLISHED)
    before = list(c.history)
    with pytest.raises(LocalProtocolError, match="ESTABLISHED on SYN_ACK"):
        c.enter(Event.SYN_ACK, 0.0)
    assert c.state is State.ESTABLISHED and c.history == before


def test_every_state_has_a_way_out_and_all_eleven_appear():
    states = {s for s, _ in TRANSITIONS} | set(TRANSITIONS.values())
    assert states == set(State) and len(states) == 11
    for s in State:
        if s is not State.CLOSED:
            assert any(src is s for src, _ in TRANSITIONS)


def test_every_event_labels_some_transition():
    assert {e for _, e in TRANSITIONS} == set(Event)


def test_check_history_catches_a_state_changed_past_enter(conn_in):
    """The history check used below and in the fuzzers can fail: a state set directly breaks the walk."""
    c = conn_in(State.ESTABLISHED)
    c.state = State.CLOSE_WAIT
    with pytest.raises(AssertionError, match="ends in ESTABLISHED"):
        check_history(c.history, c.state)
    wrong = [*c.history[:-1], Transition(State.SYN_RECEIVED, State.ESTABLISHED, Event.SYN_ACK, 0.0)]
    with pytest.raises(AssertionError, match="not in the table"):
        check_history(wrong, State.ESTABLISHED)


def test_history_records_each_transition_with_its_cause(conn_in):
    c = conn_in(State.TIME_WAIT)
    assert [str(t) for t in c.history] == [
        "CLOSE -> LISTEN (passive open)",
        "LISTEN -> SYN_RECV (SYN)",
        "SYN_RECV -> ESTABLISHED (ACK of SYN)",
        "ESTABLISHED -> FIN_WAIT1 (CLOSE)",
        "FIN_WAIT1 -> FIN_WAIT2 (ACK of FIN)",
        "FIN_WAIT2 -> TIME_WAIT (FIN)",
    ]
    check_history(c.history, State.TIME_WAIT)


BUILDABLE = [s for s in State if s not in (State.CLOSED, State.LISTEN)]
segments = st.builds(
    lambda flags, dseq, dack, data, win: Segment(
        40000, 80, (IRS + dseq) & 0xFFFFFFFF, (ISS + dack) & 0xFFFFFFFF, Flags(flags), win, data
    ),
    st.integers(0, 63),
    st.integers(-3000, 70000),
    st.integers(-3000, 3000),
    st.binary(max_size=64),
    st.integers(0, 65535),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(BUILDABLE), st.lists(st.tuples(segments, st.floats(0, 5)), max_size=8))
def test_any_state_any_segments_never_raise_and_follow_the_table(state, arrivals):
    """h2-style: any segment in any state is handled without an exception, along table edges only."""
    c = _build(state, CONFIG)
    now = 0.0
    for segment, dt in arrivals:
        now += dt
        c.handle_timer(now)
        c.receive_segment(segment, now)
        c.segments_to_send(now)
        while c.next_event() is not None:
            pass
        check_history(c.history, c.state)
        tcb = c.tcb
        assert (tcb.snd_nxt - tcb.snd_una) % 2**32 < 2**31  # SND.UNA <= SND.NXT


@given(st.sampled_from(sorted(TRANSITIONS, key=str)), st.floats(0, 1e9))
def test_transition_is_a_value_of_its_four_fields(edge, now):
    """A history entry is its constructor's four fields and nothing else (a field added to the class and not
    to the written constructor fails here): it compares and hashes by them, and the table is found by
    identity-hashed states and events."""
    (old, event), new = edge, TRANSITIONS[edge]
    made = Transition(old, new, event, now)
    assert [f.name for f in fields(Transition)] == ["old", "new", "event", "time"]
    assert astuple(made) == (old, new, event, now)
    assert made == Transition(old, new, event, now) and hash(made) == hash(Transition(old, new, event, now))
    assert TRANSITIONS.get((old, event)) is new


@pytest.mark.skipif(core_build.BUILD != "compiled", reason="the interpreted source relies on mypy's Final")
@pytest.mark.parametrize("name", ["old", "new", "event", "time"])
def test_compiled_transition_field_assignment_raises(name):
    """A connection's history is a record: what it says of a transition cannot be changed afterwards."""
    made = Transition(State.LISTEN, State.SYN_RECEIVED, Event.SYN, 1.0)
    with pytest.raises(AttributeError):
        setattr(made, name, getattr(made, name))


def test_state_groups_are_the_rfc_states_they_stand_for():
    """RFC 9293 §3.10.7: the synchronized states are ESTABLISHED and every state after it; before them a
    connection has no ACK to send in CLOSED, LISTEN and SYN_SENT, and is opening in SYN_SENT and
    SYN_RECEIVED; data leaves in ESTABLISHED and CLOSE_WAIT, and SEND queues it from SYN_SENT on until
    our FIN (§3.10.2)."""
    after_handshake = {
        State.ESTABLISHED,
        State.FIN_WAIT_1,
        State.FIN_WAIT_2,
        State.CLOSE_WAIT,
        State.CLOSING,
        State.LAST_ACK,
        State.TIME_WAIT,
    }
    assert {s for s in State if s.synchronized} == after_handshake
    assert UNSYNCHRONIZED == set(State) - after_handshake
    assert SENDS_NO_ACK == {State.CLOSED, State.LISTEN, State.SYN_SENT}
    assert OPEN_FOR_DATA == {State.ESTABLISHED, State.CLOSE_WAIT}
    assert ACCEPTS_SEND == {State.SYN_SENT, State.SYN_RECEIVED, State.ESTABLISHED, State.CLOSE_WAIT}
    assert OPENING == {State.SYN_SENT, State.SYN_RECEIVED}
