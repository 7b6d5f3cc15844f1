"""asyncio's Server over the stack: what create_server/start_server return.

Semantics follow asyncio's (3.12+): close() stops listening and leaves accepted connections alone;
wait_closed() returns once the server is closed and every connection it accepted is gone;
serve_forever() starts serving if needed and, when cancelled, closes the server.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from stack.aio.socketlike import StackSocket
from stack.wire import addr

if TYPE_CHECKING:
    from stack.aio.stack import Stack
    from stack.aio.tls import TlsOptions
    from stack.aio.transport import TcpTransport
    from stack.tcp.listener import Listener

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class Server(asyncio.AbstractServer):
    def __init__(
        self,
        stack: Stack,
        protocol_factory: ProtocolFactory,
        sockets: list[StackSocket],
        backlog: int,
        tls: TlsOptions | None,
        *,
        reuse_port: bool = False,
    ) -> None:
        self._stack = stack
        self._loop = asyncio.get_running_loop()
        self._protocol_factory = protocol_factory
        self._sockets = sockets
        for sock in sockets:
            sock.server = self
        self._backlog = backlog
        self._tls = tls
        self.reuse_port = reuse_port  # may share its port with other servers that set it (SO_REUSEPORT)
        self.listener: Listener | None = None  # while serving
        self._transports: set[TcpTransport] = set()
        self._closed = False
        self._waiters: list[asyncio.Future] = []
        self._serving_forever: asyncio.Future | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sockets={self.sockets!r}>"

    @property
    def sockets(self) -> tuple[StackSocket, ...]:
        return () if self._closed else tuple(self._sockets)

    @property
    def bound_sockets(self) -> tuple[StackSocket, ...]:
        """What it is bound to, closed or not (`sockets` is empty once closed, as asyncio's)."""
        return tuple(self._sockets)

    @property
    def port(self) -> int:
        return self._sockets[0].getsockname()[1]

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self.listener is not None

    async def start_serving(self) -> None:
        if self._closed:
            raise RuntimeError(f"server {self!r} is closed")
        if self.listener is None:
            self.listener = self._stack._listen(self, self.port, self._backlog)
        await asyncio.sleep(0)  # as asyncio: give the loop a turn

    async def serve_forever(self) -> None:
        if self._serving_forever is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._closed:
            raise RuntimeError(f"server {self!r} is closed")
        await self.start_serving()
        self._serving_forever = self._loop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever = None

    def close(self) -> None:
        """Stop listening (a SYN to the port is answered with RST again); connections carry on."""
        if self._closed:
            return
        self._closed = True
        self._stack._unlisten(self)
        self.listener = None
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()
        self._wake_if_done()

    def close_clients(self) -> None:
        for transport in list(self._transports):
            transport.close()

    def abort_clients(self) -> None:
        for transport in list(self._transports):
            transport.abort()

    async def wait_closed(self) -> None:
        if self._closed and not self._transports:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    # ------------------------------------------------------------ the stack's side

    def inherited_options(self, local_ip: int) -> dict[str, object]:
        """What the options set on the listening socket a connection to `local_ip` came in on (its family's)
        give that connection."""
        family = socket.AF_INET6 if local_ip > addr.MAX4 else socket.AF_INET
        for sock in self._sockets:
            if sock.family == family:
                return sock.inherited()
        return {}

    def protocol_for_connection(self) -> asyncio.BaseProtocol:
        """A new connection's protocol: the application's, behind TLS when the server has ssl."""
        protocol = new_protocol(self._protocol_factory)
        if self._tls is None:
            return protocol
        return self._tls.protocol(protocol, server_side=True)

    def attach(self, transport: TcpTransport) -> None:
        self._transports.add(transport)

    def detach(self, transport: TcpTransport) -> None:
        self._transports.discard(transport)
        self._wake_if_done()

    def _wake_if_done(self) -> None:
        if self._closed and not self._transports:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)


def new_protocol(factory: Callable[[], asyncio.BaseProtocol]) -> asyncio.BaseProtocol:
    """The application's protocol for a new connection; None is refused here, where asyncio's transport
    fails on it when it first calls it."""
    protocol = factory()
    if protocol is None:
        raise TypeError("the protocol factory returned None")
    return protocol
