"""A write into the send buffer, and when a writer may go on, as Linux's tcp_sendmsg and sk_stream_* do.

Linux counts the send buffer in memory (sk_wmem_queued: the bytes and each skb's overhead,
send_buffer.py), against sk_sndbuf (tcp_wmem[1], or SO_SNDBUF doubled):
- a write fills the last unsent skb up to the size goal (half the peer's largest window in whole
  segments, at most 64 KB: tcp_xmit_size_goal), and starts a new skb only while the queue is below
  sk_sndbuf and the unsent bytes below TCP_NOTSENT_LOWAT (sk_stream_memory_free); so the last skb may
  take the queue past sk_sndbuf;
- a full skb that is the next to send lets one packet go at once (tcp_push_one), and the unsent rest of
  it, an skb of its own, takes more of the write; when the write has run more than half the peer's
  largest window past the last PSH, the full skb is marked PSH and the queue is pushed (forced_push,
  tcp_mark_push), and the mark goes on with the skb's end as the write adds to it;
- a blocked writer wakes, and poll() says POLLOUT, once the free room is half of what is queued: a third
  of the buffer (sk_stream_write_space, __sk_stream_is_writeable), with fewer than half the low-water
  mark unsent;
- unless SO_SNDBUF fixed it, sk_sndbuf grows to twice the congestion window (at least the initial one)
  in segments of the worst-case skb size, at most to tcp_wmem[2] (tcp_sndbuf_expand): after the
  handshake, and while a writer waits, whenever the first packet of new data a send attempt lets go, or
  an arriving segment's send attempt that sends none, leaves cwnd unfilled (tcp_check_space, asked from
  tcp_event_new_data_sent and tcp_data_snd_check; tcp_should_expand_sndbuf).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from stack.tcp.memory import FORCED_SEND
from stack.tcp.rcv_space import TIMESTAMP_OPTION
from stack.tcp.receiver import DEFAULT_MSS
from stack.tcp.send_buffer import SKB_OVERHEAD
from stack.wire.seq import seq_add, seq_ge, seq_sub

if TYPE_CHECKING:
    from stack.tcp.connection import Connection
    from stack.tcp.tcb import Tcb

_MIN_HEADER_AND_DATA: Final = 68  # the floor tcp_bound_to_half_wnd keeps: 68 bytes, header included
_TCP_HEADER: Final = 20
_GSO_MAX: Final = 65536  # Linux's largest super-segment (sk_gso_max_size), the ceiling of the size goal
_MAX_TCP_HEADER: Final = 192  # room Linux reserves in an skb for the headers (L1_CACHE_ALIGN(128 + MAX_HEADER);
# measured on Linux 6.18, x86-64: the send buffer it sizes for a peer's MSS, 46080 bytes up to 1536)
_SHINFO: Final = 320  # SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86-64
_SK_BUFF: Final = 256  # SKB_DATA_ALIGN(sizeof(struct sk_buff))
_PACING_SHIFT: Final = 10  # sk_pacing_shift: a GSO packet holds about 1 ms of the pacing rate
_TSO_RTT_LOG: Final = 9  # tcp_tso_rtt_log: small RTTs allow larger GSO packets


def mss_now(conn: Connection) -> int:
    """The MSS segments are cut to now: the cached one less the SACK option's room (Linux tcp_current_mss)."""
    return mss_cache(conn.tcb) - conn.receiver.sack_option_bytes()


def mss_cache(tcb: Tcb) -> int:
    """The MSS agreed, bounded by the peer's largest window: what segments are cut to, and what tcp_info
    and TCP_MAXSEG report (Linux mss_cache)."""
    return bounded_mss(tcb.snd_mss, tcb.max_snd_wnd, tcb.ts_ok)


def bounded_mss(mss: int, max_wnd: int, ts_ok: bool) -> int:
    """No segment larger than half the peer's largest window, so that two are in flight, or than all of it
    when that is at most 536 bytes (no use cutting a tiny window finer); never below 68 bytes of TCP header
    and data (Linux tcp_bound_to_half_wnd, which tcp_sync_mss applies whenever that window grows)."""
    cutoff = max_wnd >> 1 if max_wnd > DEFAULT_MSS else max_wnd  # (Linux TCP_MSS_DEFAULT, the same 536)
    if cutoff and mss > cutoff:
        return max(cutoff, _MIN_HEADER_AND_DATA - (_TCP_HEADER + TIMESTAMP_OPTION if ts_ok else _TCP_HEADER))
    return mss


def size_goal(conn: Connection) -> int:
    """How many bytes an skb takes before a write starts the next: whole segments of a super-segment bounded
    as segments are (Linux tcp_xmit_size_goal)."""
    mss = mss_now(conn)
    tcb = conn.tcb
    return max(mss, bounded_mss(_GSO_MAX, tcb.max_snd_wnd, tcb.ts_ok) // mss * mss)


def gso_segments(conn: Connection, mss: int) -> int:
    """Segments in one GSO packet (Linux tcp_tso_autosize): about 1 ms at the pacing rate Linux keeps
    whether or not anything paces by it (Connection.kept_pacing_rate), more for a small minimum RTT, at
    least tcp_min_tso_segs (or the controller's own minimum, BBR's)."""
    cc = conn.cc
    rate = conn.kept_pacing_rate()
    if rate is None:  # no RTT sample yet: no bound but the largest packet
        rate = float(_GSO_MAX << _PACING_SHIFT)
    size = rate / (1 << _PACING_SHIFT)
    min_rtt = conn.recovery.rack.min_rtt
    if min_rtt is not None:
        r = int(min_rtt * 1e6) >> _TSO_RTT_LOG
        if r < 32:
            size += _GSO_MAX >> r
    least = cc.min_tso_segs(conn.config.min_tso_segs)
    return max(max(int(min(size, _GSO_MAX)) // mss, least), 1)  # a config of 0: still one


def memory_free(conn: Connection, wake: int = 0) -> bool:
    """A write may start a new skb (sk_stream_memory_free; tcp_stream_memory_free with `wake`)."""
    sender = conn.sender
    if sender.buffer.truesize >= sender.sndbuf:
        return False
    return sender.unsent(conn.tcb.snd_nxt) << wake < conn.config.notsent_lowat


def writeable(conn: Connection) -> bool:
    """A blocked writer wakes, poll() reports POLLOUT (Linux __sk_stream_is_writeable(sk, 1))."""
    sender = conn.sender
    queued = sender.buffer.truesize
    return sender.sndbuf - queued >= queued // 2 and memory_free(conn, wake=1)


def send_space(conn: Connection) -> int:
    """Bytes a write could still queue before the buffer is full (0: a write would wait)."""
    buf = conn.sender.buffer
    budget = conn.memory
    if budget is not None and budget.exhausted:  # only an empty buffer takes a little more
        return 0 if len(buf) else FORCED_SEND
    if not memory_free(conn):
        return 0
    return max(conn.sender.sndbuf - buf.truesize - SKB_OVERHEAD, 1)


def write(conn: Connection, data: bytes | bytearray | memoryview, now: float) -> int:
    """Queue what the buffer takes of `data` (Linux tcp_sendmsg_locked); returns how many bytes."""
    sender = conn.sender
    buf = sender.buffer
    marks = sender.marks
    goal = size_goal(conn)
    budget = conn.memory
    view = memoryview(data).cast("B")  # the buffer takes it part by part (a kept write grows in place)
    taken, total = 0, len(view)
    while taken < total:
        tail = buf.tail()
        room = 0
        before = buf_end(conn)
        # the last skb takes more while it is unsent and ends no record (tcp_skb_can_collapse_to)
        if tail is not None and seq_ge(tail[0], conn.tcb.snd_max) and not marks.ends_record(before):
            room = goal - tail[1]
        grows = room > 0  # the bytes join the last skb, which may be the rest of one a packet cut
        if room <= 0:
            if not memory_free(conn):
                break
            if not taken:  # the last write's PSH stays on its skb: no byte of this write joins it
                marks.keep_pushed(conn.tcb.snd_una)
            buf.start_skb()
            room = goal
        limit = room
        if budget is not None and budget.exhausted:  # the stack's memory budget (memory.py)
            limit = 0 if len(buf) else min(room, FORCED_SEND)
        n = buf.append(view, limit, total - taken, taken)
        if not n:
            break
        end = seq_add(before, n)
        if grows:
            marks.appended(before, end, first=not taken)
        taken += n
        if taken == total:
            break
        tail = buf.tail()
        if tail is None or tail[1] < goal:
            continue
        if forced_push(conn, end):
            marks.force_push(end)
            conn.push(now)
        elif tail[0] == conn.tcb.snd_nxt:  # the full skb is the next to send (tcp_push_one)
            conn.push(now, one=True)
    return taken


def buf_end(conn: Connection) -> int:
    """The sequence number after the last byte queued (Linux write_seq)."""
    buf = conn.sender.buffer
    return seq_add(buf.seq, len(buf))


def forced_push(conn: Connection, write_seq: int) -> bool:
    """More than half the peer's largest window was written since the last PSH (Linux forced_push)."""
    return seq_sub(write_seq, conn.sender.marks.pushed_seq(conn.sender.buffer.seq)) > conn.tcb.max_snd_wnd // 2


def expand_sndbuf(conn: Connection) -> None:
    """Grow sk_sndbuf to hold twice the congestion window in worst-case skbs (Linux tcp_sndbuf_expand)."""
    if conn.config.send_buffer_locked:
        return
    mss = max(conn.tcb.snd_mss, conn.config.mss if not conn.tcb.snd_mss else 0)
    per_mss = 1 << (mss + _MAX_TCP_HEADER + _SHINFO - 1).bit_length()  # roundup_pow_of_two
    per_mss += _SK_BUFF
    segments = max(max(conn.config.initial_window_segments, conn.cc.cwnd // max(mss, 1)), conn.recovery.reordering + 1)
    wanted = min(2 * segments * per_mss, conn.config.send_buffer_max)
    if conn.sender.sndbuf < wanted:
        conn.sender.sndbuf = wanted


def should_expand(conn: Connection) -> bool:
    """Linux tcp_should_expand_sndbuf: not fixed by SO_SNDBUF, no memory pressure, and the congestion
    window (PRR's in a recovery, which Linux sets as cwnd) not filled, in packets (tcp_packets_in_flight)."""
    budget = conn.memory
    if conn.config.send_buffer_locked or (budget is not None and budget.pressure):
        return False
    recovery = conn.recovery
    cwnd = conn.cc.cwnd if recovery.send_window is None else recovery.send_window
    return recovery.in_flight < max(cwnd // conn.tcb.snd_mss, 1)
