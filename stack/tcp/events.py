"""Events the TCP core reports to the application layer, pulled with `Connection.next_event()`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Connected:
    """The three-way handshake completed (ESTABLISHED)."""


@dataclass(frozen=True, slots=True)
class DataAvailable:
    """New in-order bytes are in the receive buffer; take them with `Connection.read()`."""


@dataclass(frozen=True, slots=True)
class SendSpace:
    """Send-buffer space was freed by an ACK, or the buffer grew; the application may `send()` more."""


@dataclass(frozen=True, slots=True)
class PeerClosed:
    """The peer's FIN arrived: after the bytes already buffered, the stream ends (EOF)."""


@dataclass(frozen=True, slots=True)
class Reset:
    """The connection was reset by the peer (or refused, if it happened during the handshake).
    `in_close_wait`: after the peer's own FIN, where Linux reports EPIPE rather than ECONNRESET."""

    refused: bool = False
    in_close_wait: bool = False


@dataclass(frozen=True, slots=True)
class TimedOut:
    """Retransmissions (or SYN retries) were exhausted; the connection was aborted (ETIMEDOUT)."""


@dataclass(frozen=True, slots=True)
class Unreachable:
    """An ICMP error about our SYN or SYN,ACK ended the opening (Linux tcp_done_with_error): the application
    hears `error` (EHOSTUNREACH, ECONNREFUSED, ...)."""

    error: int


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection reached CLOSED; its TCB can be deleted. Always the last event."""


Event: TypeAlias = Connected | DataAvailable | SendSpace | PeerClosed | Reset | TimedOut | Unreachable | Closed
