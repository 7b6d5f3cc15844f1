"""The send buffer in Linux's units: skbs that cost their bytes and an overhead, filled by writes up to the
size goal, cut where GSO packets end, freed by ACKs; the rules that stop and wake a writer and grow the
buffer (write_queue.py)."""

from stack.tcp import write_queue
from stack.tcp.events import SendSpace
from stack.tcp.send_buffer import SKB_OVERHEAD, SendBuffer
from stack.tcp.state import State
from stack.tcp.write_marks import WriteMarks
from tests.tcp.conftest import IRS, ISS, seg


def test_send_buffer_skbs_cost_their_bytes_and_an_overhead_each():
    """Linux sk_wmem_queued: every skb's data plus SKB_TRUESIZE of its empty head."""
    buf = SendBuffer()
    buf.seq = 100
    buf.append(b"a" * 3000, 10_000)
    buf.append(b"b" * 1000, 10_000)  # into the same skb
    assert (buf.skbs, buf.truesize) == (1, 4000 + SKB_OVERHEAD)
    buf.start_skb()
    buf.append(b"c" * 500, 10_000)
    assert buf.tail() == (4100, 500)
    assert (buf.skbs, buf.truesize) == (2, 4500 + 2 * SKB_OVERHEAD)


def test_send_buffer_cut_at_a_packet_end_adds_an_skb_and_an_ack_frees_whole_ones():
    """tso_fragment makes the unsent rest an skb of its own; tcp_clean_rtx_queue frees the skbs an ACK
    covers whole and trims the one it covers in part."""
    buf = SendBuffer()
    buf.seq = 0
    buf.append(b"x" * 6000, 10_000)
    buf.split(2000)
    buf.split(2000)  # already an end: nothing more
    assert buf.skbs == 2 and buf.skb_end(500) == 2000 and buf.skb_end(2000) == 6000
    buf.ack(2500)
    assert (buf.skbs, buf.truesize) == (1, 3500 + SKB_OVERHEAD)
    buf.ack(6000)
    assert (buf.skbs, buf.truesize) == (0, 0)


def test_established_write_starts_no_skb_once_the_buffer_is_full(conn_in):
    """sk_stream_memory_free: a new skb only while the queue costs less than sk_sndbuf; the last skb may
    take it past."""
    c = conn_in(State.ESTABLISHED, send_buffer=5000, send_buffer_locked=True)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=4000), 0.0)
    c.tcb.max_snd_wnd = 4000  # the peer's largest window: skbs of half of it in whole segments, 1460 bytes
    assert c.send(b"x" * 10_000, 0.0) == 4380  # two skbs cost 4584, a third takes it to 6876
    assert c.send_space == 0
    assert c.sender.buffer.truesize >= c.sender.sndbuf


def test_established_waiting_writer_wakes_when_a_third_of_the_buffer_is_free(conn_in):
    """sk_stream_write_space: free room at least half of what the queue costs."""
    c = conn_in(State.ESTABLISHED, send_buffer=7000, send_buffer_locked=True)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=2920), 0.0)
    c.tcb.max_snd_wnd = 2920  # one-segment skbs (1460 bytes), two in flight
    # three skbs cost 6876, a fourth 9168; the third, unsent, takes the fourth at its forced push (8336)
    assert c.send(b"x" * 10_000, 0.0) == 5840
    c.segments_to_send(0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1461, win=2920), 0.1)  # 6044 used, 956 free: no
    c.segments_to_send(0.1)  # (Linux asks after the send attempt the ACK makes, tcp_data_snd_check)
    assert not any(isinstance(e, SendSpace) for e in iter(c.next_event, None))
    c.receive_segment(seg(".", IRS + 1, ISS + 2921, win=2920), 0.2)  # 3752 used, 3248 free: yes
    c.segments_to_send(0.2)
    assert any(isinstance(e, SendSpace) for e in iter(c.next_event, None))


def test_established_buffer_grows_to_twice_the_initial_window_unless_so_sndbuf_set_it(conn_in):
    """tcp_sndbuf_expand after the handshake: 2 * 10 segments of 2048 + 256 bytes for a 1460-byte MSS
    (roundup_pow_of_two(1460 + 192 + 320) and the sk_buff); SO_SNDBUF (SOCK_SNDBUF_LOCK) keeps its size."""
    assert conn_in(State.ESTABLISHED, send_buffer=8192).sender.sndbuf == 2 * 10 * (2048 + 256)
    assert conn_in(State.ESTABLISHED, send_buffer=8192, send_buffer_locked=True).sender.sndbuf == 8192


def test_gso_segments_are_min_tso_segs_at_a_long_rtt_and_more_at_a_short_one(conn_in):
    """tcp_tso_autosize: about 1 ms of the pacing rate, at least tcp_min_tso_segs; a small minimum RTT
    adds sk_gso_max_size >> (min_rtt_us >> 9)."""
    c = conn_in(State.ESTABLISHED, min_tso_segs=3)
    c.rto.on_sample(0.1, c.tcb.snd_una, c.tcb.snd_nxt)
    c.recovery.rack.min_rtt = 0.1
    assert write_queue.gso_segments(c, 1000) == 3
    c.recovery.rack.min_rtt = 0.0008  # 800 us >> 9 = 1: 32 KB more
    assert write_queue.gso_segments(c, 1000) >= 32


def test_established_one_segment_sent_from_a_larger_skb_cuts_it_at_snd_nxt(conn_in):
    """tso_fragment for a send of a single segment: the skb holding more than the congestion window let
    out is cut at SND.NXT, and the unsent rest is an skb of its own."""
    c = conn_in(State.ESTABLISHED, initial_window_segments=1)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=60000), 0.0)
    c.tcb.max_snd_wnd = 60000
    c.send(b"x" * 3000, 0.0)
    buf = c.sender.buffer
    assert buf.skbs == 1
    assert [len(s.payload) for s in c.segments_to_send(0.0)] == [1460]
    assert buf.skbs == 2 and buf.skb_end(ISS + 1) == ISS + 1461 and buf.skb_end(ISS + 1461) == ISS + 3001


def test_send_buffer_skb_grows_into_the_next_and_takes_all_of_a_short_one():
    """tcp_grow_skb: an skb takes up to the bytes asked of the next one; all of them end the next one."""
    buf = SendBuffer()
    buf.seq = 100
    buf.append(b"x" * 1000, 1000)
    buf.start_skb()
    buf.append(b"y" * 2000, 2000)
    assert buf.grow(1100, 500) == 1600 and buf.skbs == 2
    assert buf.grow(1600, 5000) == 3100 and buf.skbs == 1
    assert buf.grow(3100, 1000) is None  # the last skb: none follows


def test_write_marks_psh_mark_moves_with_its_skb_end_and_pushed_seq_stays():
    """tcp_grow_skb keeps PSH as a flag of the grown skb (its new end); forced_push's pushed_seq stays."""
    marks = WriteMarks()
    marks.force_push(2001)
    marks.moved(2001, 3001)
    assert not marks.pushes(2001) and marks.pushes(3001)
    assert marks.pushed_seq(1) == 2001
    marks.wrote(4001, more=False, eor=False)
    marks.moved(4001, 5001)
    assert not marks.pushes(4001) and marks.pushes(5001) and marks.pushes(3001)


def test_write_marks_forced_psh_goes_on_with_the_bytes_its_write_adds_and_a_later_write_clears_it():
    """tcp_sendmsg_locked: a long write's forced PSH is the flag of an skb the same write may add to (its
    end moves), and the first bytes of the next write into that skb clear it."""
    marks = WriteMarks()
    marks.force_push(2001)
    marks.appended(2001, 3001, first=False)
    marks.wrote(3001, more=False, eor=False)
    assert not marks.pushes(2001) and marks.pushes(3001)
    marks.appended(3001, 3501, first=True)
    marks.wrote(3501, more=False, eor=False)
    assert not marks.pushes(3001) and marks.pushes(3501)


def test_write_into_a_new_skb_keeps_the_last_writes_psh_and_one_into_its_skb_clears_it(conn_in):
    """Linux keeps PSH as a flag of the skb a write ended in, and clears it only when a later write adds
    bytes to that skb (tcp_sendmsg_locked): a sent skb keeps it, an unsent one with room loses it."""
    c = conn_in(State.ESTABLISHED)
    c.send(b"a" * 100, 0.0)  # sent at once: the next write starts a new skb
    c.segments_to_send(0.0)
    c.send(b"b" * 100, 0.01)  # Nagle holds it, unsent, in an skb with room
    c.segments_to_send(0.01)
    c.send(b"c" * 100, 0.02)  # joins that skb
    marks = c.sender.marks
    assert marks.pushes(ISS + 101) and not marks.pushes(ISS + 201) and marks.pushes(ISS + 301)


def test_gso_segments_follow_the_pacing_ratios_linux_keeps_without_a_qdisc(conn_in):
    """tcp_tso_autosize sizes packets by sk_pacing_rate, which tcp_update_pacing_rate keeps with or without
    fq: tcp_pacing_ss_ratio percent of cwnd/SRTT in slow start, so twice the ratio makes twice the packet."""
    sizes = []
    for ratio in (200, 400):
        c = conn_in(State.ESTABLISHED, pacing_ss_ratio=ratio)
        c.rto.on_sample(0.01, c.tcb.snd_una, c.tcb.snd_nxt)  # 10 segments in 10 ms: 0.2 and 0.4 of them a ms
        c.recovery.rack.min_rtt = 0.01  # (a long minimum RTT adds nothing)
        sizes.append(write_queue.gso_segments(c, 100))
    assert sizes[1] in (2 * sizes[0], 2 * sizes[0] + 1), sizes
