"""Quantities as the sim's options write them: rates, times, sizes, percentages, and `--flow` specs."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_RATE_UNITS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bps": 1, "kbps": 1e3, "mbps": 1e6, "gbps": 1e9}
_TIME_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0}
_SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def _split(text: str, what: str) -> tuple[float, str]:
    m = re.fullmatch(_NUMBER + r"\s*([a-zA-Z/%]*)", text.strip())
    if not m:
        raise ValueError(f"{what} {text!r}: expected a number and a unit")
    value = float(m.group(1))
    if not math.isfinite(value):
        raise ValueError(f"{what} {text!r} is not finite")
    return value, m.group(2).lower()


def rate(text: str) -> float:
    """Bits per second from `10Mbit`, `10mbit/s`, `500kbit`, `1Gbps`."""
    value, unit = _split(text, "rate")
    factor = _RATE_UNITS.get(unit.removesuffix("/s"))
    if factor is None or value <= 0:
        raise ValueError(f"rate {text!r}: expected a positive number with bit, kbit, Mbit or Gbit (per second)")
    return value * factor


def seconds(text: str) -> float:
    """Seconds from `40ms`, `2s`, `500us`, `1min` or a plain number of seconds."""
    value, unit = _split(text, "time")
    factor = _TIME_UNITS.get(unit)
    if factor is None:
        raise ValueError(f"time {text!r}: expected s, ms, us or min")
    return value * factor


def size(text: str) -> int:
    """Bytes from `20MB`, `64KB`, `1MiB`, `1500` (KB, MB, GB are powers of 1000; KiB, MiB, GiB of 1024)."""
    value, unit = _split(text, "size")
    factor = _SIZE_UNITS.get(unit)
    if factor is None or value <= 0:
        raise ValueError(f"size {text!r}: expected a positive number of B, KB, MB, GB, KiB, MiB or GiB")
    return int(value * factor)


def fraction(text: str) -> float:
    """A probability from `1%` or `0.01`."""
    value, unit = _split(text, "probability")
    if unit == "%":
        value /= 100
    elif unit:
        raise ValueError(f"probability {text!r}: expected a percentage like 1% or a fraction like 0.01")
    if not 0 <= value <= 1:
        raise ValueError(f"probability {text!r} must be between 0 and 100%")
    return value


@dataclass(frozen=True, slots=True)
class QueueLimit:
    """`--queue`: packets (`100pkt`), bytes (`150KB`) or bandwidth-delay products (`1bdp`, `0.5bdp`)."""

    value: float
    unit: str  # "pkt", "bytes" or "bdp"

    @classmethod
    def parse(cls, text: str) -> QueueLimit:
        value, unit = _split(text, "queue")
        if value <= 0:
            raise ValueError(f"queue {text!r} must be positive")
        if unit in ("p", "pkt", "pkts", "packets"):
            return cls(int(value), "pkt")
        if unit == "bdp":
            return cls(value, "bdp")
        return cls(size(text), "bytes")

    def resolve(self, rate_bps: float, rtt: float, mtu: int) -> tuple[int, bool]:
        """(limit, in_bytes): a BDP is counted in full-size packets, at least one."""
        if self.unit == "pkt":
            return int(self.value), False
        if self.unit == "bytes":
            return max(int(self.value), mtu), True
        return max(1, round(self.value * rate_bps / 8 * rtt / mtu)), False


@dataclass(frozen=True, slots=True)
class FlowSpec:
    """`--flow CC[:SIZE][@START]`: a controller (a registry name or package.module:Class), the bytes
    to send (None: until the run ends) and when the flow starts (seconds)."""

    controller: str
    size: int | None
    start: float

    @classmethod
    def parse(cls, text: str) -> FlowSpec:
        body, at, when = text.partition("@")
        start = seconds(when) if at else 0.0
        controller, size_bytes = body, None
        head, colon, tail = body.rpartition(":")
        if colon and re.fullmatch(_NUMBER + r"\s*[a-zA-Z]*", tail):
            controller, size_bytes = head, size(tail)
        if not controller:
            raise ValueError(f"flow {text!r}: expected CC[:SIZE][@START], like cubic:20MB@2s")
        return cls(controller, size_bytes, start)

    def __str__(self) -> str:
        size_text = f":{self.size}B" if self.size is not None else ""
        return f"{self.controller}{size_text}@{self.start:g}s"
