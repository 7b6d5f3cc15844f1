"""An orphan in TIME_WAIT lets go of its sending side (sender, loss recovery, controller, chronographs), as
Linux swaps the socket for a small timewait one, and still answers as one that kept it."""

import pytest

from stack.introspect import info
from stack.tcp.errors import LocalProtocolError
from stack.tcp.segment_arrives import syn_ends_time_wait
from stack.tcp.sockopts import configure
from stack.tcp.state import State
from stack.tcp.tcp_info import tcp_info
from tests.tcp.conftest import IRS, ISS, seg, sent


def _released(conn_in):
    c = conn_in(State.TIME_WAIT)
    c.detach(0.5)  # the application closed its socket: an orphan
    return c


def _sending_side(c) -> tuple:
    return c.sender, c.recovery, c.cc, c.chrono


def test_time_wait_orphan_lets_go_of_its_sending_side(conn_in):
    c = _released(conn_in)
    assert _sending_side(c) == (None, None, None, None)
    assert c.send_queue_bytes == 0 and c.held_bytes == 0


def test_time_wait_held_by_its_application_keeps_its_sending_side(conn_in):
    """After shutdown(SHUT_WR) an application can still read and ask in TIME_WAIT: nothing goes."""
    c = conn_in(State.TIME_WAIT)
    assert None not in _sending_side(c)


def test_fin_wait_2_orphan_entering_time_wait_lets_go_of_its_sending_side(conn_in):
    c = conn_in(State.FIN_WAIT_2)
    c.detach(0.1)
    c.receive_segment(seg("F.", IRS + 1, ISS + 2), 0.2)
    assert c.state is State.TIME_WAIT
    assert sent(c, 0.2) == [(".", ISS + 2, IRS + 2, b"")]
    assert _sending_side(c) == (None, None, None, None)


def test_time_wait_released_retransmitted_fin_reacked_and_timer_restarts(conn_in):
    """§3.10.7.4 eighth check, as for a connection that kept its sending side."""
    c = _released(conn_in)
    c.receive_segment(seg("F.", IRS + 1, ISS + 2), 1.5)
    assert sent(c, 1.5) == [(".", ISS + 2, IRS + 2, b"")]
    assert c.next_deadline() == 3.5


def test_time_wait_released_old_data_segment_answered_by_ack(conn_in):
    c = _released(conn_in)
    c.receive_segment(seg("P.", IRS, ISS + 2, b"o"), 0.6)
    assert sent(c, 0.6) == [(".", ISS + 2, IRS + 2, b"")]


def test_time_wait_released_bare_ack_of_unsent_data_taken_without_an_answer(conn_in):
    """Linux's time-wait sock takes a bare segment at RCV.NXT whatever it acknowledges: no challenge ACK
    (RFC 5961 §5.2 is for open connections), and 2*MSL starts again."""
    c = _released(conn_in)
    c.receive_segment(seg(".", IRS + 2, ISS + 1000), 0.6)
    assert sent(c, 0.6) == [] and c.next_deadline() == 2.6


def test_time_wait_released_rst_closes(conn_in):
    c = _released(conn_in)
    c.receive_segment(seg("R", IRS + 2), 0.6)
    assert c.state is State.CLOSED


def test_time_wait_released_abort_closes_without_rst(conn_in):
    c = _released(conn_in)
    c.abort(0.6)
    assert sent(c, 0.6) == [] and c.state is State.CLOSED


def test_time_wait_released_newer_syn_ends_it(conn_in):
    c = _released(conn_in)
    assert syn_ends_time_wait(c, seg("S", c.tcb.rcv_nxt + 100_000), 1.0)
    assert c.state is State.CLOSED


def test_time_wait_released_timer_closes_after_2msl(conn_in):
    c = _released(conn_in)
    c.handle_timer(2.0)
    assert c.state is State.CLOSED and c.finished


def test_time_wait_released_tcp_info_shows_what_its_sending_side_held(conn_in):
    c = conn_in(State.TIME_WAIT)
    before = tcp_info(c, 0.5)
    c.detach(0.5)
    assert tcp_info(c, 0.5) == before


def test_time_wait_released_netstat_info_shows_its_last_controller_state(conn_in):
    c = conn_in(State.TIME_WAIT)
    before = info(c)
    c.detach(0.5)
    assert info(c) == before and before["cc"] == c.config.congestion


def test_time_wait_released_calls_that_need_the_sending_side_refuse_or_report_none(conn_in):
    """API misuse on an orphan gets an error, not a crash: SEND and TCP_CONGESTION refuse (the connection
    is closing), the send space is 0, and SO_SNDBUF and TCP_NODELAY change only the configuration."""
    c = _released(conn_in)
    with pytest.raises(LocalProtocolError, match="connection closing"):
        c.send(b"late", 0.6)
    with pytest.raises(LocalProtocolError, match="connection closing"):
        c.set_congestion_control("reno")
    assert c.send_space == 0
    configure(c, 0.6, send_buffer=4096, nodelay=True)
    assert (c.config.send_buffer, c.config.nodelay) == (4096, True)
    assert _sending_side(c) == (None, None, None, None)
