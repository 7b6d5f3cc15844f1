"""Parsed packetdrill script lines."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TimeSpec:
    value: float | None  # seconds; None for `*` (any time)
    relative: bool = False


@dataclass(frozen=True, slots=True)
class PacketLine:
    line: int
    text: str
    time: TimeSpec
    inbound: bool  # `<` into the stack, `>` out of it
    flags: str  # packetdrill letters, e.g. "S.", "P.", "F."
    start: int  # relative sequence numbers start:end(len)
    end: int
    ack: int | None = None
    win: int | None = None
    options: tuple[tuple[str, tuple[int, ...]], ...] | None = None  # None: not checked


@dataclass(frozen=True, slots=True)
class SyscallLine:
    line: int
    text: str
    time: TimeSpec
    name: str
    args: tuple[str, ...]
    result: str  # as written: "0", "1000", "-1", "..."
    errno: str | None = None


@dataclass(slots=True)
class Script:
    path: str
    events: list[PacketLine | SyscallLine] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)  # --tolerance_usecs=... style lines
