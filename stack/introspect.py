"""What `netstat` and `top` show of a connection: its row, its history with times, and `ss -i`-style info.

Reads only a Connection's public attributes (state, tcb, rto, cc, counters, timers), so it is the one
place that knows how the core's state maps onto the columns people know from net-tools and ss.
"""

from __future__ import annotations

import time

from stack.tcp.connection import Connection
from stack.wire.addr import fmt_endpoint
from stack.wire.seq import seq_sub


class Clock:
    """Turns the stack's monotonic `now` into wall-clock times for people (and back to ages)."""

    def __init__(self, now: float) -> None:
        self.now = now
        self._offset = time.time() - now

    def wall(self, t: float) -> float:
        return round(t + self._offset, 6)


def connection_row(conn: Connection, clock: Clock) -> dict:
    """One netstat row: Recv-Q, Send-Q, addresses, state, timer (net-tools' `-o` column) and history."""
    timer = conn.running_timer(clock.now)
    return {
        "local": fmt_endpoint(*conn.local),
        "remote": fmt_endpoint(*conn.remote),
        "state": conn.state.linux_name,
        "send_q": conn.send_queue_bytes,
        "recv_q": conn.recv_queue_bytes,
        "timer": timer[0] if timer else "off",
        "timer_left": round(timer[1], 3) if timer else None,
        "retransmits": conn.retransmits,
        "probes": conn.probes_out,
        "history": history(conn, clock),
        "info": info(conn),
    }


def history(conn: Connection, clock: Clock) -> list[dict]:
    """Every transition with its cause, its wall-clock time and seconds since the first one."""
    start = conn.history[0].time if conn.history else clock.now
    return [
        {
            "time": clock.wall(t.time),
            "elapsed": round(t.time - start, 6),
            "from": t.old.linux_name,
            "to": t.new.linux_name,
            "reason": t.event.value,
            "text": str(t),
        }
        for t in conn.history
    ]


def info(conn: Connection) -> dict:
    """What `ss -tanoi` prints for a socket: the congestion and RTT state, options, counters."""
    tcb, rto, counters = conn.tcb, conn.rto, conn.counters
    name, cwnd, ssthresh, pacing_rate = conn.controller_state
    return {
        "cc": name,
        "cwnd": cwnd,  # bytes (ss prints segments: cwnd / mss)
        "ssthresh": ssthresh,
        "pacing_rate": pacing_rate,
        "srtt": None if rto.srtt is None else round(rto.srtt, 6),
        "rttvar": round(rto.rttvar, 6),
        "rto": round(rto.rto, 6),
        "backoff": rto.backoff,
        "mss": tcb.snd_mss,
        "snd_wscale": tcb.snd_wscale,
        "rcv_wscale": tcb.rcv_wscale,
        "snd_wnd": tcb.snd_wnd,
        "rcv_wnd": tcb.rcv_wnd,
        "rcv_rtt": conn.receiver.rcv_rtt,  # microseconds, 0 before a sample
        "rcv_space": conn.receiver.rcv_space,
        "rcv_ssthresh": conn.receiver.rcv_ssthresh,
        "sack": conn.sack_ok,
        "timestamps": conn.ts_ok,
        "bytes_acked": max(seq_sub(tcb.snd_una, tcb.iss) - 1, 0),  # less the SYN
        "bytes_received": max(seq_sub(tcb.rcv_nxt, tcb.irs) - 1, 0),
        "segs_out": counters.segs_out,
        "segs_in": counters.segs_in,
        "retrans": counters.retrans_segs,
        "timeouts": counters.events_seen().timeouts,
        "loss_probes": counters.events_seen().loss_probes,
    }
