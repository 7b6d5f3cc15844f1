"""The receiver's out-of-order part (stack/tcp/out_of_order.py) on its own: what it holds, the memory of the
packets it was charged as, and the SACK and D-SACK blocks that report it. Sequence numbers are offsets
from RCV_NXT; the scripts in tests/scripts/options/ check the same rules on whole connections."""

from __future__ import annotations

from stack.tcp.out_of_order import OutOfOrder

RCV_NXT = 0xFFFFF000  # close to the wrap: every rule must hold across it
MASK = 0xFFFFFFFF


def at(offset: int) -> int:
    return (RCV_NXT + offset) & MASK


def block(left: int, right: int) -> tuple[int, int]:
    return (at(left), at(right))


def holding(*runs: tuple[int, int], truesize: int = 1000) -> OutOfOrder:
    held = OutOfOrder(1 << 20, 64)
    for left, right in runs:
        held.add(RCV_NXT, at(left), b"x" * (right - left), truesize)
        held.note_arrival(at(left))
    return held


def test_out_of_order_segment_within_a_held_run_is_a_repeat_reported_whole():
    """RFC 2883 §4: a segment all of whose data is held already is reported whole as the D-SACK."""
    held = holding((100, 300))
    assert held.repeat(at(150), at(250), None) == (True, block(150, 250))


def test_out_of_order_segment_reaching_past_its_run_reports_the_part_held():
    """RFC 2883 §4 (Linux tcp_data_queue_ofo: tcp_dsack_set): a segment beginning inside a held run and
    reaching past it repeats that run from its start; the rest is new."""
    held = holding((100, 300))
    assert held.repeat(at(200), at(400), None) == (False, block(200, 300))


def test_out_of_order_segment_covering_runs_reports_them_while_they_touch():
    """RFC 2883 §4 (tcp_dsack_extend): beginning with a run, the D-SACK is that run, grown by the runs the
    segment covers only while they touch it; a run beyond a gap is not added."""
    held = holding((100, 200), (300, 400))
    assert held.repeat(at(100), at(450), None) == (False, block(100, 200))


def test_out_of_order_segment_beyond_what_is_held_keeps_the_dsack_owed():
    """A segment that repeats nothing leaves the D-SACK owed as it was."""
    held = holding((100, 200))
    assert held.repeat(at(500), at(600), block(10, 20)) == (False, block(10, 20))


def test_out_of_order_in_order_data_repeating_a_run_reports_it_up_to_its_end():
    """RFC 2883 §4 (Linux tcp_ofo_queue): in-order data reaching into a held run reports that run, up to the
    data's end."""
    held = holding((100, 300))
    assert held.first_repeat(at(200)) == block(100, 200)
    assert held.first_repeat(at(100)) is None


def test_out_of_order_hole_filled_moves_packets_with_their_own_bytes():
    """RFC 9293 §3.10.7.4: held data at RCV.NXT follows the in-order data; each packet moves to the
    receive queue with the bytes no earlier packet brought, and one with none left is freed."""
    held = holding((100, 300), (150, 250), (250, 400), truesize=700)
    data, moved, freed = held.pop_ready(at(100))
    assert len(data) == 300
    assert moved == [[200, 700, 0, 200], [100, 700, 0, 100]]
    assert freed == 700 and held.memory == 0 and not held


def test_out_of_order_hole_filled_keeps_what_lies_beyond_the_next_hole():
    """Only the run at RCV.NXT is released; a run behind another hole stays held, charged."""
    held = holding((100, 200), (300, 400), truesize=600)
    data, moved, freed = held.pop_ready(at(100))
    assert (len(data), moved, freed) == (100, [[100, 600, 0, 100]], 0)
    assert held.bytes_held == 100 and held.memory == 600


def test_out_of_order_bounds_drop_frees_the_packets_no_run_covers():
    """Past its bound on runs the queue drops the data furthest from RCV.NXT (Linux tcp_prune_ofo_queue),
    and the packets of that data are no longer charged."""
    held = OutOfOrder(1 << 20, 2)
    for left in (100, 300):
        assert not held.add(RCV_NXT, at(left), b"x" * 50, 500)
    assert held.add(RCV_NXT, at(500), b"x" * 50, 500)
    assert held.memory == 1000 and held.bytes_held == 100


def test_out_of_order_blocks_go_latest_arrival_first():
    """RFC 2018 §4: the first SACK block is the one of the most recently received segment, then the others
    in the order their data last arrived."""
    held = holding((100, 200), (300, 400), (500, 600))
    held.add(RCV_NXT, at(300), b"x" * 10, 100)
    held.note_arrival(at(300))
    assert held.blocks(3) == (block(300, 400), block(500, 600), block(100, 200))
    assert held.blocks(2) == (block(300, 400), block(500, 600))


def test_out_of_order_fin_held_takes_a_sequence_number_in_its_block():
    """A FIN held behind a hole is reported too (Linux: its packet's end_seq): in the block of the data it
    ends, or in a block of its own; once the hole is filled it is taken."""
    held = holding((100, 200))
    held.hold_fin(at(200))
    assert held.blocks(4) == (block(100, 201),)
    held.hold_fin(at(300))
    held.note_arrival(at(300))
    assert held.blocks(4) == (block(300, 301), block(100, 200)) and held.block_count() == 2
    assert not held.take_fin(at(200)) and held.take_fin(at(300)) and held.queue.fin_seq is None


def test_out_of_order_segment_beyond_two_blocks_flushes_the_held_ack():
    """Linux tcp_sack_new_ofo_skb: a segment extending one of the first two blocks sends nothing early; one
    that starts a third block, or extends it, sends the held ACK with the blocks as they were (the one it
    extends grown)."""
    held = holding((100, 200), (300, 400), (500, 600))
    assert held.flush_blocks(at(600), at(650), 3) is None  # extends the newest block, the first
    assert held.flush_blocks(at(200), at(250), 3) == (block(500, 600), block(300, 400), block(100, 250))
    assert held.flush_blocks(at(800), at(900), 3) == (block(500, 600), block(300, 400), block(100, 200))
