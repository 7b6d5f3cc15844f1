"""Closing: FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT (RFC 9293 §3.6, §3.10.7.4)."""

import pytest

from stack.tcp.errors import LocalProtocolError
from stack.tcp.state import State
from tests.tcp.conftest import IRS, ISS, events, seg, sent


def test_fin_wait_1_ack_of_fin_enters_fin_wait_2(conn_in):
    c = conn_in(State.FIN_WAIT_1)
    c.receive_segment(seg(".", IRS + 1, ISS + 2), 0.1)
    assert c.state is State.FIN_WAIT_2


def test_fin_wait_1_fin_enters_closing(conn_in):
    """Simultaneous close: FIN before our FIN is acknowledged -> CLOSING."""
    c = conn_in(State.FIN_WAIT_1)
    c.receive_segment(seg("F.", IRS + 1, ISS + 1), 0.1)
    assert c.state is State.CLOSING
    assert sent(c, 0.1) == [(".", ISS + 2, IRS + 2, b"")]


def test_fin_wait_1_fin_with_ack_of_fin_enters_time_wait(conn_in):
    """§3.10.7.4 eighth check: FIN with the ACK of our FIN -> TIME-WAIT directly."""
    c = conn_in(State.FIN_WAIT_1)
    c.receive_segment(seg("F.", IRS + 1, ISS + 2), 0.1)
    assert c.state is State.TIME_WAIT
    assert [str(t) for t in c.history][-1] == "FIN_WAIT1 -> TIME_WAIT (FIN with ACK of FIN)"


def test_fin_wait_1_keeps_receiving_data(conn_in):
    """Half-close: after our FIN the peer may still send."""
    c = conn_in(State.FIN_WAIT_1)
    c.receive_segment(seg(".", IRS + 1, ISS + 2, b"more"), 0.1)
    assert c.read() == b"more"


def test_fin_wait_1_fin_is_retransmitted_after_rto(conn_in):
    c = conn_in(State.FIN_WAIT_1)
    c.handle_timer(1.0)
    assert sent(c, 1.0) == [("F.", ISS + 1, IRS + 1, b"")]


def test_fin_wait_2_fin_enters_time_wait_and_acks(conn_in):
    c = conn_in(State.FIN_WAIT_2)
    c.receive_segment(seg("F.", IRS + 1, ISS + 2), 0.1)
    assert c.state is State.TIME_WAIT
    assert sent(c, 0.1) == [(".", ISS + 2, IRS + 2, b"")]


def test_fin_wait_2_orphan_times_out(conn_in):
    """Like Linux tcp_fin_timeout: an orphaned FIN-WAIT-2 does not live forever."""
    c = conn_in(State.FIN_WAIT_2, fin_timeout=5.0)
    assert c.running_timer(0.0)[0] == "timewait"
    c.handle_timer(5.0)
    assert c.state is State.CLOSED


def test_close_wait_close_sends_fin_enters_last_ack(conn_in):
    c = conn_in(State.CLOSE_WAIT)
    c.close(0.1)
    assert c.state is State.LAST_ACK
    assert sent(c, 0.1) == [("F.", ISS + 1, IRS + 2, b"")]


def test_close_wait_can_still_send(conn_in):
    """Half-close the other way: after the peer's FIN we may send."""
    c = conn_in(State.CLOSE_WAIT)
    c.send(b"reply", 0.1)
    assert sent(c, 0.1) == [("P.", ISS + 1, IRS + 2, b"reply")]


def test_last_ack_ack_of_fin_closes(conn_in):
    c = conn_in(State.LAST_ACK)
    c.receive_segment(seg(".", IRS + 2, ISS + 2), 0.1)
    assert c.state is State.CLOSED
    assert events(c) == ["Closed"]


def test_closing_ack_of_fin_enters_time_wait(conn_in):
    c = conn_in(State.CLOSING)
    c.receive_segment(seg(".", IRS + 2, ISS + 2), 0.1)
    assert c.state is State.TIME_WAIT


def test_time_wait_lasts_2msl(conn_in):
    """§3.4.2: TIME-WAIT holds the TCB for 2*MSL (MSL = 1 s in these tests)."""
    c = conn_in(State.TIME_WAIT)
    assert c.next_deadline() == 2.0
    assert c.running_timer(0.5) == ("timewait", 1.5)
    c.handle_timer(1.99)
    assert c.state is State.TIME_WAIT
    c.handle_timer(2.0)
    assert c.state is State.CLOSED


def test_time_wait_retransmitted_fin_reacked_and_timer_restarts(conn_in):
    """§3.10.7.4 eighth check: a retransmitted FIN is acknowledged and 2*MSL restarts."""
    c = conn_in(State.TIME_WAIT)
    c.receive_segment(seg("F.", IRS + 1, ISS + 2), 1.5)
    assert sent(c, 1.5) == [(".", ISS + 2, IRS + 2, b"")]
    assert c.next_deadline() == 3.5


def test_time_wait_rst_closes(conn_in):
    c = conn_in(State.TIME_WAIT)
    c.receive_segment(seg("R", IRS + 2), 0.5)
    assert c.state is State.CLOSED


def test_close_twice_is_api_misuse(conn_in):
    """§3.10.4: CLOSE in FIN-WAIT-1 -> "error: connection closing"."""
    c = conn_in(State.FIN_WAIT_1)
    with pytest.raises(LocalProtocolError, match="closing"):
        c.close(0.1)


def test_send_after_close_is_api_misuse(conn_in):
    c = conn_in(State.FIN_WAIT_1)
    with pytest.raises(LocalProtocolError):
        c.send(b"x", 0.1)
