"""asyncio.Transport over one TCP connection of the userspace stack.

Callback order is asyncio's: connection_made -> data_received* -> eof_received? -> connection_lost
(get_buffer/buffer_updated instead of data_received for an asyncio.BufferedProtocol, as asyncio's own
transports do; the TLS protocol is one).
Write flow control follows asyncio's contract (high water 64 KiB, low = high // 4); reading is
back-pressured through the receive window: while paused we stop taking bytes from the core, so the
window the peer sees closes.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from stack.aio.socketlike import StackSocket
from stack.tcp.connection import Connection
from stack.tcp.errors import LocalProtocolError
from stack.tcp.events import Closed, Connected, DataAvailable, PeerClosed, Reset, SendSpace, TimedOut, Unreachable
from stack.tcp.state import State
from stack.wire import addr

if TYPE_CHECKING:
    from stack.aio.server import Server
    from stack.aio.stack import Stack
    from stack.tcp.events import Event

log = logging.getLogger(__name__)
_DEFAULT_HIGH_WATER = 64 * 1024
_NOT_ASKED: Mapping[str, Any] = MappingProxyType({})  # shared and read-only: a transport's extras not made yet
_MADE_WHEN_ASKED = frozenset({"peername", "sockname", "socket"})
_READABLE = (DataAvailable, PeerClosed)  # events that give the application something to read


def address_tuple(endpoint: tuple[int, int], v4_mapped: bool = False) -> tuple[str, int] | tuple[str, int, int, int]:
    """As a socket of that family reports it: (host, port), or (host, port, flowinfo, scope_id) for IPv6;
    `v4_mapped`: an IPv4 endpoint of an IPv6 socket, as ::ffff:a.b.c.d (RFC 4291 §2.5.5.2)."""
    ip, port = endpoint
    if addr.is_v6(ip):
        return addr.fmt(ip), port, 0, 0
    if v4_mapped:
        return f"::ffff:{addr.fmt(ip)}", port, 0, 0
    return addr.fmt(ip), port


_LET_GO = asyncio.Protocol()  # a lost transport's protocol: every callback does nothing


class TcpTransport(asyncio.Transport):
    __slots__ = (
        "_stack",
        "_conn",
        "_protocol",
        "_server",
        "_pending",
        "_pending_size",
        "_closing",
        "_eof_wanted",
        "_eof_sent",
        "_reading_paused",
        "_writing_paused",
        "_eof_delivered",
        "_lost",
        "_high",
        "_low",
        "_v4_mapped",
        "_writable_waiter",
    )  # one per connection: no instance dict

    # asyncio's loop.start_tls() takes transports that say so; the TLS protocol also needs _force_close()
    _start_tls_compatible = True

    def __init__(
        self,
        stack: Stack,
        conn: Connection,
        protocol: asyncio.BaseProtocol,
        server: Server | None = None,
        v4_mapped: bool = False,
    ) -> None:
        super().__init__(extra=_NOT_ASKED)  # the addresses and the socket are made when first asked for
        self._stack = stack
        self._conn = conn
        self._protocol = protocol
        self._server = server
        if server is not None:
            server.attach(self)
        # written by the application, not yet taken by the core: immutable chunks, kept without a copy
        self._pending: list[bytes | memoryview] | tuple[()] = ()  # () while none (most of the time)
        self._pending_size = 0
        self._closing = False
        self._eof_wanted = False  # write_eof()/close() once _pending is empty
        self._eof_sent = False
        self._reading_paused = False
        self._writing_paused = False
        self._eof_delivered = False
        self._lost = False
        self._high = _DEFAULT_HIGH_WATER
        self._low = _DEFAULT_HIGH_WATER // 4
        self._v4_mapped = v4_mapped  # an IPv6 socket's connection to an IPv4-mapped address: reported so
        self._writable_waiter: asyncio.Future | None = None  # wait_writable()'s, while writing is paused

    # ------------------------------------------------------------ asyncio.BaseTransport

    def __repr__(self) -> str:
        peer = self.get_extra_info("peername")
        return f"<TcpTransport {self.get_extra_info('sockname')} -> {peer} {self._conn.state.linux_name}>"

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "tcp_info":  # read at the time of asking, as getsockopt(TCP_INFO)
            from stack.tcp.tcp_info import tcp_info

            return tcp_info(self._conn, self._stack.now())
        if self._extra is _NOT_ASKED and name in _MADE_WHEN_ASKED:  # most connections never ask: an idle one holds none
            conn = self._conn
            mapped = self._v4_mapped
            peername, sockname = address_tuple(conn.remote, mapped), address_tuple(conn.local, mapped)
            family = socket.AF_INET6 if mapped or addr.is_v6(conn.local[0]) else socket.AF_INET
            sock = StackSocket(family, sockname, peername, conn, self._stack)
            self._extra = {"peername": peername, "sockname": sockname, "socket": sock}
        return super().get_extra_info(name, default)

    def report_made(self) -> None:
        """connection_made(): a protocol that fails there fails as in any other callback (the connection
        is aborted), not the stack."""
        self._call(self._protocol.connection_made, self)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        if protocol is None:  # as uvloop's: the next event would find nothing to call
            raise TypeError("protocol is required")
        self._protocol = protocol

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        """Send what is buffered, then FIN; connection_lost follows when the connection is done."""
        if self._closing or self._lost:
            return
        self._closing = True
        self._reading_paused = False
        self._eof_wanted = True
        self._detach()
        self._push()
        self._deliver_reads()  # discard what arrives from now on: nobody will read it
        self._stack.call_soon(self.check_done)  # asyncio calls connection_lost soon after close()

    # ------------------------------------------------------------ reading

    def is_reading(self) -> bool:
        return not self._reading_paused and not self._closing

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self._stack.call_soon_deliver(self)

    # ------------------------------------------------------------ TCP options

    def set_congestion_control(self, name: str) -> None:
        """What setsockopt(TCP_CONGESTION) does on a kernel socket: reno, cubic, bbr or package.module:Class;
        after connection_lost, EBADF, as asyncio's transports have closed their socket by then."""
        if not self._lost:
            try:
                self._conn.set_congestion_control(name)
                return
            except LocalProtocolError:  # closed in TIME_WAIT: no controller kept, connection_lost comes soon
                pass
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    # ------------------------------------------------------------ writing

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = _DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self._check_pause()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def get_write_buffer_size(self) -> int:
        return self._pending_size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self._eof_wanted:  # uvloop raises too once closed (asyncio's own transport drops such writes)
            raise RuntimeError(f"Cannot call write() after {'close' if self._closing else 'write_eof'}()")
        if self._lost or not data:
            return
        if type(data) is memoryview and data.itemsize != 1:
            data = data.cast("B")
        if not self._pending:  # straight into the core's send buffer (its one copy)
            n = self._send(data)
            if n == len(data):
                self._check_pause()
                return
            if n:
                data = memoryview(data)[n:]
        self._queue(data)
        self._check_pause()

    def _queue(self, data: bytes | bytearray | memoryview) -> None:
        """Keep what the core has no room for yet: bytes as they are (they cannot change), a copy of a
        mutable buffer (its owner may reuse it once write() returns), as asyncio's own transports do."""
        if type(data) is not bytes and not (type(data) is memoryview and type(data.obj) is bytes):
            data = bytes(data)
        if not self._pending:
            self._pending = []
        self._pending.append(data)
        self._pending_size += len(data)

    def write_eof(self) -> None:
        if self._eof_wanted:
            return
        self._eof_wanted = True
        self._push()

    def can_write_eof(self) -> bool:
        return True

    def abort(self) -> None:
        if self._lost:
            return
        self._closing = True
        self._conn.abort_by_application(self._stack.now())
        self._stack.mark_dirty(self._conn)
        self._stack.call_soon(self.check_done)  # in TIME_WAIT no event follows: connection_lost comes from here

    # ------------------------------------------------------------ the stack's side

    def _push(self) -> None:
        """Move pending bytes into the core's send buffer; send FIN when asked and drained."""
        conn = self._conn
        if self._lost or conn.finished:
            return
        pending = self._pending
        while pending:  # in the order written, as much as the core takes now
            chunk = pending[0]
            n = self._send(chunk)
            self._pending_size -= n
            if n < len(chunk):
                if n:
                    pending[0] = memoryview(chunk)[n:]
                break
            del pending[0]
        if not pending:
            self._pending = ()
        if self._eof_wanted and not self._pending and not self._eof_sent:
            if conn.state in (State.ESTABLISHED, State.CLOSE_WAIT, State.SYN_RECEIVED):
                self._eof_sent = True
                conn.close(self._stack.now())
                self._stack.mark_dirty(conn)

    def _send(self, data: bytes | bytearray | memoryview) -> int:
        """SEND what the core's send buffer takes of `data` now; returns how much."""
        conn = self._conn
        if self._lost or conn.finished or not conn.data_may_leave:
            return 0
        n = conn.send(data, self._stack.now())
        if n:
            self._stack.mark_dirty(conn)
        return n

    def _check_pause(self) -> None:
        size = self._pending_size
        if not self._writing_paused and size > self._high:
            self._writing_paused = True
            self._call(self._protocol.pause_writing)
        elif self._writing_paused and size <= self._low:
            self._writing_paused = False
            self._call(self._protocol.resume_writing)
            self._release_writable_waiter()

    async def wait_writable(self) -> None:
        """Until writing is no longer paused (the buffer back at the low-water mark), as StreamWriter.drain
        waits, for the stack's own writers (sendfile); ConnectionResetError once the connection is lost."""
        if not self._lost and self._writing_paused:
            if self._writable_waiter is None:
                self._writable_waiter = asyncio.get_running_loop().create_future()
            await self._writable_waiter
        if self._lost:
            raise ConnectionResetError("Connection lost")

    def _release_writable_waiter(self) -> None:
        """wait_writable()'s future resolved: writing resumed, or the connection is lost."""
        waiter, self._writable_waiter = self._writable_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _deliver_reads(self) -> None:
        conn = self._conn
        if self._lost:
            return
        if self._closing:
            conn.discard_unread()  # closed for reading: dropped as read, so the window stays open
            return
        while not self._reading_paused and conn.recv_queue_bytes and not self._closing:
            protocol = self._protocol
            if isinstance(protocol, asyncio.BufferedProtocol):
                self._call_buffered(protocol, conn)
            else:
                self._call(protocol.data_received, conn.read())  # type: ignore[attr-defined]
        if conn.at_eof and not self._eof_delivered and not self._reading_paused and not self._closing:
            self._eof_delivered = True
            keep_open = self._call(self._protocol.eof_received)  # type: ignore[attr-defined]
            if not keep_open:
                self.close()

    def handle_event(self, event: Event) -> None:
        if type(event) in _READABLE:
            self._deliver_reads()
        elif isinstance(event, SendSpace):
            self._push()
            self._check_pause()
        elif isinstance(event, Reset):
            self._lose(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"))
        elif isinstance(event, TimedOut):
            self._lose(timeout_error(self._conn))
        elif isinstance(event, Unreachable):
            self._lose(OSError(event.error, os.strerror(event.error)))
        elif isinstance(event, Closed):
            self._lose(None)
        elif isinstance(event, Connected):
            pass
        self.check_done()

    def check_done(self) -> None:
        """After close(), both directions done: report connection_lost now; TIME_WAIT runs on in the core."""
        conn = self._conn
        if self._closing and not self._lost:
            if conn.state is State.TIME_WAIT or (conn.state is State.FIN_WAIT_2 and conn.at_eof):
                self._lose(None)

    def _lose(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._pending, self._pending_size = (), 0
        self._release_writable_waiter()  # wait_writable() raises, as it finds the connection lost
        self._call(self._protocol.connection_lost, exc)
        # let go of the protocol, as asyncio's transports do: one that keeps its transport (most do) would
        # otherwise leave the two in a cycle for the collector; anything later goes to one that does nothing
        self._protocol = _LET_GO
        if self._server is not None:
            self._server.detach(self)

    def _call_buffered(self, protocol: asyncio.BufferedProtocol, conn: Connection) -> None:
        view = self._call(_get_buffer, protocol, conn.recv_queue_bytes)
        if view is None:  # the protocol failed: its connection is aborted, and delivery ends (_closing)
            return
        data = conn.read(len(view))
        view[: len(data)] = data
        self._call(protocol.buffer_updated, len(data))

    def _force_close(self, exc: Exception | None) -> None:
        """What asyncio's TLS protocol calls on a fatal error, as asyncio's own transports do it: what is
        buffered is dropped, the connection closed (FIN; an orphan, so data that still arrives draws a RST)
        and connection_lost(exc) called now."""
        if self._lost:
            return
        self._closing = True
        self._pending, self._pending_size = (), 0
        self._eof_wanted = True
        self._detach()
        self._push()
        self._lose(exc)

    def _detach(self) -> None:
        """The application lets go: an orphan's FIN_WAIT_2 is bounded by config.fin_timeout. The stack
        reschedules the connection, whose deadline may be new while it has nothing to send (FIN ACKed)."""
        self._conn.detach(self._stack.now())
        self._stack.mark_dirty(self._conn)

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except Exception:
            log.exception("protocol callback %s failed; aborting the connection", getattr(fn, "__name__", fn))
            self._closing = True  # nothing more reaches the protocol, as after asyncio's fatal errors
            if not self._lost:
                self._conn.abort(self._stack.now())
                self._stack.mark_dirty(self._conn)
            return None


def _get_buffer(protocol: asyncio.BufferedProtocol, size: int) -> memoryview:
    """The bytes get_buffer(size) offers to fill; an empty or read-only buffer is the protocol's fatal error,
    as in asyncio's transports (otherwise delivery would go round without end)."""
    view = memoryview(protocol.get_buffer(size)).cast("B")
    if not view.nbytes:
        raise RuntimeError("get_buffer() returned an empty buffer")
    if view.readonly:
        raise TypeError("get_buffer() returned a read-only buffer")
    return view


def timeout_error(conn: Connection) -> OSError:
    """A connection given up: ETIMEDOUT, or the ICMP error that explains it (Linux reports sk_err_soft)."""
    code = conn.soft_error or errno.ETIMEDOUT
    return OSError(code, os.strerror(code))  # OSError picks the subclass: TimeoutError for ETIMEDOUT
