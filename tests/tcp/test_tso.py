"""Runs of full segments as one super-segment for a device that cuts them back (TSO): the wire carries
the segments the sender would have sent one by one, and the scoreboard records the run once and knows
each of its segments (RFC 6675 §5: a lost one is resent alone)."""

from stack.tcp.state import State
from stack.wire.segment import Flags, TcpOptions
from tests.tcp.conftest import IRS, ISS, seg, sent

MSS = 1460
TSO = 65000


def _sack(*blocks: tuple[int, int]) -> TcpOptions:
    return TcpOptions(sack_blocks=tuple((ISS + 1 + a * MSS, ISS + 1 + b * MSS) for a, b in blocks))


def test_established_tso_run_is_one_segment_and_one_record_of_mss_pieces(conn_in):
    c = conn_in(State.ESTABLISHED, tso_max_bytes=TSO)
    before = c.counters.segs_out
    c.send(b"d" * (5 * MSS), 0.0)
    (run,) = c.segments_to_send(0.0)
    assert (run.seq, len(run.payload), run.gso) == (ISS + 1, 5 * MSS, MSS)
    assert run.flags == Flags.ACK | Flags.PSH  # the last piece ends the buffer; the device puts PSH there only
    (rec,) = c.recovery.board
    assert [end - start for start, end in rec.pieces()] == [MSS] * 5
    assert c.recovery.board.segments == 5
    assert c.counters.segs_out - before == 5  # segments on the wire, as Linux counts tcp_skb_pcount


def test_established_tso_run_ends_with_linux_packet_of_half_the_window(conn_in):
    """A run is one of Linux's GSO packets: at most half the congestion window (tcp_cwnd_test), so that
    two are in flight; the initial window of 10 sends six segments as packets of five and one."""
    c = conn_in(State.ESTABLISHED, tso_max_bytes=TSO)
    c.send(b"d" * (6 * MSS), 0.0)
    out = c.segments_to_send(0.0)
    assert [(len(s.payload), s.gso) for s in out] == [(5 * MSS, MSS), (MSS, 0)]


def test_established_tso_off_sends_each_segment(conn_in):
    c = conn_in(State.ESTABLISHED)
    c.send(b"d" * (6 * MSS), 0.0)
    out = c.segments_to_send(0.0)
    assert [(len(s.payload), s.gso) for s in out] == [(MSS, 0)] * 6


def test_established_tso_lost_piece_is_resent_alone(conn_in):
    """RFC 6675 §5: with SACK for the pieces around it, only the lost piece of a run goes again."""
    c = conn_in(State.ESTABLISHED, tso_max_bytes=TSO)
    c.tcb.sack_ok = True
    c.send(b"d" * (6 * MSS), 0.0)
    c.segments_to_send(0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, options=_sack((1, 3))), 0.01)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, options=_sack((1, 6))), 0.01)
    resent = [(s - ISS - 1, len(data)) for _, s, _, data in sent(c, 0.01) if data]
    assert resent == [(0, MSS)]


def test_established_tso_run_leaves_the_fin_to_the_last_segment(conn_in):
    c = conn_in(State.ESTABLISHED, tso_max_bytes=TSO)
    c.send(b"d" * (3 * MSS), 0.0)
    c.close(0.0)
    out = c.segments_to_send(0.0)
    assert [(len(s.payload), s.gso, s.flags & Flags.FIN != 0) for s in out] == [(2 * MSS, MSS, False), (MSS, 0, True)]


def test_established_tso_small_tail_goes_alone_after_the_run(conn_in):
    c = conn_in(State.ESTABLISHED, tso_max_bytes=TSO)
    c.send(b"d" * (2 * MSS + 100), 0.0)
    out = c.segments_to_send(0.0)
    assert [(len(s.payload), s.gso) for s in out] == [(2 * MSS, MSS), (100, 0)]


def test_established_tso_run_in_the_middle_of_a_write_ends_with_psh(conn_in):
    """Linux __tcp_transmit_skb forces PSH on every GSO packet (a hint to the receiver's GRO), not only
    where a write ends: the run before a small tail carries it too."""
    c = conn_in(State.ESTABLISHED, tso_max_bytes=TSO)
    c.send(b"d" * (2 * MSS + 100), 0.0)
    run, tail = c.segments_to_send(0.0)
    assert run.gso == MSS and run.flags & Flags.PSH
    assert tail.flags & Flags.PSH  # the end of the write


def test_established_min_tso_segs_zero_at_a_slow_rate_still_sends_whole_segments(conn_in):
    """A GSO packet holds at least one segment: with tcp_min_tso_segs 0 (a value Linux refuses) and a
    pacing rate below a segment per millisecond, the output still moves on and sends the data."""
    c = conn_in(State.ESTABLISHED, min_tso_segs=0, tso_max_bytes=65000)
    c.rto.on_sample(0.2, c.tcb.snd_una, c.tcb.snd_nxt)
    assert c.send(b"x" * 5000, 1.0) == 5000
    out = c.segments_to_send(1.0)
    assert sum(len(s.payload) for s in out) == 5000
