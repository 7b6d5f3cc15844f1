"""Every queue has a bound, and hitting it drops or refuses the way Linux does, counted for `tcpstack stats`:
the out-of-order queue (bytes, holes), connections per stack, TIME_WAIT entries, the accept queue."""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from stack import core_build
from stack.demux import Demux
from stack.tcp.connection import Connection
from stack.tcp.reassembly import Reassembly
from stack.tcp.state import State
from stack.wire.segment import Flags, TcpOptions
from tests.tcp.conftest import CONFIG, IRS, ISS, LOCAL, REMOTE, seg, sent
from tests.tcp.test_header_prediction import established

RCV_NXT = 1000


def _runs(reasm: Reassembly) -> list[tuple[int, int]]:
    return [(a - RCV_NXT, b - RCV_NXT) for a, b in reasm.sack_blocks()]


# ---------------------------------------------------------------- the out-of-order queue


def test_reassembly_new_run_above_the_hole_bound_is_dropped():
    """Like Linux's tcp_prune_ofo_queue: what lies furthest from RCV.NXT goes first, here the newcomer."""
    reasm = Reassembly(max_runs=2)
    assert reasm.add(RCV_NXT, RCV_NXT + 10, b"a" * 5) == 0
    assert reasm.add(RCV_NXT, RCV_NXT + 20, b"b" * 5) == 0
    assert reasm.add(RCV_NXT, RCV_NXT + 30, b"c" * 5) == 5
    assert _runs(reasm) == [(10, 15), (20, 25)] and reasm.bytes_held == 10


def test_reassembly_new_run_below_held_ones_prunes_the_highest():
    """Data closer to RCV.NXT is worth more: the highest held run makes room for it."""
    reasm = Reassembly(max_runs=2)
    reasm.add(RCV_NXT, RCV_NXT + 20, b"b" * 5)
    reasm.add(RCV_NXT, RCV_NXT + 30, b"c" * 7)
    assert reasm.add(RCV_NXT, RCV_NXT + 10, b"a" * 5) == 7
    assert _runs(reasm) == [(10, 15), (20, 25)] and reasm.bytes_held == 10


def test_reassembly_data_filling_a_hole_within_the_bound_is_kept():
    """Merging runs lowers the hole count: nothing is dropped."""
    reasm = Reassembly(max_runs=2)
    reasm.add(RCV_NXT, RCV_NXT + 10, b"a" * 5)
    reasm.add(RCV_NXT, RCV_NXT + 20, b"c" * 5)
    assert reasm.add(RCV_NXT, RCV_NXT + 15, b"b" * 5) == 0
    assert _runs(reasm) == [(10, 25)]


def test_reassembly_byte_bound_trims_the_highest_bytes():
    """The byte bound keeps the lowest bytes, cutting the top run where needed."""
    reasm = Reassembly(max_bytes=12)
    reasm.add(RCV_NXT, RCV_NXT + 10, b"a" * 5)
    assert reasm.add(RCV_NXT, RCV_NXT + 20, b"b" * 10) == 3
    assert _runs(reasm) == [(10, 15), (20, 27)] and reasm.bytes_held == 12
    assert reasm.pop_ready(RCV_NXT + 10) == b"a" * 5


def test_reassembly_prune_forgets_an_out_of_order_fin():
    """The FIN sits above all held data, so pruning takes it first; the peer retransmits it."""
    reasm = Reassembly(max_runs=1)
    reasm.add(RCV_NXT, RCV_NXT + 20, b"b" * 5)
    reasm.fin_seq = RCV_NXT + 25
    reasm.add(RCV_NXT, RCV_NXT + 10, b"a" * 5)
    assert reasm.fin_seq is None and _runs(reasm) == [(10, 15)]


def test_reassembly_zero_bounds_hold_nothing():
    reasm = Reassembly(max_bytes=0)
    assert reasm.add(RCV_NXT, RCV_NXT + 10, b"abc") == 3
    assert len(reasm) == 0 and reasm.bytes_held == 0


def test_established_out_of_order_beyond_hole_bound_dropped_counted_and_resent(conn_in):
    """RFC 9293 §3.10.7.4 seventh check keeps out-of-order text "as a matter of efficiency"; with the bound
    reached the highest segment is dropped (TCPOFODrop), still answered by a duplicate ACK (RFC 5681 §4.2)."""
    c = conn_in(State.ESTABLISHED, ofo_max_holes=2)
    for k in (1, 3, 5):  # three holes: before 100..199, 300..399 and 500..599
        c.receive_segment(seg(".", IRS + 1 + 100 * k, ISS + 1, data=bytes(100)), 0.0)
        assert sent(c, 0.0) == [(".", ISS + 1, IRS + 1, b"")]
    assert c.counters.events().ofo_drops == 1
    c.receive_segment(seg(".", IRS + 1, ISS + 1, data=bytes(100)), 0.01)
    c.receive_segment(seg(".", IRS + 201, ISS + 1, data=bytes(100)), 0.01)
    assert c.tcb.rcv_nxt == IRS + 1 + 400  # 500..599 was not kept
    c.receive_segment(seg(".", IRS + 401, ISS + 1, data=bytes(200)), 0.02)  # the peer resends
    assert c.tcb.rcv_nxt == IRS + 1 + 600 and len(c.read()) == 600


def test_established_out_of_order_bytes_bound_limits_what_is_held(conn_in):
    """The byte bound holds whatever the window would otherwise allow."""
    c = conn_in(State.ESTABLISHED, ofo_max_bytes=150)
    c.receive_segment(seg(".", IRS + 101, ISS + 1, data=bytes(100)), 0.0)
    c.receive_segment(seg(".", IRS + 201, ISS + 1, data=bytes(100)), 0.0)
    assert c.counters.events().ofo_drops == 1
    c.receive_segment(seg(".", IRS + 1, ISS + 1, data=bytes(100)), 0.01)
    assert c.tcb.rcv_nxt == IRS + 1 + 250


# ---------------------------------------------------------------- connections per stack


def _syn(port: int):
    return replace(seg("S", IRS, options=TcpOptions(mss=1460)), src_port=port)


def _sack_connection(window_scaling: bool, **changes) -> Connection:
    """An established connection whose peer permits SACK (and scales its window, if asked): a 4 MB buffer."""
    config = replace(CONFIG, window_scaling=window_scaling, receive_buffer=4 << 20, receive_buffer_locked=True)
    return established(replace(config, **changes), ts=False, wscale=window_scaling)


def _cost_per_segment(c: Connection, segments: list[tuple[int, bytes]], read: bool) -> float:
    """Seconds per segment of (offset from IRS + 1, data) into `c`, each answered (and read, if asked)."""
    start = time.perf_counter()
    for offset, data in segments:
        c.receive_segment(seg(".", IRS + 1 + offset, ISS + 1, data), 0.0)
        c.segments_to_send(0.0)
        if read:
            c.read(-1)
    return (time.perf_counter() - start) / len(segments)


def _flood_cost(holes: int) -> float:
    """Seconds per segment, the least of three runs, of one-byte segments each beyond a hole of its own
    into a queue bounded at `holes` runs (every segment past the bound drops the highest)."""
    best = float("inf")
    for _ in range(3):
        c = _sack_connection(False, ofo_max_holes=holes)
        best = min(best, _cost_per_segment(c, [(2 + 2 * i, b"x") for i in range(1000)], read=False))
        assert c.receiver.bytes_held == holes
    return best


def test_established_out_of_order_flood_at_the_hole_bound_costs_per_segment_what_few_holes_do():
    """A hostile peer sending one-byte segments with a hole before each keeps the queue at its bound of
    holes: each segment (and its ACK's SACK blocks) then costs about what it costs with few holes, never
    a walk of every held packet per held run (a bound of 256 cost 50 times a bound of 16, 5 ms a segment)."""
    assert _flood_cost(256) < 10 * _flood_cost(16)


def _in_order_cost_with_held(held_segments: int) -> float:
    """Seconds per segment, the least of three runs, of one-byte segments in order (each read) while
    `held_segments` segments of 20 bytes are held out of order far ahead, a packet for every seven."""
    best = float("inf")
    for _ in range(3):
        c = _sack_connection(True)
        _cost_per_segment(c, [(2000 + 20 * i, b"h" * 20) for i in range(held_segments)], read=False)
        best = min(best, _cost_per_segment(c, [(i, b"x") for i in range(1000)], read=True))
        assert c.receiver.bytes_held == 20 * held_segments
    return best


def test_established_in_order_segments_cost_the_same_however_much_is_held_beyond_the_hole():
    """In-order data below a hole it does not fill finds nothing to take from what is held: its cost does
    not grow with the packets held (it sorted them all: 2 ms a segment with 8,000 held, 30 times the cost
    with 100)."""
    assert _in_order_cost_with_held(8000) < 3 * _in_order_cost_with_held(100)


def _descending_cost(segments: int) -> float:
    """Seconds per segment, the least of three runs, of 20-byte segments held out of order, each ending
    where the one before it began (so none is copied into another's room)."""
    best = float("inf")
    for _ in range(3):
        c = _sack_connection(True)
        offsets = [2000 + 20 * (segments - i) for i in range(segments)]
        best = min(best, _cost_per_segment(c, [(offset, b"h" * 20) for offset in offsets], read=False))
        assert c.receiver.bytes_held == 20 * segments
    return best


@pytest.mark.skipif(
    core_build.BUILD == "compiled", reason="compiled, the list's move of its pointers for an insert at the front shows"
)
def test_established_out_of_order_segments_held_in_descending_order_cost_what_few_do():
    """Each segment held finds the packet it could be copied into by bisection, as Linux's rb-tree does,
    not by a walk of all held packets (with 6,000 held a segment cost 2.7 times what it did with 600).
    Compiled, where a segment costs a sixth as much, what stays is the list's move of 6,000 pointers to
    hold each segment at its front: 1.5 to 2.4 times the cost with 600, by how the heap lies."""
    assert _descending_cost(6000) < 2 * _descending_cost(600)


def _flight_sent_at_once(flight: int, sack: bool) -> tuple[Connection, int]:
    """An established connection that sent `flight` full segments at once (its initial window, which the
    peer's window takes whole), and how many left (the last GSO packet's worth waits for an ACK)."""
    config = {"initial_window_segments": flight, "send_buffer": 32 << 20, "send_buffer_locked": True}
    config = replace(CONFIG, window_scaling=True, receive_buffer=4 << 20, receive_buffer_locked=True, **config)
    c = established(config, ts=False, sack=sack, peer_wscale=14)
    c.send(bytes(flight * c.tcb.snd_mss), 0.0)
    c.segments_to_send(0.0)
    return c, (c.tcb.snd_nxt - (ISS + 1)) // c.tcb.snd_mss


def _ack_cost(
    flight: int, sack: bool, count: Callable[[int], int], options: Callable[[int, int, int], TcpOptions]
) -> tuple[float, Connection]:
    """Seconds per ACK, the least of three runs, of ACKs of SND.UNA into a flight of `flight` segments sent
    at once, the first of them lost: count(segments that left) of them, the i-th with options(i, mss,
    segments that left)."""
    best = float("inf")
    for _ in range(3):
        c, out = _flight_sent_at_once(flight, sack)
        mss, acks = c.tcb.snd_mss, count(out)
        start = time.perf_counter()
        for i in range(acks):
            now = 0.01 + i * 1e-6
            c.receive_segment(seg(".", IRS + 1, ISS + 1, options=options(i, mss, out)), now)
            c.segments_to_send(now)
        best = min(best, (time.perf_counter() - start) / acks)
    return best, c


def _blocks_of_segments(segments: range, mss: int) -> TcpOptions:
    """One SACK block for each of the flight's `segments` (numbered from 0), in that order."""
    return TcpOptions(sack_blocks=tuple((ISS + 1 + j * mss, ISS + 1 + (j + 1) * mss) for j in segments))


def _every_other_sacked_cost(flight: int) -> float:
    """Each ACK SACKs one more of every other segment (and repeats the two before, RFC 2018 §4), as a
    receiver behind a link that lost every other segment does."""

    def blocks(i: int, mss: int, out: int) -> TcpOptions:
        return _blocks_of_segments(range(2 * i + 1, max(2 * i - 5, 0), -2), mss)  # the newest first

    cost, c = _ack_cost(flight, True, lambda out: out // 2 - 1, blocks)
    assert c.counters.events().sack_recoveries == 1
    return cost


def test_established_sack_of_a_flight_sent_at_once_costs_per_ack_what_a_small_flight_does():
    """RFC 8985 §6.2 step 5 judges only the segments sent before the last one delivered: of a flight sent
    at once (one send time), RACK's walk stops at the first segment beyond it, as Linux's walk of its
    send-time list does, not at the end of the flight (with 4,000 segments out an ACK cost 2.8 times what
    it did with 250: 268 against 95 us, interpreted)."""
    assert _every_other_sacked_cost(4000) < 2 * _every_other_sacked_cost(250)


def _downward_sacked_cost(flight: int) -> float:
    """Each ACK SACKs every other segment from the top of the flight down, one more (and repeats the two
    before), as a receiver behind a path that reorders them, or a hostile one, may."""

    def blocks(i: int, mss: int, out: int) -> TcpOptions:
        return _blocks_of_segments(range(out - 1 - 2 * i, min(out + 5 - 2 * i, out), 2), mss)  # the newest first

    cost, c = _ack_cost(flight, True, lambda out: out // 2 - 1, blocks)
    assert c.recovery.rack.reordering_seen
    return cost


def test_established_sack_of_a_flight_from_the_top_down_costs_per_ack_what_a_small_flight_does():
    """RFC 8985 §6.2 step 5: once a segment sent before the last delivered one is not yet due, none sent
    after it is, and the reordering timer waits for the last of them; that one is sought from both ends
    of the send-time chain, not by a walk of all of them (Linux walks them: with 4,000 segments out an ACK
    cost 7.4 times what it did with 250: 724 against 97 us, interpreted)."""
    assert _downward_sacked_cost(4000) < 2 * _downward_sacked_cost(250)


def _growing_block_cost(flight: int) -> float:
    """Each ACK's one SACK block covers one segment more of those after the lost one."""

    def block(i: int, mss: int, out: int) -> TcpOptions:
        return TcpOptions(sack_blocks=((ISS + 1 + mss, ISS + 1 + (i + 2) * mss),))

    cost, c = _ack_cost(flight, True, lambda out: out - 2, block)
    assert c.counters.events().fast_retransmits == 1
    return cost


def test_established_sack_block_that_grows_costs_per_ack_what_it_adds():
    """RFC 2018 §4: a receiver missing one segment repeats its block, one segment longer, on every ACK.
    The part of a block already SACKed is not walked again (as Linux's recv_sack_cache skips it), nor are
    the delivery-rate records of what was delivered (with 4,000 segments out an ACK cost 9 times what it
    did with 250: 552 against 59 us, interpreted)."""
    assert _growing_block_cost(4000) < 2 * _growing_block_cost(250)


def _duplicate_ack_cost(flight: int) -> float:
    """A peer without SACK sends a duplicate ACK for each segment after the lost one."""
    cost, c = _ack_cost(flight, False, lambda out: out - 2, lambda i, mss, out: TcpOptions())
    assert c.counters.events().reno_recoveries == 1
    return cost


def test_established_duplicate_acks_without_sack_cost_what_few_segments_out_do():
    """RFC 6582 §3.2: without SACK each duplicate ACK stands for a segment that left the network, counted
    against the segments out and the holes (as Linux's tcp_limit_reno_sacked, from running counts: with
    4,000 segments out a duplicate ACK cost 11 times what it did with 250: 697 against 64 us, interpreted)."""
    assert _duplicate_ack_cost(4000) < 2 * _duplicate_ack_cost(250)


def test_demux_syn_beyond_connection_limit_is_dropped_and_counted():
    """A stack at its connection limit refuses new SYNs silently, like a full queue; the peer retries."""
    demux = Demux(replace(CONFIG, max_connections=2))
    demux.listen(LOCAL)
    for port in (1, 2):
        child, _ = demux.segment_arrives(REMOTE[0], LOCAL[0], _syn(port), 0.0)
        assert child is not None
    assert demux.segment_arrives(REMOTE[0], LOCAL[0], _syn(3), 0.0) == (None, None)
    assert len(demux.connections) == 2 and demux.counters["TCPConnLimitDrop"] == 1


def test_demux_connect_beyond_connection_limit_fails_with_enobufs():
    """An active open at the limit fails at once rather than growing the table."""
    demux = Demux(replace(CONFIG, max_connections=1))
    demux.connect(LOCAL[0], REMOTE, 0.0)
    with pytest.raises(OSError) as info:
        demux.connect(LOCAL[0], (REMOTE[0], REMOTE[1] + 1), 0.0)
    assert info.value.errno == errno.ENOBUFS


def test_demux_cookie_ack_beyond_connection_limit_is_dropped():
    """SYN cookies do not get around the limit: the returning ACK creates nothing."""
    demux = Demux(replace(CONFIG, max_connections=1, syncookies=2))
    demux.listen(LOCAL)
    demux.connect(LOCAL[0], (REMOTE[0], 9), 0.0)
    _, synack = demux.segment_arrives(REMOTE[0], LOCAL[0], _syn(5), 0.0)
    assert synack is None and demux.counters["TCPConnLimitDrop"] == 1


# ---------------------------------------------------------------- TIME_WAIT entries


def _to_time_wait(demux: Demux, port: int, now: float):
    """A passive open closed by us first: FIN_WAIT_1, then the peer's ACK and FIN."""
    child, _ = demux.segment_arrives(REMOTE[0], LOCAL[0], _syn(port), now)
    iss = child.segments_to_send(now)[0].seq
    ack = replace(seg(".", IRS + 1, iss + 1), src_port=port)
    demux.segment_arrives(REMOTE[0], LOCAL[0], ack, now)
    child.close(now)
    child.segments_to_send(now)  # our FIN
    fin = replace(seg("F.", IRS + 1, iss + 2), src_port=port)
    demux.segment_arrives(REMOTE[0], LOCAL[0], fin, now)
    return child


def test_demux_time_wait_within_bound_lasts_two_msl():
    """RFC 9293 §3.4.2: TIME_WAIT lasts 2*MSL while there is room."""
    demux = Demux(replace(CONFIG, max_time_wait=1))
    demux.listen(LOCAL)
    c = _to_time_wait(demux, 1, 0.0)
    assert c.state is State.TIME_WAIT and c.next_deadline() == 2 * CONFIG.msl
    assert demux.time_wait == {c} and demux.counters["TCPTimeWaitOverflow"] == 0


def test_demux_time_wait_beyond_bound_acks_fin_then_closes_at_once():
    """Linux tcp_max_tw_buckets: with the table full a closing connection skips TIME_WAIT
    (TCPTimeWaitOverflow), after the ACK of the peer's FIN is sent."""
    demux = Demux(replace(CONFIG, max_time_wait=1))
    demux.listen(LOCAL)
    _to_time_wait(demux, 1, 0.0)
    c = _to_time_wait(demux, 2, 1.0)
    assert demux.counters["TCPTimeWaitOverflow"] == 1 and c not in demux.time_wait
    (ack,) = c.segments_to_send(1.0)
    assert ack.flags == Flags.ACK and ack.ack == IRS + 2
    assert c.next_deadline() == 1.0
    c.handle_timer(1.0)
    assert c.state is State.CLOSED


def test_demux_time_wait_slot_freed_when_connection_removed():
    demux = Demux(replace(CONFIG, max_time_wait=1))
    demux.listen(LOCAL)
    first = _to_time_wait(demux, 1, 0.0)
    first.handle_timer(2 * CONFIG.msl)
    demux.remove(first)
    second = _to_time_wait(demux, 2, 3.0)
    assert demux.time_wait == {second} and demux.counters["TCPTimeWaitOverflow"] == 0


# ---------------------------------------------------------------- the accept queue


def test_syn_received_final_ack_with_accept_queue_full_dropped_then_taken():
    """Linux (tcp_abort_on_overflow=0): the ACK completing a handshake is dropped while the accept queue is
    full (ListenOverflows, ListenDrops); the child stays in SYN_RECEIVED and a later ACK completes it."""
    demux = Demux(replace(CONFIG, syncookies=0))
    listener = demux.listen(LOCAL, backlog=0)  # holds one established child (Linux: backlog + 1)
    a, _ = demux.segment_arrives(REMOTE[0], LOCAL[0], _syn(1), 0.0)
    b, _ = demux.segment_arrives(REMOTE[0], LOCAL[0], _syn(2), 0.0)
    iss_a, iss_b = a.segments_to_send(0.0)[0].seq, b.segments_to_send(0.0)[0].seq
    demux.segment_arrives(REMOTE[0], LOCAL[0], replace(seg(".", IRS + 1, iss_a + 1), src_port=1), 0.1)
    listener.on_established(a)  # what the owner does on Connected; nobody accepts
    ack_b = replace(seg(".", IRS + 1, iss_b + 1), src_port=2)
    assert demux.segment_arrives(REMOTE[0], LOCAL[0], ack_b, 0.1) == (None, None)
    assert b.state is State.SYN_RECEIVED
    assert (demux.counters["ListenOverflows"], demux.counters["ListenDrops"]) == (1, 1)
    assert listener.accept() is a
    demux.segment_arrives(REMOTE[0], LOCAL[0], ack_b, 1.1)
    assert b.state is State.ESTABLISHED
