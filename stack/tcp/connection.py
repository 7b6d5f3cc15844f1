"""One TCP connection, sans I/O: segments and `now` in; segments, events and deadlines out.

Input processing (RFC 9293 §3.10.7) lives in `segment_arrives.py`; this module holds the TCB,
the user calls (§3.10.1-5), the output path and the timers.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from stack.tcp import congestion, events, timers, user_calls
from stack.tcp.config import TcpConfig
from stack.tcp.ecn import ECT0, Ecn
from stack.tcp.events import Closed, Connected, DataAvailable, PeerClosed, Reset, SendSpace, TimedOut
from stack.tcp.isn import initial_sequence_number
from stack.tcp.memory import FORCED_SEND, MemoryBudget
from stack.tcp.reassembly import Reassembly
from stack.tcp.recovery import Recovery
from stack.tcp.rto import RtoEstimator
from stack.tcp.scoreboard import SentSegment
from stack.tcp.segment_arrives import segment_arrives
from stack.tcp.send_buffer import SendBuffer
from stack.tcp.state import Event, State, Transition, next_state
from stack.tcp.tcb import Tcb
from stack.wire.segment import NO_OPTIONS, Flags, Segment, TcpOptions
from stack.wire.seq import in_window, seq_add, seq_ge, seq_gt, seq_lt, seq_sub

Address = tuple[int, int]
DEFAULT_MSS = 536  # RFC 9293 §3.7.1: assumed when the peer sends no MSS option
_PERSIST_MAX = 60.0
_MAX_QUICKACKS = 16  # Linux TCP_MAX_QUICKACKS
_MIN_SND_MSS = 48  # a floor for a tiny (or hostile) MSS option, as Linux's tcp_min_snd_mss
_SACK_OPTION_BASE, _SACK_BLOCK_BYTES = 4, 8  # NOP,NOP,kind,length, then a left and right edge per block


TransitionHook = Callable[["Connection", Transition], None]


@dataclass(slots=True)
class Counters:
    segs_in: int = 0
    segs_out: int = 0
    retrans_segs: int = 0
    resets_out: int = 0
    challenge_acks: int = 0
    out_of_window: int = 0
    timeouts: int = 0  # retransmission timer expiries (Linux TCPTimeouts)
    fast_retransmits: int = 0  # recoveries entered on duplicate ACKs or SACK (TCPFastRetrans)
    loss_probes: int = 0  # tail loss probes sent (TCPLossProbes)
    keepalive_probes: int = 0  # keepalive probes sent (TCPKeepAlive)
    window_probes: int = 0  # zero-window probes sent (TCPWinProbe)
    paws_drops: int = 0  # segments dropped by PAWS (PAWSEstabRejected)
    attempt_fails: int = 0  # SYN_SENT/SYN_RECEIVED -> CLOSED or back to LISTEN (AttemptFails)
    estab_resets: int = 0  # ESTABLISHED/CLOSE_WAIT -> CLOSED (EstabResets)
    ofo_drops: int = 0  # out-of-order segments that met the queue's bounds (Linux TCPOFODrop/OfoPruned)
    challenge_acks_skipped: int = 0  # challenge ACKs the rate limit held back (TCPACKSkippedChallenge)
    oow_acks_skipped: int = 0  # answers to unacceptable pure ACKs held back, 500 ms limit (TCPACKSkippedSeq)
    rsts_out_of_window: int = 0  # RSTs outside the window, dropped silently (RFC 5961 §3.2)
    dsacks_received: int = 0  # D-SACK blocks from the peer: we resent needlessly (TCPDSACKRecv)
    spurious_rtos: int = 0  # timeouts F-RTO found spurious (TCPSpuriousRTOs)
    undos: int = 0  # congestion window reductions undone (TCPDSACKUndo + TCPLossUndo)
    ce_received: int = 0  # segments that arrived with a CE mark (TCPECNCe... Linux TcpExtTCPECNRcvCE)
    ecn_reductions: int = 0  # window reductions for an ECE echo (RFC 3168 §6.1.2)
    aborts_on_data: int = 0  # data arrived after the application closed: RST (TCPAbortOnData)
    time_wait_killed: int = 0  # TIME_WAIT ended by a RST, RFC 1337's assassination (TWKilled)
    time_wait_recycled: int = 0  # TIME_WAIT ended by a new SYN for the same 4-tuple, RFC 6191 (TWRecycled)
    rcvq_drops: int = 0  # data dropped unacknowledged at the stack's memory limit (TCPRcvQDrop)
    ofo_pruned: int = 0  # out-of-order queues emptied under memory pressure (OfoPruned)


def window_shift_for(buffer: int) -> int:
    """The smallest RFC 7323 shift that lets a 16-bit field cover the whole buffer (at most 14)."""
    shift = 0
    while (buffer >> shift) > 0xFFFF and shift < 14:
        shift += 1
    return shift


def receive_window_shift(config: TcpConfig) -> int:
    """Our window scale (RFC 7323 §2.3): room for the largest the receive buffer may become."""
    return window_shift_for(max(config.receive_buffer, config.receive_buffer_max))


class Connection:
    """A TCB and everything the RFC does with it. Build with `connect()` or `from_syn()`."""

    def __init__(self, config: TcpConfig, local: Address, remote: Address, now: float) -> None:
        self.config = config
        self.local = local
        self.remote = remote
        self.state = State.CLOSED
        self.tcb = Tcb()
        self.history: list[Transition] = []
        self.on_transition: TransitionHook | None = None
        self.counters = Counters()
        self.timers = timers.Timers()
        self.rto = RtoEstimator(config.initial_rto, config.min_rto, config.max_rto)
        self.cc = congestion.attach(config.congestion, config.mss, config.initial_window_segments, config.rng)
        self.passive = False  # came from LISTEN (an RST in SYN_RECEIVED returns there)
        self.finished = False  # the TCB may be deleted (CLOSED, or a child back in LISTEN)
        self._events: deque[events.Event] = deque()
        self._out: list[Segment] = []
        # send side
        self.send_buffer = SendBuffer()
        self._fin_queued = False  # CLOSE was called: a FIN follows the queued data
        self._fin_seq: int | None = None
        self._syn_options = NO_OPTIONS
        self._retries = 0
        self._rtt_seq: int | None = None  # one timed segment at a time (Karn's rule, RFC 6298 §3)
        self._rtt_time = 0.0
        self.recovery = Recovery(self, 0)  # scoreboard, RACK, fast and RTO recovery
        self.ecn = Ecn()
        self._probe_sent = False  # a tail loss probe is out since the last ACK of new data (RFC 8985 §7)
        self._last_progress = 0.0  # when data was last sent or newly acknowledged
        self._keepalive_probes = 0  # unanswered keepalive probes
        self._challenge_window = -1.0  # start of the current one-second challenge-ACK window
        self._last_oow_ack = -1.0  # when we last answered an unacceptable pure ACK (rate limit)
        self._last_heard = now  # when the peer last sent us anything
        self._challenges_sent = 0
        self._persist_backoff = 0
        self._send_space_wanted = False
        self._snd_sml = 0  # end of the last small segment sent (Nagle/Minshall)
        self._pace_at = 0.0  # when the next segment may leave at the controller's pacing rate
        # receive side
        self._rcv_buf = bytearray()
        self.memory: MemoryBudget | None = None  # the stack's budget (set by the demux), charged by the driver
        self._reasm = Reassembly(config.ofo_max_bytes, config.ofo_max_holes)
        self._ack_now = False
        self._unacked_segments = 0
        self._quickacks = 0  # ACKs still to send at once (Linux quickack mode)
        self._delack_started = False  # the first data segment arrived
        self._pingpong = False  # interactive: our data follows theirs, so ACKs wait to ride on it
        self._last_data_rcv = 0.0
        self._peer_fin = False
        self.sack_ok = False  # both SYNs carried SACK-permitted (RFC 2018 §2)
        self.ts_ok = False  # both SYNs carried timestamps (RFC 7323 §3.2)
        self.ts_recent = 0  # TS.Recent: the peer's timestamp to echo (RFC 7323 §4.3)
        self.ts_ecr_seen = 0  # TSecr of the segment being processed, for RTT measurement
        self._ts_offset = (config.rng or random).getrandbits(32)  # per-connection timestamp offset, as Linux
        self._ooo_arrivals: deque[int] = deque(maxlen=8)  # recent out-of-order arrivals, newest last
        self.dsack: tuple[int, int] | None = None  # a duplicate segment to report in the next ACK
        self._orphaned = False
        self.soft_error = 0  # errno of the last ICMP soft error (Linux sk_err_soft); see icmp_input.py

    # ------------------------------------------------------------------ construction

    @classmethod
    def connect(
        cls, config: TcpConfig, local: Address, remote: Address, now: float, on_transition: TransitionHook | None = None
    ) -> Connection:
        """Active OPEN (RFC 9293 §3.10.1): choose an ISS, send SYN, enter SYN-SENT."""
        conn = cls(config, local, remote, now)
        conn.on_transition = on_transition
        conn._init_send_sequence(initial_sequence_number(local, remote, now, config.rng))
        wscale = receive_window_shift(config) if config.window_scaling else None
        conn.tcb.rcv_wscale = wscale or 0
        conn._syn_options = TcpOptions(
            mss=config.mss, wscale=wscale, sack_permitted=config.sack, timestamps=(0, 0) if config.timestamps else None
        )
        conn._open_receive_window()
        conn.enter(Event.ACTIVE_OPEN, now)
        conn._send_syn(now)
        return conn

    @classmethod
    def from_syn(
        cls,
        config: TcpConfig,
        local: Address,
        remote: Address,
        syn: Segment,
        now: float,
        on_transition: TransitionHook | None = None,
    ) -> Connection:
        """A LISTEN child for an arriving SYN (RFC 9293 §3.10.7.2, third check): send SYN,ACK."""
        conn = cls(config, local, remote, now)
        conn.on_transition = on_transition
        conn.enter(Event.PASSIVE_OPEN, now)
        conn.passive = True
        tcb = conn.tcb
        tcb.irs = syn.seq
        tcb.rcv_nxt = seq_add(syn.seq, 1)
        conn._init_send_sequence(initial_sequence_number(local, remote, now, config.rng))
        conn._apply_peer_syn_options(syn.options)
        conn.ecn.ok = config.ecn and Ecn.setup_syn(syn)
        if syn.options.wscale is not None and config.window_scaling:
            tcb.rcv_wscale = receive_window_shift(config)
            wscale = tcb.rcv_wscale
        else:
            wscale = None
        conn._syn_options = TcpOptions(
            mss=config.mss, wscale=wscale, sack_permitted=conn.sack_ok, timestamps=(0, 0) if conn.ts_ok else None
        )
        conn._update_send_window(syn.window, syn.seq, syn.ack, syn_segment=True)
        conn._open_receive_window()
        conn.enter(Event.SYN, now)
        conn._send_syn(now)
        return conn

    @classmethod
    def from_cookie(
        cls,
        config: TcpConfig,
        local: Address,
        remote: Address,
        syn: Segment,
        iss: int,
        ts_offset: int,
        now: float,
        on_transition: TransitionHook | None = None,
    ) -> Connection:
        """A LISTEN child rebuilt from a valid SYN cookie (RFC 4987 §3.6): `syn` is the peer's SYN as the
        cookie recorded it, our SYN,ACK (ISS `iss`, TSval clock `ts_offset`) already went out statelessly.
        It waits in SYN_RECEIVED for the caller to pass it the ACK that carried the cookie."""
        conn = cls(config, local, remote, now)
        conn.on_transition = on_transition
        conn.enter(Event.PASSIVE_OPEN, now)
        conn.passive = True
        conn._ts_offset = ts_offset
        tcb = conn.tcb
        tcb.irs = syn.seq
        tcb.rcv_nxt = seq_add(syn.seq, 1)
        conn._init_send_sequence(iss)
        tcb.snd_nxt = tcb.snd_max = seq_add(iss, 1)  # the SYN,ACK is out
        conn._apply_peer_syn_options(syn.options)
        if syn.options.wscale is not None and config.window_scaling:
            tcb.rcv_wscale = receive_window_shift(config)
        conn._update_send_window(syn.window, syn.seq, syn.ack, syn_segment=True)
        conn._open_receive_window()
        conn.enter(Event.SYN_COOKIE, now)
        return conn

    def _init_send_sequence(self, iss: int) -> None:
        tcb = self.tcb
        tcb.iss = tcb.snd_una = tcb.snd_nxt = tcb.snd_max = self._snd_sml = iss
        self.send_buffer.seq = seq_add(iss, 1)
        self.recovery = Recovery(self, seq_add(iss, 1))

    def _apply_peer_syn_options(self, options: TcpOptions) -> None:
        tcb = self.tcb
        tcb.snd_mss = min(options.mss if options.mss else DEFAULT_MSS, self.config.mss)
        self.sack_ok = self.config.sack and options.sack_permitted
        self.ts_ok = self.config.timestamps and options.timestamps is not None
        if self.ts_ok:
            self.ts_recent = options.timestamps[0]
            tcb.snd_mss -= 12  # room for the 12 bytes of NOP,NOP,TS on every segment, as Linux
        tcb.snd_mss = max(tcb.snd_mss, _MIN_SND_MSS)
        if options.wscale is not None and self.config.window_scaling:
            tcb.snd_wscale = min(options.wscale, 14)  # RFC 7323 §2.3
        else:
            tcb.snd_wscale = tcb.rcv_wscale = 0
        self.cc = congestion.attach(
            self.config.congestion, tcb.snd_mss, self.config.initial_window_segments, self.config.rng
        )

    def set_congestion_control(self, name: str) -> None:
        """TCP_CONGESTION on an open connection (Linux tcp_set_congestion_control): the new controller
        (a registry name or package.module:Class; ValueError if unusable) goes on from the current
        cwnd and ssthresh."""
        mss = self.tcb.snd_mss or self.config.mss
        new = congestion.attach(name, mss, self.config.initial_window_segments, self.config.rng)
        new.cwnd, new.ssthresh = self.cc.cwnd, self.cc.ssthresh
        self.cc = new
        self.config = replace(self.config, congestion=name)

    def renegotiate_syn_options(self, peer: TcpOptions) -> None:
        """Our SYN,ACK in a simultaneous open offers only what the peer's SYN offered too (RFC 7323 §1.3)."""
        ours = self._syn_options
        self._syn_options = replace(
            ours,
            wscale=ours.wscale if peer.wscale is not None else None,
            sack_permitted=self.sack_ok,
            timestamps=(0, 0) if self.ts_ok else None,
        )

    # ------------------------------------------------------------------ state

    def enter(self, event: Event, now: float) -> None:
        """The one place the state changes: the new state is looked up in TRANSITIONS and recorded."""
        new = next_state(self.state, event)
        t = Transition(self.state, new, event, now)
        if self.state in (State.SYN_SENT, State.SYN_RECEIVED) and new in (State.CLOSED, State.LISTEN):
            self.counters.attempt_fails += 1
        elif self.state in (State.ESTABLISHED, State.CLOSE_WAIT) and new is State.CLOSED:
            self.counters.estab_resets += 1
        self.state = new
        self.history.append(t)
        if self.on_transition is not None:
            self.on_transition(self, t)
        if new is State.CLOSED:
            self.timers.stop_all()
            self.finished = True
            self._events.append(Closed())
        elif new is State.TIME_WAIT:
            self.timers.stop_all()
            self.restart_time_wait(now)
        elif new is State.LISTEN and t.old is State.SYN_RECEIVED:  # a passive child reset: its TCB goes
            self.timers.stop_all()
            self.finished = True
        elif new is State.ESTABLISHED:
            self._events.append(Connected())
            self.arm_keepalive(now)
            if self._fin_queued:  # CLOSE came in SYN_RECEIVED with data queued (RFC 9293 §3.10.4)
                self.enter(Event.CLOSE, now)
        elif new is State.FIN_WAIT_2 and self._orphaned:
            self.timers.start(timers.FIN_WAIT_2, now + self.config.fin_timeout)

    def restart_time_wait(self, now: float) -> None:
        """TIME-WAIT lasts 2*MSL from entering it, and again from each retransmitted FIN (RFC 9293 §3.4.2,
        §3.10.7.4 eighth check)."""
        self.timers.start(timers.TIME_WAIT, now + 2 * self.config.msl)

    # ------------------------------------------------------------------ user calls (§3.10.1-5)

    @property
    def send_space(self) -> int:
        space = max(0, self.config.send_buffer - len(self.send_buffer))
        if self.memory is not None and self.memory.exhausted:  # only an empty buffer takes a little more
            return 0 if len(self.send_buffer) else min(space, FORCED_SEND)
        return space

    @property
    def send_queue_bytes(self) -> int:
        return len(self.send_buffer)

    @property
    def recv_queue_bytes(self) -> int:
        return len(self._rcv_buf)

    @property
    def held_bytes(self) -> int:
        """What the stack's memory budget is charged for: received, out-of-order and queued bytes."""
        return len(self._rcv_buf) + self._reasm.bytes_held + len(self.send_buffer)

    @property
    def at_eof(self) -> bool:
        """The peer's FIN arrived and every byte before it was read."""
        return self._peer_fin and not self._rcv_buf

    def send(self, data: bytes, now: float) -> int:
        """SEND (§3.10.2): queue up to send_space bytes; returns how many were taken."""
        return user_calls.send(self, data, now)

    def read(self, max_bytes: int = -1) -> bytes:
        """RECEIVE (§3.10.3): take up to max_bytes in-order bytes (all with -1)."""
        return user_calls.receive(self, max_bytes)

    def close(self, now: float) -> None:
        """CLOSE (§3.10.4): a FIN follows the queued data; receiving goes on (half-close)."""
        user_calls.close(self, now)

    def detach(self, now: float) -> None:
        """The application dropped the connection: FIN_WAIT_2 is then bounded by config.fin_timeout."""
        user_calls.detach(self, now)

    def abort(self, now: float) -> None:
        """ABORT (§3.10.5): RST if the peer has a TCB, discard queued data, CLOSED."""
        user_calls.abort(self, now)

    # ------------------------------------------------------------------ outputs

    def next_event(self) -> events.Event | None:
        return self._events.popleft() if self._events else None

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    @property
    def retransmits(self) -> int:
        """Retransmissions since the last forward progress (Linux icsk_retransmits, netstat's timer column)."""
        return self._retries

    @property
    def probes_out(self) -> int:
        """Unanswered keepalive or zero-window probes (Linux icsk_probes_out)."""
        return self._keepalive_probes or self._persist_backoff

    def running_timer(self, now: float) -> tuple[str, float] | None:
        """The first running timer as netstat names it, and seconds left."""
        for name, deadline in self.timers.items():
            if name != timers.DELAYED_ACK:
                return timers.NETSTAT_NAMES[name], max(0.0, deadline - now)
        return None

    def segments_to_send(self, now: float) -> list[Segment]:
        if self.state not in (State.CLOSED, State.LISTEN, State.SYN_SENT, State.SYN_RECEIVED):
            self._output_data(now)
        if self._ack_now and self.state not in (State.CLOSED, State.LISTEN, State.SYN_SENT):
            self._emit(now, Flags.ACK, self.acceptable_seq())
        self._arm_loss_probe()
        out, self._out = self._out, []
        self.counters.segs_out += len(out)
        return out

    # ------------------------------------------------------------------ timers

    def handle_timer(self, now: float) -> None:
        for name in self.timers.expired(now):
            if name == timers.RETRANSMIT:
                self._on_retransmit_timeout(now)
            elif name == timers.DELAYED_ACK:
                self._ack_now = True
                self._pingpong = False  # no data came to carry the ACK: leave ping-pong mode (as Linux)
            elif name == timers.PERSIST:
                self._on_persist_timeout(now)
            elif name == timers.LOSS_PROBE:
                self._on_loss_probe(now)
            elif name == timers.RACK_REORDER:
                self.recovery.detect_loss(now)
            # PACING: nothing to do here; segments_to_send() sends what the pacing rate now allows
            elif name == timers.KEEPALIVE:
                self._on_keepalive_timeout(now)
            elif name == timers.TIME_WAIT:
                self.enter(Event.TIME_WAIT_TIMEOUT, now)
            elif name == timers.FIN_WAIT_2:
                self.enter(Event.FIN_WAIT_2_TIMEOUT, now)
            if self.state is State.CLOSED:
                return

    def _on_retransmit_timeout(self, now: float) -> None:
        """RFC 6298 (5.4)-(5.7): retransmit the earliest unacknowledged segment, back off."""
        if self.state in (State.SYN_SENT, State.SYN_RECEIVED):
            limit = self.config.syn_retries if self.state is State.SYN_SENT else self.config.synack_retries
        else:
            limit = self.config.max_retries
        # a peer that keeps answering with a zero window is alive: our retransmissions are its window
        # probes, which must go on as long as it answers (§3.8.6.1); only a peer that missed a probe (silent
        # for longer than one MAX_RTO interval, with slack) goes (Linux tcp_retransmit_timer, "receiver
        # dastardly shrinks window"; an orphan is not spared)
        probing = (
            self.state.synchronized
            and self.tcb.snd_wnd == 0
            and not self._orphaned
            and now - self._last_heard < 1.5 * self.config.max_rto
        )
        if self._retries >= limit and not probing:
            self._events.append(TimedOut())  # no RST: the peer is presumed gone (Linux tcp_write_err)
            self.enter(Event.RETRANSMIT_TIMEOUT, now)
            return
        if not probing:
            self._retries += 1
        self.counters.timeouts += 1
        self.rto.on_timeout()
        self._rtt_seq = None  # Karn: never time a retransmitted segment
        if self.state in (State.SYN_SENT, State.SYN_RECEIVED) or self.tcb.snd_una == self.tcb.iss:
            # the SYN (or our SYN,ACK, still unacknowledged after CLOSE in SYN_RECEIVED) goes first
            self._send_syn(now, retransmit=True)
            return
        self.recovery.on_timeout(now)
        self.timers.start(timers.RETRANSMIT, now + self.rto.rto)
        self._output_data(now)

    def _arm_loss_probe(self) -> None:
        """RFC 8985 §7.2: a probe timeout of 2*SRTT after the last send or ACK, if sooner than the RTO."""
        tcb = self.tcb
        flight = seq_sub(tcb.snd_max, tcb.snd_una)
        rto_at = self.timers.deadline(timers.RETRANSMIT)
        srtt = self.rto.srtt
        if (
            flight <= 0
            or not self.config.loss_probes
            or self._probe_sent
            or self.recovery.in_recovery
            or self.rto.backoff > 0  # not during RTO recovery either (RFC 8985 §7.2)
            or srtt is None
            or rto_at is None
            or not self.state.synchronized
            or self._fin_in_flight()
        ):
            self.timers.stop(timers.LOSS_PROBE)
            return
        pto = max(2 * srtt, 0.01)
        if flight <= tcb.snd_mss:
            pto += 0.2  # the lone segment's ACK may be delayed (WCDelAckT)
        at = self._last_progress + pto
        if at < rto_at:
            self.timers.start(timers.LOSS_PROBE, at)
        else:
            self.timers.stop(timers.LOSS_PROBE)

    def _on_loss_probe(self, now: float) -> None:
        """RFC 8985 §7.3: send one new segment, or resend the last one, to draw a (SACK) ACK."""
        tcb = self.tcb
        last = self.recovery.board.last()
        if last is None or self.recovery.in_recovery:
            return
        self._probe_sent = True
        self.counters.loss_probes += 1
        unsent = self._unsent_bytes()
        if unsent > 0 and tcb.snd_wnd > seq_sub(tcb.snd_nxt, tcb.snd_una):
            self._send_data_segment(self.send_buffer.offset(tcb.snd_nxt), min(unsent, tcb.snd_mss), False, now)
            return
        seq = self.recovery.board.seq_of(last.start)
        if seq != tcb.snd_una and seq_ge(seq, seq_add(tcb.snd_una, tcb.snd_wnd)):
            return  # the peer shrank its window below it (§3.8.6): the RTO goes on (Linux __tcp_retransmit_skb)
        self.retransmit(last, now)  # resend the last segment (RFC 8985 §7.3)
        self.timers.start(timers.RETRANSMIT, now + self.rto.rto)  # §7.3: re-arm the RTO after a probe

    def _on_persist_timeout(self, now: float) -> None:
        """Zero-window probe (RFC 9293 §3.8.6.1): elicit an ACK carrying the current window."""
        tcb = self.tcb
        unsent = self._unsent_bytes()
        if unsent <= 0 or tcb.snd_nxt != tcb.snd_una:
            return
        if tcb.snd_wnd > 0:  # a window too small for SWS avoidance: the override timeout fired
            n = min(tcb.snd_wnd, tcb.snd_mss, unsent)
            # pushed, as Linux's window probe (tcp_write_wakeup) is
            self._send_data_segment(self.send_buffer.offset(tcb.snd_nxt), n, False, now, push=True)
            return
        self._emit(now, Flags.ACK, seq_add(tcb.snd_una, -1))
        self.counters.window_probes += 1
        self._persist_backoff += 1
        self.timers.start(timers.PERSIST, now + self._persist_interval())

    def _persist_interval(self) -> float:
        return min(self.rto.rto * (1 << self._persist_backoff), _PERSIST_MAX)

    # ------------------------------------------------------------------ output path

    def _unsent_bytes(self) -> int:
        return len(self.send_buffer) - self.send_buffer.offset(self.tcb.snd_nxt)

    def _send_syn(self, now: float, retransmit: bool = False) -> None:
        tcb = self.tcb
        flags = Flags.SYN if self.state is State.SYN_SENT else Flags.SYN | Flags.ACK
        if self.state is State.SYN_SENT and self.config.ecn and not retransmit:
            flags |= Flags.ECE | Flags.CWR  # an ECN-setup SYN; a retransmission goes without (as Linux)
        elif flags & Flags.ACK and self.ecn.ok:
            flags |= Flags.ECE  # an ECN-setup SYN,ACK (RFC 3168 §6.1.1)
        # the window field of a SYN is never scaled (RFC 7323 §2.2)
        window = min(self._receive_window(), 0xFFFF)
        ack = tcb.rcv_nxt if flags & Flags.ACK else 0
        options = self._syn_options
        if options.timestamps is not None:  # TSval now; TSecr only on a SYN,ACK (RFC 7323 §3.2)
            options = replace(options, timestamps=(self.ts_val(now), self.ts_recent if flags & Flags.ACK else 0))
        self._out.append(Segment(self.local[1], self.remote[1], tcb.iss, ack, flags, window, b"", options))
        if seq_lt(tcb.snd_max, seq_add(tcb.iss, 1)) or self.state in (State.SYN_SENT, State.SYN_RECEIVED):
            tcb.snd_nxt = tcb.snd_max = seq_add(tcb.iss, 1)  # (a FIN sent after it stays: CLOSE in SYN_RECEIVED)
        if retransmit:
            self.counters.retrans_segs += 1
        else:
            self._rtt_seq, self._rtt_time = tcb.iss, now
        self._ack_now = False
        self.timers.start(timers.RETRANSMIT, now + self.rto.rto)

    def _output_data(self, now: float) -> None:
        """Send what the windows allow (RFC 5681 cwnd, peer's window), with Nagle and SWS avoidance."""
        tcb = self.tcb
        mss = tcb.snd_mss - self._sack_option_bytes()  # room for the SACK option, as Linux's tcp_current_mss
        buf = self.send_buffer
        recovery = self.recovery
        # lost segments go first (RFC 6675 §5 NextSeg rule 1), as far as the congestion window allows
        while (lost := recovery.next_lost()) is not None and self.cc.cwnd - recovery.in_flight() >= min(
            mss, lost.length
        ):
            if self._paced(now):
                return
            self.retransmit(lost, now)
        while True:
            offset = buf.offset(tcb.snd_nxt)
            unsent = len(buf) - offset
            flight = seq_sub(tcb.snd_nxt, tcb.snd_una)
            # the congestion window limits what is in the network, the peer's window what is unacknowledged
            usable = min(self.cc.cwnd + recovery.limited_transmit * mss - recovery.in_flight(), tcb.snd_wnd - flight)
            n = min(mss, unsent, max(usable, 0))
            if unsent <= 0 or n <= 0:
                break
            if n < mss:
                if n < unsent:
                    # window-limited: sender SWS avoidance (§3.8.6.2.1)
                    if n < tcb.max_snd_wnd // 2 or flight == 0 and tcb.snd_wnd == 0:
                        break
                elif (
                    not self.config.nodelay
                    and not self._fin_queued
                    and seq_gt(self._snd_sml, tcb.snd_una)
                    and tcb.snd_nxt == tcb.snd_max  # retransmissions are never held
                ):
                    break  # Nagle (§3.7.4), Minshall's variant as Linux: one small segment in flight
            if self._paced(now):
                return
            fin = self._fin_queued and n == unsent
            self._send_data_segment(offset, n, fin, now)
        if self._fin_queued and self._unsent_bytes() == 0 and not self._fin_in_flight():
            self._send_data_segment(self.send_buffer.offset(tcb.snd_nxt), 0, True, now)
        resending = self.recovery.in_recovery
        self.cc.sending_stopped(self._unsent_bytes(), seq_sub(tcb.snd_nxt, tcb.snd_una), resending)  # app-limited?
        # data waiting, nothing in flight, the peer's window too small: probe it (§3.8.6.1)
        if self._unsent_bytes() > 0 and tcb.snd_nxt == tcb.snd_una:
            if not self.timers.running(timers.PERSIST):
                self._persist_backoff = 0
                self.timers.start(timers.PERSIST, now + self._persist_interval())
        else:
            self.timers.stop(timers.PERSIST)

    def window_opened(self, now: float) -> None:
        """The peer's window opened after being zero. Data sent into the closed window was dropped and
        our retransmission timer has backed off meanwhile: resend the first segment now rather than when
        the backed-off timer fires (the window update is the answer to our last probe, §3.8.6.1)."""
        head = self.recovery.board.first()
        if head is None or self.rto.backoff == 0 or head.sacked:
            return
        self.rto.reset_backoff()
        self.recovery.board.mark_lost(head)
        self.retransmit(head, now)
        self.timers.start(timers.RETRANSMIT, now + self.rto.rto)

    def _paced(self, now: float) -> bool:
        """With a pacing rate from the controller (BBR), a segment may leave only when the previous one's
        time at that rate has passed; until then the pacing timer holds the rest."""
        if self.cc.pacing_rate is None or now >= self._pace_at:
            return False
        self.timers.start(timers.PACING, self._pace_at)
        return True

    def _fin_in_flight(self) -> bool:
        return self._fin_seq is not None and seq_gt(self.tcb.snd_nxt, self._fin_seq)

    def _send_data_segment(self, offset: int, n: int, fin: bool, now: float, push: bool = False) -> None:
        tcb = self.tcb
        seq = tcb.snd_nxt
        payload = self.send_buffer.take(offset, n) if n else b""
        flags = Flags.ACK
        if n and (push or offset + n == len(self.send_buffer)):
            flags |= Flags.PSH
        if fin:
            flags |= Flags.FIN
            self._fin_seq = seq_add(seq, n)
        end = seq_add(seq, n + (1 if fin else 0))
        if 0 < n < tcb.snd_mss - self._sack_option_bytes():  # smaller than a full segment now (Nagle)
            self._snd_sml = end
        if self._rtt_seq is None:
            self._rtt_seq, self._rtt_time = seq, now
        if self._delack_started and now - self._last_data_rcv < self.config.delayed_ack:
            self._pingpong = True  # we answer what just arrived (Linux tcp_event_data_sent)
        ecn = 0
        if self.ecn.ok and n:  # new data only: never retransmissions or pure ACKs (RFC 3168 §6.1.5)
            ecn = ECT0
            if self.ecn.cwr_pending:
                flags |= Flags.CWR  # we reduced the window after an ECE (§6.1.2)
                self.ecn.cwr_pending = False
        self._emit(now, flags, seq, payload, ecn)
        self.recovery.on_sent(seq, seq_sub(end, seq), now)
        self._pace(n, now)
        self._last_progress = now
        tcb.snd_nxt = end
        if seq_gt(end, tcb.snd_max):
            tcb.snd_max = end
        self.timers.start_if_idle(timers.RETRANSMIT, now + self.rto.rto)  # RFC 6298 (5.1)

    def retransmit(self, rec: SentSegment, now: float) -> None:
        """Send one scoreboard record again, with the FIN (and PSH) it carried."""
        seq = self.recovery.board.seq_of(rec.start)
        n = rec.length
        fin = self._fin_seq is not None and seq_add(seq, n) == seq_add(self._fin_seq, 1)
        if fin:
            n -= 1
        offset = self.send_buffer.offset(seq)
        flags = Flags.ACK
        if fin:
            flags |= Flags.FIN
        elif n and offset + n == len(self.send_buffer):
            flags |= Flags.PSH  # as when it was first sent
        self._emit(now, flags, seq, self.send_buffer.take(offset, n))
        self.recovery.on_sent(seq, rec.length, now)
        self._pace(n, now)
        self.counters.retrans_segs += 1
        self._rtt_seq = None  # Karn: a retransmitted segment is never timed
        self.timers.start_if_idle(timers.RETRANSMIT, now + self.rto.rto)

    def _emit(self, now: float, flags: Flags, seq: int, payload: bytes = b"", ecn: int = 0) -> None:
        """Queue one segment carrying our current ACK and window."""
        tcb = self.tcb
        if self.ecn.ece_pending:
            flags |= Flags.ECE  # echo congestion until the peer's CWR (RFC 3168 §6.1.3)
        window = self._advertise_window()
        sack = self._sack_blocks() if self.sack_ok and len(self._reasm) else ()
        if self.dsack is not None:  # D-SACK: the duplicate's range goes first (RFC 2883 §4)
            sack = (self.dsack, *sack)[: 3 if self.ts_ok else 4]
            self.dsack = None
        if payload and sack:  # a resent full segment has no room for all blocks: the packet must fit the MTU
            sack = sack[: max(0, (tcb.snd_mss - len(payload) - _SACK_OPTION_BASE) // _SACK_BLOCK_BYTES)]
        if self.ts_ok:
            options = TcpOptions(timestamps=(self.ts_val(now), self.ts_recent), sack_blocks=sack)
        else:
            options = TcpOptions(sack_blocks=sack) if sack else NO_OPTIONS
        window >>= tcb.rcv_wscale
        self._out.append(
            Segment(self.local[1], self.remote[1], seq, tcb.rcv_nxt, flags, window, payload, options, ecn=ecn)
        )
        if payload:  # every data segment, new or resent, feeds the controller and the rate estimator
            self.cc.data_sent(seq, len(payload), seq_sub(tcb.snd_max, tcb.snd_una), now)
        self._ack_now = False
        self._unacked_segments = 0
        if self._quickacks:
            self._quickacks -= 1
        self.timers.stop(timers.DELAYED_ACK)

    def _pace(self, length: int, now: float) -> None:
        rate = self.cc.pacing_rate
        if rate:
            self._pace_at = max(self._pace_at, now - self.config.timer_slack) + length / rate

    def _sack_option_bytes(self) -> int:
        """Bytes the SACK option takes on our next segment (NOP,NOP,kind,len + 8 per block), 0 if none."""
        if not self.sack_ok:
            return 0
        blocks = min(len(self._reasm) + (self.dsack is not None), 3 if self.ts_ok else 4)
        return _SACK_OPTION_BASE + _SACK_BLOCK_BYTES * blocks if blocks else 0

    def _sack_blocks(self) -> tuple[tuple[int, int], ...]:
        """SACK blocks for held out-of-order data: the block of the most recently received segment first,
        then the others in the order their data last arrived (RFC 2018 §4)."""
        blocks = self._reasm.sack_blocks()
        arrivals = self._ooo_arrivals

        def last_arrival(block: tuple[int, int]) -> int:
            size = seq_sub(block[1], block[0])
            return max((i for i, seq in enumerate(arrivals) if in_window(seq, block[0], size)), default=-1)

        blocks.sort(key=last_arrival, reverse=True)  # stable: blocks with no known arrival keep sequence order
        return tuple(blocks[: 3 if self.ts_ok else 4])

    def ts_val(self, now: float) -> int:
        """Our timestamp clock: milliseconds plus a per-connection offset (RFC 7323 §5.4)."""
        return (int(now * 1000) + self._ts_offset) & 0xFFFFFFFF

    def acceptable_seq(self) -> int:
        """SEG.SEQ for a segment without data: SND.MAX (not snd_nxt, which lags it after an RTO), unless the
        peer moved its right window edge left of it (RFC 9293 §3.8.6 lets it): then that edge, which the
        peer still accepts, where SND.MAX would be out of its window and discarded (Linux
        tcp_acceptable_seq, which tolerates less than one unit of the peer's window scale, RFC 7323 §2.4)."""
        tcb = self.tcb
        edge = seq_add(tcb.snd_una, tcb.snd_wnd)
        if seq_ge(edge, tcb.snd_max) or seq_sub(tcb.snd_max, edge) < 1 << tcb.snd_wscale:
            return tcb.snd_max
        return edge

    def _emit_rst(self, seq: int) -> None:
        self._out.append(Segment(self.local[1], self.remote[1], seq, self.tcb.rcv_nxt, Flags.RST | Flags.ACK, 0))
        self.counters.resets_out += 1

    # ------------------------------------------------------------------ receive window

    def _receive_window(self) -> int:
        free = self.config.receive_buffer - len(self._rcv_buf) - self._reasm.bytes_held
        return max(free, 0)

    def _growable_window(self, offered: int) -> int:
        """The window the buffer allows, but no more than `offered` under memory pressure: windows stop
        growing (Linux tcp_mem[1]); a new connection still gets its initial window."""
        free = min(self._receive_window(), 0xFFFF << self.tcb.rcv_wscale)
        if self.memory is not None and self.memory.pressure:
            return min(free, max(offered, 0))
        return free

    def _open_receive_window(self) -> None:
        tcb = self.tcb
        limit = 0xFFFF << tcb.rcv_wscale
        tcb.rcv_wnd = min(self._receive_window(), limit)
        tcb.rcv_adv = seq_add(tcb.rcv_nxt, tcb.rcv_wnd)

    def _advertise_window(self) -> int:
        """The window to put in a segment: never shrinks the right edge (§3.8.6), moves it in
        MSS-sized steps (receiver SWS avoidance, §3.8.6.2.2)."""
        tcb = self.tcb
        limit = 0xFFFF << tcb.rcv_wscale
        offered = seq_sub(tcb.rcv_adv, tcb.rcv_nxt)
        free = self._growable_window(offered)
        step = min(tcb.snd_mss, self.config.receive_buffer // 2)
        if free - max(offered, 0) >= step or free >= limit:
            offered = free
        offered = max(offered, 0)
        offered -= offered & ((1 << tcb.rcv_wscale) - 1)  # representable after scaling
        tcb.rcv_wnd = offered
        new_edge = seq_add(tcb.rcv_nxt, offered)
        if seq_gt(new_edge, tcb.rcv_adv):
            tcb.rcv_adv = new_edge
        return offered

    def _maybe_window_update(self) -> None:
        tcb = self.tcb
        offered = max(seq_sub(tcb.rcv_adv, tcb.rcv_nxt), 0)
        free = self._growable_window(offered)
        step = min(tcb.snd_mss, self.config.receive_buffer // 2)
        # RFC 9293 §3.8.6.2.2 (grow by at least min(RCV.BUFF/2, MSS)); like Linux, only announce a
        # window that at least doubles, unless the offered one has shrunk below that step
        if free - offered >= step and (free >= 2 * offered or offered < step):
            self._ack_now = True

    # ------------------------------------------------------------------ helpers for segment arrival

    def _update_send_window(self, window: int, seq: int, ack: int, syn_segment: bool = False) -> None:
        tcb = self.tcb
        tcb.snd_wnd = window if syn_segment else window << tcb.snd_wscale
        tcb.snd_wl1 = seq
        tcb.snd_wl2 = ack
        if tcb.snd_wnd > tcb.max_snd_wnd:
            tcb.max_snd_wnd = tcb.snd_wnd

    def _deliver(self, data: bytes) -> None:
        if data:
            was_empty = not self._rcv_buf
            self._rcv_buf += data
            self.tcb.rcv_nxt = seq_add(self.tcb.rcv_nxt, len(data))
            if was_empty:
                self._events.append(DataAvailable())

    def _on_peer_fin(self) -> None:
        self._peer_fin = True
        self._events.append(PeerClosed())

    def _on_reset(self, refused: bool, now: float) -> None:
        """A RST (or a hard ICMP error) ends the connection: refused if the handshake had not completed."""
        self._events.append(Reset(refused=refused))
        self.send_buffer.clear()
        self.recovery.reset()
        self.enter(Event.REFUSED if refused else Event.RST, now)

    def _on_ack_advanced(self, ack: int, now: float) -> None:
        """SND.UNA < SEG.ACK <= SND.MAX (§3.10.7.4 fifth check): free acknowledged data."""
        tcb = self.tcb
        acked = seq_sub(ack, tcb.snd_una)
        flight_before = seq_sub(tcb.snd_max, tcb.snd_una)
        if self.ts_ok and self.ts_ecr_seen:
            # RFC 7323 §4.1: the echoed timestamp times this ACK, retransmission or not
            rtt = ((self.ts_val(now) - self.ts_ecr_seen) & 0xFFFFFFFF) / 1000
            if rtt < 60.0:
                self.rto.on_sample(rtt)
                self._rtt_seq = None
        elif self._rtt_seq is not None and seq_gt(ack, self._rtt_seq):
            self.rto.on_sample(now - self._rtt_time)
            self._rtt_seq = None
        tcb.snd_una = ack
        if seq_lt(tcb.snd_nxt, ack):
            tcb.snd_nxt = ack
        if self.send_buffer.ack(ack):
            if self._send_space_wanted:
                self._send_space_wanted = False
                self._events.append(SendSpace())
        self._retries = 0
        self._probe_sent = False
        self._last_progress = now
        self.rto.reset_backoff()
        # the window grows by what this ACK delivered (Linux tcp_cong_avoid with acked_sacked): SACKed bytes
        # were delivered when their SACK came; without SACK each duplicate ACK stood for one segment
        if self.sack_ok:
            delivered = acked - self.recovery.board.sacked_below(ack)
        else:
            delivered = acked - min(self.recovery.dupacks * tcb.snd_mss, acked)
        self.cc.ack_received(ack, delivered, flight_before, now)  # on_ack(AckSample), before the recovery hooks
        self.recovery.on_ack_advanced(ack, acked, now)
        if tcb.snd_una == tcb.snd_max:
            self.timers.stop(timers.RETRANSMIT)  # RFC 6298 (5.2)
        else:
            self.timers.start(timers.RETRANSMIT, now + self.rto.rto)  # RFC 6298 (5.3)

    @property
    def fin_acked(self) -> bool:
        return self._fin_seq is not None and seq_gt(self.tcb.snd_una, self._fin_seq)

    def _schedule_ack(self, now: float, segment_len: int) -> None:
        """Delayed ACK (RFC 9293 §3.8.6.3): at least every second full-sized segment, else a timer.

        As Linux (tcp_event_data_recv), the first data of a connection, and data after an idle gap
        longer than the RTO, start a quickack phase that ACKs every segment at once, so slow start
        is not held back by the timer; an interactive (ping-pong) exchange delays ACKs to piggyback them.
        """
        if not self._delack_started or now - self._last_data_rcv > self.rto.rto:
            self._delack_started = True
            rcv_mss = min(max(DEFAULT_MSS, segment_len), self.config.mss)
            self._quickacks = max(self._quickacks, min(max(self.tcb.rcv_wnd // (2 * rcv_mss), 2), _MAX_QUICKACKS))
        self._last_data_rcv = now
        if segment_len >= self.tcb.snd_mss:  # a super-segment from TUN offloads counts as the segments it holds
            self._unacked_segments += segment_len // self.tcb.snd_mss
        if self._unacked_segments >= 2 or (self._quickacks and not self._pingpong):
            self._ack_now = True
        else:
            self.timers.start_if_idle(timers.DELAYED_ACK, now + self.config.delayed_ack)

    def receive_segment(self, seg: Segment, now: float) -> None:
        self._last_heard = now
        self.counters.segs_in += 1
        segment_arrives(self, seg, now)
        if self.config.keepalive and not self.finished:
            self._keepalive_probes = 0
            self.arm_keepalive(now)

    def challenge_ack(self, now: float) -> None:
        """RFC 5961 §7: challenge ACKs are rate limited, so they cannot be turned into an amplifier."""
        if now - self._challenge_window >= 1.0:
            self._challenge_window = now
            self._challenges_sent = 0
        if self._challenges_sent < self.config.challenge_ack_limit:
            self._challenges_sent += 1
            self.counters.challenge_acks += 1
            self._ack_now = True
        else:
            self.counters.challenge_acks_skipped += 1

    # ------------------------------------------------------------------ keepalive (RFC 1122 §4.2.3.6)

    def arm_keepalive(self, now: float) -> None:
        """(Re)start the idle timer; called on every segment received and when SO_KEEPALIVE is set."""
        if self.config.keepalive and self.state in (State.ESTABLISHED, State.CLOSE_WAIT):
            self.timers.start(timers.KEEPALIVE, now + self.config.keepalive_idle)
        else:
            self.timers.stop(timers.KEEPALIVE)

    def _on_keepalive_timeout(self, now: float) -> None:
        tcb = self.tcb
        if tcb.snd_una != tcb.snd_max:  # data in flight: the retransmission timer watches the peer
            self.arm_keepalive(now)
            return
        if self._keepalive_probes >= self.config.keepalive_count:
            self._events.append(TimedOut())
            self._emit_rst(self.acceptable_seq())  # as Linux (tcp_keepalive_timer): the peer may still be there
            self.enter(Event.KEEPALIVE_TIMEOUT, now)
            return
        # a probe carries SEG.SEQ = SND.NXT - 1 so that the peer must answer with an ACK
        self._emit(now, Flags.ACK, seq_add(tcb.snd_una, -1))
        self._keepalive_probes += 1
        self.counters.keepalive_probes += 1
        self.timers.start(timers.KEEPALIVE, now + self.config.keepalive_interval)
