"""CLOSING: simultaneous close (RFC 9293 §3.6, figure 13)."""

from stack.tcp.state import State
from tests.tcp.conftest import IRS, ISS, events, seg, sent


def test_closing_ack_of_fin_enters_time_wait(conn_in):
    c = conn_in(State.CLOSING)
    c.receive_segment(seg(".", IRS + 2, ISS + 2), 0.1)
    assert c.state is State.TIME_WAIT


def test_closing_rst_closes_without_reset_event(conn_in):
    """§3.10.7.4 second check (CLOSING): an exact RST -> CLOSED; both sides had closed already."""
    c = conn_in(State.CLOSING)
    c.receive_segment(seg("R", IRS + 2), 0.5)
    assert c.state is State.CLOSED
    assert events(c) == ["Closed"]


def test_closing_abort_sends_no_rst(conn_in):
    """§3.10.5: ABORT in CLOSING responds "ok" and deletes the TCB, no RST."""
    c = conn_in(State.CLOSING)
    c.abort(0.5)
    assert sent(c, 0.5) == [] and c.state is State.CLOSED


def test_closing_fin_retransmitted_after_rto(conn_in):
    """RFC 6298 (5.4): our unacknowledged FIN is retransmitted."""
    c = conn_in(State.CLOSING)
    c.handle_timer(1.0)
    assert sent(c, 1.0) == [("F.", ISS + 1, IRS + 2, b"")]
