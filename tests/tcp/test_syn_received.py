"""SYN_RECEIVED: the passive side of the handshake (RFC 9293 §3.10.7.4)."""

from stack.demux import Demux
from stack.tcp.config import TcpConfig
from stack.tcp.state import State
from stack.wire.segment import Flags, Segment, TcpOptions
from tests.tcp.conftest import IRS, ISS, LOCAL, REMOTE, events, seg, sent


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
    assert c.counters.events().attempt_fails == 1


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


def test_syn_received_ack_one_tick_older_than_the_syn_dropped_by_paws():
    """RFC 7323 §5.3 R1 before a passive open completes, as Linux's request sock (tcp_paws_reject: no
    tick of slack, where an open connection allows one): an ACK whose TSval is one behind the SYN's is
    dropped and answered; the next ACK with a newer TSval completes the handshake."""
    demux = Demux(TcpConfig(mss=1460))
    demux.listen(LOCAL)
    syn_options = TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamps=(1000, 0))
    conn, _ = demux.segment_arrives(
        REMOTE[0], LOCAL[0], Segment(REMOTE[1], LOCAL[1], 0, 0, Flags.SYN, 64240, options=syn_options), 0
    )
    (synack,) = conn.segments_to_send(0)

    def ack(ts_val: int, now: float) -> list[Segment]:
        options = TcpOptions(timestamps=(ts_val, synack.options.timestamps[0]))
        demux.segment_arrives(
            REMOTE[0], LOCAL[0], Segment(REMOTE[1], LOCAL[1], 1, synack.seq + 1, Flags.ACK, 257, options=options), now
        )
        return conn.segments_to_send(now)

    (answer,) = ack(999, 0.01)
    assert (answer.flags, answer.ack, conn.state) == (Flags.ACK, 1, State.SYN_RECEIVED)
    assert conn.counters.events().paws_drops == 1
    assert ack(1010, 0.02) == [] and conn.state is State.ESTABLISHED


def test_syn_received_duplicate_syns_within_500ms_resend_one_synack_and_count_the_other(conn_in):
    """Linux tcp_check_req: the SYN,ACK goes again at most once per tcp_invalid_ratelimit; the
    retransmitted SYN left unanswered counts as TCPACKSkippedSynRecv."""
    c = conn_in(State.SYN_RECEIVED)
    c.receive_segment(seg("S", IRS), 0.5)
    c.receive_segment(seg("S", IRS), 0.6)
    assert sent(c, 0.6) == [("S.", ISS, IRS + 1, b"")]
    assert c.counters.by_linux_name()["TCPACKSkippedSynRecv"] == 1


def test_syn_received_rst_failing_paws_dropped_unanswered(conn_in):
    """RFC 7323 §5.3 R1 before a passive open completes, as Linux's request sock (tcp_check_req,
    tcp_paws_reject rejects a RST too): a RST at RCV.NXT whose TSval is older than the SYN's is dropped
    without an answer and counted as PAWSEstab; the half-open connection stays."""
    c = conn_in(State.SYN_RECEIVED, timestamps=True)
    c.tcb.ts_ok = True
    c.receiver.ts_recent = 500
    c.receive_segment(seg("R", IRS + 1, options=TcpOptions(timestamps=(499, 0))), 0.5)
    assert sent(c, 0.5) == []
    assert c.state is State.SYN_RECEIVED
    assert c.counters.by_linux_name()["PAWSEstab"] == 1


def test_syn_received_unacceptable_ack_far_outside_the_window_answered_by_rst_and_kept(conn_in):
    """§3.10.7.4 fifth check before the first, as Linux's request sock orders them (tcp_check_req): a
    segment whose ACK does not acknowledge our SYN gets <SEQ=SEG.ACK><CTL=RST> however far outside the
    window it lies, and the half-open connection stays."""
    c = conn_in(State.SYN_RECEIVED)
    c.receive_segment(seg(".", IRS + 1 + 10_000_000, ISS + 77), 0.5)
    assert sent(c, 0.5) == [("R", ISS + 77, 0, b"")]
    assert c.state is State.SYN_RECEIVED
