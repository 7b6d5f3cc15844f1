"""TCP_NOTSENT_LOWAT (Linux tcp(7), tcp_notsent_lowat): a writer may queue only while fewer bytes than the
mark wait unsent, so a sender that writes ahead keeps little in the socket, as Linux does it.

Linux checks the mark when a write starts a new buffer (an skb of up to "size goal" bytes: half the
peer's largest window in whole segments, at most 64 KB, tcp_xmit_size_goal), fills that buffer whole,
and sends each full buffer at once (tcp_push_one); the unsent rest of a buffer cut by the congestion
window is topped up again before the next check. queue() does the same in bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stack.tcp.connection import Connection

_GSO_MAX = 65536  # Linux's largest super-segment, the ceiling of the size goal


def size_goal(conn: Connection) -> int:
    mss = conn.tcb.snd_mss or conn.config.mss
    half = conn.tcb.max_snd_wnd // 2 if conn.tcb.max_snd_wnd > 536 else conn.tcb.max_snd_wnd
    return max(mss, min(half, _GSO_MAX) // mss * mss)


def queue(conn: Connection, data: bytes, now: float) -> int:
    """Queue what the mark lets in of `data`; returns how many bytes were taken."""
    sender = conn.sender
    goal = size_goal(conn)
    taken = 0
    while taken < len(data):
        unsent = sender.unsent(conn.tcb.snd_nxt)
        room = goal - unsent % goal if unsent % goal else 0  # the last buffer is not full yet
        if not room:
            if unsent >= conn.config.notsent_lowat:
                break
            room = goal
        n = sender.buffer.append(data[taken : taken + room], conn.send_space)
        if not n:
            break
        taken += n
        if n == room:
            conn.push(now)  # a full buffer leaves at once, MSG_MORE or not
    return taken
