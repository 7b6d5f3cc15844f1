"""The timers' handlers (Linux tcp_timer.c): retransmission (RFC 6298), tail loss probe (RFC 8985 §7),
zero-window probe (RFC 9293 §3.8.6.1) and keepalive (RFC 1122 §4.2.3.6). The delayed ACK, RACK's
reordering timer, TIME_WAIT and FIN_WAIT_2 belong to their owners; `handle_timer` dispatches to all."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from stack.tcp import output, timers, user_timeout, write_queue
from stack.tcp.mtu_probing import BLACK_HOLE_RETRIES
from stack.tcp.rto import retries_time
from stack.tcp.state import OPEN_FOR_DATA, OPENING, Event, State
from stack.wire.segment import Flags
from stack.wire.seq import seq_add, seq_sub

if TYPE_CHECKING:
    from stack.tcp.connection import Connection

RESOURCE_PROBE_INTERVAL: Final = 0.5  # Linux TCP_RESOURCE_PROBE_INTERVAL: a send refused locally is tried again
# the loss probe timeout beyond 2*SRTT with several segments in flight: Linux adds TCP_TIMEOUT_MIN where
# RFC 8985 §7.2 adds nothing; we follow Linux
PTO_SLACK: Final = timers.TIMEOUT_MIN
PTO_NO_RTT: Final = 1.0  # RFC 8985 §7.2 without an RTT sample (Linux TCP_TIMEOUT_INIT)
# tcp_retries2 is a time: what that many doubling timeouts from 200 ms take, whatever this connection's own
# RTO (Linux retransmits_timed_out with TCP_RTO_MIN)
RETRIES_RTO_BASE: Final = 0.2


def handle_timer(conn: Connection, now: float) -> None:
    """Run the handler of every timer due by `now`; a connection a handler closed runs no more."""
    for name in conn.timers.expired(now):
        if conn.timers.running(name):
            continue  # an earlier handler of this batch started it again (a probe restarts the RTO)
        if name == timers.RETRANSMIT:
            _on_retransmit_timeout(conn, now)
        elif name == timers.DELAYED_ACK:
            conn.receiver.on_delayed_ack_timeout()
        elif name == timers.COMPRESSED_ACK:
            conn.receiver.on_compressed_ack_timeout()
        elif name == timers.PERSIST:
            _on_persist_timeout(conn, now)
        elif name == timers.LOSS_PROBE:
            _on_loss_probe(conn, now)
        elif name == timers.RACK_REORDER:
            if conn.recovery.on_reorder_timeout(now, conn.rto.srtt):
                conn.window_reduced()
        # PACING: nothing to do here; segments_to_send() sends what the pacing rate now allows
        elif name == timers.KEEPALIVE:
            _on_keepalive_timeout(conn, now)
        elif name == timers.TIME_WAIT:
            conn.enter(Event.TIME_WAIT_TIMEOUT, now)
        elif name == timers.FIN_WAIT_2:
            conn.enter(Event.FIN_WAIT_2_TIMEOUT, now)
        if conn.state is State.CLOSED:
            return


def _on_retransmit_timeout(conn: Connection, now: float) -> None:
    """RFC 6298 (5.4)-(5.7): retransmit the earliest unacknowledged segment, back off."""
    # an active open's first timeouts are linear (Linux tcp_syn_linear_timeouts): more retries, no backoff
    linear = conn.config.syn_linear_timeouts if conn.state is State.SYN_SENT else 0
    if conn.state in OPENING:
        limit = conn.config.syn_retries + linear if conn.state is State.SYN_SENT else conn.config.synack_retries
    else:
        limit = _retries_limit(conn)
    # a peer that keeps answering with a zero window is alive: our retransmissions are its window
    # probes, which must go on as long as it answers (§3.8.6.1); only a peer that missed a probe (silent
    # for longer than one MAX_RTO interval, with slack) goes (Linux tcp_retransmit_timer, "receiver
    # dastardly shrinks window"; an orphan is not spared)
    probing = (
        conn.state.synchronized
        and conn.tcb.snd_wnd == 0
        and not conn.orphaned
        and now - conn.last_heard < 1.5 * conn.config.max_rto
    )
    # the SYN (or our SYN,ACK, still unacknowledged after CLOSE in SYN_RECEIVED) is what goes again
    syn_first = conn.state in OPENING or conn.tcb.snd_una == conn.tcb.iss
    if conn.retrans_stamp is None:
        # the time of the first retransmission, this one (Linux tcp_retransmit_skb); a SYN's is when
        # the SYN was first sent (tcp_connect)
        head = conn.recovery.board.first()
        if syn_first:
            conn.retrans_stamp = head.xmit_ts if head is not None else now - conn.rto.rto
        else:
            conn.retrans_stamp = now
    if user_timeout.set_for(conn):
        expired = user_timeout.expired(conn, now, probing)  # it replaces the count of retries (Linux)
    elif not syn_first:
        # the time tcp_retries2 timeouts would take, from the first retransmission of the episode, once
        # a timeout has come since the last progress (Linux tcp_write_timeout, retransmits_timed_out)
        budget = retries_time(limit, RETRIES_RTO_BASE, conn.config.max_rto)
        expired = conn.retransmits > 0 and not probing and now - conn.retrans_stamp >= budget - user_timeout.SLACK
    else:
        expired = conn.retransmits >= limit and not probing
        if linear and not expired:
            # the linear timeouts add retries, not time: an active open also ends when syn_retries
            # doubling timeouts would have (Linux tcp_write_timeout, retransmits_timed_out)
            budget = retries_time(conn.config.syn_retries, conn.config.initial_rto, conn.config.max_rto)
            expired = now - conn.retrans_stamp >= budget
    if expired:
        conn.time_out(Event.RETRANSMIT_TIMEOUT, now)
        return
    if not probing:
        conn.retransmits += 1
        if conn.mtu_probe is not None and conn.retransmits > BLACK_HOLE_RETRIES and conn.state.synchronized:
            _suspect_black_hole(conn, now)
    conn.counters.events().timeouts += 1
    if not linear or conn.retransmits > linear:
        conn.rto.on_timeout()
    conn.sender.rtt_seq = None  # Karn: never time a retransmitted segment
    if syn_first:
        output.send_syn(conn, now, retransmit=True)
    else:
        conn.recovery.on_timeout(now, repeated=conn.retransmits > 1)
        conn.window_reduced()
        output.output_data(conn, now, timeout=True)
    conn.timers.start(timers.RETRANSMIT, user_timeout.clamp(conn, now + conn.rto.rto))


def revert_backoff(conn: Connection, now: float) -> None:
    """RFC 6069 (TCP-LD) as Linux's tcp_ld_RTO_revert: while the retransmission timer backs off, an ICMP
    net or host unreachable that quotes the first unacknowledged segment says a connectivity disruption,
    not congestion, lost it. One doubling is undone, and the timer runs from that segment's last send
    with the RTO that leaves; if that time has passed, the timeout happens now."""
    head = conn.recovery.board.first()
    if head is None:
        return
    conn.rto.revert_backoff()
    remaining = head.xmit_ts + conn.rto.rto - now
    if remaining > 0:
        conn.timers.start(timers.RETRANSMIT, now + remaining)
    else:
        _on_retransmit_timeout(conn, now)


def _suspect_black_hole(conn: Connection, now: float) -> None:
    """Timeouts keep repeating: maybe large segments vanish without an ICMP message (RFC 4821 §7.7,
    Linux tcp_mtu_probing). Probing starts, or its floor halves; what is in flight is cut to the new
    size for the retransmissions."""
    prober = conn.mtu_probe
    assert prober is not None  # (called only while probing)
    prober.black_hole(now)
    conn.sync_mss(conn.mtu_cookie)
    conn.recovery.mtu_reduced(conn.tcb.snd_mss)


def arm_loss_probe(conn: Connection, now: float) -> None:
    """RFC 8985 §7.2 as Linux (tcp_schedule_loss_probe): a probe timeout after the last send of new data
    or ACK of it, never later than the RTO: a probe due when the RTO is goes out as a probe, without
    backoff. Only with SACK, and only while nothing is SACKed, lost or resent (Linux's Open state)."""
    recovery = conn.recovery
    board = recovery.board
    rto_at = conn.timers.deadline(timers.RETRANSMIT)
    if (
        not conn.tcb.sack_ok
        or not conn.config.loss_probes
        or not len(board)
        or recovery.tlp is not None
        or recovery.in_recovery
        or board.sacked_bytes
        or rto_at is None
        or not conn.state.synchronized
    ):
        conn.timers.stop(timers.LOSS_PROBE)
        return
    srtt = conn.rto.srtt
    if srtt is None:
        pto = PTO_NO_RTT
    elif board.one_segment_out():  # a lone segment's ACK may be delayed (WCDelAckT: rto_min)
        pto = timers.in_jiffies(2 * srtt + conn.config.min_rto)
    else:
        pto = timers.in_jiffies(2 * srtt + PTO_SLACK)
    deadline = min(conn.sender.last_progress + pto, rto_at)
    if deadline <= now:
        # due already: the probe went, or could not (the window kept it back); another waits for an
        # ACK or new data, as Linux schedules probes only then (tcp_schedule_loss_probe)
        conn.timers.stop(timers.LOSS_PROBE)
        return
    conn.timers.start(timers.LOSS_PROBE, deadline)


def _on_loss_probe(conn: Connection, now: float) -> None:
    """RFC 8985 §7.3: send one new segment, or resend the last one, to draw a (SACK) ACK."""
    tcb = conn.tcb
    last = conn.recovery.board.last()
    if last is None or conn.recovery.in_recovery:
        return
    sender = conn.sender
    n = min(sender.unsent(tcb.snd_nxt), write_queue.mss_cache(tcb))
    if n > 0 and n <= tcb.snd_wnd - seq_sub(tcb.snd_nxt, tcb.snd_una):  # all of it fits (tcp_snd_wnd_test)
        output.send_data_segment(conn, sender.buffer.offset(tcb.snd_nxt), n, False, now)
        conn.recovery.probe_sent(tcb.snd_nxt, False)
        return
    # cut off its packet's skb first, as Linux's tcp_send_loss_probe, even if the window then keeps it
    sender.buffer.split(conn.recovery.board.seq_of(last.start))
    last = output.resendable(conn, last)
    if last is None:
        return  # the peer shrank its window below it (§3.8.6): the RTO goes on (Linux __tcp_retransmit_skb)
    output.retransmit(conn, last, now, probe=True)  # resend the last segment (RFC 8985 §7.3)
    conn.recovery.probe_sent(tcb.snd_nxt, True)
    conn.timers.start(timers.RETRANSMIT, now + conn.rto.rto)  # §7.3: re-arm the RTO after a probe


def _on_persist_timeout(conn: Connection, now: float) -> None:
    """Zero-window probe (RFC 9293 §3.8.6.1): elicit an ACK carrying the current window."""
    tcb = conn.tcb
    sender = conn.sender
    unsent = sender.unsent(tcb.snd_nxt)
    if unsent <= 0 or tcb.snd_nxt != tcb.snd_una:
        return
    if conn.config.qdisc_drops:
        _resource_probe(conn, now)
        return
    if tcb.snd_wnd > 0:  # a window too small for SWS avoidance: the override timeout fired
        n = min(min(tcb.snd_wnd, write_queue.mss_cache(tcb)), unsent)
        # pushed, as Linux's window probe (tcp_write_wakeup) is
        output.send_data_segment(conn, sender.buffer.offset(tcb.snd_nxt), n, False, now, push=True)
        return
    if _probing_gave_up(conn, now):
        return
    output.emit(conn, now, Flags.ACK, seq_add(tcb.snd_una, -1))
    conn.counters.events().window_probes += 1
    conn.probes_out += 1
    if sender.persist_backoff < conn.config.max_retries:  # it stops doubling there (Linux tcp_send_probe0)
        sender.persist_backoff += 1
    deadline = now + sender.persist_interval(conn.rto.rto)
    conn.timers.start(timers.PERSIST, user_timeout.clamp_probe(conn, deadline))


def _resource_probe(conn: Connection, now: float) -> None:
    """Data waits and the local queue refuses every packet: try again every half second without
    backing off, as Linux does for a send that failed locally (tcp_send_probe0 with
    TCP_RESOURCE_PROBE_INTERVAL); the tries count as probes, and TCP_USER_TIMEOUT, counted from the
    first, ends the connection (tcp_probe_timer)."""
    if _probing_gave_up(conn, now):
        return
    conn.probes_out += 1
    deadline = now + RESOURCE_PROBE_INTERVAL
    conn.timers.start(timers.PERSIST, user_timeout.clamp_probe(conn, deadline))


def _retries_limit(conn: Connection) -> int:
    """tcp_retries2, or for an orphan tcp_orphan_retries: 8 by default, while the RTO has not backed
    off to its maximum (Linux tcp_orphan_retries: more than 100 s from a 200 ms RTO)."""
    if not conn.orphaned:
        return conn.config.max_retries
    retries = conn.config.orphan_retries
    if retries == 0 and conn.rto.rto < conn.config.max_rto:
        return 8
    return retries


def _probing_gave_up(conn: Connection, now: float) -> bool:
    """Before a probe: TCP_USER_TIMEOUT since the first one, or tcp_retries2 probes in a row that
    nothing answered, end the connection as a retransmission timeout does, without a RST (Linux
    tcp_probe_timer, tcp_write_err); True if it ended."""
    if conn.probe_stamp is None:
        conn.probe_stamp = now
        return False
    if user_timeout.probing_expired(conn, now) or conn.probes_out >= _retries_limit(conn):
        conn.time_out(Event.RETRANSMIT_TIMEOUT, now)
        return True
    return False


def arm_keepalive(conn: Connection, now: float) -> None:
    """(Re)start the idle timer; called on every segment received and when SO_KEEPALIVE is set."""
    if conn.config.keepalive and conn.state in OPEN_FOR_DATA:
        conn.timers.start(timers.KEEPALIVE, now + conn.config.keepalive_idle)
    else:
        conn.timers.stop(timers.KEEPALIVE)


def _on_keepalive_timeout(conn: Connection, now: float) -> None:
    tcb = conn.tcb
    if tcb.snd_una != tcb.snd_max:  # data in flight: the retransmission timer watches the peer
        arm_keepalive(conn, now)
        return
    if conn.keepalive_probes >= conn.config.keepalive_count:
        output.emit_rst(conn, conn.acceptable_seq(), now)  # as Linux (tcp_keepalive_timer): the peer may still be there
        conn.time_out(Event.KEEPALIVE_TIMEOUT, now)
        return
    # a probe carries SEG.SEQ = SND.NXT - 1 so that the peer must answer with an ACK
    output.emit(conn, now, Flags.ACK, seq_add(tcb.snd_una, -1))
    conn.keepalive_probes += 1
    conn.probes_out += 1
    conn.counters.events().keepalive_probes += 1
    conn.timers.start(timers.KEEPALIVE, now + conn.config.keepalive_interval)
