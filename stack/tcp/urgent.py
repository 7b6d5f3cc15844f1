"""Urgent data received (RFC 9293 §3.8.5, RFC 6093), as Linux takes it.

The urgent pointer names the byte before it: SEG.SEQ + SEG.UP - 1 is the urgent byte (Linux
tcp_check_urg; RFC 6093 §2 notes that this is what implementations do, against RFC 1122's reading). A
read stops before that byte (the mark); unless the urgent data is read in-line (SO_OOBINLINE,
`TcpConfig.urgent_inline`), the byte is then left out of the stream and only recv(MSG_OOB) reads it
(tcp_recv_urg). A newer pointer replaces an older one; one that names a byte already read is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from stack.wire.segment import Flags, Segment
from stack.wire.seq import seq_add, seq_gt, seq_lt, seq_sub

if TYPE_CHECKING:
    from stack.tcp.connection import Connection


@dataclass(slots=True)
class Urgent:
    seq: int  # the urgent byte's sequence number
    byte: int | None = None  # its value once it arrived (Linux TCP_URG_VALID); None: not yet
    read: bool = False  # recv(MSG_OOB) took it (TCP_URG_READ)


def copied_seq(conn: Connection) -> int:
    """The next byte the application reads (Linux copied_seq)."""
    return seq_sub(conn.tcb.rcv_nxt, len(conn.receiver)) & 0xFFFFFFFF


def segment_arrived(conn: Connection, seg: Segment, rcv_nxt: int) -> None:
    """An accepted segment (Linux tcp_urg): a new pointer, and the urgent byte if this segment holds it.
    `rcv_nxt` is RCV.NXT before the segment's text was taken."""
    if seg.flags & Flags.URG:
        _new_pointer(conn, seg, rcv_nxt)
    urgent = conn.urgent
    if urgent is not None and urgent.byte is None:
        offset = seq_sub(urgent.seq, seg.seq) - (1 if seg.flags & Flags.SYN else 0)
        if 0 <= offset < len(seg.payload):
            urgent.byte = seg.payload[offset]


def _new_pointer(conn: Connection, seg: Segment, rcv_nxt: int) -> None:
    ptr = seq_add(seg.seq, seg.urgent - 1 if seg.urgent else 0)
    copied = copied_seq(conn)
    if seq_gt(copied, ptr) or seq_lt(ptr, rcv_nxt):
        return  # already read, or in text already received: never replayed
    urgent = conn.urgent
    if urgent is not None and not seq_gt(ptr, urgent.seq):
        return  # the same pointer again, or an older one
    if urgent is not None and urgent.seq == copied and copied != rcv_nxt and not conn.config.urgent_inline:
        conn.receiver.read(1)  # the previous urgent byte sits at the read point: out of the stream now
    conn.urgent = Urgent(ptr)


def clip_read(conn: Connection, max_bytes: int) -> int:
    """How much a read may take: it stops before the mark; at the mark the urgent byte is left out of
    the stream (not in-line) and the read goes on after it."""
    urgent = conn.urgent
    assert urgent is not None
    offset = seq_sub(urgent.seq, copied_seq(conn))
    if offset == 0 and len(conn.receiver) and not conn.config.urgent_inline:
        conn.receiver.read(1)
    elif 0 < offset and (max_bytes < 0 or offset < max_bytes):
        return offset
    return max_bytes


def after_read(conn: Connection) -> None:
    """Once the read point passed the urgent byte, there is no urgent data any more."""
    urgent = conn.urgent
    if urgent is not None and seq_gt(copied_seq(conn), urgent.seq):
        conn.urgent = None


def at_mark(conn: Connection) -> bool:
    """SIOCATMARK: the next byte to read is the urgent byte."""
    return conn.urgent is not None and conn.urgent.seq == copied_seq(conn)


def readable_bytes(conn: Connection) -> int:
    """SIOCINQ (Linux tcp_inq): the bytes queued to read; while an urgent byte out of the stream waits
    ahead (it arrived, and was not read past), only those before its mark, which is where a read stops."""
    queued = len(conn.receiver)
    urgent = conn.urgent
    if urgent is None or conn.config.urgent_inline:
        return queued
    before = seq_sub(urgent.seq, copied_seq(conn))
    return before if 0 <= before < queued else queued


def pending(conn: Connection) -> bool:
    """An urgent byte arrived and recv(MSG_OOB) has not taken it (POLLPRI)."""
    urgent = conn.urgent
    return urgent is not None and urgent.byte is not None and not urgent.read and not conn.config.urgent_inline
