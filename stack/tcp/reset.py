"""The RST that answers a segment (RFC 9293 §3.10.7.1, also Linux tcp_v4_send_reset)."""

from __future__ import annotations

from stack.wire.segment import Flags, Segment
from stack.wire.seq import seq_add


def reset_for(seg: Segment) -> Segment | None:
    """<SEQ=SEG.ACK><CTL=RST> if the segment had an ACK, else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>."""
    if seg.flags & Flags.RST:
        return None  # never answer a reset
    if seg.flags & Flags.ACK:
        return Segment(seg.dst_port, seg.src_port, seg.ack, 0, Flags.RST, 0)
    return Segment(seg.dst_port, seg.src_port, 0, seq_add(seg.seq, seg.seg_len), Flags.RST | Flags.ACK, 0)
