"""Echo (RFC 862). Back-pressure: nothing more is read while what was written is not drained,
so a client that does not read meets a closed window, not a stack that buffers without bound."""

from __future__ import annotations

import asyncio


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()  # the client half-closed: everything was echoed, close our side too
        await writer.drain()
    except (ConnectionError, TimeoutError):
        pass
    finally:
        writer.close()
