"""The TCP control bits (RFC 9293 §3.1) and their packetdrill/tcpdump letters.

Interpreted on purpose: `Flags` subclasses int, which a class compiled by mypyc cannot.
"""

from __future__ import annotations

from typing import Final


class Flags(int):
    """The control bits as plain ints: `Flags.ACK | Flags.PSH` and `flags & Flags.SYN` are int operations
    (an enum.IntFlag runs Python code for each, about 1 us, many times per segment). `Flags(x)` is an int
    equal to x; the constants are plain ints (and compiled code uses their values directly: they are Final)."""

    FIN: Final = 0x01
    SYN: Final = 0x02
    RST: Final = 0x04
    PSH: Final = 0x08
    ACK: Final = 0x10
    URG: Final = 0x20
    ECE: Final = 0x40
    CWR: Final = 0x80


_FLAG_LETTERS: Final = (
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
