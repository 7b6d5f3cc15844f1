"""loop.sendfile() for the stack's transports, on any loop (uvloop has no sendfile at all).

A kernel socket sends a file with the sendfile system call; the stack's transports have nothing of the
kind, so the file is read in blocks in the loop's default executor (a read from disk would stop the loop)
and each block written through the transport, waiting while its buffer is above the high-water mark, as
asyncio's own fallback does. Hence fallback=False raises SendfileNotAvailableError, as asyncio's TLS
transports do.
"""

from __future__ import annotations

import asyncio
from typing import IO

from stack.aio.transport import TcpTransport

BLOCK = 256 * 1024  # bytes read and written at a time: few executor round trips and transport writes


def check_arguments(file: IO[bytes], offset: int, count: int | None) -> None:
    """asyncio's checks, with its exceptions."""
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


async def send_file(
    transport: asyncio.BaseTransport, file: IO[bytes], offset: int = 0, count: int | None = None, *, fallback=True
) -> int:
    """Send `count` bytes of `file` from `offset` (to its end if None) through `transport`; returns how
    many. The file's position is left after them, also when an error stops the transfer early."""
    if not isinstance(transport, TcpTransport):  # a TLS transport, say: the loop's own way, if it has one
        return await asyncio.get_running_loop().sendfile(transport, file, offset, count, fallback=fallback)
    if transport.is_closing():
        raise RuntimeError("Transport is closing")
    check_arguments(file, offset, count)
    if not fallback:
        raise asyncio.SendfileNotAvailableError("the stack's transports have no sendfile system call")
    loop = asyncio.get_running_loop()
    if offset:
        file.seek(offset)
    sent = 0
    try:
        while count is None or sent < count:
            size = BLOCK if count is None else min(BLOCK, count - sent)
            await transport.wait_writable()
            block = await loop.run_in_executor(None, file.read, size)
            if not block:
                break  # the end of the file
            transport.write(block)  # bytes: the transport keeps them as they are until the core takes them
            sent += len(block)
        return sent
    finally:
        if sent > 0 and hasattr(file, "seek"):
            file.seek(offset + sent)
