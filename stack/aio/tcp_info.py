"""get_extra_info('tcp_info'): what getsockopt(TCP_INFO) tells about a kernel connection, with Linux's
field names (struct tcp_info in include/uapi/linux/tcp.h) and units (microseconds, segments), read from the
connection's public state. Only fields the stack keeps are present; a missing key means "not kept".
"""

from __future__ import annotations

from stack.tcp.congestion.base import INFINITE_SSTHRESH
from stack.tcp.connection import Connection
from stack.tcp.state import State

# Linux's TCP_ESTABLISHED... numbering (include/net/tcp_states.h)
_LINUX_STATE = {
    State.ESTABLISHED: 1,
    State.SYN_SENT: 2,
    State.SYN_RECEIVED: 3,
    State.FIN_WAIT_1: 4,
    State.FIN_WAIT_2: 5,
    State.TIME_WAIT: 6,
    State.CLOSED: 7,
    State.CLOSE_WAIT: 8,
    State.LAST_ACK: 9,
    State.LISTEN: 10,
    State.CLOSING: 11,
}
TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE, TCPI_OPT_ECN = 1, 2, 4, 8
_LINUX_INFINITE_SSTHRESH = 0x7FFFFFFF  # what Linux reports before the first loss


def _us(seconds: float | None) -> int:
    return 0 if seconds is None else round(seconds * 1_000_000)


def tcp_info(conn: Connection) -> dict[str, int]:
    tcb = conn.tcb
    mss = tcb.snd_mss
    options = 0
    if conn.ts_ok:
        options |= TCPI_OPT_TIMESTAMPS
    if conn.sack_ok:
        options |= TCPI_OPT_SACK
    if tcb.snd_wscale or tcb.rcv_wscale:  # both are zeroed when the handshake did not agree on scaling
        options |= TCPI_OPT_WSCALE
    if conn.ecn.ok:
        options |= TCPI_OPT_ECN
    ssthresh = conn.cc.ssthresh
    return {
        "tcpi_state": _LINUX_STATE[conn.state],
        "tcpi_backoff": conn.rto.backoff,
        "tcpi_options": options,
        "tcpi_snd_wscale": tcb.snd_wscale,
        "tcpi_rcv_wscale": tcb.rcv_wscale,
        "tcpi_rto": _us(conn.rto.rto),
        "tcpi_snd_mss": mss,
        "tcpi_advmss": conn.config.mss,
        "tcpi_rtt": _us(conn.rto.srtt),
        "tcpi_rttvar": _us(conn.rto.rttvar),
        "tcpi_snd_cwnd": conn.cc.cwnd // mss,
        "tcpi_snd_ssthresh": _LINUX_INFINITE_SSTHRESH if ssthresh >= INFINITE_SSTHRESH else ssthresh // mss,
        "tcpi_total_retrans": conn.counters.retrans_segs,
        "tcpi_segs_in": conn.counters.segs_in,
        "tcpi_segs_out": conn.counters.segs_out,
        "tcpi_notsent_bytes": max(0, conn.send_queue_bytes - ((tcb.snd_nxt - tcb.snd_una) & 0xFFFFFFFF)),
        "tcpi_snd_wnd": tcb.snd_wnd,
        "tcpi_rcv_wnd": tcb.rcv_wnd,
    }
