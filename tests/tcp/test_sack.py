"""Our sender's SACK scoreboard (RFC 2018, RFC 6675): retransmit only what the receiver lacks."""

from stack.tcp.state import State
from stack.wire.segment import TcpOptions
from tests.tcp.conftest import IRS, ISS, seg, sent

MSS = 1460


def _sack(*blocks: tuple[int, int]) -> TcpOptions:
    return TcpOptions(sack_blocks=tuple((ISS + 1 + a * MSS, ISS + 1 + b * MSS) for a, b in blocks))


def test_established_scoreboard_marks_sacked_segments_and_ignores_blocks_outside_the_flight(conn_in):
    """RFC 2018 §4: SACK blocks mark what the receiver holds; a block beyond SND.MAX was never sent."""
    c = conn_in(State.ESTABLISHED)
    c.tcb.sack_ok = True
    c.send(b"d" * (6 * MSS), 0.0)
    c.segments_to_send(0.0)
    c.recovery.on_sack(_sack((1, 2), (2, 3), (4, 5)).sack_blocks, ISS + 1, 0, 0.01)
    c.recovery.on_sack(_sack((7, 9)).sack_blocks, ISS + 1, 0, 0.01)
    board = c.recovery.board
    assert [i for i, rec in enumerate(board) if rec.sacked] == [1, 2, 4]
    assert board.sacked_bytes == 3 * MSS


def test_established_sack_recovery_retransmits_each_hole_once(conn_in):
    """RFC 6675 §5: with 3 segments' worth SACKed, the holes below the highest SACK are resent, not the rest."""
    c = conn_in(State.ESTABLISHED)
    c.tcb.sack_ok = True
    c.send(b"d" * (6 * MSS), 0.0)
    c.segments_to_send(0.0)
    # segments 0 and 3 were lost; 1, 2, 4 and 5 arrive and are SACKed
    c.receive_segment(seg(".", IRS + 1, ISS + 1, options=_sack((1, 3))), 0.01)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, options=_sack((4, 6), (1, 3))), 0.01)
    resent = sorted((s - ISS - 1) // MSS for _, s, _, data in sent(c, 0.01) if data)
    assert resent == [0, 3]
    events = c.counters.events()
    assert (events.sack_recoveries, events.fast_retransmits) == (1, 2)  # one recovery, two resends


def test_established_sacking_acks_with_growing_window_count_as_duplicates(conn_in):
    """RFC 6675 §2: an ACK that SACKs new data is a duplicate ACK even when the window grew (Linux
    receivers grow it as they autotune), so a loss is repaired by fast retransmit, not by the RTO."""
    c = conn_in(State.ESTABLISHED)
    c.tcb.sack_ok = True
    c.send(b"d" * (6 * MSS), 0.0)
    c.segments_to_send(0.0)
    for i, win in enumerate((300, 310, 320), start=2):  # segment 0 lost; 1.. arrive
        c.receive_segment(seg(".", IRS + 1, ISS + 1, win=win, options=_sack((1, i))), 0.01)
    resent = [(s - ISS - 1) // MSS for _, s, _, data in sent(c, 0.01) if data]
    assert resent == [0]
    assert c.counters.events().sack_recoveries == 1


def test_established_data_segments_leave_room_for_our_sack_blocks(conn_in):
    """RFC 9293 §3.7.1: the MSS bounds data plus options; with SACK blocks to report, a full segment
    shrinks by the option's size (as Linux's tcp_current_mss), so the packet still fits the MTU."""
    c = conn_in(State.ESTABLISHED)
    c.tcb.sack_ok = True
    c.receive_segment(seg(".", IRS + 101, ISS + 1, b"x" * 100), 0.0)  # out of order: one SACK block owed
    sent(c, 0.0)
    c.send(b"d" * (2 * MSS), 0.0)
    out = c.segments_to_send(0.0)
    assert [len(s.payload) for s in out] == [MSS - 12, MSS - 12, 24]
    assert all(len(s.options.sack_blocks) == 1 for s in out)
