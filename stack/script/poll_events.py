"""The poll() events of a socket, as Linux's tcp_poll computes them.

- readable (POLLIN, POLLRDNORM): in-order bytes wait to be read, or a listener has a connection to
  accept; after the peer's FIN or shutdown(SHUT_RD) also POLLRDHUP;
- writable (POLLOUT, POLLWRNORM): once connected, when the free send buffer is at least half of what is
  queued, in Linux's units (sk_stream_is_writeable, stack/tcp/write_queue.py), and the unsent bytes are
  below half of TCP_NOTSENT_LOWAT; always after shutdown(SHUT_WR), whose write fails at once;
- POLLERR with a pending error, POLLHUP when both directions are shut or the connection is closed. A
  connection that closed (a RST, a timeout, the last ACK) is shut both ways, as Linux's tcp_done shuts
  its socket, so it is readable (EOF) and writable (EPIPE) too; one shutdown() ended while connecting is
  not (tcp_disconnect leaves the socket unshut).
POLLERR, POLLHUP and POLLNVAL are reported whether asked for or not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.tcp import write_queue
from stack.tcp.state import State

if TYPE_CHECKING:
    from stack.tcp.connection import Connection

ALWAYS = frozenset({"POLLERR", "POLLHUP", "POLLNVAL"})
KNOWN = frozenset({"POLLIN", "POLLRDNORM", "POLLOUT", "POLLWRNORM", "POLLRDHUP", "POLLPRI"}) | ALWAYS
_READABLE = frozenset({"POLLIN", "POLLRDNORM"})
_WRITABLE = frozenset({"POLLOUT", "POLLWRNORM"})


def listener(pending: int) -> frozenset[str]:
    return _READABLE if pending else frozenset()


def connection(
    conn: Connection | None, error: bool, shut_rd: bool, shut_wr: bool, connected: bool, disconnected: bool
) -> frozenset[str]:
    """Events of a socket that is not listening (`conn` None: not connected yet; `disconnected`: shutdown()
    ended its connect)."""
    events: set[str] = {"POLLERR"} if error else set()
    if conn is None:
        return frozenset(events | _WRITABLE | {"POLLHUP"})  # a fresh socket is TCP_CLOSE
    closed = conn.finished or conn.state is State.CLOSED
    done = closed and not disconnected  # Linux's tcp_done: sk_shutdown = SHUTDOWN_MASK
    rcv_shutdown = shut_rd or done or conn.receiver.peer_fin
    send_shutdown = shut_wr or done or conn.sender.fin_queued
    if closed or (rcv_shutdown and send_shutdown):
        events.add("POLLHUP")
    if rcv_shutdown:
        events |= _READABLE | {"POLLRDHUP"}
    if not connected and not closed:
        return frozenset(events)  # the handshake is not over: neither readable nor writable yet
    if conn.recv_queue_bytes:
        events |= _READABLE
    if send_shutdown or writable(conn):
        events |= _WRITABLE
    return frozenset(events)


def writable(conn: Connection) -> bool:
    """Linux __sk_stream_is_writeable: free room at least half what is queued (in Linux's units: bytes
    and each skb's overhead), and unsent bytes under half TCP_NOTSENT_LOWAT."""
    return write_queue.writeable(conn)
