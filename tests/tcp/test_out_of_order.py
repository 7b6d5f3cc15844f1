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
        held.add(RCV_NXT, at(left), b"x" * (right - left), truesize, 0)
        held.note_arrival(at(left), at(right))
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
    assert moved == [(200, 700, 0, True), (100, 700, 0, False)]  # the second began at 150
    assert freed == 700 and held.memory == 0 and not held


def test_out_of_order_hole_filled_keeps_what_lies_beyond_the_next_hole():
    """Only the run at RCV.NXT is released; a run behind another hole stays held, charged."""
    held = holding((100, 200), (300, 400), truesize=600)
    data, moved, freed = held.pop_ready(at(100))
    assert (len(data), moved, freed) == (100, [(100, 600, 0, True)], 0)
    assert held.bytes_held == 100 and held.memory == 600


def test_out_of_order_bounds_drop_frees_the_packets_no_run_covers():
    """Past its bound on runs the queue drops the data furthest from RCV.NXT (Linux tcp_prune_ofo_queue),
    and the packets of that data are no longer charged."""
    held = OutOfOrder(1 << 20, 2)
    for left in (100, 300):
        assert held.add(RCV_NXT, at(left), b"x" * 50, 500, 0) == (False, 500)
    assert held.add(RCV_NXT, at(500), b"x" * 50, 500, 0)[0]
    assert held.memory == 1000 and held.bytes_held == 100


def test_out_of_order_blocks_go_latest_arrival_first():
    """RFC 2018 §4: the first SACK block is the one of the most recently received segment, then the others
    in the order their data last arrived."""
    held = holding((100, 200), (300, 400), (500, 600))
    held.add(RCV_NXT, at(300), b"x" * 10, 100, 0)
    held.note_arrival(at(300), at(310))
    assert held.blocks(3) == (block(300, 400), block(500, 600), block(100, 200))
    assert held.blocks(2) == (block(300, 400), block(500, 600))


def test_out_of_order_fin_held_takes_a_sequence_number_in_its_block():
    """A FIN held behind a hole is reported too (Linux: its packet's end_seq): in the block of the data it
    ends, or in a block of its own; once the hole is filled it is taken."""
    held = holding((100, 200))
    held.hold_fin(at(200))
    assert held.blocks(4) == (block(100, 201),)
    held.hold_fin(at(300))
    held.note_arrival(at(300), at(301))
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


def test_out_of_order_segment_continuing_a_packet_with_room_is_copied_into_it():
    """Linux tcp_ooo_try_coalesce: a segment that begins where a held packet ends and fits the room left
    after its data is copied there, and costs no memory of its own."""
    held = OutOfOrder(1 << 20, 64)
    assert held.add(RCV_NXT, at(100), b"x" * 100, 832, 156) == (False, 832)
    assert held.add(RCV_NXT, at(200), b"y" * 100, 832, 52) == (False, 0)
    assert held.add(RCV_NXT, at(300), b"z" * 100, 832, 52) == (False, 832)  # 56 bytes of room left: too few
    assert held.memory == 2 * 832 and held.blocks(4) == (block(100, 400),)


def test_out_of_order_collapse_copies_packets_that_touch_into_one():
    """Linux tcp_collapse_ofo_queue: a range of held packets that touch is copied into compact packets
    (1000 bytes: one of 2304, alloc_skb's), each old one freed; the bytes held stay as they were."""
    held = OutOfOrder(1 << 20, 64)
    for i in range(10):
        held.add(RCV_NXT, at(100 + 100 * i), b"x" * 100, 832, 0)
    assert held.collapse(RCV_NXT, 8000, 128) == (10, 2304, 10 * 832)
    assert held.memory == 2304 and held.blocks(4) == (block(100, 1100),)
    assert held.add(RCV_NXT, at(1100), b"y" * 100, 832, 0) == (False, 0)  # its room takes the next 100


def test_out_of_order_collapse_leaves_lone_small_packets():
    """Linux tcp_collapse_ofo_queue: a range of one packet smaller than a page is not copied, and once such
    packets exceed an eighth of the buffer nothing more is tried, not even a range that could be."""
    held = OutOfOrder(1 << 20, 64)
    for left in (100, 300, 500, 600):
        held.add(RCV_NXT, at(left), b"x" * 100, 832, 0)
    assert held.collapse(RCV_NXT, 8000, 128) == (0, 0, 0)  # 832 + 832 > 8000 / 8 before the range at 500
    assert held.collapse(RCV_NXT, 16000, 128) == (2, 832, 2 * 832)  # an eighth is 2000: it gets there
    assert held.memory == 3 * 832


def test_out_of_order_prune_drops_from_the_top_an_eighth_of_the_buffer_at_least():
    """Linux tcp_prune_ofo_queue: held packets go from the highest sequence number down, an eighth of the
    buffer (`goal`) at a time, until they freed what the memory exceeds; the bytes above the packets left
    go with them, a FIN held too."""
    held = holding((100, 200), (300, 400), (500, 600), (700, 800), truesize=832)
    held.hold_fin(at(800))
    assert held.prune(RCV_NXT, RCV_NXT, 1000, 100, False) == 2 * 832
    assert held.memory == 2 * 832 and held.bytes_held == 200 and held.queue.fin_seq is None


def test_out_of_order_prune_keeps_what_lies_below_the_arriving_segment():
    """Linux tcp_prune_ofo_queue: no held packet that the arriving segment begins above is dropped; one
    that would be held highest prunes nothing."""
    held = holding((100, 200), (300, 400), (500, 600), truesize=832)
    assert held.prune(at(700), RCV_NXT, 1000, 100, False) == 0
    assert held.prune(at(350), RCV_NXT, 100, 5000, False) == 832
    assert held.blocks(4) == ()  # the blocks were reset (tcp_sack_reset)


def test_out_of_order_prune_forgets_the_blocks_until_data_arrives_again():
    """Linux tcp_sack_reset: after pruning, the ACKs report no held data until a segment arrives; then its
    own block, not the run it joins; a segment repeating held data reports what it repeats."""
    held = holding((100, 200), (300, 400), (500, 600), truesize=832)
    held.prune(RCV_NXT, RCV_NXT, 100, 1, False)
    assert held.blocks(4) == () and held.block_count() == 0 and held.bytes_held == 200
    held.add(RCV_NXT, at(400), b"x" * 100, 832, 0)
    held.note_arrival(at(400), at(500))
    assert held.blocks(4) == (block(400, 500),)
    held.note_arrival(at(150), at(180))  # a repeat: not added, but reported
    assert held.blocks(4) == (block(150, 180), block(400, 500)) and held.block_count() == 2


def test_out_of_order_packet_whose_held_bytes_all_went_is_freed_once_nothing_is_held():
    """A packet the bounds cut (its top bytes dropped) stays charged while it holds bytes; once in-order data
    takes those and nothing is held any more, its memory is freed, not kept for bytes no run holds."""
    held = OutOfOrder(150, 64)
    held.add(RCV_NXT, at(100), b"x" * 100, 500, 0)
    assert held.add(RCV_NXT, at(200), b"y" * 100, 500, 0) == (True, 500)  # cut to [200, 250)
    held.add(RCV_NXT, at(150), b"z" * 100, 500, 0)  # [150, 250) repeats it all: no byte of its own above
    assert held.bytes_held == 150 and held.memory == 1500
    data, moved, freed = held.pop_ready(at(100))
    assert len(data) == 150 and not held.queue
    assert held.memory == 0 and freed + sum(packet[1] for packet in moved) == 1500
