"""Flow control: the receive window follows the application, zero windows are probed (RFC 9293 §3.8.6)."""

from stack.tcp.state import State
from tests.tcp.conftest import IRS, ISS, events, seg, sent


def test_established_unread_data_shrinks_advertised_window(conn_in):
    """The window we offer is what the free receive memory holds (§3.8.6), as Linux counts it: SO_RCVBUF
    4000 is 8000 bytes, each 1460-byte segment costs 2304 of them, so 3392 free bytes hold 2146 bytes of
    such data, offered in whole segments (__tcp_select_window)."""
    c = conn_in(State.ESTABLISHED, receive_buffer=4000)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"x" * 1460), 0.0)
    c.receive_segment(seg(".", IRS + 1461, ISS + 1, b"x" * 1460), 0.0)
    (ack,) = c.segments_to_send(0.0)
    assert c.receiver.rmem == 2 * 2304
    assert ack.window == 1460


def test_established_full_buffer_advertises_zero_window(conn_in):
    c = conn_in(State.ESTABLISHED, receive_buffer=2920)
    c.tcb.rcv_adv = IRS + 1 + 2920
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"x" * 1460), 0.0)
    c.receive_segment(seg(".", IRS + 1461, ISS + 1, b"x" * 1460), 0.0)
    (ack,) = c.segments_to_send(0.0)
    assert ack.window == 0


def test_established_read_reopens_window_with_an_update(conn_in):
    """Receiver SWS avoidance (§3.8.6.2.2): reading enough sends a window update at once."""
    c = conn_in(State.ESTABLISHED, receive_buffer=2920)
    c.tcb.rcv_adv = IRS + 1 + 2920
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"x" * 1460), 0.0)
    c.receive_segment(seg(".", IRS + 1461, ISS + 1, b"x" * 1460), 0.0)
    c.segments_to_send(0.0)
    c.read()
    (update,) = c.segments_to_send(0.1)
    assert (update.ack, update.window) == (IRS + 2921, 2920)


def test_established_small_read_sends_no_update(conn_in):
    """§3.8.6.2.2: the window is not reopened in small steps."""
    c = conn_in(State.ESTABLISHED, receive_buffer=100_000)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"x" * 100), 0.0)
    c.segments_to_send(0.0)
    c.read(10)
    assert sent(c, 0.0) == []


def test_established_zero_window_starts_persist_timer_and_probes(conn_in):
    """§3.8.6.1: with a zero window and data to send, probe the window periodically."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=0), 0.0)
    c.send(b"waiting", 0.0)
    assert sent(c, 0.0) == []
    assert c.running_timer(0.0)[0] == "probe"
    first = c.next_deadline()
    c.handle_timer(first)
    assert sent(c, first) == [(".", ISS, IRS + 1, b"")]  # SEG.SEQ = SND.UNA - 1 elicits an ACK
    assert c.next_deadline() - first > first  # backed off


def test_established_zero_window_probe_is_counted(conn_in):
    """§3.8.6.1: each zero-window probe sent counts as Linux's TCPWinProbe."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=0), 0.0)
    c.send(b"waiting", 0.0)
    c.segments_to_send(0.0)
    for _ in range(2):
        deadline = c.next_deadline()
        c.handle_timer(deadline)
        c.segments_to_send(deadline)
    assert c.counters.window_probes == 2


def test_established_window_opens_after_probe_sends_data(conn_in):
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=0), 0.0)
    c.send(b"waiting", 0.0)
    c.segments_to_send(0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=1000), 0.5)
    assert sent(c, 0.5) == [("P.", ISS + 1, IRS + 1, b"waiting")]
    assert c.running_timer(0.5)[0] == "on"


def test_established_window_update_from_old_segment_ignored(conn_in):
    """§3.10.7.4 fifth check: SND.WND changes only from segments newer than SND.WL1/WL2."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"abc", win=5000), 0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=100), 0.0)  # older than WL1
    assert c.tcb.snd_wnd == 5000


def test_established_keepalive_probes_after_idle_then_times_out(conn_in):
    """RFC 1122 §4.2.3.6: probes after the idle time, every interval; count unanswered -> ETIMEDOUT."""
    c = conn_in(State.ESTABLISHED, keepalive=True, keepalive_idle=10.0, keepalive_interval=2.0, keepalive_count=2)
    c.arm_keepalive(0.0)
    assert c.running_timer(0.0) == ("keepalive", 10.0)
    c.handle_timer(10.0)
    assert sent(c, 10.0) == [(".", ISS, IRS + 1, b"")]
    c.handle_timer(12.0)
    c.segments_to_send(12.0)
    c.handle_timer(14.0)
    assert c.state is State.CLOSED and "TimedOut" in events(c)


def test_established_window_opening_after_zero_resends_at_once_despite_backoff(conn_in):
    """§3.8.6.1: data sent into a window that closed was dropped and the timer backed off meanwhile;
    the window update that opens it answers our probing, so the first segment goes again at once."""
    c = conn_in(State.ESTABLISHED)
    c.send(b"x" * 3000, 0.0)
    sent(c, 0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=0), 0.01)
    now = 0.01
    for _ in range(4):  # four backed-off retransmissions, each answered with the closed window
        now = c.next_deadline()
        c.handle_timer(now)
        sent(c, now)
        c.receive_segment(seg(".", IRS + 1, ISS + 1, win=0), now)
    assert c.rto.backoff > 0
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=65535), now + 0.5)
    out = sent(c, now + 0.5)
    assert out and out[0][1] == ISS + 1 and out[0][3]


def test_established_small_segment_copied_into_previous_packet_room(conn_in):
    """Linux skb_try_coalesce: a small in-order segment that fits the room after the previous packet's
    data is copied there and costs no memory of its own; memory is freed once all of a packet is read."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"a" * 100), 0.0)
    one_packet = c.receiver.rmem
    c.receive_segment(seg(".", IRS + 101, ISS + 1, b"b" * 100), 0.0)
    assert c.receiver.rmem == one_packet == 1280
    c.read(150)
    assert c.receiver.rmem == 1280
    c.read()
    assert c.receiver.rmem == 0


def test_established_segment_covering_held_data_frees_the_held_packet(conn_in):
    """Linux tcp_ofo_queue: an in-order segment that brings the bytes held out of order as well (a
    go-back-N resend, segments collapsed on retransmission) leaves the held packet with nothing of its
    own; its memory is freed at once, so the window does not shrink for good."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 1 + 1000, ISS + 1, b"b" * 1000), 0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"a" * 2000), 0.0)
    alone = conn_in(State.ESTABLISHED)
    alone.receive_segment(seg(".", IRS + 1, ISS + 1, b"a" * 2000), 0.0)
    assert c.receiver.rmem == alone.receiver.rmem > 0


def test_established_overlapping_held_segments_charge_each_byte_once(conn_in):
    """Each byte of the receive queue belongs to one packet, so a packet's memory is freed once its own
    bytes are read: two held segments that overlap do not count the shared bytes twice."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 1 + 1000, ISS + 1, b"b" * 1000), 0.0)  # [1000, 2000)
    c.receive_segment(seg(".", IRS + 1 + 1500, ISS + 1, b"c" * 1000), 0.0)  # [1500, 2500)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"a" * 1000), 0.0)  # [0, 1000): all three in order
    c.receive_segment(seg(".", IRS + 1 + 2500, ISS + 1, b"d" * 1000), 0.0)  # [2500, 3500), unread below
    assert len(c.read(2500)) == 2500  # every byte of the first three packets
    last = conn_in(State.ESTABLISHED)
    last.receive_segment(seg(".", IRS + 1, ISS + 1, b"d" * 1000), 0.0)
    assert c.receiver.rmem == last.receiver.rmem > 0  # only the last packet is still charged
