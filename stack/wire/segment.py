"""The parsed TCP segment value (smoltcp's `Repr`): what the TCP core consumes and produces.

Raw bytes are turned into a `Segment` by `stack.wire.codec` (C fast path) and back again. Both values are
dataclasses for their equality, hash and repr, with the constructor written out (init=False): compiled, a
dataclass's generated __init__ runs as Python, a written one natively, so the core and the decoder build
one with a single native call (the decoder makes one of each for every arriving segment) and the core
reads their fields natively. Their fields are `Final`: mypy refuses an assignment, and the compiled build
raises AttributeError on one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from stack.wire.flags import Flags as Flags
from stack.wire.flags import flags_str as flags_str


@dataclass(init=False, unsafe_hash=True, slots=True)
class TcpOptions:
    """Decoded TCP options. None/False/() means absent."""

    mss: Final[int | None]  # RFC 9293 §3.7.1
    wscale: Final[int | None]  # RFC 7323 §2
    sack_permitted: Final[bool]  # RFC 2018
    timestamps: Final[tuple[int, int] | None]  # (TSval, TSecr), RFC 7323 §3
    sack_blocks: Final[tuple[tuple[int, int], ...]]  # (left, right) edges, at most 4
    fast_open: Final[bytes | None]  # RFC 7413 §4.1.1, on a SYN: the cookie, b"" a request for one
    fast_open_exp: Final[bool]  # that option in its experimental form (kind 254, magic 0xF989)

    def __init__(
        self,
        mss: int | None = None,
        wscale: int | None = None,
        sack_permitted: bool = False,
        timestamps: tuple[int, int] | None = None,
        sack_blocks: tuple[tuple[int, int], ...] = (),
        fast_open: bytes | None = None,
        fast_open_exp: bool = False,
    ) -> None:
        self.mss = mss
        self.wscale = wscale
        self.sack_permitted = sack_permitted
        self.timestamps = timestamps
        self.sack_blocks = sack_blocks
        self.fast_open = fast_open
        self.fast_open_exp = fast_open_exp


NO_OPTIONS: Final = TcpOptions()


@dataclass(init=False, unsafe_hash=True, slots=True)
class Segment:
    """One TCP segment, addresses excluded (they live with the IP header / the connection)."""

    src_port: Final[int]
    dst_port: Final[int]
    seq: Final[int]
    ack: Final[int]
    flags: Final[int]  # Flags' bits
    window: Final[int]  # raw 16-bit field, not scaled
    payload: Final[bytes | memoryview]  # arriving: a view into the read batch; sent: a view of the send buffer
    options: Final[TcpOptions]
    urgent: Final[int]
    ecn: Final[int]  # the IP header's ECN field (RFC 3168 §5): how it arrived, or what to send it with
    gso: Final[int]  # sent: a run of segments of this payload size, for a device that cuts it (TSO); 0: one
    tos: Final[int]  # sent: the IP TOS / IPv6 traffic class byte less its ECN field (IP_TOS, IPV6_TCLASS)
    df: Final[bool]  # sent over IPv4: Don't Fragment (RFC 1191 §3), unless IP_MTU_DISCOVER lets routers fragment

    def __init__(
        self,
        src_port: int,
        dst_port: int,
        seq: int,
        ack: int,
        flags: int,
        window: int,
        payload: bytes | memoryview = b"",
        options: TcpOptions = NO_OPTIONS,
        urgent: int = 0,
        ecn: int = 0,
        gso: int = 0,
        tos: int = 0,
        df: bool = True,
    ) -> None:
        self.src_port = src_port
        self.dst_port = dst_port
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.payload = payload
        self.options = options
        self.urgent = urgent
        self.ecn = ecn
        self.gso = gso
        self.tos = tos
        self.df = df

    def with_flags(self, flags: int, urgent: int | None = None) -> Segment:
        """This segment with other flags (and urgent pointer): what dataclasses.replace makes, but a native
        call in compiled code, where the core marks PSH and URG on segments it has built."""
        return Segment(
            self.src_port,
            self.dst_port,
            self.seq,
            self.ack,
            flags,
            self.window,
            self.payload,
            self.options,
            self.urgent if urgent is None else urgent,
            self.ecn,
            self.gso,
            self.tos,
            self.df,
        )

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
