"""TLS over the stack's transports, on any event loop.

asyncio's loop.start_tls() accepts our transport (it declares itself start_tls compatible); uvloop's
accepts only uvloop's own transport classes. Both loops can run the standard library's TLS protocol
(asyncio.sslproto.SSLProtocol: memory BIOs, no sockets), so this module drives it directly, exactly as
BaseEventLoop.start_tls does, and every TLS path of the library (ssl= keywords, StreamWriter.start_tls,
Stack.start_tls) goes through it.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from asyncio import sslproto
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """The ssl-related keywords of create_server/create_connection, validated as asyncio validates them."""

    context: ssl_module.SSLContext | None  # None: the default context for the side (ssl=True)
    server_hostname: str | None = None
    handshake_timeout: float | None = None
    shutdown_timeout: float | None = None

    @classmethod
    def from_keywords(
        cls,
        ssl: ssl_module.SSLContext | bool | None,
        *,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> TlsOptions | None:
        if not ssl:
            if server_hostname is not None:
                raise ValueError("server_hostname is only meaningful with ssl")
            if ssl_handshake_timeout is not None:
                raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
            if ssl_shutdown_timeout is not None:
                raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
            return None
        if ssl is not True and not isinstance(ssl, ssl_module.SSLContext):
            raise TypeError(f"ssl is expected to be an ssl.SSLContext or True, got {ssl!r}")
        context = ssl if isinstance(ssl, ssl_module.SSLContext) else None
        return cls(context, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout)

    def protocol(
        self,
        app_protocol: asyncio.BaseProtocol,
        *,
        server_side: bool,
        waiter: asyncio.Future | None = None,
        call_connection_made: bool = True,
    ) -> sslproto.SSLProtocol:
        """The TLS protocol to give the TCP transport; app_protocol sees the decrypted stream."""
        return sslproto.SSLProtocol(
            asyncio.get_running_loop(),
            app_protocol,
            self.context,
            waiter,
            server_side,
            self.server_hostname,
            call_connection_made=call_connection_made,
            ssl_handshake_timeout=self.handshake_timeout,
            ssl_shutdown_timeout=self.shutdown_timeout,
        )


async def start_tls(
    transport: asyncio.Transport,
    protocol: asyncio.BaseProtocol,
    sslcontext: ssl_module.SSLContext,
    *,
    server_side: bool = False,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> asyncio.Transport:
    """loop.start_tls() for a transport of the stack, on any loop: the TLS transport *protocol* now uses."""
    if not isinstance(sslcontext, ssl_module.SSLContext):
        raise TypeError(f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}")
    _check_can_send(transport)
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    options = TlsOptions(sslcontext, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout)
    tls = options.protocol(protocol, server_side=server_side, waiter=waiter, call_connection_made=False)
    # as BaseEventLoop.start_tls: nothing may reach the TLS protocol before its connection_made
    transport.pause_reading()
    transport.set_protocol(tls)
    made = loop.call_soon(tls.connection_made, transport)
    resumed = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        transport.close()
        made.cancel()
        resumed.cancel()
        raise
    return tls._app_transport


def _check_can_send(transport: asyncio.Transport) -> None:
    """The handshake's first write would fail inside a loop callback, and start_tls() go on waiting until
    the handshake timeout (60 s): a transport that can send nothing more fails here instead, as
    loop.sendfile() fails for one that is closing."""
    if transport.is_closing():
        raise RuntimeError("Transport is closing")
    transport.write(b"")  # writes nothing; raises after write_eof(), as every write would
