"""Header prediction for ESTABLISHED (Van Jacobson's, as Linux's tcp_rcv_established fast path).

Two kinds of segment make up nearly all of a bulk transfer: the next in-order data segment and the pure ACK
that moves SND.UNA. For a segment predicted to be one of them, every check of RFC 9293 §3.10.7.4 has a known
outcome: it is acceptable (SEG.SEQ = RCV.NXT and its text fits the window we offered), it has no RST, SYN,
FIN or URG (flags ACK or ACK,PSH), SND.UNA =< SEG.ACK =< SND.MAX, its window is open and its right edge not
below SND.MAX, its timestamp passes PAWS, it has no SACK block and no CE mark. Such a segment skips the
checks and does exactly what they would do: take its timestamp if all that came before it was acknowledged
(RFC 7323 §4.3), record the window update (SND.WND, SND.WL1, SND.WL2), process the ACK through the same
calls as the full path, measure the segment's size (Linux's rcv_mss), append the text and schedule our ACK.
Anything else, and any state in which one of these steps would do more (data held out of order or a FIN held
behind a hole, memory pressure, a zero or shrunk window), takes the full path in segment_arrives.py.

Linux predicts only segments that repeat the window (its pred_flags hold it) and takes a window update
through its slow path, which is fast C. Here the slow path is the expensive one, and a Linux receiver
that autotunes its buffer changes its window on most ACKs of a bulk transfer, so an open window that
does not shrink is taken here too, and so is data that needs memory reserved while the buffer is within
its size (the reservation is all Linux's slow path would do with it). The counters keep Linux's meaning:
TCPHPHits and TCPHPAcks count only segments that repeat the window, and data only if the memory already
reserved took it (sk_forward_alloc). A buffer past its size with no reserve for the packet takes the full
path, which makes room (receiver.make_room).

Sequence comparisons are inlined: `(a - b) & 0xFFFFFFFF` is a - b modulo 2**32 (RFC 9293 §3.4), below
2**31 when a is at or after b.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from stack.tcp import rcv_space
from stack.tcp.ecn import CE
from stack.wire.segment import Flags, Segment

if TYPE_CHECKING:
    from stack.tcp.connection import Connection

# the two flag sets predicted
_ACK: Final = Flags.ACK
_ACK_PSH: Final = Flags.ACK | Flags.PSH
_MASK: Final = 0xFFFFFFFF
_HALF: Final = 0x80000000


def predicted(conn: Connection, seg: Segment, now: float) -> bool:
    """Process `seg` (the connection is ESTABLISHED) if it is predicted; False leaves it to the full path."""
    flags = seg.flags
    if flags != _ACK and flags != _ACK_PSH:
        return False
    tcb = conn.tcb
    seq = seg.seq
    if seq != tcb.rcv_nxt:
        return False
    ack = seg.ack
    acked = (ack - tcb.snd_una) & _MASK
    if acked >= _HALF or 0 < (ack - tcb.snd_max) & _MASK < _HALF:
        return False  # not SND.UNA =< SEG.ACK =< SND.MAX
    payload = seg.payload
    n = len(payload)
    if not n and not acked:
        return False  # a duplicate ACK or a window update
    snd_wnd = tcb.snd_wnd
    window = seg.window << tcb.snd_wscale
    if not snd_wnd or not window or conn.short_edge is not None:
        return False  # a window that closes, or was zero or shrunk (§3.8.6)
    newer = (seq - tcb.snd_wl1) & _MASK
    if newer >= _HALF or (not newer and (ack - tcb.snd_wl2) & _MASK >= _HALF):
        return False  # not newer than the last window update (§3.10.7.4 fifth check)
    if (ack + window - tcb.snd_max) & _MASK >= _HALF:
        return False  # the right edge lies below SND.MAX: the full path records the shrink
    options = seg.options
    if options.sack_blocks or seg.ecn == CE:
        return False
    receiver = conn.receiver
    ts = options.timestamps
    ts_ok = tcb.ts_ok
    if ts_ok and (ts is None or (ts[0] - receiver.ts_recent) & _MASK >= _HALF):
        return False  # no timestamp, or PAWS (RFC 7323 §5.3) drops it
    reserved = True
    if n:
        room = (tcb.rcv_adv - seq) & _MASK
        if room >= _HALF or n > room:
            return False  # beyond the window we offered
        if receiver.out_of_order:
            return False  # held data or a held FIN may follow it
        memory = receiver.memory
        if memory is not None and memory.pressure:
            return False
        if ts_ok and ts is not None:  # a sample of the receiver's RTT, judged by the segment size measured
            receiver.echo_seen(ts[1], conn.ts_val(now), n)  # before this one (Linux tcp_rcv_rtt_measure_ts)
        receiver.measure_segment(seg.gso or n, n, rcv_space.header_bytes(seg), flags)
        if not receiver.current_window():
            return False  # a closed window: the full path drops it
        reserved = receiver.predicts_room()  # else Linux's slow path takes it
        if not reserved:
            if receiver.rmem > receiver.rcvbuf:
                return False  # room to make (Linux tcp_prune_queue): the full path
            receiver.reserve_arriving()  # all the slow path would do here: not a hit

    if ts_ok and ts is not None:  # (with ts_ok, a segment without a timestamp returned False above)
        conn.ts_ecr_seen = ts[1]
        if seq == receiver.rcv_wup:  # all acknowledged before it: SEG.SEQ =< Last.ACK.sent (RFC 7323 §4.3)
            receiver.ts_recent = ts[0]
        if not n:
            receiver.last_tsecr = ts[1]  # a pure ACK is never a sample: its echo is only noted (as Linux)
    else:
        conn.ts_ecr_seen = 0
    same_window = window == snd_wnd
    if not same_window:  # the update rule of the fifth check, all of it for an open window that does not shrink
        tcb.snd_wnd = window
        if window > tcb.max_snd_wnd:
            tcb.max_snd_wnd = window
    tcb.snd_wl1 = seq
    tcb.snd_wl2 = ack
    conn.probes_out = 0  # an acceptable ACK: the peer is there (Linux tcp_ack)
    if acked:
        conn.on_ack_advanced(ack, now)
    if conn.recovery.after_ack(now, conn.rto.srtt):
        conn.window_reduced()
    if n:
        receiver.deliver(payload)
        receiver.after_data(n, now)
        receiver.schedule_ack(now, n, conn.rto.rto)
        if same_window and reserved:
            conn.counters.hp_hits += 1
    elif same_window:
        conn.counters.hp_acks += 1
    return True
