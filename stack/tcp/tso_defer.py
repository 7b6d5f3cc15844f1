"""Whether a packet of several segments waits for the next ACK, as Linux's tcp_tso_should_defer decides.

Linux sends a send queue as GSO packets of up to tcp_tso_autosize's segments. When only a little of the
congestion window (or of the peer's window) is free, a small packet now would be followed by another as
soon as the next ACK comes; so, outside fast and RTO recovery, a packet that could hold more waits for
that ACK when it is due within min(SRTT/2, 1 ms) and the socket sent something in the last millisecond.
A lone segment is never held here (Nagle decides for it), nor is the packet tcp_push_one or a loss probe
sends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from stack.tcp import write_queue
from stack.wire.seq import seq_sub

if TYPE_CHECKING:
    from stack.tcp.connection import Connection

SEND: Final = 0
CWND_LIMITED: Final = 1  # waits for room in the congestion window
RWND_LIMITED: Final = 2  # waits for the peer's window
WAITS: Final = 3  # all of it fits, yet so little that it waits for more data or room

_RECENT: Final = 0.001  # a send within the last millisecond allows waiting (avoids bursts after idle)
_WIN_DIVISOR: Final = 3  # tcp_tso_win_divisor: a third of the window free is worth sending at once
_ACK_SOON: Final = 0.001  # the ACK is due within this (or half the SRTT, if less)


def decide(conn: Connection, now: float, mss: int, window: int, flight: int, max_segs: int) -> int:
    """SEND, or why the packet from SND.NXT waits (Linux tcp_tso_should_defer): `mss` is the MSS segments
    are cut to now, `window` the congestion window and `flight` the packets in flight, `max_segs` the
    segments a GSO packet may hold (tcp_tso_autosize)."""
    recovery = conn.recovery
    sender = conn.sender
    if recovery.in_recovery or now - sender.last_transmit() > _RECENT:
        return SEND
    tcb = conn.tcb
    pos = tcb.snd_nxt
    skb_end = sender.buffer.skb_end(pos)
    if skb_end is None:
        return SEND
    skb_len = seq_sub(skb_end, pos)
    if skb_len <= mss:
        return SEND
    mss_cache = write_queue.mss_cache(tcb)
    send_win = tcb.snd_wnd - seq_sub(pos, tcb.snd_una)
    cong_win = (window - flight) * mss_cache
    limit = min(send_win, cong_win)
    if limit >= max_segs * mss_cache:  # a whole GSO packet may go
        return SEND
    buf_end = write_queue.buf_end(conn)
    if skb_end != buf_end and limit >= skb_len:  # an skb that gets no more data, and all of it may go
        return SEND
    if limit >= min(tcb.snd_wnd, window * mss_cache) // _WIN_DIVISOR:
        return SEND
    head_sent = recovery.board.head_sent_at()
    if head_sent is None:
        return SEND
    srtt = conn.rto.srtt or 0.0
    if head_sent + srtt - now > min(srtt / 2, _ACK_SOON):  # the next ACK is not due soon
        return SEND
    if cong_win < send_win:
        if cong_win <= skb_len:
            return CWND_LIMITED
    elif send_win <= skb_len:
        return RWND_LIMITED
    if sender.marks.ends_record(skb_end) or (sender.fin_queued and skb_end == buf_end):
        return SEND  # it will get no more data
    return WAITS
