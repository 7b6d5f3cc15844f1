"""The transition table is the single authority on state changes (RFC 9293 §3.3.2)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack.tcp.errors import LocalProtocolError
from stack.tcp.state import TRANSITIONS, State, is_legal
from stack.wire.segment import Flags, Segment
from tests.tcp.conftest import CONFIG, IRS, ISS, _build


def test_enter_illegal_transition_raises(conn_in):
    c = conn_in(State.ESTABLISHED)
    with pytest.raises(LocalProtocolError, match="ESTABLISHED -> LISTEN"):
        c.enter(State.LISTEN, "nonsense", 0.0)


def test_every_state_has_a_way_out_and_all_eleven_appear():
    states = {s for edge in TRANSITIONS for s in edge}
    assert states == set(State) and len(states) == 11
    for s in State:
        if s is not State.CLOSED:
            assert any(src is s for src, _ in TRANSITIONS)


def test_history_records_each_transition_with_its_cause(conn_in):
    c = conn_in(State.TIME_WAIT)
    assert [str(t) for t in c.history] == [
        "LISTEN -> SYN_RECV (SYN)",
        "SYN_RECV -> ESTABLISHED (ACK of SYN)",
        "ESTABLISHED -> FIN_WAIT1 (close)",
        "FIN_WAIT1 -> FIN_WAIT2 (ACK of FIN)",
        "FIN_WAIT2 -> TIME_WAIT (FIN)",
    ]
    assert all(is_legal(t.old, t.new) for t in c.history)


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
        assert all(is_legal(t.old, t.new) for t in c.history)
        tcb = c.tcb
        assert (tcb.snd_nxt - tcb.snd_una) % 2**32 < 2**31  # SND.UNA <= SND.NXT
