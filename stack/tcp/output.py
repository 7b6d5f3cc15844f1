"""The output path (Linux tcp_output.c): what leaves, when and in which packets. Lost segments first, then
new data within the congestion window (or what PRR allows in a recovery) and the peer's window, with Nagle,
SWS avoidance, TSO deferral, pacing and MTU probes, cut as Linux's GSO packets; resends, pure ACKs, RSTs
and our SYN. Every segment is built by `emit` with the current ACK, window, SACK blocks and timestamps,
and queued on `conn.out` for `Connection.segments_to_send`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.tcp import timers, tso_defer, write_queue
from stack.tcp.chrono import BUSY, RWND_LIMITED, SNDBUF_LIMITED
from stack.tcp.config import PMTUDISC_SETS_DF
from stack.tcp.ecn import ECT0
from stack.tcp.pacing import UNPACED_SEGMENTS
from stack.tcp.reset import reset_for
from stack.tcp.rto import ts_clock
from stack.tcp.scoreboard import SentSegment
from stack.tcp.sender import NO_WRITER_WAITS
from stack.tcp.state import OPEN_FOR_DATA, OPENING, State
from stack.wire.segment import NO_OPTIONS, Flags, Segment, TcpOptions
from stack.wire.seq import seq_add, seq_ge, seq_gt, seq_lt, seq_sub

if TYPE_CHECKING:
    from stack.tcp.connection import Connection


def _cwnd_quota(window: int, flight: int) -> int:
    """Segments the congestion window of `window` packets, `flight` of them in flight, lets one packet hold
    now: what is left of it, at most half of it, so that two packets are in flight (Linux tcp_cwnd_test);
    0 or less when it is full."""
    return min(max(window >> 1, 1), window - flight)


def send_syn(conn: Connection, now: float, retransmit: bool = False) -> None:
    """Our SYN (SYN-SENT) or SYN,ACK, first or again, with the options negotiated so far."""
    tcb = conn.tcb
    flags = Flags.SYN if conn.state is State.SYN_SENT else Flags.SYN | Flags.ACK
    if conn.state is State.SYN_SENT and conn.config.ecn and not retransmit:
        flags |= Flags.ECE | Flags.CWR  # an ECN-setup SYN; a retransmission goes without (as Linux)
    elif flags & Flags.ACK and conn.ecn.ok:
        flags |= Flags.ECE  # an ECN-setup SYN,ACK (RFC 3168 §6.1.1)
    # the window field of a SYN is never scaled (RFC 7323 §2.2)
    window = min(tcb.rcv_wnd, 0xFFFF)
    ack = tcb.rcv_nxt if flags & Flags.ACK else 0
    options = conn.syn_options
    if options.timestamps is not None or options.fast_open is not None:
        # TSval now; TSecr only on a SYN,ACK (RFC 7323 §3.2); a fast open cookie goes on the first SYN,ACK
        # only (Linux's retransmissions carry none: inet_rtx_syn_ack)
        ts_ecr = conn.receiver.ts_recent if flags & Flags.ACK else 0
        timestamps = (conn.ts_val(now), ts_ecr) if options.timestamps is not None else None
        cookie = None if retransmit else options.fast_open
        o = options
        options = TcpOptions(o.mss, o.wscale, o.sack_permitted, timestamps, o.sack_blocks, cookie, o.fast_open_exp)
    config = conn.config
    df = config.pmtu_discovery in PMTUDISC_SETS_DF
    conn.out.append(
        Segment(conn.local[1], conn.remote[1], tcb.iss, ack, flags, window, b"", options, 0, 0, 0, config.tos, df)
    )
    if seq_lt(tcb.snd_max, seq_add(tcb.iss, 1)) or (conn.state in OPENING and not conn.sends_early):
        tcb.snd_nxt = tcb.snd_max = seq_add(tcb.iss, 1)  # (a FIN sent after it stays: CLOSE in SYN_RECEIVED)
    if retransmit:
        conn.counters.retrans_segs += 1
    else:
        conn.sender.rtt_seq, conn.sender.rtt_time = tcb.iss, now
    conn.receiver.ack_now = False
    conn.timers.start(timers.RETRANSMIT, now + conn.rto.rto)


def output_data(conn: Connection, now: float, push_one: bool = False, timeout: bool = False) -> None:
    """Send what the windows allow (RFC 5681 cwnd, peer's window), with Nagle and SWS avoidance, in
    Linux's GSO packets, each of which may wait for the next ACK (tso_defer; not the first with
    `push_one`). With `timeout` the first resend is the retransmission timer's own."""
    tcb = conn.tcb
    sender = conn.sender
    unsent = sender.unsent(tcb.snd_nxt)
    if unsent <= 0 and not sender.fin_queued and not conn.recovery.board.lost_bytes:
        _nothing_to_send(conn, unsent)  # most calls (after an ACK, a read, a timer): no loop to run
        return
    if conn.config.qdisc_drops:  # nothing can leave: the probe timer tries again (Linux tcp_check_probe_timer)
        if unsent > 0 and tcb.snd_nxt == tcb.snd_una and not conn.timers.running(timers.PERSIST):
            conn.timers.start(timers.PERSIST, now + max(conn.rto.rto, conn.config.min_rto))
        return
    prober = conn.mtu_probe
    if prober is not None and prober.route_mtu is not None and prober.route_mtu[1]:
        mtu, prober.route_mtu = prober.route_mtu[0], None  # a changed route the last transmission noticed
        conn.sync_mss(mtu)
    mss = write_queue.mss_now(conn)
    buf = sender.buffer
    recovery = conn.recovery
    # the congestion window, or what PRR allows in its place during a recovery, in packets
    # as Linux counts it (a segment shorter than the MSS takes a whole one's room), checked against
    # the packets in flight (tcp_cwnd_test)
    cwnd = conn.cc.cwnd if recovery.send_window is None else recovery.send_window
    # (tcp_push_one's send never probes: Linux tcp_write_xmit calls tcp_mtu_probe only without push_one)
    if conn.mtu_probe is not None and not push_one and _send_mtu_probe(conn, now, mss, cwnd):
        cwnd = conn.cc.cwnd
    window = max(cwnd // tcb.snd_mss, 1)
    had_unsent = unsent > 0
    if had_unsent:
        conn.chrono.start(BUSY, now)
    sent_up_to = tcb.snd_nxt
    first_out = len(conn.out)  # this send's segments follow
    # lost segments go first (RFC 6675 §5 NextSeg rule 1), as far as the congestion window allows
    while (lost := recovery.next_lost()) is not None and recovery.in_flight < window:
        lost = resendable(conn, lost)
        if lost is None:
            break
        if sender.paced(now, conn.pacing_rate):
            return
        retransmit(conn, lost, now)
        # Linux counts the resends of tcp_xmit_retransmit_queue by state, not the timer's own
        if timeout:
            timeout = False
        elif recovery.loss_high is None:
            conn.counters.events().fast_retransmits += 1
        else:
            conn.counters.events().slow_start_retransmits += 1
    flight_before = recovery.in_flight  # packets in flight before this send's new data
    marks = sender.marks
    cork = conn.config.cork or marks.more
    packet_left = packet_sent = 0  # bytes the paced packet being sent has room for, and has
    paced = conn.pacing_rate is not None
    if not paced and unsent > 0:  # (a paced packet grows its skb when it may leave, below)
        _grow_skb(conn, tcb.snd_nxt, mss, window, flight_before)
    packet_at = tcb.snd_nxt  # where the next unpaced packet starts (a paced one: when packet_left runs out)
    max_segs = 0  # segments in a GSO packet (tcp_tso_autosize), once a packet needs it
    may_wait = not push_one  # a packet may wait for the next ACK (tso_defer)
    waits = tso_defer.SEND
    space_check = sender.space_wanted != NO_WRITER_WAITS  # a writer waits: ask after the first packet
    while True:
        offset = buf.offset(tcb.snd_nxt)
        unsent = len(buf) - offset
        if unsent <= 0:
            break
        in_record = marks.unsent_in_record(tcb.snd_nxt, unsent)  # no segment crosses a record's end
        flight = seq_sub(tcb.snd_nxt, tcb.snd_una)
        # the congestion window limits what is in the network, the peer's window what is unacknowledged
        room = window - recovery.in_flight
        usable = min(room * mss, tcb.snd_wnd - flight)
        n = min(min(mss, in_record), max(usable, 0))
        if n <= 0:
            break
        last = in_record == unsent
        # urgent data is never held back, corked or not (Linux tcp_nagle_test)
        urgent_mode = conn.extras is not None and conn.extras.snd_up is not None
        nodelay = conn.config.nodelay or urgent_mode
        if n < mss and sender.holds_back(n, in_record, last, flight, tcb, nodelay, cork and not urgent_mode):
            break
        # one of Linux's GSO packets starts (an unpaced send of one segment at most has nothing to decide)
        later = tcb.snd_nxt != sent_up_to
        if packet_left <= 0 and seq_ge(tcb.snd_nxt, packet_at) and (paced or later or unsent > mss):
            if push_one and later:  # tcp_push_one sends one packet (tcp_write_xmit stops after it)
                break
            if paced and sender.paced(now, conn.pacing_rate):  # paced as a whole (Linux paces skbs)
                if tcb.snd_nxt != sent_up_to:  # what went before the pacing wait counts for cwnd validation
                    _cut_packets(conn, sent_up_to, mss, window, flight_before, first_out, max_segs)
                    conn.cc.window_used(tcb.snd_una, tcb.snd_nxt, False, recovery.in_flight * tcb.snd_mss)
                return
            packets = recovery.in_flight
            max_segs = max_segs or write_queue.gso_segments(conn, mss)
            if paced or later:  # (an unpaced send's first packet grew before the loop)
                _grow_skb(conn, tcb.snd_nxt, mss, window, packets, max_segs * mss)
            if may_wait:
                waits = tso_defer.decide(conn, now, mss, window, packets, max_segs)
                if waits:
                    break
            may_wait = True
            packet = _packet_room(conn, tcb.snd_nxt, mss, window, packets, max_segs * mss)
            if paced:
                packet_left = packet
            else:
                packet_at = seq_add(tcb.snd_nxt, packet)
        run = _tso_run(conn, mss, in_record, usable) if in_record >= 2 * mss else 1  # (a run is 2 or more)
        if packet_left > 0:
            run = min(run, packet_left // mss)  # no further than the paced packet
        elif not paced:
            run = min(run, seq_sub(packet_at, tcb.snd_nxt) // mss)  # nor the unpaced one
        if run > 1:
            n = run * mss
            _send_data_run(conn, offset, run, mss, now)
        else:
            fin = sender.fin_queued and n == unsent
            send_data_segment(conn, offset, n, fin, now, pace=packet_left <= 0)
        if packet_left > 0:
            packet_left -= n
            packet_sent += n
            if packet_left <= 0:
                _pace(conn, packet_sent, now)
                packet_sent = 0
        if space_check and (packet_left <= 0 if paced else seq_ge(tcb.snd_nxt, packet_at)):
            # Linux asks after each packet of new data (tcp_event_new_data_sent); the first, with the
            # least in flight, decides whether the buffer grows, and later ones change no answer
            space_check = False
            conn.check_space(sender, now)
    if packet_sent:  # a packet cut short by the windows, Nagle or the end of the data
        _pace(conn, packet_sent, now)
    if space_check and tcb.snd_nxt != sent_up_to:  # (the first packet, cut short)
        conn.check_space(sender, now)
    if sender.fin_queued and sender.unsent(tcb.snd_nxt) == 0 and not sender.fin_in_flight(tcb.snd_nxt):
        send_data_segment(conn, buf.offset(tcb.snd_nxt), 0, True, now)
    marks.push_once = False
    if seq_gt(tcb.snd_nxt, sent_up_to):
        _cut_packets(conn, sent_up_to, mss, window, flight_before, first_out, max_segs)
    if prober is not None and prober.route_mtu is not None and tcb.snd_nxt != sent_up_to:
        prober.route_mtu = (prober.route_mtu[0], True)
    unsent = sender.unsent(tcb.snd_nxt)
    if had_unsent:
        room = window - recovery.in_flight
        _time_sending(conn, now, unsent, mss, room, tcb.snd_nxt != sent_up_to, waits == tso_defer.RWND_LIMITED)
        # cwnd validation as Linux (tcp_write_xmit, tcp_cwnd_validate): was the window the limit?
        full = room <= 0 or waits == tso_defer.CWND_LIMITED
        if full or tcb.snd_nxt != sent_up_to:
            conn.cc.window_used(tcb.snd_una, tcb.snd_nxt, full, recovery.in_flight * tcb.snd_mss)
    resending = conn.recovery.in_recovery
    conn.cc.sending_stopped(unsent, seq_sub(tcb.snd_nxt, tcb.snd_una), resending)  # app-limited?
    # data waiting, nothing in flight, the peer's window too small: probe it (§3.8.6.1)
    if unsent > 0 and tcb.snd_nxt == tcb.snd_una:
        if not conn.timers.running(timers.PERSIST):
            sender.persist_backoff = 0
            conn.probe_stamp = None
            conn.timers.start(timers.PERSIST, now + sender.persist_interval(conn.rto.rto))
    else:
        conn.timers.stop(timers.PERSIST)


def _send_mtu_probe(conn: Connection, now: float, mss: int, cwnd: int) -> bool:
    """One probe segment before the rest, when the search wants one (Linux tcp_mtu_probe): only in
    the open state (no recovery, ECN reduction or SACKed data) and with no SACK blocks to carry."""
    prober = conn.mtu_probe
    recovery = conn.recovery
    tcb = conn.tcb
    if (
        prober is None
        or not prober.enabled
        or recovery.in_recovery
        or recovery.ecn_reducing
        or recovery.board.sacked_bytes
        or conn.receiver.sack_option_bytes()
    ):
        return False
    unsent = conn.sender.unsent(tcb.snd_nxt)
    in_flight = recovery.in_flight
    size = prober.size(now, mss, cwnd // tcb.snd_mss, in_flight, unsent, tcb.snd_wnd, recovery.reordering)
    if not size:
        return False
    send_data_segment(conn, conn.sender.buffer.offset(tcb.snd_nxt), size, False, now)
    prober.sent(tcb.snd_nxt, size)
    conn.counters.events().mtu_probes += 1
    conn.cc.cwnd = conn.cc.cwnd - mss  # the probe stands for two segments (tcp_mtu_probe)
    return True


def _collapse(conn: Connection, rec: SentSegment, seq: int) -> bool:
    """A segment about to be resent that is shorter than an MSS and than the peer's window takes in
    the segments sent after it while the whole fits in both: each one segment, not SACKed, not after
    the end of a MSG_EOR record (Linux tcp_retrans_try_collapse). They become one segment on the
    scoreboard and one skb in the send buffer. Returns whether one taken in carried PSH (Linux ORs
    the flags of the skbs it joins); the last one's PSH is the resend's own."""
    tcb = conn.tcb
    if rec.segments != 1:
        return False
    sender = conn.sender
    board = conn.recovery.board
    marks = sender.marks
    fin_end = seq_add(sender.fin_seq, 1) if sender.fin_seq is not None else None
    window_end = seq_add(tcb.snd_una, tcb.snd_wnd)
    room = seq_sub(window_end, seq)
    space = min(room if room > 0 else tcb.snd_mss, write_queue.mss_now(conn))
    end = board.seq_of(rec.end)
    space -= rec.length - (end == fin_end)
    if space <= 0:
        return False
    pushed = False
    while not marks.ends_record(end):
        joined = board.after(rec)
        if joined is None or joined.segments != 1 or joined.sacked:
            break
        joined_end = board.seq_of(joined.end)
        size = joined.length - (joined_end == fin_end)
        space -= size
        if space < 0 or seq_gt(joined_end, window_end):
            break
        pushed = pushed or marks.pushes(end)
        if size:
            sender.buffer.grow(end, size)
        board.join_next(rec)
        end = joined_end
    return pushed


def resendable(conn: Connection, rec: SentSegment) -> SentSegment | None:
    """What of a segment may be resent inside the peer's window, which may have shrunk below what we
    sent (§3.8.6: resend "the old unacknowledged data between SND.UNA and SND.UNA+SND.WND"), as Linux's
    __tcp_retransmit_skb: all of it; its first part, cut off where the window ends inside it; nothing
    when it starts beyond the window, unless it is the first unacknowledged one: that probes a closed
    window whole."""
    tcb = conn.tcb
    board = conn.recovery.board
    seq = board.seq_of(rec.start)
    room = tcb.snd_wnd - seq_sub(seq, tcb.snd_una)
    if room <= 0:
        return rec if seq == tcb.snd_una else None
    if rec.length > room:
        board.cut(rec, room)  # the rest goes when the window moves on
    return rec


def _cut_packets(
    conn: Connection, start: int, mss: int, window: int, flight: int, first_out: int, max_segs: int
) -> None:
    """What was just sent from `start` (segments from `first_out` in the output; `flight` packets were
    in flight before it) left as Linux's GSO packets of up to `max_segs` segments (the send's own
    tcp_tso_autosize, 0 if it did not need one), each its own skb: an skb is cut where a packet
    ends inside it (tso_fragment), so the send buffer counts the skbs Linux would. A packet holds at
    most half the window, so that two are in flight (tcp_cwnd_test); each grew its skb before it left
    (output_data)."""
    buf = conn.sender.buffer
    left = seq_sub(conn.tcb.snd_nxt, start)  # bytes sent from start on
    if left <= mss:  # one segment at most (a short reply): no packet of several, only the skb cut at its end
        buf.split(conn.tcb.snd_nxt)
        return
    packet = (max_segs or write_queue.gso_segments(conn, mss)) * mss
    pos = start
    packet_ends = set()
    while left > 0:
        room = _packet_room(conn, pos, mss, window, flight, packet)
        if room <= 0:
            break
        size = min(room, left)
        cut = (pos + size) & 0xFFFFFFFF
        flight += -(-size // mss)
        left -= size
        buf.split(cut)
        if size > mss:
            packet_ends.add(cut)
        pos = cut
    if packet_ends:
        _push_packet_ends(conn, first_out, packet_ends)


def _grow_skb(conn: Connection, pos: int, mss: int, window: int, flight: int, packet: int = 0) -> None:
    """The skb at `pos`, if it is shorter than the packet that may leave now, takes bytes from the next
    one, all of it if they fit (Linux 6.10's tcp_grow_skb in tcp_write_xmit, so that the rest of an skb
    cut short by a window does not go out as a small packet), unless it ends a record. Its PSH mark, if
    any, goes with its end."""
    buf = conn.sender.buffer
    skb_end = buf.skb_end(pos)
    if skb_end is None:
        return
    quota = _cwnd_quota(window, flight)
    if quota <= 0:  # no packet may leave: no growth either
        return
    if not packet:
        packet = write_queue.gso_segments(conn, mss) * mss
    missing = min(quota * mss, packet) - ((skb_end - pos) & 0xFFFFFFFF)
    marks = conn.sender.marks
    if missing <= 0 or marks.ends_record(skb_end):
        return
    grown = buf.grow(skb_end, missing)
    if grown is not None and marks.pushes(skb_end):
        marks.moved(skb_end, grown)


def _packet_room(conn: Connection, pos: int, mss: int, window: int, flight: int, packet: int = 0) -> int:
    """Bytes one GSO packet from `pos` holds (0: no data there): `packet` (else Linux's tcp_tso_autosize,
    write_queue.gso_segments), no more than half the window so that two are in flight
    (tcp_cwnd_test), never beyond the skb it starts in."""
    skb_end = conn.sender.buffer.skb_end(pos)
    if skb_end is None:
        return 0
    if not packet:
        packet = write_queue.gso_segments(conn, mss) * mss
    quota = max(_cwnd_quota(window, flight), 1) * mss
    return min(min(packet, quota), (skb_end - pos) & 0xFFFFFFFF)  # (the skb ends beyond pos)


def _pace(conn: Connection, length: int, now: float) -> None:
    """A packet of `length` data bytes left (Linux tcp_update_skb_after_send): once the connection's
    first ten segments are out, the next packet waits its time at the pacing rate."""
    rate = conn.pacing_rate
    tcb = conn.tcb
    if rate and seq_sub(tcb.snd_max, tcb.iss) > UNPACED_SEGMENTS * tcb.snd_mss:
        conn.sender.pace(length, now, rate)


def push_resent_packets(conn: Connection, first: int) -> None:
    """Resends go out as Linux's: a lost skb (a packet as first sent) again as one packet, whole or as
    much of it as the window lets go, up to a GSO packet's size; a packet of several segments carries
    PSH on its last one (__tcp_transmit_skb). The resends are among the output's segments from `first`
    on: one packet's segments follow each other in sequence, inside one skb."""
    out = conn.out
    buf = conn.sender.buffer
    most = write_queue.gso_segments(conn, write_queue.mss_now(conn))
    i, n = first, len(out)
    while i < n:
        seg = out[i]
        end = (seg.seq + len(seg.payload)) & 0xFFFFFFFF
        skb_end = buf.skb_end(seg.seq)
        j = i + 1
        while j < n and j - i < most:
            after = out[j]
            if after.seq != end or not after.payload or buf.skb_end(after.seq) != skb_end:
                break
            end = (end + len(after.payload)) & 0xFFFFFFFF
            j += 1
        last = out[j - 1]
        if j - i > 1 and not last.flags & Flags.PSH:
            out[j - 1] = last.with_flags(last.flags | Flags.PSH)
        i = j


def _push_packet_ends(conn: Connection, first_out: int, ends: set[int]) -> None:
    """A GSO packet of several segments carries PSH on its last one, as Linux forces it on every GSO
    packet (__tcp_transmit_skb) so that the receiver's GRO hands the packet up at once. One pass over
    this send's segments, newest first: an end inside a super-segment (which has its PSH) matches none."""
    out = conn.out
    for i in range(len(out) - 1, first_out - 1, -1):
        seg = out[i]
        payload = seg.payload
        if payload:
            end = (seg.seq + len(payload)) & 0xFFFFFFFF
            if end in ends:
                if not seg.flags & Flags.PSH:
                    out[i] = seg.with_flags(seg.flags | Flags.PSH)
                ends.discard(end)
                if not ends:
                    return


def _nothing_to_send(conn: Connection, unsent: int) -> None:
    """What output_data's full path ends with when nothing is queued, no FIN waits and nothing is lost:
    a send attempt that found no data (app-limited, RFC 9293 §3.8.6.1's probe not needed)."""
    tcb = conn.tcb
    conn.sender.marks.push_once = False
    conn.cc.sending_stopped(unsent, seq_sub(tcb.snd_nxt, tcb.snd_una), conn.recovery.in_recovery)
    conn.timers.stop(timers.PERSIST)


def _time_sending(
    conn: Connection, now: float, unsent: int, mss: int, cwnd_room: int, sent: bool, rwnd_wait: bool
) -> None:
    """Linux's chronographs after a send attempt (tcp_write_xmit, tcp_cwnd_validate), `cwnd_room` packets
    left in the congestion window: receive-window limited while the peer's window, not cwnd, keeps the
    next segment back (or a packet waits for it, `rwnd_wait`); send-buffer limited when all is sent,
    cwnd had room, and the application waits for buffer space."""
    tcb = conn.tcb
    flight = seq_sub(tcb.snd_nxt, tcb.snd_una)
    if rwnd_wait or (unsent > 0 and cwnd_room > 0 and tcb.snd_wnd - flight < min(mss, unsent)):
        conn.chrono.start(RWND_LIMITED, now)
    else:
        conn.chrono.stop(RWND_LIMITED, now, unsent == 0 and flight == 0)
    cwnd_limited = cwnd_room <= 0
    if sent and not cwnd_limited and unsent == 0 and conn.sender.space_wanted:
        if conn.state in OPEN_FOR_DATA:
            conn.chrono.start(SNDBUF_LIMITED, now)


def _tso_run(conn: Connection, mss: int, unsent: int, usable: int) -> int:
    """How many full segments may leave as one super-segment that the device cuts back to MSS (TSO,
    `config.tso_max_bytes`): only on the plain path, where each piece is what the loop would send
    alone (no recovery, SACK option, CWR or FIN to place), else 1. A paced flow's run ends with its
    packet (the caller's limit)."""
    limit = conn.config.tso_max_bytes // mss
    if (
        limit < 2
        or (conn.extras is not None and conn.extras.snd_up is not None)
        or conn.recovery.in_recovery
        or conn.ecn.cwr_pending
    ):
        return 1
    if conn.receiver.sack_option_bytes():
        return 1
    run = min(limit, min(unsent, usable) // mss)
    if conn.sender.fin_queued and run * mss == unsent:
        run -= 1  # the FIN goes with the last piece, which the plain path sends
    return run


def _send_data_run(conn: Connection, offset: int, run: int, mss: int, now: float) -> None:
    """`run` full segments as one Segment (its `gso` = mss): the device cuts it into exactly the segments
    the loop would have sent. The scoreboard, the controller and the rate sampler record the run once
    and know its segments, so a lost one is resent alone."""
    tcb = conn.tcb
    sender = conn.sender
    buf = sender.buffer
    seq = tcb.snd_nxt
    n = run * mss
    end = seq_add(seq, n)
    # a super-segment always ends with PSH, as Linux's GSO packets (__tcp_transmit_skb: it lets the
    # receiver's GRO hand the run up at once)
    flags = Flags.ACK | Flags.PSH
    emit(conn, now, flags, seq, buf.take(offset, n), ECT0 if conn.ecn.ok else 0, gso=mss)
    conn.recovery.on_sent(seq, n, now, mss)
    conn.counters.segs_out += run - 1  # segments_to_send counts the Segment once
    sender.last_progress = now
    tcb.snd_nxt = end
    if seq_gt(end, tcb.snd_max):
        tcb.snd_max = end
    conn.timers.start_if_idle(timers.RETRANSMIT, now + conn.rto.rto)  # RFC 6298 (5.1)


def send_data_segment(
    conn: Connection, offset: int, n: int, fin: bool, now: float, push: bool = False, pace: bool = True
) -> None:
    """One segment of `n` bytes from `offset` (with the FIN when `fin`), paced as a packet of its own
    unless the caller paces the packet it belongs to."""
    tcb = conn.tcb
    sender = conn.sender
    buf = sender.buffer
    seq = tcb.snd_nxt
    payload = buf.take(offset, n) if n else b""
    flags = Flags.ACK
    data_end = seq_add(seq, n)
    if n and (push or sender.marks.pushes(data_end)):
        flags |= Flags.PSH
    if fin:
        flags |= Flags.FIN
        sender.fin_seq = data_end
    length = n + 1 if fin else n  # SEG.LEN (§3.4)
    end = seq_add(seq, length)
    if 0 < n < write_queue.mss_now(conn):  # smaller than a full segment now (Nagle)
        sender.snd_sml = end
    ecn = 0
    if conn.ecn.ok and n:  # new data only: never retransmissions or pure ACKs (RFC 3168 §6.1.5)
        ecn = ECT0
        if conn.ecn.cwr_pending:
            flags |= Flags.CWR  # we reduced the window after an ECE (§6.1.2)
            conn.ecn.cwr_pending = False
    emit(conn, now, flags, seq, payload, ecn)
    conn.recovery.on_sent(seq, length, now)
    sender.last_progress = now
    tcb.snd_nxt = end
    if seq_gt(end, tcb.snd_max):
        tcb.snd_max = end
    if pace and n:
        _pace(conn, n, now)
    conn.timers.start_if_idle(timers.RETRANSMIT, now + conn.rto.rto)  # RFC 6298 (5.1)


def retransmit(conn: Connection, rec: SentSegment, now: float, probe: bool = False) -> None:
    """Send one scoreboard record again, with the FIN (and PSH) it carried. The first retransmission of
    an episode, not a loss probe, starts the time that tcp_retries2 and TCP_USER_TIMEOUT measure (Linux
    tcp_retransmit_skb)."""
    if conn.retrans_stamp is None and not probe:
        conn.retrans_stamp = now
    if conn.mtu_probe is not None and _mtu_probe_lost(conn, rec):
        rec = conn.recovery.next_lost() or rec
    sender = conn.sender
    buf = sender.buffer
    seq = conn.recovery.board.seq_of(rec.start)
    pushed = _collapse(conn, rec, seq)
    n = rec.length
    fin = sender.fin_seq is not None and seq_add(seq, n) == seq_add(sender.fin_seq, 1)
    if fin:
        n -= 1
    offset = buf.offset(seq)
    flags = Flags.ACK
    if fin:
        flags |= Flags.FIN
    if n and (pushed or sender.marks.pushes(seq_add(seq, n))):
        flags |= Flags.PSH  # as when it was first sent (Linux keeps PSH as a flag of the skb)
    if conn.resends_from < 0:
        conn.resends_from = len(conn.out)  # where this batch's resends start (push_resent_packets)
    emit(conn, now, flags, seq, buf.take(offset, n))
    conn.recovery.on_sent(seq, rec.length, now)
    if n:
        _pace(conn, n, now)
    conn.counters.retrans_segs += 1
    if seq == conn.tcb.snd_una and not probe and not conn.timers.running(timers.RACK_REORDER):
        # the first segment outstanding went again: its timeout counts from now (Linux
        # tcp_xmit_retransmit_queue, unless RACK's timer holds the one timer Linux has)
        conn.timers.start(timers.RETRANSMIT, now + conn.rto.rto)
    else:
        conn.timers.start_if_idle(timers.RETRANSMIT, now + conn.rto.rto)


def _mtu_probe_lost(conn: Connection, rec: SentSegment) -> bool:
    """The probe is to be resent: it was lost, so nothing that large passes (RFC 4821 §7.6, Linux
    tcp_mtup_probe_failed). It goes again in pieces of the current size (tcp_simple_retransmit)."""
    prober = conn.mtu_probe
    assert prober is not None  # (called only while probing)
    recovery = conn.recovery
    if not prober.probe_mtu or seq_add(recovery.board.seq_of(rec.start), rec.length) != prober.probe_end:
        return False
    prober.lost()
    conn.counters.events().mtu_probe_failures += 1
    recovery.mtu_reduced(conn.tcb.snd_mss)
    return True


def emit(
    conn: Connection,
    now: float,
    flags: int,
    seq: int,
    payload: bytes | memoryview = b"",
    ecn: int = 0,
    gso: int = 0,
) -> None:
    """Queue one segment carrying our current ACK, window and SACK blocks (with `gso`: a run of
    segments of that size, for a device that cuts it)."""
    tcb = conn.tcb
    if conn.ecn.ece_pending:
        flags |= Flags.ECE  # echo congestion until the peer's CWR (RFC 3168 §6.1.3)
    receiver = conn.receiver
    if conn.state is State.SYN_RECEIVED and conn.passive:
        window = receiver.request_acknowledgment()
        sack: tuple[tuple[int, int], ...] = ()
    else:
        window, sack = receiver.acknowledgment(now, payload)
    if tcb.ts_ok:
        ts_val = ts_clock(now, conn.ts_offset)
        if sack:
            options = TcpOptions(None, None, False, (ts_val, receiver.ts_recent), sack)
        else:  # nearly every segment
            options = TcpOptions(None, None, False, (ts_val, receiver.ts_recent))
    else:
        options = TcpOptions(None, None, False, None, sack) if sack else NO_OPTIONS
    config = conn.config
    df = config.pmtu_discovery in PMTUDISC_SETS_DF
    segment = Segment(
        conn.local[1],
        conn.remote[1],
        seq,
        tcb.rcv_nxt,
        flags,
        window,
        payload,
        options,
        0,
        ecn,
        gso,
        config.tos,
        df,
    )
    extras = conn.extras
    if extras is not None and extras.snd_up is not None and seq_lt(seq, extras.snd_up):
        segment = _mark_urgent(conn, segment, seq, extras.snd_up)
    conn.out.append(segment)
    if payload:  # every data segment (or run), new or resent, feeds the controller and the rate estimator
        conn.cc.data_sent(seq, len(payload), seq_sub(tcb.snd_max, tcb.snd_una), now, gso)
        conn.sender.data_sent_at = now
        if extras is not None and extras.tx_stamps is not None:
            extras.tx_stamps.sent(seq, len(payload), now)
    elif conn.sender is not None:  # (an orphan in TIME_WAIT has let go of its sending side)
        conn.sender.nondata_sent(now)


def _mark_urgent(conn: Connection, seg: Segment, seq: int, snd_up: int) -> Segment:
    """A segment that starts before SND.UP carries URG and the offset of SND.UP, the byte after the
    urgent data (RFC 9293 §3.8.5; Linux __tcp_transmit_skb), 0xFFFF when that is farther away and
    more will be sent before it."""
    offset = seq_sub(snd_up, seq)
    if offset < 0x10000:
        return seg.with_flags(seg.flags | Flags.URG, offset)
    if seq_gt(seq_add(seq, 0xFFFF), conn.tcb.snd_nxt):
        return seg.with_flags(seg.flags | Flags.URG, 0xFFFF)
    return seg


def emit_rst(conn: Connection, seq: int, now: float) -> None:
    """A RST of ours, <SEQ=seq><CTL=RST,ACK> (ABORT, keepalive timeout). As Linux's
    (tcp_send_active_reset) it carries the timestamp option when the connection uses timestamps."""
    receiver = conn.receiver
    options = TcpOptions(timestamps=(conn.ts_val(now), receiver.ts_recent)) if conn.tcb.ts_ok else NO_OPTIONS
    flags = Flags.RST | Flags.ACK
    rst = Segment(
        conn.local[1],
        conn.remote[1],
        seq,
        conn.tcb.rcv_nxt,
        flags,
        0,
        options=options,
        tos=conn.config.tos,
        df=conn.config.pmtu_discovery in PMTUDISC_SETS_DF,
    )
    conn.out.append(rst)
    conn.counters.events().resets_out += 1


def answer_with_reset(conn: Connection, seg: Segment) -> None:
    """Answer this segment with the RST RFC 9293 §3.10.7 prescribes (nothing for a RST)."""
    rst = reset_for(seg)
    if rst is not None:
        conn.out.append(rst)
        conn.counters.events().resets_out += 1
