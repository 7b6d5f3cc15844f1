"""Socket options on an open connection (setsockopt after connect or accept), with what setting them does
at once besides changing the TcpConfig field (Linux do_tcp_setsockopt / sock_setsockopt)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from stack.tcp.connection import Connection


NO_PACING_LIMIT: Final = 0xFFFFFFFF  # SO_MAX_PACING_RATE's ~0U
SOCK_MIN_RCVBUF: Final = 2304  # Linux's least sk_rcvbuf and sk_sndbuf, whatever SO_RCVBUF, SO_SNDBUF say
SOCK_MIN_SNDBUF: Final = 4608
WMEM_MAX: Final = 212992  # Linux net.core.wmem_max as set by default (rmem_max: rcv_space.RMEM_MAX)


def pacing_limit(value: int, width: int = 32) -> float | None:
    """SO_MAX_PACING_RATE's value, an unsigned number of `width` bits (Linux takes 32 or 64), as
    TcpConfig.max_pacing_rate: bytes per second, None for all ones (no limit)."""
    value &= (1 << width) - 1
    return None if value == (1 << width) - 1 else float(value)


def reported_pacing_limit(rate: object) -> int:
    """TcpConfig.max_pacing_rate as SO_MAX_PACING_RATE reads back in 4 bytes: ~0U for none, at most ~0U."""
    return NO_PACING_LIMIT if not isinstance(rate, (int, float)) else min(int(rate), NO_PACING_LIMIT)


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
