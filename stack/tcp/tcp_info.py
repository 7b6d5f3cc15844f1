"""Linux's `struct tcp_info` (getsockopt TCP_INFO) for one connection: Linux's field names and units.

Built from the connection's public state only, so it stays a view: packets where Linux counts packets
(cwnd and ssthresh in segments of SND.MSS), microseconds for times, Linux's numbers for states. A field
whose quantity the core does not keep is left out rather than guessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from stack.tcp import fast_open
from stack.tcp.congestion.base import INFINITE_SSTHRESH
from stack.tcp.rcv_space import TIMESTAMP_OPTION
from stack.tcp.state import State
from stack.tcp.write_queue import mss_cache

if TYPE_CHECKING:
    from stack.tcp.connection import Connection
    from stack.tcp.recovery import Recovery

TCP_INFINITE_SSTHRESH: Final = 0x7FFFFFFF
# tcpi_ca_state values (Linux enum tcp_ca_state)
TCP_CA_OPEN: Final = 0
TCP_CA_DISORDER: Final = 1
TCP_CA_CWR: Final = 2
TCP_CA_RECOVERY: Final = 3
TCP_CA_LOSS: Final = 4
# tcpi_options bits
TCPI_OPT_TIMESTAMPS: Final = 1
TCPI_OPT_SACK: Final = 2
TCPI_OPT_WSCALE: Final = 4
TCPI_OPT_ECN: Final = 8
TCPI_OPT_SYN_DATA: Final = 32  # the SYN's data was acknowledged (fast open)
_LINUX_STATE: Final = {  # include/net/tcp_states.h
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

CONSTANTS: Final = {
    "TCP_INFINITE_SSTHRESH": TCP_INFINITE_SSTHRESH,
    "TCP_CA_Open": TCP_CA_OPEN,
    "TCP_CA_Disorder": TCP_CA_DISORDER,
    "TCP_CA_CWR": TCP_CA_CWR,
    "TCP_CA_Recovery": TCP_CA_RECOVERY,
    "TCP_CA_Loss": TCP_CA_LOSS,
    "TCPI_OPT_TIMESTAMPS": TCPI_OPT_TIMESTAMPS,
    "TCPI_OPT_SACK": TCPI_OPT_SACK,
    "TCPI_OPT_WSCALE": TCPI_OPT_WSCALE,
    "TCPI_OPT_ECN": TCPI_OPT_ECN,
    "TCPI_OPT_SYN_DATA": TCPI_OPT_SYN_DATA,
    # tcpi_state's values by Linux's names (TCP_ESTABLISHED ... TCP_CLOSING)
    **{"TCP_" + state.linux_name: number for state, number in _LINUX_STATE.items()},
}


def _usecs(seconds: float | None) -> int:
    return 0 if seconds is None else round(seconds * 1_000_000)


def tcp_info(conn: Connection, now: float) -> dict[str, int]:
    """The fields at time `now`, as getsockopt(TCP_INFO) reads them. An orphan in TIME_WAIT that let go of
    its sending side (Connection.release_sending_side) reports what that side held when it did."""
    tcb, rto = conn.tcb, conn.rto
    sending = sending_fields(conn, now) if conn.cc is not None else conn.released_info
    options = (
        (TCPI_OPT_TIMESTAMPS if conn.ts_ok else 0)
        | (TCPI_OPT_SACK if conn.sack_ok else 0)
        | (TCPI_OPT_WSCALE if tcb.snd_wscale or tcb.rcv_wscale else 0)
        | (TCPI_OPT_ECN if conn.ecn.ok else 0)
        | (TCPI_OPT_SYN_DATA if conn.fast_open & fast_open.SYN_DATA_ACKED else 0)
    )
    counters = conn.counters
    return {
        "tcpi_state": _LINUX_STATE[conn.state],
        "tcpi_ca_state": sending["tcpi_ca_state"],
        "tcpi_retransmits": conn.retransmits,
        "tcpi_backoff": rto.backoff,
        "tcpi_probes": conn.probes_out,
        "tcpi_options": options,
        "tcpi_snd_wscale": tcb.snd_wscale,
        "tcpi_rcv_wscale": tcb.rcv_wscale,
        "tcpi_rto": _usecs(rto.rto),
        "tcpi_snd_mss": mss_cache(tcb),
        "tcpi_rcv_mss": conn.receiver.estimated_rcv_mss(),
        # the MSS we offered less the timestamps every segment then carries (Linux's tp->advmss)
        "tcpi_advmss": conn.config.mss - (TIMESTAMP_OPTION if conn.ts_ok else 0),
        "tcpi_unacked": sending["tcpi_unacked"],
        "tcpi_sacked": sending["tcpi_sacked"],
        "tcpi_lost": sending["tcpi_lost"],
        "tcpi_retrans": sending["tcpi_retrans"],
        "tcpi_fackets": 0,
        "tcpi_pmtu": conn.mtu_cookie,  # the path MTU segments are fitted to (Linux icsk_pmtu_cookie)
        "tcpi_rtt": _usecs(rto.srtt),
        "tcpi_rttvar": _usecs(rto.rttvar),
        "tcpi_snd_ssthresh": sending["tcpi_snd_ssthresh"],
        "tcpi_snd_cwnd": sending["tcpi_snd_cwnd"],
        "tcpi_reordering": sending["tcpi_reordering"],
        "tcpi_reord_seen": sending["tcpi_reord_seen"],
        "tcpi_total_retrans": counters.retrans_segs,
        "tcpi_min_rtt": sending["tcpi_min_rtt"],
        "tcpi_segs_out": counters.segs_out,
        "tcpi_segs_in": counters.segs_in,
        "tcpi_snd_wnd": tcb.snd_wnd,
        "tcpi_rcv_wnd": tcb.rcv_wnd,
        "tcpi_last_data_recv": round((now - conn.receiver.last_data_rcv) * 1000),  # milliseconds, as Linux
        "tcpi_busy_time": sending["tcpi_busy_time"],
        "tcpi_rwnd_limited": sending["tcpi_rwnd_limited"],
        "tcpi_sndbuf_limited": sending["tcpi_sndbuf_limited"],
        "tcpi_bytes_received": conn.receiver.bytes_received,
        "tcpi_bytes_acked": sending["tcpi_bytes_acked"],
        # getsockopt(SO_MEMINFO)'s send side: sk_sndbuf and what the queue costs in Linux's units
        # (write_queue.py); the device takes each segment at once, so none is waiting for it (sk_wmem_alloc)
        "SK_MEMINFO_SNDBUF": sending["SK_MEMINFO_SNDBUF"],
        "SK_MEMINFO_WMEM_QUEUED": sending["SK_MEMINFO_WMEM_QUEUED"],
        "SK_MEMINFO_WMEM_ALLOC": 0,
        "tcpi_rcv_ssthresh": conn.receiver.rcv_ssthresh,
        "tcpi_rcv_rtt": conn.receiver.rcv_rtt,
        "tcpi_rcv_space": conn.receiver.rcv_space,
        # Linux's sock_diag SK_MEMINFO receive fields: memory held (truesize) and the buffer's size
        "SK_MEMINFO_RMEM_ALLOC": conn.receiver.rmem,
        "SK_MEMINFO_RCVBUF": conn.receiver.rcvbuf,
    }


def _probe_resend_out(recovery: Recovery) -> bool:
    """A tail loss probe's resend of the last segment is out, and nothing has resent that segment since:
    Linux's retrans_out and lost_out do not count it (tcp_send_loss_probe resends it with
    __tcp_retransmit_skb, which marks it ever resent, TCPCB_EVER_RETRANS, but not TCPCB_SACKED_RETRANS,
    which retrans_out counts, nor LOST), though total_retrans does."""
    tlp = recovery.tlp
    if tlp is None or not tlp[1]:
        return False
    board = recovery.board
    end = board.offset_of(tlp[0])
    return any(r.end == end and r.retransmitted and not r.sacked and not r.lost for r in board)


def sending_fields(conn: Connection, now: float) -> dict[str, int]:
    """The fields the sending side's parts hold: the controller, loss recovery, the chronographs, the
    send buffer."""
    tcb, cc, recovery = conn.tcb, conn.cc, conn.recovery
    mss = max(1, tcb.snd_mss)
    records = list(recovery.board)  # counted in segments, as Linux counts its skbs' pcount
    sacked = sum(r.segments for r in records if r.sacked) + recovery.reno_sacked  # (Linux's sacked_out)
    retrans = sum(r.segments for r in records if r.retransmitted and not r.sacked)
    lost = sum(r.segments for r in records if not r.sacked and (r.lost or r.retransmitted))
    if _probe_resend_out(recovery):  # Linux resends it without counting it out (__tcp_retransmit_skb)
        retrans -= 1
        lost -= 1
    if recovery.loss_high is not None:
        ca_state = TCP_CA_LOSS
    elif recovery.in_fast_recovery:
        ca_state = TCP_CA_RECOVERY
    elif recovery.ecn_reducing:
        ca_state = TCP_CA_CWR  # reduced for an ECE, until data sent after that window is acknowledged
    elif sacked:
        ca_state = TCP_CA_DISORDER
    else:
        ca_state = TCP_CA_OPEN
    busy, rwnd_limited, sndbuf_limited = conn.chrono.elapsed(now)
    # the SYN and FIN take sequence numbers but are not data (RFC 9293 §3.4)
    acked = conn.bytes_acked - 1 - conn.fin_acked if conn.state.synchronized else 0
    return {
        "tcpi_ca_state": ca_state,
        "tcpi_unacked": recovery.board.segments,
        "tcpi_sacked": sacked,
        "tcpi_lost": lost,
        "tcpi_retrans": retrans,
        "tcpi_snd_ssthresh": TCP_INFINITE_SSTHRESH if cc.ssthresh >= INFINITE_SSTHRESH else cc.ssthresh // mss,
        # in recovery Linux's cwnd is what PRR lets be in flight (tcp_cwnd_reduction), our send window
        "tcpi_snd_cwnd": (cc.cwnd if recovery.send_window is None else recovery.send_window) // mss,
        "tcpi_reordering": recovery.reordering,
        "tcpi_reord_seen": recovery.reord_seen,
        "tcpi_min_rtt": _usecs(recovery.rack.min_rtt),
        "tcpi_busy_time": _usecs(busy),
        "tcpi_rwnd_limited": _usecs(rwnd_limited),
        "tcpi_sndbuf_limited": _usecs(sndbuf_limited),
        "tcpi_bytes_acked": max(acked, 0),
        "SK_MEMINFO_SNDBUF": conn.sender.sndbuf,
        "SK_MEMINFO_WMEM_QUEUED": conn.sender.buffer.truesize,
    }
