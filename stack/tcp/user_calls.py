"""The user calls SEND, RECEIVE, CLOSE and ABORT (RFC 9293 §3.10.2-5), per state.

OPEN (§3.10.1) is `Connection.connect` / `Connection.from_syn`. Calls the current state does not allow
raise LocalProtocolError with the RFC's wording; they never change the connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from stack.tcp import idle_restart, output, timers, urgent, write_queue
from stack.tcp.errors import LocalProtocolError
from stack.tcp.sender import NO_WRITER_WAITS, WRITER_WAITS
from stack.tcp.state import ACCEPTS_SEND, UNSYNCHRONIZED, Event, State
from stack.wire.seq import seq_add

if TYPE_CHECKING:
    from stack.tcp.connection import Connection

# (globals: see state.py)
_CLOSED: Final = State.CLOSED
_LISTEN: Final = State.LISTEN
_TIME_WAIT: Final = State.TIME_WAIT
# ABORT sends a RST only where the peer holds a TCB for us (§3.10.5; Linux tcp_need_reset)
_ABORT_SENDS_RST: Final = (State.SYN_RECEIVED, State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSE_WAIT)


def send(
    conn: Connection, data: bytes | bytearray | memoryview, now: float, more: bool = False, eor: bool = False
) -> int:
    """SEND (§3.10.2): queue what the send buffer takes (write_queue.py); returns how many bytes.

    The PUSH flag is Linux's: every write pushes unless `more` (MSG_MORE) says more follows; a write taken
    whole with `eor` (MSG_EOR) ends a record (write_marks.py). In SYN_SENT and SYN_RECEIVED the data waits
    for ESTABLISHED; after CLOSE it is an error."""
    state = conn.state
    if state is _CLOSED or state is _LISTEN or conn.finished:
        raise LocalProtocolError("connection does not exist")
    sender = conn.sender
    # (the state first: an orphan in TIME_WAIT has let its sender go)
    if state not in ACCEPTS_SEND or sender.fin_queued:
        raise LocalProtocolError("connection closing")
    if data and conn.config.slow_start_after_idle:
        idle_restart.restart_window(conn, now)
    n = write_queue.write(conn, data, now)
    if n < len(data) and sender.space_wanted == NO_WRITER_WAITS:
        sender.space_wanted = WRITER_WAITS  # report SendSpace once room is made (Linux SOCK_NOSPACE)
    if n:  # a write cut short pushes what it queued, as Linux's does before it waits for room
        whole = n == len(data)
        sender.marks.wrote(seq_add(sender.buffer.seq, len(sender.buffer)), more and whole, eor and whole)
    return n


def receive(conn: Connection, max_bytes: int) -> bytes:
    """RECEIVE (§3.10.3): take in-order bytes, stopping at the urgent mark (urgent.py); may queue a window
    update (§3.8.6.2.2)."""
    marked = conn.extras is not None and conn.extras.urgent is not None
    if marked:
        max_bytes = urgent.clip_read(conn, max_bytes)
    data = conn.receiver.read(max_bytes)
    if marked:
        urgent.after_read(conn)
    if data and conn.state not in UNSYNCHRONIZED and conn.state is not _TIME_WAIT:
        conn.receiver.maybe_window_update()
    return data


def discard_unread(conn: Connection) -> None:
    """Drop the in-order bytes nobody will read, as reads would take them (the window opens as for a read;
    a read stops at an urgent mark, so it takes several)."""
    while conn.recv_queue_bytes:
        receive(conn, -1)


def close(conn: Connection, now: float) -> None:
    """CLOSE (§3.10.4): a FIN follows the queued data; receiving goes on (half-close)."""
    state = conn.state
    if state in (State.LISTEN, State.SYN_SENT):
        conn.sender.buffer.clear()
        conn.enter(Event.CLOSE, now)
    elif state is State.SYN_RECEIVED and len(conn.sender.buffer):
        conn.sender.queue_fin()  # data first: "queue for processing after entering ESTABLISHED" (§3.10.4)
    elif state in (State.SYN_RECEIVED, State.ESTABLISHED):
        conn.sender.queue_fin()
        conn.enter(Event.CLOSE, now)
    elif state is State.CLOSE_WAIT:
        conn.sender.queue_fin()
        conn.enter(Event.CLOSE, now)
    elif state is State.CLOSED:
        raise LocalProtocolError("connection does not exist")
    else:
        raise LocalProtocolError("connection closing")


def detach(conn: Connection, now: float) -> None:
    """The application let go of the connection (Linux close() of the socket): it is an orphan now,
    so a FIN_WAIT_2 waiting for the peer's FIN is bounded by config.fin_timeout (Linux tcp_fin_timeout)."""
    conn.orphaned = True
    if conn.state is State.FIN_WAIT_2:
        conn.timers.start_if_idle(timers.FIN_WAIT_2, now + conn.config.fin_timeout)
    elif conn.state is State.TIME_WAIT:
        conn.release_sending_side(now)


def abort(conn: Connection, now: float) -> None:
    """ABORT (§3.10.5): RST where the peer has a TCB, drop all queued data, enter CLOSED."""
    if conn.state is State.CLOSED:
        return
    if conn.state in _ABORT_SENDS_RST:
        output.emit_rst(conn, conn.acceptable_seq(), now)
    if conn.sender is not None:  # (an orphan in TIME_WAIT has let go of it)
        conn.sender.buffer.clear()
        conn.sender.marks.clear()
    conn.enter(Event.ABORT, now)


def abort_by_application(conn: Connection, now: float) -> None:
    """The application's ABORT (close() with SO_LINGER's zero timeout or with unread data, an asyncio
    transport's abort()). In TIME_WAIT it only lets go: Linux's socket was closed when a timewait socket
    took the connection over (tcp_time_wait), and closing the socket leaves that one alone (__tcp_close), so
    no RST goes out and a retransmitted FIN is still answered until 2*MSL."""
    if conn.state is _TIME_WAIT:
        discard_unread(conn)
        detach(conn, now)
    else:
        abort(conn, now)
