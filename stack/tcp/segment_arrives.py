"""SEGMENT ARRIVES (RFC 9293 §3.10.7), one function per group of states, checks in the RFC's order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from stack.tcp import output, rcv_space, timers
from stack.tcp.ecn import Ecn
from stack.tcp.header_prediction import predicted
from stack.tcp.memory import FORCED_RECEIVE
from stack.tcp.state import Event, State
from stack.wire.segment import Flags, Segment
from stack.wire.seq import in_window, seq_add, seq_ge, seq_gt, seq_le, seq_lt, seq_sub

if TYPE_CHECKING:
    from stack.tcp.connection import Connection
    from stack.tcp.tcb import Tcb

_RECEIVING_TEXT: Final = (State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2)
_AFTER_PEER_FIN: Final = (State.CLOSE_WAIT, State.CLOSING, State.LAST_ACK)
# Where every segment passes, sequence comparisons are inlined as d = (a - b) & _MASK (RFC 9293 §3.4):
# a < b is d >= _HALF, a <= b is d == 0 or d >= _HALF, a > b is 0 < d < _HALF, a >= b is d < _HALF,
# exactly as stack/wire/seq.py's functions, without the call.
_MASK: Final = 0xFFFFFFFF
_HALF: Final = 0x80000000


# (globals: see state.py)
_CLOSED: Final = State.CLOSED
_SYN_SENT: Final = State.SYN_SENT
_SYN_RECEIVED: Final = State.SYN_RECEIVED
_ESTABLISHED: Final = State.ESTABLISHED
_FIN_WAIT_1: Final = State.FIN_WAIT_1
_FIN_WAIT_2: Final = State.FIN_WAIT_2
_CLOSING: Final = State.CLOSING
_LAST_ACK: Final = State.LAST_ACK
_TIME_WAIT: Final = State.TIME_WAIT
# what PAWS does with a segment (_paws_verdict)
_PAWS_PASS: Final = 0
_PAWS_DROP: Final = 1  # and answered by an ACK
_PAWS_DROP_SILENTLY: Final = 2


def segment_arrives(conn: Connection, seg: Segment, now: float) -> None:
    state = conn.state
    if state is _CLOSED or conn.finished:
        return  # the demultiplexer answers for closed connections (§3.10.7.1)
    if state is _ESTABLISHED and conn.config.header_prediction and predicted(conn, seg, now):
        return
    if state is _SYN_SENT:
        _syn_sent(conn, seg, now)
    elif state is _TIME_WAIT:
        _time_wait(conn, seg, now)
    elif state is _FIN_WAIT_2 and conn.orphaned:
        _orphaned_fin_wait_2(conn, seg, now)
    else:
        _synchronized(conn, seg, now)


def _syn_sent(conn: Connection, seg: Segment, now: float) -> None:
    """§3.10.7.3."""
    tcb = conn.tcb
    flags = seg.flags
    ack_ok = False
    if flags & Flags.ACK:  # first: check the ACK bit
        if seq_le(seg.ack, tcb.iss) or seq_gt(seg.ack, tcb.snd_max):
            if conn.retransmits == 0:
                # the peer holds an old connection, whose FIN or RST may have been ignored: resend the SYN
                # at once rather than after the initial RTO (Linux tcp_rcv_synsent_state_process)
                conn.timers.start(timers.RETRANSMIT, now + timers.TIMEOUT_MIN)
            output.answer_with_reset(conn, seg)  # (never for a RST)
            return
        if not _echoes_our_syn(conn, seg, now):
            # RFC 7323 §4.1's echo must be of a TSval we sent since our first SYN: else an old or forged
            # segment, answered by a RST, a RST,ACK ignored; the connect goes on (Linux
            # tcp_rcv_synsent_state_process, PAWSActive)
            conn.counters.events().paws_active_rejected += 1
            output.answer_with_reset(conn, seg)
            return
        ack_ok = True
    if flags & Flags.RST:  # second: the RST bit
        if ack_ok:
            conn.on_reset(True, now)
        return
    if not flags & Flags.SYN:  # fourth: neither SYN nor RST: drop
        return
    tcb.irs = seg.seq
    tcb.rcv_nxt = seq_add(seg.seq, 1)
    conn.apply_peer_syn_options(seg.options)
    conn.receiver.rebase_window()
    if ack_ok:
        conn.ecn.ok = conn.config.ecn and Ecn.setup_synack(seg)  # RFC 3168 §6.1.1
        conn.update_send_window(seg.window, seg.seq, seg.ack, syn_segment=True)
        conn.on_ack_advanced(seg.ack, now)
        conn.enter(Event.SYN_ACK, now)
        conn.receiver.ack_now = True
        if seg.payload or seg.flags & Flags.FIN:
            _process_text_and_fin(conn, seg, seq_add(seg.seq, 1), seg.payload, now)
    else:  # simultaneous open (§3.10.7.3 fourth check)
        conn.renegotiate_syn_options(seg.options)
        conn.update_send_window(seg.window, seg.seq, seg.ack, syn_segment=True)
        conn.enter(Event.SYN, now)
        output.send_syn(conn, now, retransmit=True)


def _resets(conn: Connection, seq: int) -> bool:
    """A RST resets at RCV.NXT exactly (RFC 5961 §3.2), and after the peer's FIN also with the FIN's own
    sequence number, RCV.NXT - 1, as some stacks number a RST after their FIN (Linux tcp_reset_check)."""
    rcv_nxt = conn.tcb.rcv_nxt
    return seq == rcv_nxt or (seq == (rcv_nxt - 1) & _MASK and conn.state in _AFTER_PEER_FIN)


def _echoes_our_syn(conn: Connection, seg: Segment, now: float) -> bool:
    """Whether an ACK in SYN-SENT echoes a TSval from our first SYN until now, or none (TSecr 0, or no
    timestamps: ours were not offered, or the peer sends none)."""
    ts = seg.options.timestamps
    if ts is None or not ts[1] or conn.syn_options.timestamps is None:
        return True
    first = conn.ts_val(conn.sender.rtt_time)  # (rtt_time: our first SYN, never moved by a resend)
    return (ts[1] - first) & _MASK <= (conn.ts_val(now) - first) & _MASK


def _acceptable(conn: Connection, seq: int, seg_len: int) -> bool:
    """The four cases of the sequence acceptability test (§3.10.7.4, first check)."""
    tcb = conn.tcb
    rcv_wnd = max(seq_sub(tcb.rcv_adv, tcb.rcv_nxt), 0)
    if seg_len == 0:
        if rcv_wnd == 0:
            return seq == tcb.rcv_nxt
        return in_window(seq, tcb.rcv_nxt, rcv_wnd)
    if rcv_wnd == 0:
        return False
    return in_window(seq, tcb.rcv_nxt, rcv_wnd) or in_window(seq_add(seq, seg_len - 1), tcb.rcv_nxt, rcv_wnd)


def _synchronized(conn: Connection, seg: Segment, now: float) -> None:
    """§3.10.7.4: SYN-RECEIVED and every synchronized state but TIME-WAIT and an orphaned FIN-WAIT-2 (answered
    as Linux's time-wait socks answer: _time_wait, _orphaned_fin_wait_2)."""
    tcb = conn.tcb
    flags = seg.flags
    seq = seg.seq
    seg_len = seg.seg_len

    if not flags & (Flags.ACK | Flags.RST | Flags.SYN) and not (conn.state is _SYN_RECEIVED and conn.passive):
        # §3.10.7.4 would answer such a segment outside the window before its fifth check drops it; Linux
        # drops it first, unanswered (tcp_rcv_established, tcp_rcv_state_process; its request sock checks
        # the window first, as the RFC)
        return

    if (
        conn.state is _SYN_RECEIVED
        and conn.passive
        and flags & (Flags.ACK | Flags.RST) == Flags.ACK
        and seg.ack != (tcb.iss + 1) & _MASK
    ):
        # an unacceptable ACK (§3.10.7.4 fifth check) before a passive open completes: Linux's request sock
        # checks it before the sequence number and PAWS (tcp_check_req) and leaves the segment to the
        # listener, which answers <SEQ=SEG.ACK><CTL=RST>; the half-open connection stays (a RST is checked
        # as in any state: measured on Linux 6.18)
        output.answer_with_reset(conn, seg)
        return

    # RFC 7323 §5.3 R1: PAWS drops a segment whose timestamp is older than TS.Recent
    receiver = conn.receiver
    ts = seg.options.timestamps
    conn.ts_ecr_seen = 0
    if tcb.ts_ok and ts is not None:
        old = _older_than_ts_recent(receiver.ts_recent, ts[0])
        verdict = _paws_verdict(conn, seg, (receiver.ts_recent - ts[0]) & _MASK) if old else _PAWS_PASS
        if verdict == _PAWS_DROP_SILENTLY:
            conn.counters.events().paws_old_acks += 1
            return
        if verdict == _PAWS_DROP:
            conn.counters.events().paws_drops += 1
            # a RST (only a passive SYN-RECEIVED drops one) is not answered (tcp_check_req)
            if not flags & Flags.RST:
                _ack_dropped(conn, seg, now, paws=True)
            return
        conn.ts_ecr_seen = ts[1]

    if conn.state is _SYN_RECEIVED and flags & Flags.SYN and seq == tcb.irs and not flags & Flags.ACK:
        # the peer retransmitted its SYN (and it passed PAWS): resend our SYN,ACK, at most once per
        # tcp_invalid_ratelimit (Linux tcp_check_req, through tcp_oow_rate_limited)
        if conn.may_answer(now):
            output.send_syn(conn, now, retransmit=True)
        return

    # first: sequence number (a RST that resets is in sequence, _resets says when)
    if not _acceptable(conn, seq, seg_len) and not (flags & Flags.RST and _resets(conn, seq)):
        if seq == tcb.rcv_nxt and seq_sub(tcb.rcv_adv, tcb.rcv_nxt) <= 0:
            # zero window: still take valid ACKs, URGs and RSTs (§3.10.7.4 first check) and, as Linux,
            # a bare FIN; the text is trimmed away below and the ACK we owe repeats the closed window
            conn.receiver.ack_now = True
        else:
            if flags & Flags.RST:
                conn.counters.events().rsts_out_of_window += 1  # dropped silently (RFC 5961 §3.2)
            elif flags & Flags.SYN:
                conn.challenge_syn(now)  # RFC 5961 §4.2: any SYN, in window or not, draws a limited challenge
            else:
                _answer_unacceptable(conn, seg, now)
            return

    # second: RST (with RFC 5961 §3.2: only an exact match resets, in-window gets a challenge ACK)
    if flags & Flags.RST:
        if not _resets(conn, seq):
            conn.challenge_ack(now)
            return
        if conn.state is State.SYN_RECEIVED:
            if conn.passive:
                conn.enter(Event.RST, now)
            else:  # a simultaneous open is refused; a fast open child, which its application has, reset
                conn.on_reset(not conn.fast_open, now)
        elif conn.state in (State.CLOSING, State.LAST_ACK):
            conn.enter(Event.RST, now)
        else:
            conn.on_reset(False, now)
        return

    # fourth: SYN
    if flags & Flags.SYN:
        if conn.state is _SYN_RECEIVED and conn.passive:
            # a passive open returns to LISTEN (§3.10.7.4 fourth check); Linux answers the SYN with a RST
            # first (tcp_check_req's embryonic reset), so that a peer that restarted opens again at once
            output.answer_with_reset(conn, seg)
            conn.enter(Event.SYN, now)
        else:
            conn.challenge_syn(now)  # in a synchronized state (RFC 5961 §4.2)
        return

    # fifth: ACK
    if not flags & Flags.ACK:
        return
    established = conn.state is _ESTABLISHED  # (the ACK may complete the handshake: Linux's other path)
    if not _process_ack(conn, seg, now):
        return

    if conn.ecn.on_arrival(seg):  # a CE mark: echo it at once (RFC 3168 §6.1.3; Linux quickacks too)
        conn.counters.events().ce_received += 1
        conn.receiver.ack_now = True
    if ts is not None and tcb.ts_ok and established:  # (Linux tcp_rcv_established's step 5)
        if seg_len:
            receiver.echo_seen(ts[1], conn.ts_val(now), seg_len)
        else:
            receiver.last_tsecr = ts[1]  # a pure ACK is never a sample: its echo is only noted

    # sixth (URG) is accepted and ignored: the pointer never hides data. seventh/eighth: text, FIN
    if seg.payload and conn.state in _AFTER_PEER_FIN and _overlaps_rcv_nxt(seq, len(seg.payload), tcb.rcv_nxt):
        # §3.10.7.4 ignores text after the peer's FIN; Linux resets when it runs past where the FIN was
        # (tcp_rcv_state_process: RFC 1122 §4.2.2.13's rule for a shut receiving side, TCPAbortOnData)
        output.answer_with_reset(conn, seg)
        conn.counters.events().aborts_on_data += 1
        conn.on_reset(False, now)
        return
    # (after the peer's FIN, text and a FIN at or beyond RCV.NXT are ignored, §3.10.7.4 seventh and eighth
    # checks, without an ACK, as Linux's tcp_rcv_state_process; a retransmitted FIN was answered above)
    if conn.state in _RECEIVING_TEXT and (seg.payload or flags & Flags.FIN):
        _process_text_and_fin(conn, seg, seq, seg.payload, now)
    # after the FIN check, so that FIN together with the ACK of our FIN goes straight to TIME-WAIT
    if conn.state is _FIN_WAIT_1 and conn.fin_acked:
        conn.enter(Event.ACK_OF_FIN, now)


def _time_wait(conn: Connection, seg: Segment, now: float) -> None:
    """TIME-WAIT answers as Linux's time-wait sock (tcp_timewait_state_process), which takes only a bare
    segment or a RST exactly at RCV.NXT that passes PAWS: the RST ends TIME-WAIT (RFC 1337's assassination,
    which RFC 9293 and Linux's default allow), the bare segment starts 2*MSL again whatever it acknowledges.
    A SYN that may open a new incarnation never gets here (syn_ends_time_wait). Any other RST is dropped;
    anything else is answered by an ACK of RCV.NXT, without SACK blocks, limited as answers to unacceptable
    segments are unless it carries data or a FIN (a retransmitted FIN: §3.10.7.4 eighth check), and starts
    2*MSL again if it carries an ACK or failed PAWS. TS.Recent moves only with a bare segment."""
    tcb = conn.tcb
    receiver = conn.receiver
    flags = seg.flags
    ts = seg.options.timestamps if tcb.ts_ok else None
    paws_reject = ts is not None and _older_than_ts_recent(receiver.ts_recent, ts[0])
    if not paws_reject and seg.seq == tcb.rcv_nxt and (not seg.seg_len or flags & Flags.RST):
        if flags & Flags.RST:
            conn.counters.events().time_wait_killed += 1
            conn.enter(Event.RST, now)
            return
        conn.restart_time_wait(now)
        if ts is not None:
            receiver.ts_recent = ts[0]
        return
    if paws_reject:
        conn.counters.events().time_wait_paws_drops += 1
    if flags & Flags.RST:
        return
    if paws_reject or flags & Flags.ACK:
        conn.restart_time_wait(now)
    _ack_dropped(conn, seg, now, paws_reject)


def _orphaned_fin_wait_2(conn: Connection, seg: Segment, now: float) -> None:
    """An orphaned FIN-WAIT-2 (the application closed, the peer acknowledged our FIN) answers as the
    time-wait sock Linux swaps it for (tcp_time_wait with TCP_FIN_WAIT2; tcp_timewait_state_process), which
    repeats the open connection's checks in short: a segment outside the window or failing PAWS (a RST too)
    gets an ACK, rate limited unless it carries data or a FIN; a RST in the window ends the connection
    without a challenge; a SYN at or beyond RCV.NXT is answered with a RST that ends it; a segment without
    an ACK or without anything new is dropped; new data gets a RST that ends it (RFC 1122 §4.2.2.13: data
    after close); the peer's FIN alone, at RCV.NXT, enters TIME-WAIT."""
    tcb = conn.tcb
    receiver = conn.receiver
    flags = seg.flags
    seq = seg.seq
    end = (seq + seg.seg_len) & _MASK
    rcv_nxt = tcb.rcv_nxt
    ts = seg.options.timestamps if tcb.ts_ok else None
    paws_reject = ts is not None and _older_than_ts_recent(receiver.ts_recent, ts[0])
    # Linux tcp_in_window against the window offered last
    right = seq_add(rcv_nxt, max(seq_sub(tcb.rcv_adv, rcv_nxt), 0))
    in_window = seq == rcv_nxt or (seq_gt(end, rcv_nxt) and seq_lt(seq, right)) or (seq == right and seq == end)
    if paws_reject or not in_window:  # (Linux counts no PAWS drop here)
        _ack_dropped(conn, seg, now, paws_reject)
        return
    if flags & Flags.RST:
        conn.on_reset(False, now)
        return
    if flags & Flags.SYN and seq_ge(seq, rcv_nxt):
        output.answer_with_reset(conn, seg)
        conn.enter(Event.SYN, now)
        return
    if not flags & Flags.ACK or not seq_gt(end, rcv_nxt) or end == seq:
        return  # nothing new: a duplicate ACK, or a segment without one
    if not flags & Flags.FIN or end != seq_add(rcv_nxt, 1):
        output.answer_with_reset(conn, seg)
        conn.enter(Event.DATA_AFTER_CLOSE, now)
        return
    if ts is not None:
        receiver.ts_recent = ts[0]
    _process_fin(conn, now)


def _ack_dropped(conn: Connection, seg: Segment, now: float, paws: bool) -> None:
    """An ACK for a segment dropped as unacceptable (`paws`: by PAWS), rate limited unless the segment
    carries data or a FIN (Linux tcp_oow_rate_limited; a SYN's sequence number counts as neither)."""
    if (seg.seg_len and not seg.flags & Flags.SYN) or conn.may_answer(now, paws=paws):
        conn.receiver.ack_now = True


def _take_ts_recent(conn: Connection, seq: int, ts_val: int) -> None:
    """RFC 7323 §4.3: TS.Recent takes the TSval of a segment at or before the left edge of the window last
    acknowledged (SEG.SEQ =< Last.ACK.sent, Linux's rcv_wup), so that a delayed ACK echoes the earliest
    segment it acknowledges, and only if it is not older. As Linux (tcp_ack), only a segment whose ACK is
    taken: not a RST or a SYN, not an ACK of unsent data or older than SND.UNA."""
    receiver = conn.receiver
    if (receiver.rcv_wup - seq) & _MASK < _HALF and (ts_val - receiver.ts_recent) & _MASK < _HALF:
        receiver.ts_recent = ts_val


def _older_than_ts_recent(ts_recent: int, ts_val: int) -> bool:
    """RFC 7323 §5.3 R1's test, before any of Linux's exceptions: a TSval older than TS.Recent by any
    amount (the time-wait socks and the request sock reject on that alone, a RST too: tcp_paws_reject);
    nothing is older while TS.Recent is 0 (a peer that sent 0 on its SYN)."""
    return ts_recent != 0 and 0 < (ts_recent - ts_val) & _MASK < _HALF


def _paws_verdict(conn: Connection, seg: Segment, behind: int) -> int:
    """What PAWS does with a segment whose TSval is `behind` TS.Recent (RFC 7323 §5.3 R1: older, as
    _older_than_ts_recent found), as Linux: before a passive open completes it drops it, a RST too
    (tcp_paws_reject, for Linux's request sock; TIME-WAIT has its own, _time_wait); otherwise one tick
    behind still passes (TCP_PAWS_WINDOW), a duplicate ACK the path reordered passes, a SYN passes to be
    challenged as any SYN is, a RST passes to be taken or challenged by its sequence number, and an old ACK
    (below RCV.NXT) is dropped without an answer (tcp_validate_incoming)."""
    if conn.state is _SYN_RECEIVED and conn.passive:
        return _PAWS_DROP
    # a SYN goes on to its challenge ACK (RFC 5961 §4.2), a RST to be taken whatever its timestamp
    # (tcp_validate_incoming)
    if behind <= 1 or seg.flags & (Flags.SYN | Flags.RST):
        return _PAWS_PASS
    tcb = conn.tcb
    seq = seg.seq
    if not seg.flags & Flags.ACK or seg.seg_len:
        return _PAWS_DROP
    if seq != tcb.rcv_nxt:
        return _PAWS_DROP_SILENTLY if (seq - tcb.rcv_nxt) & _MASK >= _HALF else _PAWS_DROP
    if seg.ack != tcb.snd_una:
        return _PAWS_DROP
    # a duplicate ACK that would not update the send window, within 1.2 RTOs (in TSval's milliseconds) of
    # TS.Recent: reordered, not old (Linux tcp_disordered_ack_check, tcp_may_update_window, tcp_tsval_replay)
    past_wl1 = (seq - tcb.snd_wl1) & _MASK
    updates = 0 < past_wl1 < _HALF or (past_wl1 == 0 and seg.window << tcb.snd_wscale > tcb.snd_wnd)
    return _PAWS_DROP if updates or behind > int(conn.rto.rto * 1200) else _PAWS_PASS


def _overlaps_rcv_nxt(seq: int, length: int, rcv_nxt: int) -> bool:
    """Text of `length` bytes from `seq` starts before RCV.NXT and ends after it."""
    return seq_lt(seq, rcv_nxt) and seq_gt(seq_add(seq, length), rcv_nxt)


def _answer_unacceptable(conn: Connection, seg: Segment, now: float) -> None:
    """An unacceptable segment is answered by an ACK and dropped (§3.10.7.4 first check). Answers to
    segments without data are rate limited, as Linux's tcp_invalid_ratelimit (500 ms): two ends whose
    ACKs fall outside each other's window would otherwise answer each other forever."""
    tcb = conn.tcb
    conn.counters.events().out_of_window += 1
    end = seq_add(seg.seq, seg.seg_len)
    if seg.seg_len and seq_gt(end, tcb.rcv_adv) and (seq_gt(seg.seq, tcb.rcv_adv) or len(conn.receiver)):
        conn.counters.events().beyond_window += 1  # past the furthest edge offered (Linux tcp_sequence: BeyondWindow)
    if not seg.seg_len and not conn.may_answer(now):
        return
    conn.receiver.ack_now = True
    if seg.seg_len and conn.tcb.sack_ok and seq_le(end, tcb.rcv_nxt):
        conn.receiver.dsack = (seg.seq, end)  # report the duplicate (RFC 2883 §4)


def _process_ack(conn: Connection, seg: Segment, now: float) -> bool:
    """§3.10.7.4 fifth check. Returns False when the segment must be dropped."""
    tcb = conn.tcb
    ack = seg.ack
    state = conn.state
    if state is _SYN_RECEIVED:
        if seq_lt(tcb.snd_una, ack) and seq_le(ack, tcb.snd_max):
            conn.update_send_window(seg.window, seg.seq, ack)
            conn.on_ack_advanced(ack, now)
            conn.enter(Event.ACK_OF_SYN, now)
            state = conn.state
        elif ack == tcb.snd_una and conn.fast_open:  # (its SND.UNA is past the SYN,ACK already)
            conn.update_send_window(seg.window, seg.seq, ack)
            conn.fast_open_synack_acked(now)
            conn.enter(Event.ACK_OF_SYN, now)
            state = conn.state
        else:
            output.answer_with_reset(conn, seg)
            return False

    if 0 < (ack - tcb.snd_max) & _MASK < _HALF:
        # ACKs something not yet sent: ACK and drop (RFC 9293), the ACK rate limited as a challenge ACK
        # (RFC 5961 §5.2, Linux tcp_ack), and its timestamp not taken (_take_ts_recent)
        conn.challenge_ack(now)
        return False
    if (ack - tcb.snd_una + max(tcb.max_snd_wnd, 1)) & _MASK >= _HALF:
        # RFC 5961 §5.2: an ACK older than SND.UNA - MAX.SND.WND is a blind injection attempt
        conn.challenge_ack(now)
        return False
    ts = seg.options.timestamps
    if ts is not None and tcb.ts_ok and (ack - tcb.snd_una) & _MASK < _HALF:
        _take_ts_recent(conn, seg.seq, ts[0])
    cwnd_before = conn.cc.cwnd  # an ECE on this ACK reduces from it (Connection.on_ece)
    newly_sacked = False
    if conn.tcb.sack_ok and seg.options.sack_blocks:
        newly_sacked = conn.recovery.on_sack(seg.options.sack_blocks, ack, conn.ts_ecr_seen, now)
    if (ack - tcb.snd_una) & _MASK >= _HALF:
        pass  # old duplicate: ignore the ACK, keep processing the text
    elif ack == tcb.snd_una:
        conn.probes_out = 0  # the peer answered (Linux tcp_ack)
        sacked_at = conn.recovery.sack_sent_at
        if sacked_at is not None:
            conn.rto.on_sample(now - sacked_at, ack, tcb.snd_nxt)  # timed by what it SACKs (Linux)
        window = seg.window << tcb.snd_wscale
        # RFC 5681 §2 wants the window unchanged; RFC 6675 §2 counts any ACK that SACKs new data, which
        # matters when the receiver's window keeps growing (Linux receive-buffer autotuning)
        is_dup = (
            not seg.payload
            and not seg.flags & (Flags.SYN | Flags.FIN)
            and (window == tcb.snd_wnd or newly_sacked)
            and tcb.snd_una != tcb.snd_max
        )
        _update_window_if_newer(conn, seg, now)
        if is_dup:
            conn.recovery.on_duplicate_ack()
    else:
        conn.probes_out = 0
        _update_window_if_newer(conn, seg, now)
        conn.on_ack_advanced(ack, now)
    if seg.flags & Flags.ECE and conn.ecn.ok:
        conn.on_ece(now, cwnd_before)  # (before after_ack: PRR of the reduction counts this ACK, as Linux)
    if conn.recovery.after_ack(now, conn.rto.srtt):
        conn.window_reduced()

    if conn.fin_acked:
        if state is _CLOSING:
            conn.enter(Event.ACK_OF_FIN, now)
            return False
        elif state is _LAST_ACK:
            conn.enter(Event.ACK_OF_FIN, now)
            return False
    return True


def _window_update_is_newer(tcb: Tcb, seq: int, ack: int) -> bool:
    """SND.WL1 < SEG.SEQ, or SND.WL1 = SEG.SEQ and SND.WL2 <= SEG.ACK (§3.10.7.4 fifth check)."""
    wl2_to_ack = (tcb.snd_wl2 - ack) & _MASK
    return (tcb.snd_wl1 - seq) & _MASK >= _HALF or (tcb.snd_wl1 == seq and (wl2_to_ack == 0 or wl2_to_ack >= _HALF))


def _update_window_if_newer(conn: Connection, seg: Segment, now: float) -> None:
    """SND.WND update rule (§3.10.7.4 fifth check): only from a segment newer than the last update."""
    tcb = conn.tcb
    seq, ack = seg.seq, seg.ack
    if _window_update_is_newer(tcb, seq, ack):
        was_closed = tcb.snd_wnd == 0
        conn.update_send_window(seg.window, seq, ack)
        edge = (ack + tcb.snd_wnd) & _MASK
        short = conn.short_edge
        if tcb.snd_wnd and (was_closed or (short is not None and seq_gt(edge, short))):
            conn.window_opened(now, ack)
        if (edge - tcb.snd_max) & _MASK >= _HALF:  # edge < SND.MAX
            conn.window_shrunk(edge)  # what we sent beyond the new edge was dropped (§3.8.6)


def _memory_admits(conn: Connection, seq: int, payload: bytes | memoryview, exhausted: bool) -> bytes | memoryview:
    """What of the text the stack's memory pressure lets in (stack/tcp/memory.py): no out-of-order data,
    and what is held is pruned (Linux tcp_prune_ofo_queue); at the limit no in-order data either, unless
    the receive queue is empty, and then only its first FORCED_RECEIVE bytes (Linux TCPRcvQDrop and
    sk_forced_mem_schedule). What is refused was not acknowledged: the peer sends it again."""
    receiver = conn.receiver
    if seq != conn.tcb.rcv_nxt:
        if receiver.clear_held():
            conn.counters.events().ofo_pruned += 1
        conn.counters.events().ofo_drops += 1
        receiver.ack_now = True  # a duplicate ACK, as for any out-of-order segment (RFC 5681 §4.2)
        return b""
    if not exhausted or (not len(receiver) and len(payload) <= FORCED_RECEIVE):
        return payload
    receiver.ack_now = True
    conn.counters.events().rcvq_drops += 1
    return b"" if len(receiver) else payload[:FORCED_RECEIVE]


def _process_text_and_fin(conn: Connection, seg: Segment, seq: int, payload: bytes | memoryview, now: float) -> None:
    """Seventh and eighth checks: deliver in-order text, queue out-of-order text, then the FIN."""
    tcb = conn.tcb
    receiver = conn.receiver
    fin = bool(seg.flags & Flags.FIN)
    if payload and conn.state in (State.FIN_WAIT_1, State.FIN_WAIT_2) and conn.receive_shut:
        if seq_gt(seq_add(seq, len(payload)), tcb.rcv_nxt):
            # RFC 1122 §4.2.2.13: new data for a socket the application closed (or whose reading it shut,
            # as Linux's RCV_SHUTDOWN) is lost: say so with a RST and drop the connection (Linux
            # tcp_rcv_state_process, TCPAbortOnData)
            output.answer_with_reset(conn, seg)
            conn.counters.events().aborts_on_data += 1
            if conn.orphaned:
                conn.enter(Event.DATA_AFTER_CLOSE, now)
            else:  # shut by shutdown(): the application still holds it and hears ECONNRESET (Linux tcp_reset)
                conn.on_reset(False, now)
            return
    if payload:
        # trim what was already received
        head = seq_sub(tcb.rcv_nxt, seq)
        if head > 0:
            if tcb.sack_ok:
                receiver.dsack = (seq, tcb.rcv_nxt)  # the duplicate part is reported (RFC 2883 §4)
            payload = payload[head:]
            seq = tcb.rcv_nxt
        room = seq_sub(tcb.rcv_adv, seq)
        if len(payload) > room:
            if room <= 0:
                payload, fin = b"", False  # the FIN lies beyond the window
            elif len(receiver):
                # Linux tcp_sequence: data past the furthest edge offered is taken only into an empty
                # receive queue, whole; else the segment is dropped whole (BeyondWindow) with a duplicate ACK
                conn.counters.events().beyond_window += 1
                receiver.ack_now = True
                return  # not taken: no RCV.MSS estimate, no delayed-ACK bookkeeping (Linux tcp_sequence)
        if payload and receiver.current_window() == 0 and seq_le(seq, tcb.rcv_nxt):
            # the window offered last is closed, though the furthest edge was not (a zero window after a
            # drop for memory, or one that shrank): Linux drops the data (TCPZeroWindowDrop)
            conn.counters.events().zero_window_drops += 1
            receiver.ack_now = True
            receiver.enter_quickack()
            return
        if payload and seq != tcb.rcv_nxt and seq_sub(seq, tcb.rcv_nxt) >= receiver.current_window():
            conn.counters.events().beyond_window += 1  # beyond the window offered last, which shrank (Linux OVERWINDOW)
            receiver.ack_now = True
            receiver.enter_quickack()
            return
        if payload:
            receiver.measure_segment(
                seg.gso or len(seg.payload), len(seg.payload), rcv_space.header_bytes(seg), seg.flags
            )
        if payload and seq == tcb.rcv_nxt and not receiver.make_room(seq, conn.counters):
            # no memory for it: an ACK at once offers a zero window; the segment is dropped while data waits
            # to be read (TCPRcvQDrop), else taken all the same (Linux sk_forced_mem_schedule)
            receiver.no_memory()
            if len(receiver):
                conn.counters.events().rcvq_drops += 1
                return
            receiver.reserve_arriving()
        memory = receiver.memory
        if memory is not None and memory.pressure and payload:
            admitted = _memory_admits(conn, seq, payload, memory.exhausted)
            if not admitted:
                return
            if len(admitted) < len(payload):
                payload, fin = admitted, False  # the FIN comes again with the rest
        if seq == tcb.rcv_nxt:
            receiver.deliver(payload)
            had_holes = receiver.deliver_held()
            receiver.after_data(len(payload), now)
            if had_holes:
                receiver.ack_now = True  # a hole was filled: ACK at once (RFC 5681 §4.2)
            elif payload:  # (none when a closed window took it all: that ACK is owed already)
                receiver.schedule_ack(now, len(payload), conn.rto.rto)
        elif payload:
            if not receiver.make_room(seq, conn.counters):  # (Linux tcp_data_queue_ofo asks first)
                conn.counters.events().ofo_drops += 1  # no memory for it: dropped unanswered, as Linux's TCPOFODrop
                return
            if receiver.flushes_held_ack(seq, seq_add(seq, len(payload))):  # (tcp_sack_compress_send_ack)
                conn.send_ack(now)
            # out-of-order: held, and a duplicate ACK (RFC 5681 §4.2), at once or by SACK compression
            if receiver.hold(seq, payload, fin, now, conn.rto.srtt, conn.counters):
                conn.counters.events().ofo_drops += 1  # the queue's bounds dropped data furthest from RCV.NXT
            return
    if not fin:
        if not receiver.take_held_fin():
            return
    elif seq_add(seq, len(payload)) != tcb.rcv_nxt:
        fin_seq = seq_add(seq, len(payload))
        if seq_gt(fin_seq, tcb.rcv_nxt):
            if receiver.flushes_held_ack(fin_seq, seq_add(fin_seq, 1)):
                conn.send_ack(now)
            receiver.hold_fin(fin_seq, now, conn.rto.srtt, conn.counters)
        return
    _process_fin(conn, now, hole_filled=not fin)


def _process_fin(conn: Connection, now: float, hole_filled: bool = False) -> None:
    """Eighth check: the FIN is in sequence (`hole_filled`: it was held behind a hole this segment filled)."""
    state = conn.state
    half_close = state in (State.SYN_RECEIVED, State.ESTABLISHED)
    conn.receiver.peer_finished(now, half_close, hole_filled)
    if half_close:
        conn.enter(Event.FIN, now)
    elif state is State.FIN_WAIT_1:
        if conn.fin_acked:
            conn.enter(Event.FIN_ACK_OF_FIN, now)
        else:
            conn.enter(Event.FIN, now)
    elif state is State.FIN_WAIT_2:
        conn.enter(Event.FIN, now)


def syn_ends_time_wait(conn: Connection, seg: Segment, now: float) -> bool:
    """A new SYN for a 4-tuple in TIME_WAIT may start a new incarnation (RFC 1122 §4.2.2.13): when its
    timestamp is newer than TS.Recent (RFC 6191 §2), or its sequence number lies beyond RCV.NXT and its
    timestamp, if any, is not older (Linux tcp_timewait_state_process), the old connection is closed here
    and the caller hands the SYN to the listener."""
    if conn.state is not State.TIME_WAIT or seg.flags & (Flags.SYN | Flags.ACK | Flags.RST) != Flags.SYN:
        return False
    ts = seg.options.timestamps if conn.tcb.ts_ok else None
    ts_recent = conn.receiver.ts_recent
    if ts is not None and _older_than_ts_recent(ts_recent, ts[0]):
        return False
    newer = seq_gt(seg.seq, conn.tcb.rcv_nxt) or (ts is not None and seq_gt(ts[0], ts_recent))
    if newer:
        conn.counters.events().time_wait_recycled += 1
        conn.enter(Event.SYN, now)
    return newer
