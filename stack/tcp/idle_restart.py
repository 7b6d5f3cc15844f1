"""The congestion window after an idle period (RFC 5681 §4.1, RFC 2861), as Linux's tcp_cwnd_restart.

A connection that sent nothing for longer than an RTO no longer knows what the path takes: when the
application writes again with nothing in flight, ssthresh keeps the memory of the old window (3/4 of it,
Linux tcp_current_ssthresh) and the window is halved once per RTO of idleness, but never below the
restart window, min(initial window, cwnd). A controller that runs its own model of the path (BBR, Linux
cong_control) restarts on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stack.tcp.connection import Connection


def restart_window(conn: Connection, now: float) -> None:
    tcb = conn.tcb
    cc = conn.cc
    if tcb.snd_una != tcb.snd_max or cc.owns_recovery_window:
        return
    rto = conn.rto.rto
    idle = now - conn.sender.data_sent_at
    if idle <= rto:
        return
    mss = tcb.snd_mss or conn.config.mss
    cwnd = cc.cwnd // mss
    restart = min(cc.initial_window_segments, cwnd)
    if not conn.recovery.in_recovery:
        cc.ssthresh = max(cc.ssthresh, (cwnd >> 1) * mss + (cwnd >> 2) * mss)
    idle -= rto
    while idle > 0 and cwnd > restart:
        cwnd >>= 1
        idle -= rto
    cc.cwnd = max(cwnd, restart) * mss
