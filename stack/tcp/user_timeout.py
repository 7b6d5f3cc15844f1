"""TCP_USER_TIMEOUT (RFC 5482; Linux tcp(7)): how long transmitted data may stay unacknowledged before the
connection is dropped, in place of the time tcp_retries2 allows (and of the count of tcp_syn_retries).

As Linux (retransmits_timed_out, tcp_clamp_rto_to_user_timeout): the time runs from the first
retransmission of the loss episode, a fast retransmit's too but not a loss probe's (retrans_stamp; for a
SYN, from when it was first sent), the connection is dropped at a retransmission timeout once it has
passed (never before one retransmission), and the retransmission timer never waits past it. Against a
zero window (tcp_probe_timer, tcp_clamp_probe0_to_user_timeout) it runs from the first window probe,
however the peer answers, and the probe timer never waits past it either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from stack.tcp.connection import Connection

SLACK: Final = 1e-9  # a timer set for the moment the timeout runs out finds it run out, float sums or not


def set_for(conn: Connection) -> bool:
    return conn.config.user_timeout > 0


def expired(conn: Connection, now: float, probing: bool) -> bool:
    """At a retransmission timeout: never before one retransmission, except when the retransmissions are
    window probes into a zero window, which do not restart the time (Linux tcp_rtx_probe0_timed_out)."""
    stamp = conn.retrans_stamp
    if stamp is None or not (probing or conn.retransmits > 0):
        return False
    return now - stamp >= conn.config.user_timeout - SLACK


def clamp(conn: Connection, deadline: float) -> float:
    """A retransmission deadline, no later than when the user timeout runs out."""
    stamp = conn.retrans_stamp
    if not set_for(conn) or stamp is None:
        return deadline
    return min(deadline, stamp + conn.config.user_timeout)


def probing_expired(conn: Connection, now: float) -> bool:
    stamp = conn.probe_stamp
    return set_for(conn) and stamp is not None and now - stamp >= conn.config.user_timeout - SLACK


def clamp_probe(conn: Connection, deadline: float) -> float:
    """A zero-window probe deadline, no later than when the user timeout runs out."""
    stamp = conn.probe_stamp
    if not set_for(conn) or stamp is None:
        return deadline
    return min(deadline, stamp + conn.config.user_timeout)
