"""Socket options on an open connection (setsockopt after connect or accept), with what setting them does
at once besides changing the TcpConfig field (Linux do_tcp_setsockopt / sock_setsockopt)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stack.tcp.connection import Connection


def configure(conn: Connection, now: float, **changes: Any) -> None:
    """Change TcpConfig fields of one connection. Setting TCP_NODELAY pushes what is queued, corked or not
    (Linux __tcp_sock_set_nodelay: TCP_NAGLE_PUSH); clearing TCP_CORK lets the partial segment go under
    the usual rules; a keepalive change re-arms the idle timer; SO_RCVBUF resizes the receive memory at
    once (Linux sk_rcvbuf), what is held stays."""
    conn.config = conn.receiver.config = replace(conn.config, **changes)
    sender = conn.sender  # (None: an orphan in TIME_WAIT has let its sending side go)
    if "send_buffer" in changes and sender is not None:  # SO_SNDBUF: Linux's sk_sndbuf (write_queue.py)
        sender.sndbuf = conn.config.send_buffer
    if "receive_buffer" in changes:
        conn.receiver.set_receive_buffer(conn.config.receive_buffer)
    if changes.get("nodelay") and sender is not None:
        sender.marks.push_once = True
    if any(name.startswith("keepalive") for name in changes):
        conn.arm_keepalive(now)
