"""Loss detection and recovery for one connection's sender: a decision object, fed ACK information.

- Loss detection: RACK (RFC 8985) on the SACK scoreboard. Without SACK, as Linux: each duplicate ACK
  stands for a segment the receiver holds (tcp_add_reno_sack), the first segment is lost once they
  reach the reordering degree, three at first (RFC 5681 §3.2), and after each partial ACK (RFC 6582,
  tcp_newreno_mark_lost).
- Fast recovery: what to send is paced by Proportional Rate Reduction (RFC 6937), with or without SACK;
  lost segments go before new data (RFC 6675 §5, NextSeg).
- An ECN window reduction (RFC 3168 §6.1.2) is paced by PRR too, as Linux paces its CWR state.
- RTO recovery: every segment not SACKed, but those sent within the last round trip, is marked lost and
  resent as the window grows again from what is in flight plus one (RFC 5681 §3.1 go-back-N, minus what
  the receiver holds, as Linux's tcp_enter_loss); F-RTO (RFC 5682 §3, as Linux) tells a spurious
  timeout by the ACKs and SACKs that follow it.
- Undo: a recovery whose every retransmission came back as a D-SACK (RFC 2883 §4, RFC 3708), an ACK
  in a recovery or after a timeout that echoes a timestamp from before the first resend (RFC 3522; at a
  partial ACK only once no resend is out, else that ACK resends nothing) and a spurious timeout (F-RTO)
  restore the congestion window and ssthresh from before the episode, as Linux does.

It never sees the connection. It is told what each ACK carries (the cumulative ACK, SACK and D-SACK
blocks, the echoed timestamp: `on_sack`, `on_ack_advanced`, `on_duplicate_ack`, `after_ack`) and answers
with what is lost (`next_lost`), what is in the network (`in_flight`) and `send_window`: how much may
be in flight while PRR decides it instead of the congestion window. The congestion controller
owns cwnd and ssthresh: recovery tells it about congestion events through its hooks, and where Linux
sets the window outside them (undo, a timeout's loss window, the window an ACK found at recovery entry)
it does so through the contained controller, which tells the controller.
"""

from __future__ import annotations

from typing import Final

from stack.tcp import timers
from stack.tcp.congestion import Contained
from stack.tcp.counters import Counters
from stack.tcp.rack import Rack
from stack.tcp.rto import ts_clock
from stack.tcp.scoreboard import Scoreboard, SentSegment
from stack.tcp.tcb import Tcb
from stack.wire.seq import seq_add, seq_ge, seq_gt, seq_le, seq_lt, seq_sub

DUP_THRESH: Final = 3  # RFC 5681 §3.2; also where Linux's reordering degree starts (tcp_reordering)
MAX_REORDERING: Final = 300  # Linux tcp_max_reordering
REO_TIMEOUT_SLACK: Final = timers.TIMEOUT_MIN  # added to RACK's reordering timer, as Linux
# what an ACK may hold back: its resends (F-RTO's new data in their place, RFC 5682 §3.1 step 2b; a partial
# ACK of data only late while a resend is out, Linux tcp_try_undo_partial), and marking more lost (the latter)
_HOLD_RESENDS: Final = 1
_HOLD_DETECTION: Final = 2


class Recovery:
    __slots__ = (
        "cc",
        "tcb",
        "timers",
        "counters",
        "frto",
        "ts_offset",
        "board",
        "rack",
        "reno_sacked",
        "recover",
        "loss_high",
        "send_window",
        "_delivered",
        "_delivered_packets",
        "_una_advanced",
        "_tsecr",
        "_prr_delivered",
        "_prr_out",
        "ecn_reducing",
        "_recover_fs",
        "cwnd_before_ack",
        "sack_sent_at",
        "_prior",
        "_undo_marker",
        "_undo_retrans",
        "_frto",
        "_hold",
        "_resends_held",
        "_orig_delivered",
        "_data_sacked",
        "reordering",
        "reord_seen",
        "_fack",
        "_prior_fack",
        "tlp",
    )  # thousands of these: no instance dicts

    def __init__(
        self, cc: Contained, tcb: Tcb, deadlines: timers.Timers, counters: Counters, first_seq: int, frto: bool
    ) -> None:
        self.cc = cc  # the connection's controller (Connection keeps this current when it changes)
        self.tcb = tcb  # read only: SND.UNA, SND.MAX, SND.NXT, the MSS and the negotiated options
        self.timers = deadlines  # for RACK's reordering timer
        self.counters = counters  # the connection's Counters
        self.frto = frto
        self.ts_offset = 0  # our timestamp clock's offset, to read the peer's TSecr (RFC 7323 §5.4)
        self.board = Scoreboard(first_seq, counters)
        self.rack = Rack()
        # without SACK, the segments duplicate ACKs said the receiver holds (Linux's sacked_out for a Reno
        # connection): they left the network, which lets new data out on early duplicate ACKs (RFC 3042)
        self.reno_sacked = 0
        self.recover: int | None = None  # fast recovery: SND.MAX when it began (RFC 6582)
        self.loss_high: int | None = None  # RTO recovery: SND.MAX when the timer fired
        # what may be in flight while PRR (RFC 6937) decides it, in place of cwnd
        self.send_window: int | None = None
        self._delivered = 0  # bytes the ACK being processed delivered (newly ACKed or SACKed)
        self._delivered_packets = 0  # and segments (Linux counts a short one as one)
        self._una_advanced = False  # the ACK being processed moved SND.UNA
        self._tsecr = 0  # TSecr of the ACK being processed (0: none), to tell a retransmission's ACK
        # PRR (RFC 6937 §3)
        self._prr_delivered = 0
        self._prr_out = 0
        self._recover_fs = 0
        # cwnd before the ACK being processed grew it (0: no such ACK): set by the connection, read by after_ack
        self.cwnd_before_ack = 0
        # when the earliest segment the ACK being processed newly SACKed was sent, if never resent: what a
        # SACK times (Linux tcp_sacktag_one's first_sackt); read before after_ack, which forgets it
        self.sack_sent_at: float | None = None
        self.ecn_reducing = False  # an ECN window reduction is under way (Linux's CWR state)
        # undo (RFC 3708 / Linux): the window before the episode and the retransmissions not yet D-SACKed
        self._prior: tuple[int, int] | None = None
        self._undo_marker: int | None = None
        self._undo_retrans = 0
        # F-RTO (RFC 5682 §3, with SACK, as Linux's tp->frto): a timeout's episode may still prove spurious
        self._frto = False
        # what the ACK being processed holds back (_HOLD_RESENDS, _HOLD_DETECTION), and whether the output
        # that follows it resends nothing (after_ack sets it)
        self._hold = 0
        self._resends_held = False
        # the ACK being processed delivered data sent before the timeout and never resent (Linux
        # FLAG_ORIG_SACK_ACKED), and SACKed new data (FLAG_DATA_SACKED)
        self._orig_delivered = False
        self._data_sacked = False
        # the degree of reordering in segments (Linux tp->reordering, tcpi_reordering) and how often SACKs
        # or ACKs revealed reordering (tp->reord_seen)
        self.reordering = DUP_THRESH
        self.reord_seen = 0
        self._fack = 0  # offset just past the highest SACKed byte (meaningful while anything is SACKed)
        self._prior_fack: int | None = None  # that offset before the ACK being processed
        # a tail loss probe's episode (RFC 8985 §7.3): SND.NXT after the probe and whether it resent data
        # (TLP.end_seq, TLP.is_retrans); no other probe goes until it ends
        self.tlp: tuple[int, bool] | None = None

    # ------------------------------------------------------------------ state

    @property
    def in_fast_recovery(self) -> bool:
        return self.recover is not None

    @property
    def in_recovery(self) -> bool:
        return self.recover is not None or self.loss_high is not None

    @property
    def in_flight(self) -> int:
        """Segments in the network (Linux tcp_packets_in_flight): the scoreboard's, less those duplicate
        ACKs reported without SACK."""
        return self.board.pipe_packets - self.reno_sacked

    @property
    def newly_sacked(self) -> int:
        """Bytes the SACK blocks of the ACK being processed newly delivered (its SACK blocks are recorded
        before its cumulative ACK)."""
        return self._delivered if not self._una_advanced else 0

    @property
    def newly_sacked_packets(self) -> int:
        """Segments the SACK blocks of the ACK being processed newly delivered (each counted once, short or
        not)."""
        return self._delivered_packets if not self._una_advanced else 0

    # ------------------------------------------------------------------ sending

    def on_sent(self, seq: int, length: int, now: float, seg: int = 0) -> None:
        """Every data segment (and FIN) sent, new or not, goes on the scoreboard; a run of `seg`-byte
        segments sent together (TSO) goes as one record."""
        resent = self.board.sent(seq, length, now, seg)
        if self.recover is not None or self.ecn_reducing:
            self._prr_out += -(-length // seg) if seg else 1  # packets, as Linux's prr_out
        if resent and self._undo_marker is not None:
            self._undo_retrans += sum(rec.segments for rec in resent)

    def next_lost(self) -> SentSegment | None:
        return None if self._resends_held else self.board.first_lost()

    # ------------------------------------------------------------------ ACK processing

    def on_sack(self, blocks: tuple[tuple[int, int], ...], ack: int, tsecr: int, now: float) -> bool:
        """Record the SACK blocks of an ACK (RFC 2018 §4); True if any of them SACKed new data. `tsecr` is
        the timestamp the ACK echoes (0 without timestamps)."""
        tcb = self.tcb
        self._tsecr = tsecr
        self.cc.sack_received(blocks, now)  # the delivery-rate estimator counts SACKed segments
        first = blocks[0]
        # RFC 2883 §4: a first block below the cumulative ACK, or inside the second block, is a D-SACK
        if seq_le(first[1], ack) or (
            len(blocks) > 1 and seq_ge(first[0], blocks[1][0]) and seq_le(first[1], blocks[1][1])
        ):
            self._on_dsack(first, ack)
        newly = False
        prior_fack = self._prior_fack = fack = self._fack_offset()
        reord: int | None = None  # the lowest never-resent segment newly SACKed below the highest SACK
        una = tcb.snd_una
        loss_high = self.loss_high
        loss_high_off = self.board.offset_of(loss_high) if loss_high is not None else -1
        for left, right in sorted(blocks, key=lambda block: seq_sub(block[0], una)):  # by sequence, as Linux
            if not seq_lt(left, right) or seq_le(right, tcb.snd_una) or seq_gt(right, tcb.snd_max):
                continue  # stale, inverted or for data never sent
            for rec in self.board.sack(left, right):
                newly = True
                if not rec.retransmitted and (self.sack_sent_at is None or rec.xmit_ts < self.sack_sent_at):
                    self.sack_sent_at = rec.xmit_ts
                self._delivered += rec.length
                self._delivered_packets += rec.segments
                self.rack.on_delivered(rec, now, self._ts_says_original(rec))
                if not rec.retransmitted and rec.start < prior_fack and (reord is None or rec.start < reord):
                    reord = rec.start
                if not rec.retransmitted and rec.end <= loss_high_off:
                    self._orig_delivered = True
                fack = max(fack, rec.end)
        self._fack = fack
        self._data_sacked = newly
        if reord is not None and (self.loss_high is None or self._undo_marker is not None):
            self._reordering_revealed(reord)  # (Linux skips this in Loss state unless it can undo)
        return newly

    def _on_dsack(self, block: tuple[int, int], ack: int) -> None:
        """A D-SACK (RFC 2883): we resent something needlessly. As Linux (tcp_dsack_seen), one that cannot
        be true is ignored: longer than any window the peer offered, or more D-SACKs than resent segments;
        one that can counts as delivered, so the window grows by it."""
        events = self.counters.events()
        events.dsacks_received += 1
        length = seq_sub(block[1], block[0])
        if not 0 < length <= self.tcb.max_snd_wnd or events.dsacks_received > self.counters.retrans_segs:
            return
        self._delivered += length
        self._delivered_packets += -(-length // self.tcb.snd_mss)  # (Linux tcp_check_dsack's dup_segs)
        tlp = self.tlp
        if tlp is not None and block[1] == tlp[0] and seq_sub(tlp[0], block[0]) <= self.tcb.snd_mss:
            # the D-SACK of a probe: the original arrived too, so nothing was lost (RFC 8985 §7.4, Linux
            # FLAG_DSACK_TLP), and RACK's window stays: a probe is sent by a timer, not by RACK
            if seq_ge(ack, tlp[0]):
                self.tlp = None
        else:
            self.rack.on_dsack(self.board.offset_of(self.tcb.snd_max))
        marker = self._undo_marker
        if marker is not None and self._undo_retrans > 0 and seq_gt(block[1], marker):
            self._undo_retrans -= 1
            if self._undo_retrans == 0:
                self._undo()  # every retransmission of the episode was needless (D-SACK)
                self.counters.events().dsack_undos += 1

    def on_ack_advanced(
        self, ack: int, acked: int, tsecr: int, unsent: int, retrans_stamp: float | None, now: float
    ) -> None:
        """SND.UNA moved to ack (already applied to the TCB), the ACK echoing `tsecr`, with `unsent` bytes
        waiting to be sent and the episode's first retransmission at `retrans_stamp` (None: none yet):
        recovery bookkeeping and exits, before the controller's window update for the same ACK (Linux's
        tcp_fastretrans_alert before tcp_cong_control)."""
        self._tsecr = tsecr
        self._una_advanced = True
        sack_ok = self.tcb.sack_ok
        prior_fack = self._prior_fack
        if prior_fack is None:  # no SACK blocks on this ACK: the highest SACK, or SND.UNA, before it
            board = self.board
            prior_fack = self._fack if board.sacked_bytes else board.offset_of(seq_add(ack, -acked))
        reord: int | None = None
        packets = 0
        loss_high = self.loss_high
        loss_high_off = self.board.offset_of(loss_high) if loss_high is not None else -1
        for rec in self.board.ack(ack):
            self._delivered += rec.length
            packets += rec.segments
            self.rack.on_delivered(rec, now, self._ts_says_original(rec))
            if not rec.retransmitted:
                if reord is None:
                    reord = rec.start
                if rec.end <= loss_high_off:
                    self._orig_delivered = True
        if sack_ok:
            self._delivered_packets += packets
            if reord is not None and reord < prior_fack:
                self._reordering_revealed(reord)  # a hole below SACKed data filled by its original: reordering
        else:
            self._delivered_packets += self._remove_reno_sacks(packets)
        if loss_high is not None:
            self.reno_sacked = 0  # (Linux tcp_process_loss)
            if self._packet_delayed(retrans_stamp):
                # the echo predates the resend: the timeout was spurious (Linux tcp_try_undo_loss)
                self._undo(unmark_all=True)
                self.counters.events().loss_undos += 1
                return
            recovered = seq_ge(ack, loss_high)
            if self._frto and self._frto_ack(True, recovered, unsent):
                return
            if recovered:
                self._end_episode()
                self.loss_high = None
        elif self.recover is None:
            self.reno_sacked = 0  # the duplicate ACKs' segments are acknowledged (Linux tcp_fastretrans_alert)
        elif seq_ge(ack, self.recover):  # full ACK: leave fast recovery (RFC 6582 §3.2 step 3)
            self.reno_sacked = 0
            if self._packet_delayed(retrans_stamp):
                self._undo()  # the echo predates the resend: the loss was not (Linux tcp_try_undo_recovery)
                self.counters.events().full_undos += 1
                return
            # without SACK, an ACK of exactly the recovery point holds recovery until one goes beyond it:
            # duplicates of an ACK that covers no more than `recover` start no fast retransmit (RFC 6582
            # §3.2 step 2), which Linux keeps so (tcp_try_undo_recovery)
            if sack_ok or ack != self.recover:
                self.recover = None
                self._end_episode()
                self.cc.on_recovery_exit()
        elif self._packet_delayed(retrans_stamp):
            # a partial ACK for data that was only late (Linux tcp_try_undo_partial): the reordering degree
            # grows to what it spanned; with nothing resent still out the reduction is undone, else this ACK
            # marks nothing more lost and resends nothing: only new data goes, as PRR allows
            self._reordering_revealed(self.board.offset_of(seq_add(ack, -acked)))
            if not self.board.retransmissions_out():
                self._undo(unmark_all=True)
                self.counters.events().partial_undos += 1
            else:
                self._hold = _HOLD_RESENDS | _HOLD_DETECTION

    def on_duplicate_ack(self) -> None:
        """A duplicate ACK (RFC 5681 §2; one that SACKs new data counts, RFC 6675 §2). Without SACK it
        stands for a segment that left the network (Linux tcp_add_reno_sack); `after_ack` decides on loss."""
        tlp = self.tlp
        if tlp is not None and tlp[0] == self.tcb.snd_una and not self._delivered:
            self.tlp = None  # a duplicate ACK of exactly the probe: original and probe arrived (§7.4)
        loss_high = self.loss_high
        if loss_high is not None:
            if self._frto and self._frto_ack(False, False, 0):
                return
            if not self.tcb.sack_ok and seq_gt(self.tcb.snd_nxt, loss_high):
                self._add_reno_sack()  # new data F-RTO sent arrived (Linux tcp_process_loss)
            return
        if self.tcb.sack_ok:
            return
        recover = self.recover
        if recover is not None and seq_ge(self.tcb.snd_una, recover):
            self.reno_sacked = 0  # recovery held at its point: the duplicate ACKs count for nothing
            return
        self._add_reno_sack()

    def _packet_delayed(self, retrans_stamp: float | None) -> bool:
        """The episode can be undone because its first retransmission was needless: the ACK being processed
        echoes a timestamp from before it (RFC 3522's Eifel detection), or nothing has been resent yet
        (Linux tcp_may_undo, tcp_packet_delayed)."""
        if self._undo_marker is None:
            return False
        if retrans_stamp is not None:
            return bool(self._tsecr) and seq_lt(self._tsecr, ts_clock(retrans_stamp, self.ts_offset))
        # nothing resent yet: the data was only late; but without SACK, Linux forgets the stamp when an ACK
        # reaches the recovery point (which holds recovery) and does not undo there
        return self.tcb.sack_ok or self.recover is None or seq_lt(self.tcb.snd_una, self.recover)

    def _add_reno_sack(self) -> None:
        """A duplicate ACK without SACK: one more segment the receiver holds, delivered for PRR, within
        what can be outstanding (Linux tcp_add_reno_sack)."""
        prior = self.reno_sacked
        self.reno_sacked = prior + 1
        self._limit_reno_sacked(0)
        self._delivered_packets += self.reno_sacked - prior

    def _remove_reno_sacks(self, acked: int) -> int:
        """A cumulative ACK of `acked` segments without SACK: one of them filled the hole, the rest were
        already counted by duplicate ACKs. Returns the segments it delivered (Linux tcp_remove_reno_sacks)."""
        delivered = 0
        if acked > 0:
            delivered = max(acked - self.reno_sacked, 1)
            self.reno_sacked = max(self.reno_sacked - (acked - 1), 0)
        self._limit_reno_sacked(acked)
        return delivered

    def _limit_reno_sacked(self, addend: int) -> None:
        """More duplicate ACKs than segments outstanding beyond the holes: the network duplicated or
        reordered them. The count is capped, and the reordering degree grows to the flight (Linux
        tcp_check_reno_reordering)."""
        if not self.reno_sacked:
            return
        board = self.board
        packets_out = board.segments
        # the segments lost or resent (Linux's lost_out, whose marks stay on a resend; nothing is SACKed here)
        holes = min(max(board.lost_packets + board.retrans_packets, 1), packets_out)
        if self.reno_sacked + holes > packets_out:
            self.reno_sacked = packets_out - holes
            self.reordering = min(packets_out + addend, MAX_REORDERING)
            self.reord_seen += 1

    def after_ack(self, now: float, srtt: float | None) -> bool:
        """After an ACK was processed: RACK loss detection and, in fast recovery, the PRR window. True if
        fast recovery began here, a new reduction of the window (not one that goes on from an ECE's)."""
        reduced = self.recover is not None or self.ecn_reducing
        cwnd_before, self.cwnd_before_ack = self.cwnd_before_ack, 0
        self.sack_sent_at = None
        delivered, self._delivered = self._delivered, 0
        delivered_packets, self._delivered_packets = self._delivered_packets, 0
        advanced, self._una_advanced = self._una_advanced, False
        self._prior_fack = None
        self._orig_delivered = self._data_sacked = False
        hold, self._hold = self._hold, 0
        self._resends_held = bool(hold & _HOLD_RESENDS)  # (for the output this ACK makes)
        sack_ok = self.tcb.sack_ok
        newly_lost = False
        if hold & _HOLD_DETECTION:
            pass  # (Linux tcp_try_undo_partial returns before tcp_identify_packet_loss)
        elif sack_ok and (self.board.sacked_bytes or self.in_recovery):
            newly_lost = self.detect_loss(now, srtt, cwnd_before)
        elif not sack_ok and self.loss_high is None:
            newly_lost = self._newreno_mark_lost(advanced, now, cwnd_before)
        if self._prr_runs():
            self._prr_on_ack(delivered_packets, grow=advanced and not newly_lost)
        elif delivered and not advanced and not self.in_recovery and self.reordering > DUP_THRESH:
            # with reordering known to run deeper than DupThresh, Linux lets an ACK that only SACKs grow the
            # window as one that moves SND.UNA does (tcp_may_raise_cwnd); RFC 5681 §3.1 grows it on ACKs of
            # new data only
            self.cc.sack_delivered(delivered, delivered_packets, seq_sub(self.tcb.snd_max, self.tcb.snd_una), now)
        return not reduced and self.recover is not None

    def _prr_runs(self) -> bool:
        """PRR paces fast recovery and an ECN reduction, unless the controller sets its own window there."""
        if self.cc.owns_recovery_window:
            return False
        return self.ecn_reducing or self.recover is not None

    def _newreno_mark_lost(self, advanced: bool, now: float, cwnd_before: int) -> bool:
        """Loss detection without SACK (Linux tcp_newreno_mark_lost): the first segment is lost once the
        duplicate ACKs reach the reordering degree, which starts fast recovery, and in recovery once a
        partial ACK moves SND.UNA to it (RFC 6582 §3.2 step 4). True if it was newly marked lost."""
        recover = self.recover
        if recover is None:
            if self.reno_sacked < self.reordering:
                return False
        elif not advanced or not seq_lt(self.tcb.snd_una, recover):
            return False  # (an ACK of exactly the recovery point holds recovery: no loss either)
        first = self.board.first()
        if first is None or first.retransmitted or not self.board.mark_lost(first):  # (not if already lost)
            return False
        if recover is None:
            self._enter_fast_recovery(now, cwnd_before)
        return True

    def detect_loss(self, now: float, srtt: float | None, cwnd_before: int = 0, timer: bool = False) -> bool:
        """RACK (RFC 8985 §6.2 step 5); a first loss starts fast recovery (from `cwnd_before`, the window
        before the ACK being processed grew it, if one did); the rest waits on a timer. In RTO recovery
        fast recovery starts too, as Linux's, when a resend is lost again or RACK's timer (`timer`) finds
        a loss (tcp_fastretrans_alert's FLAG_LOST_RETRANS, tcp_rack_reo_timeout). True if segments were
        newly marked lost."""
        board = self.board
        reo_wnd = self.rack.reo_wnd(self.in_recovery, board.sacked_packets, srtt, self.reordering)
        lost, wait = self.rack.detect_loss(board, now, reo_wnd)
        if wait is not None:
            # Linux arms the timer in whole jiffies plus TCP_TIMEOUT_MIN (2 ms) (tcp_rack_mark_lost); RFC 8985
            # §6.2 step 5 fires it when the wait is over. We follow Linux.
            self.timers.start(timers.RACK_REORDER, now + timers.in_jiffies(wait) + REO_TIMEOUT_SLACK)
        else:
            self.timers.stop(timers.RACK_REORDER)
        if lost and self.recover is None:
            if self.loss_high is None or timer or any(rec.retransmitted for rec in lost):
                self._enter_fast_recovery(now, cwnd_before)
        return bool(lost)

    def on_reorder_timeout(self, now: float, srtt: float | None) -> bool:
        """RFC 8985 §6.3: the reordering window passed, so what RACK waited for is lost. Entering recovery
        this way, PRR sizes the window as if one segment was delivered (Linux tcp_rack_reo_timeout): the
        first lost segment goes now and the rest follow the ACKs, not all at once. RTO recovery gives way
        to it here too; in fast recovery the window stays as the last ACK left it. True if fast recovery
        began, a new reduction of the window."""
        entering = self.recover is None
        reduced = self.ecn_reducing
        self._resends_held = False
        if self.detect_loss(now, srtt, timer=True) and entering and self._prr_runs():
            self._prr_on_ack(1, grow=False)
        return entering and not reduced and self.recover is not None

    # ------------------------------------------------------------------ fast recovery

    def _enter_fast_recovery(self, now: float, cwnd_before: int = 0) -> None:
        tcb = self.tcb
        cc = self.cc
        flight = seq_sub(tcb.snd_max, tcb.snd_una)
        from_timeout = self.loss_high is not None
        if from_timeout:  # RTO recovery ends here (Linux tcp_enter_recovery from Loss)
            self.loss_high = None
            self._frto = self._resends_held = False
        if 0 < cwnd_before < cc.cwnd and not self.ecn_reducing and not cc.owns_recovery_window:
            # the ACK that reveals the loss does not grow the window: Linux reduces first
            # (tcp_fastretrans_alert) and then lets PRR, not the controller, set it (tcp_cong_control)
            cc.cwnd = cwnd_before
        self._start_episode()
        if from_timeout:
            # the timeout's resends still out count for a D-SACK undo (Linux tcp_init_undo's retrans_out)
            self._undo_retrans = self.board.retrans_packets
        self.recover = tcb.snd_max
        if self.ecn_reducing:
            # the window is being reduced for an ECE already: recovery goes on with that reduction and its
            # PRR (Linux tcp_enter_recovery from CWR)
            self.ecn_reducing = False
        else:
            # RFC 6937's RecoverFS is the pipe at entry; Linux divides by the cwnd before the reduction
            # (tcp_init_cwnd_reduction's prior_cwnd), in packets: they differ when the flight was below cwnd
            self._recover_fs = cc.cwnd // tcb.snd_mss
            cc.on_congestion_event(flight, now)
            self._prr_delivered = self._prr_out = 0
        if tcb.sack_ok:
            self.counters.events().sack_recoveries += 1
        else:
            self.counters.events().reno_recoveries += 1

    # ------------------------------------------------------------------ ECN window reduction

    def enter_ecn_reduction(self, prior_cwnd: int) -> None:
        """The controller reduced its window for an ECE echo (RFC 3168 §6.1.2). Linux does not cut cwnd to
        ssthresh at once there: its CWR state brings the flight down by PRR (RFC 6937), from the cwnd before
        the reduction (tcp_init_cwnd_reduction); `after_ack` counts the ACK that carried the ECE. Nothing
        before it can be undone any more: a D-SACK or a timestamp that shows an earlier episode's resends
        needless comes too late (Linux tcp_enter_cwr clears undo_marker and prior_ssthresh)."""
        self.ecn_reducing = True
        self._undo_marker = self._prior = None
        self._prr_delivered = self._prr_out = 0
        self._recover_fs = prior_cwnd // self.tcb.snd_mss
        self.tlp = None

    def end_ecn_reduction(self) -> None:
        """The window of data the reduction answered is acknowledged: cwnd alone limits sending again."""
        self.ecn_reducing = False
        if self.recover is None and self.loss_high is None:
            self.send_window = None

    def _prr_on_ack(self, delivered: int, grow: bool) -> None:
        """RFC 6937 §3.1 for an ACK that delivered `delivered` segments: send in proportion to what was
        delivered, down to ssthresh. Below ssthresh (PRR-SSRB) one segment more than was delivered, as
        Linux only when the ACK moved SND.UNA and revealed no new loss (`grow`). Counted in packets, as
        Linux's tcp_cwnd_reduction: a segment shorter than the MSS counts one."""
        if delivered <= 0 and self.send_window is not None:
            return  # the window stays as the last ACK that delivered something left it (as Linux)
        mss = self.tcb.snd_mss
        self._prr_delivered += delivered
        pipe = self.in_flight
        ssthresh = self.cc.ssthresh // mss
        if pipe > ssthresh:
            sndcnt = -(-self._prr_delivered * ssthresh // max(self._recover_fs, 1)) - self._prr_out
        else:  # PRR-SSRB: grow back towards ssthresh, at most one segment beyond what was delivered
            sndcnt = min(ssthresh - pipe, max(self._prr_delivered - self._prr_out, delivered) + grow)
        if self._prr_out == 0:
            sndcnt = max(sndcnt, 1)  # the fast retransmit itself always goes out (as Linux)
        self.send_window = max(pipe + max(sndcnt, 0), 1) * mss  # never below one segment (RFC 5681 §3.1)

    def mtu_reduced(self, mss: int) -> None:
        """The path MTU shrank (RFC 1191): segments larger than `mss` are lost at that hop. They are cut
        to the new size and marked lost, and RTO-style recovery resends them, without a congestion
        response: the units changed, not the amount of data in the network (Linux tcp_simple_retransmit)."""
        board = self.board
        if board.resegment(mss) and not self.in_recovery:
            self.loss_high = self.tcb.snd_max
            self._undo_marker = None  # nothing to undo: the window was not reduced

    # ------------------------------------------------------------------ tail loss probes

    def probe_sent(self, end: int, retransmitted: bool) -> None:
        """A tail loss probe went, SND.NXT now at `end` (RFC 8985 §7.3): its episode begins. Only a probe
        sent counts, as Linux's TCPLossProbes."""
        self.tlp = (end, retransmitted)
        self.counters.events().loss_probes += 1

    def probe_acked(self, ack: int, flight: int, now: float) -> bool:
        """An ACK that moves SND.UNA to `ack` during a probe's episode (RFC 8985 §7.4, as Linux's
        tcp_process_tlp_ack). Past a resent probe that no D-SACK answered, it shows the probe repaired a
        loss: the controller reduces its window once, a recovery over as soon as it starts (Linux enters
        and leaves CWR). Up to exactly the probe, the episode goes on: a D-SACK may yet say the original
        arrived too. True if the window was reduced."""
        tlp = self.tlp
        if tlp is None or seq_lt(ack, tlp[0]):
            return False
        if not tlp[1]:
            self.tlp = None  # a probe of new data, acknowledged
        elif seq_gt(ack, tlp[0]):
            self.tlp = None
            self.cc.on_congestion_event(flight, now)
            self.cc.on_recovery_exit()
            self.counters.events().loss_probe_recoveries += 1
            return True
        return False

    # ------------------------------------------------------------------ RTO recovery

    def on_timeout(self, now: float, repeated: bool) -> None:
        """RFC 5681 §3.1 after RTO: the segments the receiver does not hold are lost; cwnd restarts.
        `repeated`: an earlier timeout has had no ACK that advanced SND.UNA since."""
        tcb = self.tcb
        reneging = self.board.head_sacked()
        if reneging:
            # the receiver dropped what it SACKed (reneging): resend that too (RFC 2018 §8; Linux
            # tcp_timeout_mark_lost)
            self.board.forget_sacks()
            self.counters.events().sack_renegings += 1
        flight = seq_sub(tcb.snd_max, tcb.snd_una)
        recover, loss_high = self.recover, self.loss_high
        # a new episode (ssthresh reduced, a new state to undo to) unless the window's reduction is under way:
        # fast recovery or an ECN reduction short of its point, or a timeout no ACK has answered (Linux
        # tcp_enter_loss; RFC 5681 §3.1 reduces once per episode: "has not yet been resent by way of the
        # retransmission timer")
        if recover is not None:
            ongoing = seq_lt(tcb.snd_una, recover)
        elif loss_high is not None:
            ongoing = repeated and seq_lt(tcb.snd_una, loss_high)
        else:
            ongoing = self.ecn_reducing
        if not ongoing:
            self._start_episode()
        if recover is None and loss_high is None and not self.ecn_reducing:
            if self.board.sacked_packets >= DUP_THRESH:
                # a timeout despite that many SACKs: the reordering degree was overestimated (Linux
                # tcp_enter_loss)
                self.reordering = min(self.reordering, DUP_THRESH)
        self.cc.on_rto(flight, now, new_episode=not ongoing)
        self.recover = None
        self.ecn_reducing = False
        self.send_window = None
        self.reno_sacked = 0
        self.loss_high = tcb.snd_max
        if reneging:
            self.board.mark_all_lost()
        else:  # what went out within the last round trip is spared (Linux tcp_timeout_mark_lost)
            self.board.mark_lost_on_timeout(now - self.rack.rtt)
        self.cc.set_loss_window(self.in_flight)
        # F-RTO for a timeout outside loss recovery or one that repeats the last (Linux tcp_enter_loss, after
        # RFC 5682 §3.1 step 1 and §3.2)
        self._frto = self.frto and (repeated or (recover is None and loss_high is None))
        self._resends_held = False

    def _frto_ack(self, advanced: bool, recovered: bool, unsent: int) -> bool:
        """An ACK after a timeout while F-RTO may still find it spurious: RFC 5682 §3.1 (with SACK) as
        Linux's tcp_process_loss. `recovered`: it covers what was outstanding at the timeout. True if the
        timeout was undone."""
        tcb = self.tcb
        loss_high = self.loss_high
        assert loss_high is not None  # (F-RTO runs inside a timeout's recovery)
        if self._orig_delivered:
            # step 3b: data sent before the timeout and never resent arrived, so not all of it was lost
            events = self.counters.events()
            events.spurious_rtos += 1
            events.loss_undos += 1
            self._undo(unmark_all=True)
            return True
        if seq_gt(tcb.snd_nxt, loss_high):  # new data went out at step 2b
            if self._data_sacked or not advanced:
                self._frto = False  # step 3a: a duplicate ACK, the loss was real: the lost data is resent
        elif advanced and not recovered:
            # step 2b: the resend arrived; new data goes in place of the other resends, as the window allows
            self.loss_high = tcb.snd_nxt
            if unsent > 0:  # (new data the peer's window takes)
                self._hold = _HOLD_RESENDS
            else:
                self._frto = False
        return False

    # ------------------------------------------------------------------ undo

    def _start_episode(self) -> None:
        self.tlp = None  # a recovery or a timeout takes over from a probe (Linux tcp_init_cwnd_reduction)
        cc = self.cc
        # the ssthresh in effect (Linux tcp_current_ssthresh): a window grown past ssthresh raises it to
        # three quarters of cwnd (during an ECN reduction cwnd is already down to ssthresh)
        mss = self.tcb.snd_mss
        segments = cc.cwnd // mss
        self._prior = (cc.cwnd, max(cc.ssthresh, ((segments >> 1) + (segments >> 2)) * mss))
        self._undo_marker = self.tcb.snd_una
        self._undo_retrans = 0

    def _end_episode(self) -> None:
        # the undo state stays: a D-SACK for the last retransmission usually comes after the full ACK
        self._frto = self._resends_held = False
        self._hold = 0
        self.send_window = None
        self.rack.on_recovery_end()
        self.timers.stop(timers.RACK_REORDER)

    def _undo(self, unmark_all: bool = False) -> None:
        """The episode's reduction was needless: the controller restores cwnd and ssthresh (Linux
        tcp_undo_cwnd_reduction). What was only presumed lost is in flight after all; with `unmark_all`
        (a timeout's undo, a partial ACK's: Linux's unmark_loss) a resend presumed lost again is too. The
        caller counts it under Linux's name for its kind."""
        if self.recover is not None:
            self.recover = None
            self.cc.on_recovery_exit()
        self.loss_high = None
        if self._prior is not None:
            self.cc.undo(*self._prior)
        self.board.forget_losses(retransmitted_too=unmark_all)
        self._undo_marker = self._prior = None
        self._end_episode()

    # ------------------------------------------------------------------ reordering

    def _fack_offset(self) -> int:
        """Just past the highest SACKed byte; SND.UNA when nothing is SACKed (Linux tcp_highest_sack_seq)."""
        board = self.board
        return self._fack if board.sacked_bytes else board.offset_of(self.tcb.snd_una)

    def _reordering_revealed(self, low: int) -> None:
        """Data at offset `low`, never resent, was delivered below the highest SACK: the network reordered
        it. The degree of reordering grows to the distance in segments, as Linux (tcp_check_sack_reordering);
        RFC 8985 keeps no such count, only RACK.reordering_seen."""
        fack = self._fack_offset()
        if low >= fack:
            return
        mss = max(self.tcb.snd_mss, 1)
        distance = fack - low
        if distance > self.reordering * mss:
            self.reordering = min(-(-distance // mss), MAX_REORDERING)
        self.reord_seen += 1
        self.rack.reordering_seen = True

    # ------------------------------------------------------------------ helpers

    def _ts_says_original(self, rec: SentSegment) -> bool:
        """RFC 8985 §6.2 step 2 with timestamps: the echoed TSval predates the retransmission."""
        if not rec.retransmitted or not self._tsecr:
            return False
        return seq_lt(self._tsecr, ts_clock(rec.xmit_ts, self.ts_offset))

    def reset(self) -> None:
        """The connection is gone (RST, abort): forget what was in flight."""
        self.board.clear()
