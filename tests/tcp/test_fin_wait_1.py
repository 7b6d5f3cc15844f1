"""FIN_WAIT_1: our FIN is out, not yet acknowledged (RFC 9293 §3.6, §3.10.7.4)."""

import pytest

from stack.tcp.errors import LocalProtocolError
from stack.tcp.state import State
from tests.tcp.conftest import IRS, ISS, seg, sent, timeouts_while


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


def test_fin_wait_1_close_again_raises_local_protocol_error(conn_in):
    """§3.10.4: CLOSE in FIN-WAIT-1 -> "error: connection closing"."""
    c = conn_in(State.FIN_WAIT_1)
    with pytest.raises(LocalProtocolError, match="closing"):
        c.close(0.1)


def test_fin_wait_1_send_raises_local_protocol_error(conn_in):
    """§3.10.2: SEND after CLOSE -> "error: connection closing"."""
    c = conn_in(State.FIN_WAIT_1)
    with pytest.raises(LocalProtocolError):
        c.send(b"x", 0.1)


def test_fin_wait_1_orphan_gives_up_after_eight_retries_time(conn_in):
    """Linux tcp_orphan_retries: an orphan's FIN is resent for as long as 8 timeouts doubling from 200 ms
    take (102.2 s from the first resend), not tcp_retries2's 924.6 s; then CLOSED without a RST."""
    c = conn_in(State.FIN_WAIT_1)
    c.detach(0.0)
    deadlines = timeouts_while(c, State.FIN_WAIT_1)
    first_resend = deadlines[0]
    assert deadlines[-2] - first_resend < 102.2 <= deadlines[-1] - first_resend
    assert c.state is State.CLOSED and sent(c, deadlines[-1]) == []


def test_fin_wait_1_held_connection_keeps_tcp_retries2_time(conn_in):
    """Linux tcp_retries2 (15): the application still holds the connection, so its FIN is resent for as
    long as 15 timeouts doubling from 200 ms up to 120 s take (924.6 s from the first resend)."""
    c = conn_in(State.FIN_WAIT_1)
    deadlines = timeouts_while(c, State.FIN_WAIT_1)
    first_resend = deadlines[0]
    assert deadlines[-2] - first_resend < 924.6 <= deadlines[-1] - first_resend
