"""CLOSE_WAIT: the peer closed; we may still send (RFC 9293 §3.6)."""

from stack.tcp.state import State
from tests.tcp.conftest import IRS, ISS, events, seg, sent


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


def test_close_wait_rst_in_window_resets(conn_in):
    """§3.10.7.4 second check (CLOSE-WAIT): an exact RST -> "connection reset", CLOSED."""
    c = conn_in(State.CLOSE_WAIT)
    c.receive_segment(seg("R", IRS + 2), 0.5)
    assert c.state is State.CLOSED
    assert events(c) == ["Reset", "Closed"]


def test_close_wait_text_after_fin_ignored(conn_in):
    """§3.10.7.4 seventh check: text after the peer's FIN is ignored; the read side stays at EOF."""
    c = conn_in(State.CLOSE_WAIT)
    c.receive_segment(seg("P.", IRS + 2, ISS + 1, b"bogus"), 0.5)
    assert c.read() == b"" and c.at_eof and c.recv_queue_bytes == 0


def test_close_wait_text_running_past_the_fin_resets(conn_in):
    """Linux tcp_rcv_state_process (RFC 1122 §4.2.2.13's rule, TCPAbortOnData): text that starts before
    RCV.NXT and runs past where the peer's FIN was gets <SEQ=SEG.ACK><CTL=RST>, and the connection ends."""
    c = conn_in(State.CLOSE_WAIT)
    c.receive_segment(seg("P.", IRS + 1, ISS + 1, b"bogus"), 0.5)
    assert sent(c, 0.5) == [("R", ISS + 1, 0, b"")]
    assert c.state is State.CLOSED and events(c) == ["Reset", "Closed"]
    assert c.counters.events().aborts_on_data == 1


def test_close_wait_abort_sends_rst(conn_in):
    """§3.10.5: ABORT in CLOSE-WAIT sends <SEQ=SND.NXT><CTL=RST>."""
    c = conn_in(State.CLOSE_WAIT)
    c.abort(0.5)
    assert sent(c, 0.5) == [("R.", ISS + 1, IRS + 2, b"")]
    assert events(c) == ["Closed"]
