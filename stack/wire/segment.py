"""The parsed TCP segment value (smoltcp's `Repr`): what the TCP core consumes and produces.

Raw bytes are turned into a `Segment` by `stack.wire.codec` (C fast path) and back again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Final


class Flags(int):
    """The control bits (RFC 9293 §3.1) as plain ints: `Flags.ACK | Flags.PSH` and `flags & Flags.SYN` are
    int operations (an enum.IntFlag runs Python code for each, about 1 us, many times per segment).
    `Flags(x)` is an int equal to x; the constants are plain ints."""

    FIN: Final = 0x01
    SYN: Final = 0x02
    RST: Final = 0x04
    PSH: Final = 0x08
    ACK: Final = 0x10
    URG: Final = 0x20
    ECE: Final = 0x40
    CWR: Final = 0x80


_FLAG_LETTERS = (
    (Flags.SYN, "S"),
    (Flags.FIN, "F"),
    (Flags.RST, "R"),
    (Flags.PSH, "P"),
    (Flags.URG, "U"),
    (Flags.ECE, "E"),
    (Flags.CWR, "W"),
    (Flags.ACK, "."),
)


def flags_str(flags: int) -> str:
    """packetdrill/tcpdump-style letters: S F R P U E W and '.' for ACK."""
    return "".join(letter for bit, letter in _FLAG_LETTERS if flags & bit) or "none"


@dataclass(frozen=True, slots=True)
class TcpOptions:
    """Decoded TCP options. None/False/() means absent."""

    mss: int | None = None  # RFC 9293 §3.7.1
    wscale: int | None = None  # RFC 7323 §2
    sack_permitted: bool = False  # RFC 2018
    timestamps: tuple[int, int] | None = None  # (TSval, TSecr), RFC 7323 §3
    sack_blocks: tuple[tuple[int, int], ...] = ()  # (left, right) edges, at most 4


NO_OPTIONS = TcpOptions()


@dataclass(frozen=True, slots=True)
class Segment:
    """One TCP segment, addresses excluded (they live with the IP header / the connection)."""

    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int  # Flags' bits
    window: int  # raw 16-bit field, not scaled
    payload: bytes | memoryview = b""  # arriving: a view into the read batch; sent: a view of the send buffer
    options: TcpOptions = field(default=NO_OPTIONS)
    urgent: int = 0
    ecn: int = 0  # the IP header's ECN field (RFC 3168 §5): how it arrived, or what to send it with
    gso: int = 0  # sent: a run of segments of this payload size, for a device that cuts it (TSO); 0: one segment
    tos: int = 0  # sent: the IP TOS / IPv6 traffic class byte less its ECN field (IP_TOS, IPV6_TCLASS)
    df: bool = True  # sent over IPv4: Don't Fragment (RFC 1191 §3), unless IP_MTU_DISCOVER lets routers fragment

    @property
    def seg_len(self) -> int:
        """SEG.LEN: payload plus one for SYN and one for FIN (RFC 9293 §3.4)."""
        return len(self.payload) + (1 if self.flags & Flags.SYN else 0) + (1 if self.flags & Flags.FIN else 0)

    def __str__(self) -> str:
        s = f"TCP {self.src_port}>{self.dst_port} [{flags_str(self.flags)}] seq={self.seq}"
        if self.flags & Flags.ACK:
            s += f" ack={self.ack}"
        s += f" win={self.window} len={len(self.payload)}"
        o = self.options
        if o.mss is not None:
            s += f" mss={o.mss}"
        if o.wscale is not None:
            s += f" wscale={o.wscale}"
        if o.sack_permitted:
            s += " sackOK"
        if o.timestamps is not None:
            s += f" TS={o.timestamps[0]}/{o.timestamps[1]}"
        if o.sack_blocks:
            s += " sack=" + ",".join(f"{a}:{b}" for a, b in o.sack_blocks)
        return s


# The decoder builds a Segment (and most often a TcpOptions) for every arriving segment. A frozen dataclass's
# __init__ sets each field through object.__setattr__, 2-3x slower than setting the slots directly as here.
_new = object.__new__
_set_mss, _set_wscale, _set_sack_permitted, _set_timestamps, _set_sack_blocks = (
    getattr(TcpOptions, f.name).__set__ for f in fields(TcpOptions)
)
(
    _set_src_port,
    _set_dst_port,
    _set_seq,
    _set_ack,
    _set_flags,
    _set_window,
    _set_payload,
    _set_options,
    _set_urgent,
    _set_ecn,
    _set_gso,
    _set_tos,
    _set_df,
) = (getattr(Segment, f.name).__set__ for f in fields(Segment))


def tcp_options(
    mss: int | None,
    wscale: int | None,
    sack_permitted: bool,
    timestamps: tuple[int, int] | None,
    sack_blocks: tuple[tuple[int, int], ...],
) -> TcpOptions:
    """TcpOptions(mss, wscale, sack_permitted, timestamps, sack_blocks), every field given."""
    options = _new(TcpOptions)
    _set_mss(options, mss)
    _set_wscale(options, wscale)
    _set_sack_permitted(options, sack_permitted)
    _set_timestamps(options, timestamps)
    _set_sack_blocks(options, sack_blocks)
    return options


def timestamps_only(ts_val: int, ts_ecr: int) -> TcpOptions:
    """TcpOptions(timestamps=(ts_val, ts_ecr)): the options of nearly every segment of a connection."""
    options = _new(TcpOptions)
    _set_mss(options, None)
    _set_wscale(options, None)
    _set_sack_permitted(options, False)
    _set_timestamps(options, (ts_val, ts_ecr))
    _set_sack_blocks(options, ())
    return options


def parsed_segment(
    src_port: int,
    dst_port: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    payload: bytes | memoryview,
    options: TcpOptions,
    urgent: int,
    ecn: int,
    gso: int = 0,
) -> Segment:
    """Segment(src_port, ..., ecn, gso) of an arriving segment (`gso`: a coalesced one's segment size)."""
    seg = _new(Segment)
    _set_src_port(seg, src_port)
    _set_dst_port(seg, dst_port)
    _set_seq(seg, seq)
    _set_ack(seg, ack)
    _set_flags(seg, flags)
    _set_window(seg, window)
    _set_payload(seg, payload)
    _set_options(seg, options)
    _set_urgent(seg, urgent)
    _set_ecn(seg, ecn)
    _set_gso(seg, gso)
    _set_tos(seg, 0)
    _set_df(seg, True)
    return seg


def sent_segment(
    src_port: int,
    dst_port: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    payload: bytes | memoryview,
    options: TcpOptions,
    ecn: int,
    gso: int,
    tos: int,
    df: bool,
) -> Segment:
    """Segment(src_port, ..., options, ecn=, gso=, tos=, df=) of one we send (no urgent pointer): the output
    path makes one for every segment."""
    seg = parsed_segment(src_port, dst_port, seq, ack, flags, window, payload, options, 0, ecn, gso)
    _set_tos(seg, tos)
    _set_df(seg, df)
    return seg
