"""Flow control: the receive window follows the application, zero windows are probed (RFC 9293 §3.8.6)."""

from stack.tcp import timeouts
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
    assert c.counters.events().window_probes == 2


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
    timeouts.arm_keepalive(c, 0.0)
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
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"a" * 300), 0.0)
    one_packet = c.receiver.rmem
    c.receive_segment(seg(".", IRS + 301, ISS + 1, b"b" * 100), 0.0)
    assert c.receiver.rmem == one_packet == 1280
    c.read(350)
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


def _small_segments_after_a_full_one(c, read_first: int) -> None:
    """A 1600-byte segment (2304 bytes of memory: it fills its packet, no room left after it, 1600 bytes
    of window at the ratio it sets), then seven of 100 bytes (832 each, 575 bytes of window for 100 of
    data): 8128 bytes of the 8000 SO_RCVBUF 4000 gives. `read_first` bytes are read before an eighth."""
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"a" * 1600), 0.0)
    for i in range(7):
        c.receive_segment(seg(".", IRS + 1601 + 100 * i, ISS + 1, bytes([ord("b") + i]) * 100), 0.0)
    assert c.receiver.rmem == 8128 and c.counters.events().prune_called == 0
    assert c.read(read_first) == b"a" * read_first
    c.receive_segment(seg(".", IRS + 2301, ISS + 1, b"z" * 100), 0.0)


def test_established_full_memory_collapses_the_small_packets(conn_in):
    """Linux tcp_prune_queue: a segment that finds the memory full makes room by copying the receive queue
    into compact packets (tcp_collapse), from the first one that holds more window than data: the full
    packet stays, the seven small ones become one of 1280 bytes, and the segment is taken, in a packet of
    its own (the compact one has 4 bytes of room left)."""
    c = conn_in(State.ESTABLISHED, receive_buffer=4000, receive_buffer_locked=True)
    _small_segments_after_a_full_one(c, 0)
    events = c.counters.events()
    assert (events.prune_called, events.rcv_collapsed, events.rcv_pruned) == (1, 7, 0)
    assert c.receiver.rmem == 2304 + 1280 + 832
    assert c.read() == b"a" * 1600 + b"".join(bytes([ord("b") + i]) * 100 for i in range(7)) + b"z" * 100


def test_established_full_memory_collapses_from_a_packet_read_in_part(conn_in):
    """Linux tcp_collapse also starts at a packet the application read in part (its data before
    copied_seq): its unread 1590 bytes and the 700 after them become one packet of 4352 bytes, whose room
    takes the segment."""
    c = conn_in(State.ESTABLISHED, receive_buffer=4000, receive_buffer_locked=True)
    _small_segments_after_a_full_one(c, 10)
    assert (c.counters.events().prune_called, c.counters.events().rcv_collapsed) == (1, 8)
    assert c.receiver.rmem == 4352
    assert c.read() == b"a" * 1590 + b"".join(bytes([ord("b") + i]) * 100 for i in range(7)) + b"z" * 100
    assert c.receiver.rmem == 0


def test_established_memory_full_of_full_packets_refuses_the_segment(conn_in):
    """Linux tcp_prune_queue: packets that their data fills are not copied (nothing would be won), so once
    SO_RCVBUF shrinks below what they hold, the next segment that the memory reserved does not take (a
    4000-byte one: 8448 bytes) is refused (RcvPruned, then TCPRcvQDrop) and the ACK offers a zero window."""
    c = conn_in(State.ESTABLISHED, receive_buffer=8000, receive_buffer_locked=True)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"a" * 1460), 0.0)
    c.receive_segment(seg(".", IRS + 1461, ISS + 1, b"b" * 1460), 0.0)
    c.receiver.set_receive_buffer(2000)
    c.receive_segment(seg(".", IRS + 2921, ISS + 1, b"c" * 4000), 0.0)
    events = c.counters.events()
    assert (events.prune_called, events.rcv_collapsed, events.rcv_pruned) == (1, 0, 1)
    assert c.counters.events().rcvq_drops == 1 and c.receiver.rmem == 2 * 2304
    assert c.segments_to_send(0.0)[-1].window == 0


def test_established_full_memory_prunes_held_data_from_the_top(conn_in):
    """Linux tcp_prune_queue: an in-order segment that finds the memory full of held packets (ten of 100
    bytes behind holes, 832 bytes each: 8320 of the 8000 SO_RCVBUF 4000 gives), none worth copying, has
    the highest two dropped (an eighth of the buffer at least, tcp_prune_ofo_queue) and is taken. The
    memory and the page reserve are what Linux's `ss -m` showed in the same exchange (r7488, f704)."""
    c = conn_in(State.ESTABLISHED, receive_buffer=4000, receive_buffer_locked=True)
    for i in range(10):
        c.receive_segment(seg(".", IRS + 201 + 200 * i, ISS + 1, b"h" * 100), 0.0)
    assert (c.receiver.rmem, c.receiver.forward_alloc) == (8320, 3968)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"a" * 100), 0.0)
    events = c.counters.events()
    assert (events.prune_called, events.ofo_pruned, events.rcv_pruned) == (1, 1, 0)
    assert (c.receiver.rmem, c.receiver.forward_alloc) == (7488, 704)
    assert c.receiver.bytes_held == 800 and c.read() == b"a" * 100


def test_established_full_memory_drops_a_segment_held_highest_unanswered(conn_in):
    """Linux tcp_data_queue_ofo: an out-of-order segment for which no room can be made (it would be held
    above all that is, so nothing is pruned for it) is dropped (RcvPruned, TCPOFODrop) and no ACK
    answers it."""
    c = conn_in(State.ESTABLISHED, receive_buffer=4000, receive_buffer_locked=True)
    for i in range(10):
        c.receive_segment(seg(".", IRS + 201 + 200 * i, ISS + 1, b"h" * 100), 0.0)
    c.segments_to_send(0.0)
    c.receive_segment(seg(".", IRS + 2201, ISS + 1, b"h" * 100), 0.0)
    assert (c.counters.events().rcv_pruned, c.counters.events().ofo_drops, c.counters.events().ofo_pruned) == (1, 1, 0)
    assert c.segments_to_send(0.0) == [] and c.receiver.bytes_held == 1000
