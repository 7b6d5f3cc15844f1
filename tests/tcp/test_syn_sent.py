"""SYN_SENT: active open (RFC 9293 §3.10.1, §3.10.7.3)."""

from stack.tcp.connection import Connection
from stack.tcp.state import State
from stack.wire.segment import TcpOptions
from tests.tcp.conftest import CONFIG, IRS, ISS, LOCAL, REMOTE, events, seg, sent


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


def test_syn_sent_synack_with_data_delivers_it_and_acks_it(conn_in):
    """§3.10.7.3 fourth check: text on the SYN,ACK is processed from the sixth step on (Linux drops it
    and acknowledges only the SYN: docs/linux-differences.md)."""
    c = conn_in(State.SYN_SENT)
    c.receive_segment(seg("S.", IRS, ISS + 1, b"early", options=TcpOptions(mss=1200)), 0.1)
    assert c.state is State.ESTABLISHED
    assert sent(c, 0.1) == [(".", ISS + 1, IRS + 6, b"")]
    assert c.read() == b"early"


def test_syn_sent_rst_with_acceptable_ack_is_refused(conn_in):
    """§3.10.7.3 second check: RST with an acceptable ACK -> "connection reset", CLOSED."""
    c = conn_in(State.SYN_SENT)
    c.receive_segment(seg("R.", 0, ISS + 1), 0.1)
    assert c.state is State.CLOSED
    assert events(c) == ["Reset", "Closed"]
    assert c.counters.events().attempt_fails == 1


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


def test_syn_sent_no_answer_retransmits_linearly_then_with_backoff_then_times_out(conn_in):
    """Linux tcp_syn_linear_timeouts: the first four timeouts keep the initial RTO, then it doubles; the
    end comes when syn_retries doubling timeouts would have taken (1 + 2 + 4 s) -> ETIMEDOUT, CLOSED."""
    c = conn_in(State.SYN_SENT, syn_retries=2)
    deadlines = []
    now = 0.0
    while c.state is State.SYN_SENT:
        now = c.next_deadline()
        deadlines.append(now)
        c.handle_timer(now)
        c.segments_to_send(now)
    assert deadlines == [1.0, 2.0, 3.0, 4.0, 5.0, 7.0]
    assert events(c) == ["TimedOut", "Closed"]


def test_syn_sent_no_answer_retransmits_with_backoff_then_times_out(conn_in):
    """RFC 6298 (5.5), linear timeouts off: the SYN timer doubles; syn_retries exhausted -> ETIMEDOUT, CLOSED."""
    c = conn_in(State.SYN_SENT, syn_retries=2, syn_linear_timeouts=0)
    deadlines = []
    now = 0.0
    while c.state is State.SYN_SENT:
        now = c.next_deadline()
        deadlines.append(now)
        c.handle_timer(now)
        c.segments_to_send(now)
    assert deadlines == [1.0, 3.0, 7.0]
    assert events(c) == ["TimedOut", "Closed"]


def test_syn_sent_synack_without_wscale_turns_scaling_off(conn_in):
    """RFC 7323 §2.2: our SYN offered a shift, the SYN,ACK did not -> neither side scales."""
    c = conn_in(State.SYN_SENT, window_scaling=True, receive_buffer=1 << 20)
    c.receive_segment(seg("S.", IRS, ISS + 1, win=5000), 0.1)
    assert (c.tcb.snd_wscale, c.tcb.rcv_wscale, c.tcb.snd_wnd) == (0, 0, 5000)
    assert c.segments_to_send(0.1)[0].window == 0xFFFF


def test_syn_sent_close_enters_closed_without_segment(conn_in):
    """§3.10.4: CLOSE in SYN-SENT deletes the TCB; nothing is sent."""
    c = conn_in(State.SYN_SENT)
    c.close(0.1)
    assert c.state is State.CLOSED and sent(c, 0.1) == []
    assert events(c) == ["Closed"]


def test_syn_sent_data_queued_goes_out_after_handshake(conn_in):
    """§3.10.2: SEND in SYN-SENT queues the data for transmission after entering ESTABLISHED."""
    c = conn_in(State.SYN_SENT)
    assert c.send(b"early", 0.0) == 5
    assert sent(c, 0.0) == []
    c.receive_segment(seg("S.", IRS, ISS + 1), 0.1)
    assert sent(c, 0.1) == [("P.", ISS + 1, IRS + 1, b"early")]


def test_syn_sent_synack_echoing_a_tsval_older_than_our_syn_gets_rst():
    """RFC 7323 §4.1 as Linux checks it in SYN-SENT (tcp_rcv_synsent_state_process): a SYN,ACK whose TSecr
    is from before our first SYN, as one for an earlier attempt on these ports would be, is answered by
    <SEQ=SEG.ACK><CTL=RST> and counted as PAWSActive; the connect goes on, and a SYN,ACK that echoes our
    SYN's TSval completes it."""
    c = Connection.connect(CONFIG, LOCAL, REMOTE, 5.0)
    (syn,) = c.segments_to_send(5.0)
    our_tsval = syn.options.timestamps[0]
    c.receive_segment(seg("S.", IRS, syn.seq + 1, options=TcpOptions(mss=1200, timestamps=(7, our_tsval - 1))), 5.1)
    assert sent(c, 5.1) == [("R", syn.seq + 1, 0, b"")] and c.state is State.SYN_SENT
    assert c.counters.by_linux_name()["PAWSActive"] == 1
    c.receive_segment(seg("S.", IRS, syn.seq + 1, options=TcpOptions(mss=1200, timestamps=(8, our_tsval))), 5.2)
    assert c.state is State.ESTABLISHED
