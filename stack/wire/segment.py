"""The parsed TCP segment value (smoltcp's `Repr`): what the TCP core consumes and produces.

Raw bytes are turned into a `Segment` by `stack.wire.codec` (C fast path) and back again. Both values are
plain classes with their constructor, equality, hash and repr written out (as a frozen dataclass would make
them), so that the compiled core builds them and reads their fields natively, and the decoder, which makes
one of each for every arriving segment, builds them with one call. Their fields are `Final`: mypy refuses
an assignment, and the compiled build raises AttributeError on one.
"""

from __future__ import annotations

from typing import Final

from stack.wire.flags import Flags as Flags
from stack.wire.flags import flags_str as flags_str

_OPTIONS_FIELDS: Final = ("mss", "wscale", "sack_permitted", "timestamps", "sack_blocks")
_SEGMENT_FIELDS: Final = (
    "src_port",
    "dst_port",
    "seq",
    "ack",
    "flags",
    "window",
    "payload",
    "options",
    "urgent",
    "ecn",
    "gso",
    "tos",
    "df",
)


class TcpOptions:
    """Decoded TCP options. None/False/() means absent."""

    __slots__ = _OPTIONS_FIELDS

    def __init__(
        self,
        mss: int | None = None,  # RFC 9293 §3.7.1
        wscale: int | None = None,  # RFC 7323 §2
        sack_permitted: bool = False,  # RFC 2018
        timestamps: tuple[int, int] | None = None,  # (TSval, TSecr), RFC 7323 §3
        sack_blocks: tuple[tuple[int, int], ...] = (),  # (left, right) edges, at most 4
    ) -> None:
        self.mss: Final = mss
        self.wscale: Final = wscale
        self.sack_permitted: Final = sack_permitted
        self.timestamps: Final = timestamps
        self.sack_blocks: Final = sack_blocks

    def _values(self) -> tuple[int | None, int | None, bool, tuple[int, int] | None, tuple[tuple[int, int], ...]]:
        return (self.mss, self.wscale, self.sack_permitted, self.timestamps, self.sack_blocks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TcpOptions):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return f"TcpOptions({_fields_repr(_OPTIONS_FIELDS, self._values())})"


NO_OPTIONS: Final = TcpOptions()


class Segment:
    """One TCP segment, addresses excluded (they live with the IP header / the connection)."""

    __slots__ = _SEGMENT_FIELDS

    def __init__(
        self,
        src_port: int,
        dst_port: int,
        seq: int,
        ack: int,
        flags: int,  # Flags' bits
        window: int,  # raw 16-bit field, not scaled
        payload: bytes | memoryview = b"",  # arriving: a view into the read batch; sent: a view of the send buffer
        options: TcpOptions = NO_OPTIONS,
        urgent: int = 0,
        ecn: int = 0,  # the IP header's ECN field (RFC 3168 §5): how it arrived, or what to send it with
        gso: int = 0,  # sent: a run of segments of this payload size, for a device that cuts it (TSO); 0: one
        tos: int = 0,  # sent: the IP TOS / IPv6 traffic class byte less its ECN field (IP_TOS, IPV6_TCLASS)
        df: bool = True,  # sent over IPv4: Don't Fragment (RFC 1191 §3), unless IP_MTU_DISCOVER lets routers fragment
    ) -> None:
        self.src_port: Final = src_port
        self.dst_port: Final = dst_port
        self.seq: Final = seq
        self.ack: Final = ack
        self.flags: Final = flags
        self.window: Final = window
        self.payload: Final = payload
        self.options: Final = options
        self.urgent: Final = urgent
        self.ecn: Final = ecn
        self.gso: Final = gso
        self.tos: Final = tos
        self.df: Final = df

    def replace(
        self,
        *,
        seq: int | None = None,
        ack: int | None = None,
        flags: int | None = None,
        window: int | None = None,
        payload: bytes | memoryview | None = None,
        options: TcpOptions | None = None,
        urgent: int | None = None,
        ecn: int | None = None,
        gso: int | None = None,
        src_port: int | None = None,
        dst_port: int | None = None,
    ) -> Segment:
        """A copy with the fields named changed (dataclasses.replace); tos and df are the sender's own."""
        return Segment(
            self.src_port if src_port is None else src_port,
            self.dst_port if dst_port is None else dst_port,
            self.seq if seq is None else seq,
            self.ack if ack is None else ack,
            self.flags if flags is None else flags,
            self.window if window is None else window,
            self.payload if payload is None else payload,
            self.options if options is None else options,
            self.urgent if urgent is None else urgent,
            self.ecn if ecn is None else ecn,
            self.gso if gso is None else gso,
            self.tos,
            self.df,
        )

    def _values(
        self,
    ) -> tuple[int, int, int, int, int, int, bytes | memoryview, TcpOptions, int, int, int, int, bool]:
        return (
            self.src_port,
            self.dst_port,
            self.seq,
            self.ack,
            self.flags,
            self.window,
            self.payload,
            self.options,
            self.urgent,
            self.ecn,
            self.gso,
            self.tos,
            self.df,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Segment):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return f"Segment({_fields_repr(_SEGMENT_FIELDS, self._values())})"

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


def _fields_repr(names: tuple[str, ...], values: tuple[object, ...]) -> str:
    """name=value, ... as a dataclass's repr lists its fields."""
    return ", ".join(f"{name}={value!r}" for name, value in zip(names, values, strict=True))
