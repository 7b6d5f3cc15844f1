"""Receive memory as Linux counts it (stack/tcp/rcv_space.py): truesize, windows from space, the first
window and the window scale."""

from stack.tcp import rcv_space


def test_memory_small_packet_costs_one_kmalloc_head():
    """A packet that fits a page's head is copied whole into it (Linux tun_alloc_skb): a 1040-byte IPv4
    packet takes a 2048-byte kmalloc plus the sk_buff, 2304 bytes, with 624 bytes of room after it."""
    assert rcv_space.truesize(1040) == (2304, 624)


def test_memory_tiny_packet_takes_a_small_head():
    """Heads of up to 576 bytes with their shared info come from Linux's cache of small heads
    (kmalloc_reserve, skbuff_small_head), not from kmalloc-512: a 50-byte segment (90-byte packet) and a
    100-byte one with timestamps (152) cost 832, as `ss -m` showed on Linux 6.18 under packetdrill; a
    200-byte one with timestamps (252) needs a 1024-byte kmalloc head."""
    assert rcv_space.truesize(90) == (832, 102)
    assert rcv_space.truesize(152) == (832, 40)
    assert rcv_space.truesize(252) == (1280, 388)


def test_memory_large_packet_costs_head_and_pages():
    """Beyond SKB_MAX_HEAD (3712 bytes) the rest goes to pages of up to 32 KB (alloc_skb_with_frags):
    4040 bytes cost a 4 KB head and one page, 20040 a head and a 16 KB page, 39040 a head, 32 KB and 4 KB."""
    assert rcv_space.truesize(4040) == (8448, 0)
    assert rcv_space.truesize(20040) == (20736, 0)
    assert rcv_space.truesize(39040) == (41216, 0)


def test_window_from_space_default_ratio_is_half():
    """tcp_win_from_space at TCP_DEFAULT_SCALING_RATIO: half the space, as tcp_adv_win_scale=1 was."""
    assert rcv_space.win_from_space(40000, rcv_space.DEFAULT_SCALING_RATIO) == 20000
    assert rcv_space.win_from_space(-100, 128) < 0  # overcommitted memory offers nothing


def test_initial_window_whole_segments_within_clamp():
    """tcp_select_initial_window: the space in whole segments of the MSS (less the timestamp option when
    both ends use it), never more than the clamp; a space below one segment is offered as it is."""
    assert rcv_space.initial_window(20000, 1460, 1 << 30) == 18980
    assert rcv_space.initial_window(65536, 1448, 1 << 30) == 65160
    assert rcv_space.initial_window(20000, 1460, 10000) == 8760
    assert rcv_space.initial_window(1000, 1460, 1 << 30) == 1000


def test_window_shift_covers_space_within_rfc7323_limit():
    """RFC 7323 §2.3 as Linux chooses it: ilog2(space) - 15, at least 0 and at most 14."""
    assert rcv_space.window_shift(20000) == 0
    assert rcv_space.window_shift(1000000) == 4
    assert rcv_space.window_shift(6 << 20) == 7
    assert rcv_space.window_shift(32 << 20) == 10
    assert rcv_space.window_shift(1 << 40) == 14
