"""asyncio's StreamReader/StreamWriter over the userspace stack (as asyncio's streams.py suggests).

The writers are asyncio.StreamWriter with one difference: start_tls() goes through stack.aio.tls, so it
works on uvloop too (uvloop's loop.start_tls accepts only uvloop's own transports).
"""

from __future__ import annotations

import asyncio
import collections
import ssl as ssl_module
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from stack.aio import tls

if TYPE_CHECKING:
    from stack.aio.server import Server
    from stack.aio.stack import Stack

LIMIT = 2**16  # asyncio's default buffer limit for StreamReader

ClientConnected = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None]


class StreamWriter(asyncio.StreamWriter):
    def __init__(self, transport, protocol, reader, loop, *, server_side: bool) -> None:
        super().__init__(transport, protocol, reader, loop)
        self._server_side = server_side

    async def start_tls(
        self,
        sslcontext: ssl_module.SSLContext,
        *,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> None:
        """Upgrade the connection to TLS, as asyncio.StreamWriter.start_tls, on any loop."""
        await self.drain()
        self._transport = await tls.start_tls(
            self._transport,
            self._protocol,
            sslcontext,
            server_side=self._server_side,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        self._protocol._replace_writer(self)


class _ServerStreamProtocol(asyncio.StreamReaderProtocol):
    """StreamReaderProtocol that hands the callback our StreamWriter (asyncio's would build its own)."""

    def __init__(self, reader: asyncio.StreamReader, client_connected_cb: ClientConnected, loop) -> None:
        super().__init__(reader, loop=loop)
        _lean_drain_waiters(self)
        self._pending_reader: asyncio.StreamReader | None = reader  # strong until the callback has it
        self._on_connected = client_connected_cb

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        reader, self._pending_reader = self._pending_reader, None
        writer = StreamWriter(transport, self, reader, self._loop, server_side=True)
        self._replace_writer(writer)
        result = self._on_connected(reader, writer)
        if asyncio.iscoroutine(result):
            task = self._loop.create_task(result)
            self._callback_transport = transport  # asyncio's connection_lost drops its own reference
            task.add_done_callback(self._callback_done)  # a bound method: lighter than a closure
            self._task = task  # as asyncio's: a strong reference while the callback runs

    def _callback_done(self, task: asyncio.Task) -> None:
        # let go of the transport: it refers back to this protocol, a cycle for the collector otherwise
        transport, self._callback_transport = self._callback_transport, None
        _report_callback_failure(task, transport)


def _lean_drain_waiters(protocol: asyncio.StreamReaderProtocol) -> None:
    """asyncio keeps the writers waiting in drain() in a deque, 760 bytes for every connection, idle or not,
    where almost always none or one waits: a list does the same (append, remove, iterate) in 56."""
    if type(getattr(protocol, "_drain_waiters", None)) is collections.deque and not protocol._drain_waiters:
        protocol._drain_waiters = []


def _report_callback_failure(task: asyncio.Task, transport: asyncio.BaseTransport) -> None:
    """As asyncio's start_server: an exception in the callback is reported and closes the connection."""
    if task.cancelled() or task.exception() is None:
        return
    task.get_loop().call_exception_handler(
        {"message": "Unhandled exception in client_connected_cb", "exception": task.exception(), "transport": transport}
    )
    transport.close()


async def open_connection(
    stack: Stack, host: str | None = None, port: int | None = None, *, limit: int = LIMIT, **kwds: Any
) -> tuple[asyncio.StreamReader, StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    _lean_drain_waiters(protocol)
    transport, _ = await stack.create_connection(lambda: protocol, host, port, **kwds)
    writer = StreamWriter(transport, protocol, reader, loop, server_side=False)
    return reader, writer


async def start_server(
    stack: Stack,
    client_connected_cb: ClientConnected,
    host: str | None = None,
    port: int | None = None,
    *,
    limit: int = LIMIT,
    **kwds: Any,
) -> Server:
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.StreamReaderProtocol:
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        return _ServerStreamProtocol(reader, client_connected_cb, loop)

    return await stack.create_server(factory, host, port, **kwds)
