"""Discard (RFC 863): read and drop everything."""

from __future__ import annotations

import asyncio


async def discard(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.read(65536):
            pass
    except (ConnectionError, TimeoutError):
        pass
    finally:
        writer.close()
