"""Character generator (RFC 864): an endless stream of 72-character lines rotating over the printable ASCII."""

from __future__ import annotations

import asyncio

PRINTABLE = bytes(range(32, 127))  # the 95 printable characters
LINE = 72


def chargen_lines(count: int, start: int = 0) -> bytes:
    """`count` consecutive lines beginning with line number `start`."""
    doubled = PRINTABLE * 2
    out = []
    for i in range(start, start + count):
        k = i % len(PRINTABLE)
        out.append(doubled[k : k + LINE] + b"\r\n")
    return b"".join(out)


# one full cycle: 95 lines, after which the pattern repeats
_CYCLE = chargen_lines(len(PRINTABLE))


async def chargen(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while not reader.at_eof() and not writer.is_closing():
            writer.write(_CYCLE)
            await writer.drain()
    except (ConnectionError, TimeoutError):
        pass
    finally:
        writer.close()
