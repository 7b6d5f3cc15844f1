"""Socket options on an open connection (setsockopt after connect or accept), with what setting them does
at once besides changing the TcpConfig field (Linux do_tcp_setsockopt / sock_setsockopt)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from stack.tcp import rcv_space, timeouts

if TYPE_CHECKING:
    from stack.tcp.config import TcpConfig
    from stack.tcp.connection import Connection


NO_PACING_LIMIT: Final = 0xFFFFFFFF  # SO_MAX_PACING_RATE's ~0U
SOCK_MIN_RCVBUF: Final = 2304  # Linux's least sk_rcvbuf and sk_sndbuf, whatever SO_RCVBUF, SO_SNDBUF say
SOCK_MIN_SNDBUF: Final = 4608
WMEM_MAX: Final = 212992  # Linux net.core.wmem_max as set by default (rmem_max: rcv_space.RMEM_MAX)
INT_MAX: Final = 0x7FFFFFFF


def pacing_limit(value: int, width: int = 32) -> float | None:
    """SO_MAX_PACING_RATE's value, an unsigned number of `width` bits (Linux takes 32 or 64), as
    TcpConfig.max_pacing_rate: bytes per second, None for all ones (no limit)."""
    value &= (1 << width) - 1
    return None if value == (1 << width) - 1 else float(value)


def reported_pacing_limit(rate: object) -> int:
    """TcpConfig.max_pacing_rate as SO_MAX_PACING_RATE reads back in 4 bytes: ~0U for none, at most ~0U."""
    return NO_PACING_LIMIT if not isinstance(rate, (int, float)) else min(int(rate), NO_PACING_LIMIT)


def buffer_changes(value: int, *, receive: bool, limit: int) -> dict[str, object]:
    """SO_RCVBUF (`receive`) or SO_SNDBUF set to `value`, as the TcpConfig changes Linux's sock_setsockopt
    makes: the value as an unsigned int, at most `limit` (net.core.[rw]mem_max) and INT_MAX / 2, doubled
    for the kernel's own overhead (socket(7)), at least the least buffer; and the size fixed (no autotuning)."""
    number = min(value & 0xFFFFFFFF, min(limit, INT_MAX // 2))
    if receive:  # (the core's receive_buffer is half of sk_rcvbuf: rcv_space.sk_rcvbuf doubles it back)
        return {"receive_buffer": max(2 * number, SOCK_MIN_RCVBUF) // 2, "receive_buffer_locked": True}
    return {"send_buffer": max(2 * number, SOCK_MIN_SNDBUF), "send_buffer_locked": True}


def buffer_in_use(conn: Connection | None, config: TcpConfig, *, receive: bool) -> int:
    """SO_RCVBUF (`receive`) or SO_SNDBUF as getsockopt reads it: Linux's sk_rcvbuf or sk_sndbuf, as set or as
    autotuning has grown it on a connection (tcp_rcvbuf_grow, tcp_sndbuf_expand), else as `config` starts one."""
    if receive:
        return conn.receiver.rcvbuf if conn is not None else rcv_space.sk_rcvbuf(config.receive_buffer)
    sender = conn.sender if conn is not None else None  # (None: an orphan in TIME_WAIT let it go)
    return sender.sndbuf if sender is not None else config.send_buffer


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
        timeouts.arm_keepalive(conn, now)
