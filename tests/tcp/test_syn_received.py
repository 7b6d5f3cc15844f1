"""SYN_RECEIVED: the passive side of the handshake (RFC 9293 §3.10.7.4)."""

from stack.tcp.state import State
from tests.tcp.conftest import IRS, ISS, events, seg, sent


def test_syn_received_ack_of_syn_enters_established(conn_in):
    """§3.10.7.4 fifth check: SND.UNA < SEG.ACK =< SND.NXT -> ESTABLISHED."""
    c = conn_in(State.SYN_RECEIVED)
    c.receive_segment(seg(".", IRS + 1, ISS + 1), 0.01)
    assert c.state is State.ESTABLISHED
    assert events(c) == ["Connected"]


def test_syn_received_unacceptable_ack_answered_by_rst(conn_in):
    """§3.10.7.4 fifth check: a bad ACK in SYN-RECEIVED gets <SEQ=SEG.ACK><CTL=RST>."""
    c = conn_in(State.SYN_RECEIVED)
    c.receive_segment(seg(".", IRS + 1, ISS + 50), 0.01)
    assert sent(c, 0.01) == [("R", ISS + 50, 0, b"")]
    assert c.state is State.SYN_RECEIVED


def test_syn_received_rst_returns_to_listen(conn_in):
    """§3.10.7.4 second check: a passive-open SYN-RECEIVED goes back to LISTEN on RST."""
    c = conn_in(State.SYN_RECEIVED)
    c.receive_segment(seg("R", IRS + 1), 0.01)
    assert c.state is State.LISTEN and c.finished


def test_syn_received_new_syn_answered_by_rst_and_returns_to_listen(conn_in):
    """§3.10.7.4 fourth check: a SYN of another sequence number returns a passive open to LISTEN; as
    Linux's tcp_check_req (embryonic reset) it is answered by <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>."""
    c = conn_in(State.SYN_RECEIVED)
    c.receive_segment(seg("S", IRS + 100), 0.01)
    assert sent(c, 0.01) == [("R.", 0, IRS + 101, b"")]
    assert c.state is State.LISTEN and c.finished
    assert c.counters.attempt_fails == 1


def test_syn_received_duplicate_syn_resends_synack(conn_in):
    """The peer's SYN was retransmitted (our SYN,ACK was lost): answer with SYN,ACK again."""
    c = conn_in(State.SYN_RECEIVED)
    c.receive_segment(seg("S", IRS), 0.5)
    assert sent(c, 0.5) == [("S.", ISS, IRS + 1, b"")]


def test_syn_received_no_ack_retransmits_synack_then_gives_up(conn_in):
    """SYN,ACK retransmitted with backoff; synack_retries exhausted -> CLOSED."""
    c = conn_in(State.SYN_RECEIVED, synack_retries=2)
    assert c.next_deadline() == 1.0
    c.handle_timer(1.0)
    assert sent(c, 1.0) == [("S.", ISS, IRS + 1, b"")]
    assert c.next_deadline() == 3.0
    c.handle_timer(3.0)
    c.segments_to_send(3.0)
    c.handle_timer(7.0)
    assert c.state is State.CLOSED
    assert "TimedOut" in events(c)
