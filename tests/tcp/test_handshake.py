"""LISTEN, SYN_SENT and SYN_RECEIVED (RFC 9293 §3.5, §3.10.7.2-3)."""

from stack.tcp.connection import Connection
from stack.tcp.state import State
from stack.wire.segment import TcpOptions
from tests.tcp.conftest import CONFIG, IRS, ISS, LOCAL, REMOTE, events, seg, sent


def test_listen_syn_sends_synack_with_mss_and_enters_syn_received():
    """§3.10.7.2 third check: SYN in LISTEN -> SYN,ACK <SEQ=ISS><ACK=RCV.NXT>, SYN-RECEIVED."""
    c = Connection.from_syn(CONFIG, LOCAL, REMOTE, seg("S", IRS, options=TcpOptions(mss=1400)), 0.0)
    out = c.segments_to_send(0.0)
    assert [(s.flags, s.seq, s.ack) for s in out] == [(0x12, ISS, IRS + 1)]
    assert out[0].options.mss == CONFIG.mss
    assert c.state is State.SYN_RECEIVED
    assert [str(t) for t in c.history] == ["LISTEN -> SYN_RECV (SYN)"]
    assert c.tcb.snd_mss == 1400


def test_listen_syn_without_mss_option_assumes_536():
    """§3.7.1: without the MSS option the send MSS is 536."""
    c = Connection.from_syn(CONFIG, LOCAL, REMOTE, seg("S", IRS), 0.0)
    assert c.tcb.snd_mss == 536


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


def test_syn_sent_sends_syn_with_options():
    """§3.10.1: active OPEN sends <SEQ=ISS><CTL=SYN> with our MSS, enters SYN-SENT."""
    c = Connection.connect(CONFIG, LOCAL, REMOTE, 0.0)
    out = c.segments_to_send(0.0)
    assert [(str(s.flags), s.seq) for s in out] == [(str(out[0].flags), ISS)]
    assert out[0].flags == 0x02 and out[0].options.mss == 1460 and out[0].options.sack_permitted
    assert c.state is State.SYN_SENT


def test_syn_sent_synack_enters_established_and_acks(conn_in):
    """§3.10.7.3 fourth check: SYN,ACK acking our SYN -> ESTABLISHED, send ACK."""
    c = conn_in(State.SYN_SENT)
    c.receive_segment(seg("S.", IRS, ISS + 1, options=TcpOptions(mss=1200)), 0.1)
    assert c.state is State.ESTABLISHED
    assert sent(c, 0.1) == [(".", ISS + 1, IRS + 1, b"")]
    assert events(c) == ["Connected"]
    assert c.tcb.snd_mss == 1200
    assert c.rto.srtt == 0.1  # the SYN was timed (RFC 6298 (2.2))


def test_syn_sent_rst_with_acceptable_ack_is_refused(conn_in):
    """§3.10.7.3 second check: RST with an acceptable ACK -> "connection reset", CLOSED."""
    c = conn_in(State.SYN_SENT)
    c.receive_segment(seg("R.", 0, ISS + 1), 0.1)
    assert c.state is State.CLOSED
    assert events(c) == ["Reset", "Closed"]
    assert c.counters.attempt_fails == 1


def test_syn_sent_rst_without_ack_ignored(conn_in):
    """§3.10.7.3 second check: an RST without ACK is dropped in SYN-SENT."""
    c = conn_in(State.SYN_SENT)
    c.receive_segment(seg("R", 0), 0.1)
    assert c.state is State.SYN_SENT


def test_syn_sent_unacceptable_ack_answered_by_rst(conn_in):
    """§3.10.7.3 first check: SEG.ACK =< ISS or > SND.NXT -> <SEQ=SEG.ACK><CTL=RST>."""
    c = conn_in(State.SYN_SENT)
    c.receive_segment(seg("S.", IRS, ISS + 7), 0.1)
    assert sent(c, 0.1) == [("R", ISS + 7, 0, b"")]
    assert c.state is State.SYN_SENT


def test_syn_sent_syn_enters_syn_received(conn_in):
    """§3.10.7.3 fourth check: simultaneous open -> SYN-RECEIVED, send SYN,ACK."""
    c = conn_in(State.SYN_SENT)
    c.receive_segment(seg("S", IRS), 0.1)
    assert c.state is State.SYN_RECEIVED
    assert sent(c, 0.1) == [("S.", ISS, IRS + 1, b"")]


def test_syn_sent_no_answer_retransmits_with_backoff_then_times_out(conn_in):
    """RFC 6298 (5.5): the SYN timer doubles; syn_retries exhausted -> ETIMEDOUT, CLOSED."""
    c = conn_in(State.SYN_SENT, syn_retries=2)
    deadlines = []
    now = 0.0
    while c.state is State.SYN_SENT:
        now = c.next_deadline()
        deadlines.append(now)
        c.handle_timer(now)
        c.segments_to_send(now)
    assert deadlines == [1.0, 3.0, 7.0]
    assert events(c) == ["TimedOut", "Closed"]
