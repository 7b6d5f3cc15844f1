"""FIN_WAIT_2: our FIN is acknowledged; waiting for the peer's (RFC 9293 §3.6)."""

from stack.tcp.state import State
from stack.wire.segment import TcpOptions
from tests.tcp.conftest import IRS, ISS, events, seg, sent


def test_fin_wait_2_fin_enters_time_wait_and_acks(conn_in):
    c = conn_in(State.FIN_WAIT_2)
    c.receive_segment(seg("F.", IRS + 1, ISS + 2), 0.1)
    assert c.state is State.TIME_WAIT
    assert sent(c, 0.1) == [(".", ISS + 2, IRS + 2, b"")]


def test_fin_wait_2_detached_times_out_after_fin_timeout(conn_in):
    """Like Linux tcp_fin_timeout: an orphaned FIN-WAIT-2 does not wait forever for the peer's FIN."""
    c = conn_in(State.FIN_WAIT_2, fin_timeout=5.0)
    c.detach(1.0)
    assert c.running_timer(1.0) == ("timewait", 5.0)
    c.handle_timer(6.0)
    assert c.state is State.CLOSED
    assert events(c) == ["Closed"]


def test_fin_wait_2_half_closed_waits_without_timer(conn_in):
    """RFC 9293 §3.6: after CLOSE alone (half-close) the peer may go on sending for as long as it likes."""
    c = conn_in(State.FIN_WAIT_2, fin_timeout=5.0)
    assert c.next_deadline() is None and c.running_timer(0.0) is None
    c.receive_segment(seg("P.", IRS + 1, ISS + 2, b"late data"), 100.0)
    assert c.read() == b"late data" and c.state is State.FIN_WAIT_2


def test_fin_wait_2_data_after_shutdown_receive_gets_rst(conn_in):
    """RFC 1122 §4.2.2.13 as Linux applies it to RCV_SHUTDOWN: once the application shut reading, new
    data is answered by <SEQ=SEG.ACK><CTL=RST> and the connection ends."""
    c = conn_in(State.FIN_WAIT_2)
    c.shutdown_receive()
    c.receive_segment(seg("P.", IRS + 1, ISS + 2, b"late data"), 1.0)
    assert sent(c, 1.0) == [("R", ISS + 2, 0, b"")]
    assert c.state is State.CLOSED and c.counters.events().aborts_on_data == 1
    assert events(c) == ["Reset", "Closed"]  # the application still holds it: ECONNRESET (Linux tcp_reset)


def test_fin_wait_2_detach_before_fin_acked_starts_timer_on_entry(conn_in):
    """The orphan timer starts when FIN-WAIT-2 is entered, if the application let go earlier."""
    c = conn_in(State.FIN_WAIT_1, fin_timeout=5.0)
    c.detach(0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 2), 2.0)
    assert c.state is State.FIN_WAIT_2
    assert c.next_deadline() == 7.0


def test_fin_wait_2_rst_in_window_resets(conn_in):
    """§3.10.7.4 second check: an exact RST in FIN-WAIT-2 -> reset, CLOSED."""
    c = conn_in(State.FIN_WAIT_2)
    c.receive_segment(seg("R", IRS + 1), 0.5)
    assert c.state is State.CLOSED
    assert events(c) == ["Reset", "Closed"]


def _orphan(conn_in):
    c = conn_in(State.FIN_WAIT_2)
    c.detach(0.0)
    return c


def test_fin_wait_2_orphan_segment_without_ack_dropped_unanswered(conn_in):
    """Linux's FIN-WAIT-2 time-wait sock (tcp_timewait_state_process) drops a segment without an ACK,
    data and FIN too: no answer, no RST, the connection stays."""
    c = _orphan(conn_in)
    c.receive_segment(seg("F", IRS + 1), 0.5)
    assert sent(c, 0.5) == [] and c.state is State.FIN_WAIT_2


def test_fin_wait_2_orphan_fin_with_data_gets_rst(conn_in):
    """RFC 1122 §4.2.2.13 as the FIN-WAIT-2 time-wait sock applies it: anything new but the FIN alone is
    data after close, answered by <SEQ=SEG.ACK><CTL=RST>; the connection ends (TCPAbortOnData is counted
    only by a socket still open)."""
    c = _orphan(conn_in)
    c.receive_segment(seg("F.", IRS + 1, ISS + 2, b"late"), 0.5)
    assert sent(c, 0.5) == [("R", ISS + 2, 0, b"")]
    assert c.state is State.CLOSED and c.counters.events_seen().aborts_on_data == 0


def test_fin_wait_2_orphan_fin_failing_paws_answered_not_taken(conn_in):
    """RFC 7323 §5.3 R1 without slack, as the time-wait sock checks it: a FIN whose TSval is older than
    TS.Recent gets an ACK of RCV.NXT and is not taken."""
    c = conn_in(State.FIN_WAIT_2, timestamps=True)
    c.tcb.ts_ok = True
    c.receiver.ts_recent = 500
    c.detach(0.0)
    c.receive_segment(seg("F.", IRS + 1, ISS + 2, options=TcpOptions(timestamps=(499, 0))), 0.5)
    assert [s[:3] for s in sent(c, 0.5)] == [(".", ISS + 2, IRS + 1)]
    assert c.state is State.FIN_WAIT_2


def test_fin_wait_2_orphan_rst_failing_paws_answered_not_taken(conn_in):
    """RFC 7323 §5.3 R1 as Linux's FIN_WAIT2 time-wait sock applies it (tcp_paws_reject rejects a RST
    too): a RST at RCV.NXT whose TSval is older than TS.Recent gets an ACK and ends nothing."""
    c = conn_in(State.FIN_WAIT_2, timestamps=True)
    c.tcb.ts_ok = True
    c.receiver.ts_recent = 500
    c.detach(0.0)
    c.receive_segment(seg("R", IRS + 1, options=TcpOptions(timestamps=(499, 0))), 0.5)
    assert [s[:3] for s in sent(c, 0.5)] == [(".", ISS + 2, IRS + 1)]
    assert c.state is State.FIN_WAIT_2
