"""Socket-like objects for Server.sockets and get_extra_info('socket'), as asyncio's TransportSocket.

There is no kernel socket behind a connection of the stack: these answer the questions asyncio code asks
of one (family, getsockname, getpeername, the TCP options libraries set), and fileno() is -1.
"""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from stack.tcp import rcv_space, sockopts
from stack.tcp.config import PMTUDISC_DONT, PMTUDISC_OMIT, TcpConfig
from stack.tcp.listener import fast_open_option
from stack.tcp.write_queue import mss_cache

if TYPE_CHECKING:
    from stack.aio.server import Server
    from stack.aio.stack import Stack
    from stack.tcp.connection import Connection
    from stack.tcp.listener import Listener

_MTU_DISCOVER = (socket.IPPROTO_IP, getattr(socket, "IP_MTU_DISCOVER", 10))  # Linux's number
_DEFAULTS = TcpConfig()  # what a listening socket without a stack reports for an option it was not given
_TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)  # Linux's number, where Python lacks the name
_MAX_PACING_RATE = (socket.SOL_SOCKET, getattr(socket, "SO_MAX_PACING_RATE", 47))  # Linux's number
_RCVBUF = (socket.SOL_SOCKET, socket.SO_RCVBUF)
_SNDBUF = (socket.SOL_SOCKET, socket.SO_SNDBUF)
_FAST_OPEN = (socket.IPPROTO_TCP, getattr(socket, "TCP_FASTOPEN", 23))  # Linux's numbers
_FAST_OPEN_NO_COOKIE = (socket.IPPROTO_TCP, getattr(socket, "TCP_FASTOPEN_NO_COOKIE", 34))
# TCP options a connection takes: (level, option) -> (TcpConfig field, the value as set, as read back)
_OPTIONS: dict[tuple[int, int], tuple[str, Callable[[int], object], Callable[[object], int]]] = {
    (socket.IPPROTO_TCP, socket.TCP_NODELAY): ("nodelay", bool, int),
    (socket.IPPROTO_TCP, socket.TCP_CORK): ("cork", bool, int),
    (socket.IPPROTO_TCP, _TCP_USER_TIMEOUT): ("user_timeout", lambda ms: ms / 1000, lambda s: round(s * 1000)),
}


class StackSocket:
    __slots__ = (
        "family",
        "type",
        "proto",
        "_sockname",
        "_peername",
        "_conn",
        "_stack",
        "_inherited",
        "server",
        "_fast_open",
    )

    def __init__(
        self,
        family: socket.AddressFamily,
        sockname: tuple,
        peername: tuple | None = None,
        conn: Connection | None = None,
        stack: Stack | None = None,
    ) -> None:
        self.family = family
        self.type = socket.SOCK_STREAM
        self.proto = socket.IPPROTO_TCP
        self._sockname = sockname
        self._peername = peername
        self._conn = conn
        self._stack = stack  # sends what an option change allows; a listening socket's defaults
        self._inherited: dict[str, object] | None = None  # a listening socket's options, for what it accepts
        self.server: Server | None = None  # a listening socket's server
        self._fast_open = (0, False)  # a listening socket's TCP_FASTOPEN and TCP_FASTOPEN_NO_COOKIE

    def __repr__(self) -> str:
        peer = f", raddr={self._peername}" if self._peername else ""
        return f"<tcpstack socket family={self.family.name}, laddr={self._sockname}{peer}>"

    def fileno(self) -> int:
        return -1

    def getsockname(self) -> tuple:
        return self._sockname

    def getpeername(self) -> tuple:
        if self._peername is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        return self._peername

    def setsockopt(self, level: int, option: int, value: int | bytes) -> None:
        """TCP_NODELAY, TCP_CORK and TCP_USER_TIMEOUT (milliseconds) act on the connection at once (setting
        TCP_NODELAY or clearing TCP_CORK sends what waits); SO_RCVBUF and SO_SNDBUF size the receive memory
        and the send buffer as Linux does (doubled, at most twice net.core.[rw]mem_max's default, and no
        longer grown by autotuning); SO_MAX_PACING_RATE (bytes per second, -1 for no limit) paces what is
        sent from then on, at most at that rate; IP_TOS (IPV6_TCLASS on an IPv6 socket) marks the segments
        sent from then on; IP_MTU_DISCOVER (IPv4) sets DF and what a smaller path MTU does; TCP_FASTOPEN
        and TCP_FASTOPEN_NO_COOKIE on a listening socket are its fast open (_set_fast_open); other options
        are refused, as by a kernel without them. On a listening socket they are kept for the connections
        it accepts, which take them as Linux's accepted sockets inherit their listener's."""
        key = (level, option)
        if key == (socket.SOL_SOCKET, socket.SO_REUSEADDR):
            return  # listening never conflicts with connections in TIME_WAIT here: always on
        if key == _FAST_OPEN or key == _FAST_OPEN_NO_COOKIE:
            self._set_fast_open(key, _option_value(value))
            return
        changes = self._changes(key, value)
        conn = self._conn
        if conn is not None:
            stack = self._stack
            sockopts.configure(conn, stack.now() if stack is not None else 0.0, **changes)
            if stack is not None:
                stack.mark_dirty(conn)
        else:
            self._inherited = {**(self._inherited or {}), **changes}

    def _set_fast_open(self, key: tuple[int, int], number: int) -> None:
        """TCP_FASTOPEN, a listening socket's queue of fast open connections (0: none; the stack's config
        must enable the server side, `fast_open` 0x2, as Linux's net.ipv4.tcp_fastopen), and
        TCP_FASTOPEN_NO_COOKIE (0 or 1): only before a connection (Linux do_tcp_setsockopt)."""
        no_cookie = key == _FAST_OPEN_NO_COOKIE
        number = fast_open_option(no_cookie, number, connected=self._conn is not None)
        queue, cookie_not_required = self._fast_open
        self._fast_open = (queue, bool(number)) if no_cookie else (number, cookie_not_required)
        if self.server is not None and self.server.listener is not None:
            self.server.listener.set_fast_open_option(no_cookie, number)

    def configure(self, listener: Listener) -> None:
        """Give the listener what was set on this listening socket for it before it listened (fast open)."""
        listener.take_fast_open_options(*self._fast_open)

    def _changes(self, key: tuple[int, int], value: int | bytes) -> dict[str, object]:
        """The TcpConfig fields an option sets (OSError for one the stack does not have, or a bad value)."""
        if key in _OPTIONS:
            name, convert, _ = _OPTIONS[key]
            number = _option_value(value, signed=False)
            if number < 0:
                raise OSError(errno.EINVAL, "Invalid argument")
            return {name: convert(number)}
        if key == _RCVBUF:  # at most net.core.rmem_max as Linux sets it by default
            return sockopts.buffer_changes(_option_value(value), receive=True, limit=rcv_space.RMEM_MAX)
        if key == _SNDBUF:
            return sockopts.buffer_changes(_option_value(value), receive=False, limit=sockopts.WMEM_MAX)
        if key == _MAX_PACING_RATE:
            # unsigned, 32 bits or 64 as Linux reads it: -1 (all ones) is no limit
            width = 64 if isinstance(value, _BUFFERS) and len(value) == 8 else 32
            return {"max_pacing_rate": sockopts.pacing_limit(_option_value(value), width)}
        if key == self._tos_option():
            # an int, or (IP_TOS) one unsigned byte, as Linux's do_ip_setsockopt reads it
            number = _option_value(value, signed=not isinstance(value, _BUFFERS) or len(value) > 1)
            if key[1] == socket.IPV6_TCLASS:
                if not -1 <= number <= 0xFF:
                    raise OSError(errno.EINVAL, "Invalid argument")
                number = max(number, 0)  # -1: the default
            # the low byte less its ECN field, which stays TCP's (RFC 3168 §5; Linux masks it for a stream socket)
            return {"tos": number & 0xFC}
        if self.family == socket.AF_INET and key == _MTU_DISCOVER:
            number = _option_value(value)
            if not PMTUDISC_DONT <= number <= PMTUDISC_OMIT:
                raise OSError(errno.EINVAL, "Invalid argument")
            return {"pmtu_discovery": number}  # DF, and what a Packet Too Big does
        raise OSError(errno.ENOPROTOOPT, "Protocol not available")

    def inherited(self) -> dict[str, object]:
        """What a listening socket's options give the connections it accepts (TcpConfig fields)."""
        return self._inherited or {}

    def _listening_config(self) -> TcpConfig:
        """What a listening socket's connections will start with: the stack's config (what it was made
        with), then the options set on the socket."""
        base = self._stack.config if self._stack is not None else _DEFAULTS
        return replace(base, **self.inherited())

    def _tos_option(self) -> tuple[int, int]:
        """IP_TOS marks IPv4 packets, IPV6_TCLASS IPv6 ones: the option of this socket's family."""
        if self.family == socket.AF_INET6:
            return socket.IPPROTO_IPV6, socket.IPV6_TCLASS
        return socket.IPPROTO_IP, socket.IP_TOS

    def getsockopt(self, level: int, option: int, buflen: int | None = None) -> int | bytes:
        """The option's value; with `buflen`, its bytes as the kernel copies them (at most a C int's four,
        in the machine's order), as socket.getsockopt returns them."""
        value = self._option(level, option)
        if not buflen:  # None or 0: the int, as socket.getsockopt gives it
            return value
        if not 0 < buflen <= 1024:
            raise OSError("getsockopt buflen out of range")  # Python's own check
        return value.to_bytes(4, sys.byteorder, signed=True)[:buflen]

    def _option(self, level: int, option: int) -> int:
        conn = self._conn
        key = (level, option)
        config = conn.config if conn is not None else self._listening_config()
        if key in _OPTIONS:
            name, _, report = _OPTIONS[key]
            return report(getattr(config, name))
        if key == _RCVBUF or key == _SNDBUF:
            return sockopts.buffer_in_use(conn, config, receive=key == _RCVBUF)
        if key == _MAX_PACING_RATE:
            rate = sockopts.reported_pacing_limit(config.max_pacing_rate)
            return rate - (1 << 32) if rate >> 31 else rate  # a C int, as socket.getsockopt reads it
        if key == self._tos_option():
            return config.tos  # without the ECN field TCP marks segments with (as Linux 6.18 reads it back)
        if self.family == socket.AF_INET and key == _MTU_DISCOVER:
            return config.pmtu_discovery
        if conn is not None and key == (socket.IPPROTO_TCP, socket.TCP_MAXSEG):
            return mss_cache(conn.tcb)  # the MSS in use, as Linux reports it on a connected socket
        if key == (socket.SOL_SOCKET, socket.SO_REUSEADDR):
            return 1
        if key == _FAST_OPEN:
            listener = self.server.listener if self.server is not None else None
            return listener.fast_open_queue if listener is not None else self._fast_open[0]
        if key == _FAST_OPEN_NO_COOKIE:
            return int(self._fast_open[1])
        if key == (socket.SOL_SOCKET, socket.SO_TYPE):
            return int(socket.SOCK_STREAM)
        raise OSError(errno.ENOPROTOOPT, "Protocol not available")


_BUFFERS = (bytes, bytearray, memoryview)


def _option_value(value: object, *, signed: bool = True) -> int:
    """A value as socket.setsockopt takes it: an int, or the bytes of one in the machine's order."""
    if isinstance(value, _BUFFERS):
        return int.from_bytes(value, sys.byteorder, signed=signed)
    if isinstance(value, int):
        return value
    raise TypeError(f"a bytes-like object is required, not {type(value).__name__!r}")
