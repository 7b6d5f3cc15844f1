"""LAST_ACK: our FIN after the peer's, waiting for its ACK (RFC 9293 §3.6)."""

import pytest

from stack.tcp.state import State
from tests.tcp.conftest import IRS, ISS, events, seg, sent, timeouts_while


def test_last_ack_ack_of_fin_closes(conn_in):
    c = conn_in(State.LAST_ACK)
    c.receive_segment(seg(".", IRS + 2, ISS + 2), 0.1)
    assert c.state is State.CLOSED
    assert events(c) == ["Closed"]


def test_last_ack_fin_retransmitted_until_retries_exhausted(conn_in):
    """RFC 6298 (5.4)-(5.5): the FIN is resent with backoff; once the time two timeouts doubling from
    200 ms take (1.4 s) has passed since the first resend (Linux's tcp_retries2 is a time,
    retransmits_timed_out) -> TimedOut, CLOSED."""
    c = conn_in(State.LAST_ACK, max_retries=2)
    deadlines = timeouts_while(c, State.LAST_ACK)
    rto = c.config.min_rto  # the handshake's RTT sample was 0: 200 ms
    # the third timeout comes 1.2 s after the first resend, the fourth 2.8 s after it
    assert deadlines == pytest.approx([rto, 3 * rto, 7 * rto, 15 * rto])
    assert events(c) == ["TimedOut", "Closed"]


def test_last_ack_ack_below_fin_keeps_waiting(conn_in):
    """§3.10.7.4 fifth check (LAST-ACK): only the ACK of our FIN closes the connection."""
    c = conn_in(State.LAST_ACK)
    c.receive_segment(seg(".", IRS + 2, ISS + 1), 0.1)
    assert c.state is State.LAST_ACK


def test_last_ack_abort_sends_no_rst(conn_in):
    """§3.10.5: ABORT in LAST-ACK responds "ok" and deletes the TCB, no RST."""
    c = conn_in(State.LAST_ACK)
    c.abort(0.5)
    assert sent(c, 0.5) == [] and c.state is State.CLOSED
