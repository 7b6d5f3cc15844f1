"""Receive memory as Linux counts it, and the windows it allows (tcp_win_from_space and its callers).

Linux charges each received packet's whole buffer (its truesize: data, headroom and bookkeeping) to the
socket's receive buffer sk_rcvbuf, which is twice SO_RCVBUF (socket(7)) or tcp_rmem[1]. The window it
offers for a space is the part of it that data fills: space * scaling_ratio / 256, the ratio being the
data-to-truesize ratio of the last packet whose segment size changed (tcp_measure_rcv_mss), half until
then (TCP_DEFAULT_SCALING_RATIO, the old tcp_adv_win_scale=1).

The truesize model is that of a packet written to a TUN device with a virtio-net header, the path of
tcpstack's own device and of packetdrill: the first GOOD_LINEAR bytes of the IP packet go into a
kmalloc'd head (a small one from the cache of small heads), the rest into pages of up to 32 KB
(tun_get_user, alloc_skb_with_frags).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from stack.wire.segment import Segment

DEFAULT_SCALING_RATIO: Final = 128  # Linux TCP_DEFAULT_SCALING_RATIO: a window of half the space
RATIO_SHIFT: Final = 8  # Linux TCP_RMEM_TO_WIN_SCALE
RMEM_MAX: Final = 212992  # Linux net.core.rmem_max: the window scale is chosen for at least this
MAX_WSCALE: Final = 14  # RFC 7323 §2.3
MIN_WINDOW_CLAMP: Final = 2304  # Linux SOCK_MIN_RCVBUF / 2
TIMESTAMP_OPTION: Final = 12  # bytes the timestamp option takes in every segment (RFC 7323 §3)

PAGE: Final = 4096
_HEADROOM: Final = 64  # NET_SKB_PAD: reserved before a TUN packet
_SHARED_INFO: Final = 320  # SKB_DATA_ALIGN(sizeof(struct skb_shared_info))
_SKB: Final = 256  # SKB_DATA_ALIGN(sizeof(struct sk_buff))
GOOD_LINEAR: Final = PAGE - _HEADROOM - _SHARED_INFO  # SKB_MAX_HEAD: the most a one-page head holds
COLLAPSED_MAX: Final = PAGE - _SHARED_INFO  # SKB_MAX_ORDER(0, 0): what one packet tcp_collapse makes holds
# SKB_SMALL_HEAD_CACHE_SIZE: heads up to this size come from a cache of their own (skbuff_small_head in
# /proc/slabinfo: 576 on this project's reference kernel, 6.18 x86-64)
_SMALL_HEAD: Final = 576
_KMALLOC_SIZES: Final = (1024, 2048, 4096)


def _head_size(size: int) -> int:
    """The memory __alloc_skb takes for a head of `size` bytes and its shared info (kmalloc_reserve)."""
    size = -(-size // 64) * 64 + _SHARED_INFO  # SKB_DATA_ALIGN, on x86-64's 64-byte cache lines
    if size <= _SMALL_HEAD:
        return _SMALL_HEAD
    return next(s for s in _KMALLOC_SIZES if s >= size)


def _pages(size: int) -> int:
    """What alloc_skb_with_frags takes for `size` bytes: chunks of 32 KB, then smaller powers of two."""
    total, order = 0, 3
    while size > 0:
        while order and -(-size // PAGE) * PAGE < PAGE << order:
            order -= 1
        total += PAGE << order
        size -= PAGE << order
    return total


@lru_cache(maxsize=4096)  # every segment asks; a flow's segments come in a few sizes
def truesize(ip_bytes: int) -> tuple[int, int]:
    """The memory a received IP packet of `ip_bytes` costs (skb->truesize), and the room left after its
    data in its head, where a following small segment is copied for free (skb_try_coalesce)."""
    linear = min(ip_bytes, GOOD_LINEAR)
    head = _head_size(_HEADROOM + linear)
    tailroom = head - _SHARED_INFO - _HEADROOM - linear
    return head + _SKB + _pages(ip_bytes - linear), tailroom


def collapsed(size: int) -> tuple[int, int]:
    """The memory of a packet tcp_collapse makes to hold `size` bytes (alloc_skb, no headroom; at most
    COLLAPSED_MAX), and the room left after them."""
    head = _head_size(size)
    return head + _SKB, head - _SHARED_INFO - size


@lru_cache(maxsize=64)  # connections of one config share the int (thousands of idle ones: 28 bytes each)
def sk_rcvbuf(receive_buffer: int) -> int:
    """The receive memory for SO_RCVBUF `receive_buffer`: twice it, as Linux's sock_setsockopt."""
    return 2 * receive_buffer


def header_bytes(seg: Segment) -> int:
    """The IPv4 and TCP header bytes of an arriving segment, options as Linux pads them."""
    options = seg.options
    size = 40 + (TIMESTAMP_OPTION if options.timestamps is not None else 0)
    return size + (4 + 8 * len(options.sack_blocks) if options.sack_blocks else 0)


def win_from_space(space: int, ratio: int) -> int:
    """Linux tcp_win_from_space: the window `space` bytes of receive memory hold (negative stays negative)."""
    return space * ratio >> RATIO_SHIFT


def window_shift(space: int) -> int:
    """The window scale Linux chooses to cover `space` bytes: ilog2(space) - 15, within 0..14."""
    return min(max(space.bit_length() - 1 - 15, 0), MAX_WSCALE)


def buffer_clamp(full_space: int, locked: bool) -> int:
    """The most any window may offer: the buffer's full space when SO_RCVBUF set it (`locked`), else the
    largest scaled window."""
    return full_space if locked else 0xFFFF << MAX_WSCALE


def first_window(full_space: int, locked: bool, mss: int) -> int:
    """The window of our SYN or SYN,ACK from the full space of the receive buffer, within its clamp."""
    return initial_window(full_space, mss, buffer_clamp(full_space, locked))


def initial_window(full_space: int, mss: int, clamp: int) -> int:
    """The window of our SYN or SYN,ACK (tcp_select_initial_window): the full space within the clamp, in
    whole segments of `mss` (the MSS we offer, less the timestamp option when both use it)."""
    space = min(full_space, clamp)
    return space - space % mss if space > mss else space
