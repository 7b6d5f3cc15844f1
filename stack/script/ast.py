"""Parsed packetdrill script lines: frozen values, one per event line.

Times keep the script's own form (absolute, relative to the previous event, or any time); the runner
turns them into virtual seconds. Sequence and ACK numbers stay as written (relative numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class TimeKind(Enum):
    ABSOLUTE = "absolute"  # `0.100`
    RELATIVE = "relative"  # `+0.1`: after the previous event
    ANY = "any"  # `*`


@dataclass(frozen=True, slots=True)
class TimeSpec:
    kind: TimeKind
    start: float = 0.0
    end: float | None = None  # `0.1~0.2`: the event may happen anywhere in [start, end]
    blocking_end: float | None = None  # `0.1...0.2`: a system call starts at `start` and returns at this time

    def __str__(self) -> str:
        if self.kind is TimeKind.ANY:
            return "*"
        sign = "+" if self.kind is TimeKind.RELATIVE else ""
        text = f"{sign}{self.start:g}"
        if self.end is not None:
            text += f"~{sign}{self.end:g}"
        if self.blocking_end is not None:
            text += f"...{self.blocking_end:g}"
        return text


# ---------------------------------------------------------------- system call arguments


@dataclass(frozen=True, slots=True)
class AnyValue:
    """`...`: any value (an argument the runner fills in, or a result that is not checked)."""

    def __str__(self) -> str:
        return "..."


ANY = AnyValue()


@dataclass(frozen=True, slots=True)
class Name:
    """A symbolic constant such as AF_INET or ECONNREFUSED."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class BitOr:
    """`O_RDWR|O_NONBLOCK`."""

    terms: tuple[Arg, ...]

    def __str__(self) -> str:
        return "|".join(map(str, self.terms))


@dataclass(frozen=True, slots=True)
class Array:
    """`[1]`, `[ECONNREFUSED]`, `[sizeof(int)]`: a pointer to a value (in) or an expected value (out)."""

    items: tuple[Arg, ...]

    def __str__(self) -> str:
        return "[" + ", ".join(map(str, self.items)) + "]"


@dataclass(frozen=True, slots=True)
class Struct:
    """`{onoff=1, linger=0}`; `{...}` has no fields and means any struct."""

    fields: tuple[tuple[str | None, Arg], ...]

    def get(self, name: str) -> Arg | None:
        return next((value for key, value in self.fields if key == name), None)

    def __str__(self) -> str:
        return "{" + ", ".join(str(v) if k is None else f"{k}={v}" for k, v in self.fields) + "}"


@dataclass(frozen=True, slots=True)
class AddressOf:
    """`&addr`."""

    target: Arg

    def __str__(self) -> str:
        return f"&{self.target}"


@dataclass(frozen=True, slots=True)
class Call:
    """`htons(8080)`, `inet_addr("192.0.2.1")`: a helper call inside a struct literal."""

    function: str
    args: tuple[Arg, ...]

    def __str__(self) -> str:
        return f"{self.function}(" + ", ".join(map(str, self.args)) + ")"


@dataclass(frozen=True, slots=True)
class Sizeof:
    """`sizeof(int)`."""

    type_name: str

    def __str__(self) -> str:
        return f"sizeof({self.type_name})"


Arg = int | str | AnyValue | Name | BitOr | Array | Struct | AddressOf | Call | Sizeof  # str: a "string" literal


# ---------------------------------------------------------------- event lines


@dataclass(frozen=True, slots=True)
class PacketLine:
    line: int
    text: str
    time: TimeSpec
    inbound: bool  # `<` into the stack, `>` out of it
    flags: str  # packetdrill letters, e.g. "S.", "P.", "F."; "-" for none
    start: int  # relative sequence numbers start:end(len)
    end: int
    ack: int | None = None
    win: int | None = None  # None: not checked (outbound), 65535 (inbound)
    # (name, values) in wire order; None: the packet has no options (unless any_options)
    options: tuple[tuple[str, tuple[int, ...]], ...] | None = None
    any_options: bool = False  # `<...>`: options are not checked
    # packetdrill's `src>dst` port info (`< 40001>8080 S ...`): another connection than the default one
    src_port: int | None = None
    dst_port: int | None = None
    urg: int | None = None  # `urg N`: the urgent pointer (inbound: sent; outbound: checked)
    ecn: str | None = None  # `[noecn]`/`[ect0]`/`[ect1]`/`[ce]`: the IP ECN field (inbound: sent; outbound: checked)
    tos: int | None = None  # `[tos 0x28]`: the whole TOS / traffic class byte (inbound: its ECN field is sent)


@dataclass(frozen=True, slots=True)
class SyscallLine:
    line: int
    text: str
    time: TimeSpec
    name: str
    args: tuple[Arg, ...]
    result: int | AnyValue
    errno: str | None = None  # `= -1 ECONNREFUSED (Connection refused)` -> "ECONNREFUSED"
    errno_text: str | None = None  # the "(Connection refused)" part, for messages


@dataclass(frozen=True, slots=True)
class IcmpLine:
    """`< icmp unreachable frag_needed mtu 1200 [1:1461(1460)]`: an ICMP error quoting one of our segments."""

    line: int
    text: str
    time: TimeSpec
    kind: str  # packetdrill's type name: unreachable, time_exceeded, ...
    code: str | None  # packetdrill's code name: frag_needed, port_unreachable, ...; None: the type's first
    mtu: int | None
    start: int | None  # the quoted segment's relative sequence numbers, when written
    end: int | None


@dataclass(frozen=True, slots=True)
class ShellLine:
    """A `` `command` `` line: never run on the host; a known vocabulary is interpreted (see shell.py)."""

    line: int
    text: str
    command: str


@dataclass(frozen=True, slots=True)
class PythonLine:
    """`%{ assert tcpi_snd_cwnd == 10 }%`: Python run against the socket's tcp_info at that time."""

    line: int
    text: str
    time: TimeSpec
    code: str


Event = PacketLine | SyscallLine | ShellLine | PythonLine | IcmpLine


@dataclass(frozen=True, slots=True)
class Script:
    path: str
    events: tuple[Event, ...]
    options: tuple[tuple[str, str], ...] = ()  # `--tolerance_usecs=10000` lines, in order

    def option(self, name: str, default: str | None = None) -> str | None:
        """The last value given to `--name=`, or `default`."""
        return next((value for key, value in reversed(self.options) if key == name), default)
