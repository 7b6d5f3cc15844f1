"""Socket-like objects for Server.sockets and get_extra_info('socket'), as asyncio's TransportSocket.

There is no kernel socket behind a connection of the stack: these answer the questions asyncio code asks
of one (family, getsockname, getpeername, the TCP options libraries set), and fileno() is -1.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stack.tcp.connection import Connection


class StackSocket:
    __slots__ = ("family", "type", "proto", "_sockname", "_peername", "_conn")  # one per connection

    def __init__(
        self,
        family: socket.AddressFamily,
        sockname: tuple,
        peername: tuple | None = None,
        conn: Connection | None = None,
    ) -> None:
        self.family = family
        self.type = socket.SOCK_STREAM
        self.proto = socket.IPPROTO_TCP
        self._sockname = sockname
        self._peername = peername
        self._conn = conn

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
        """TCP_NODELAY acts on the connection; other options are refused, as by a kernel without them."""
        conn = self._conn
        key = (level, option)
        if conn is not None and key == (socket.IPPROTO_TCP, socket.TCP_NODELAY):
            conn.config = replace(conn.config, nodelay=bool(value))
        elif key == (socket.SOL_SOCKET, socket.SO_REUSEADDR):
            pass  # listening never conflicts with connections in TIME_WAIT here: always on
        else:
            raise OSError(errno.ENOPROTOOPT, "Protocol not available")

    def getsockopt(self, level: int, option: int, buflen: int | None = None) -> int:
        conn = self._conn
        key = (level, option)
        if conn is not None and key == (socket.IPPROTO_TCP, socket.TCP_NODELAY):
            return int(conn.config.nodelay)
        if key == (socket.SOL_SOCKET, socket.SO_REUSEADDR):
            return 1
        if key == (socket.SOL_SOCKET, socket.SO_TYPE):
            return int(socket.SOCK_STREAM)
        raise OSError(errno.ENOPROTOOPT, "Protocol not available")
