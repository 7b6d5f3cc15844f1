"""One TCP connection, sans I/O: segments and `now` in; segments, events and deadlines out.

Input processing (RFC 9293 §3.10.7) lives in `segment_arrives.py`; this module holds the TCB,
the user calls (§3.10.1-5), the output path and the timers.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import Final, TypeAlias

from stack.tcp import congestion, events, rcv_space, timers, tso_defer, urgent, user_calls, user_timeout, write_queue
from stack.tcp.chrono import BUSY, RWND_LIMITED, SNDBUF_LIMITED, Chrono
from stack.tcp.config import PMTUDISC_SETS_DF, TcpConfig
from stack.tcp.congestion.base import INFINITE_SSTHRESH
from stack.tcp.counters import Counters
from stack.tcp.ecn import ECT0, Ecn
from stack.tcp.errors import LocalProtocolError
from stack.tcp.events import Closed, Connected, Reset, SendSpace, TimedOut
from stack.tcp.isn import initial_sequence_number
from stack.tcp.memory import MemoryBudget
from stack.tcp.mtu_probing import BLACK_HOLE_RETRIES, MtuProber, cwnd_after_probe
from stack.tcp.pacing import UNPACED_SEGMENTS, fq_rate
from stack.tcp.receiver import DEFAULT_MSS, Receiver
from stack.tcp.recovery import Recovery
from stack.tcp.reset import reset_for
from stack.tcp.rto import RtoEstimator, retries_time, ts_clock
from stack.tcp.scoreboard import SentSegment
from stack.tcp.segment_arrives import segment_arrives
from stack.tcp.sender import NO_WRITER_WAITS, WRITER_WAITS, WRITER_WAITS_SEGMENT_CAME, Sender
from stack.tcp.socket_extras import Extras
from stack.tcp.state import (
    OPEN_FOR_DATA,
    OPENING,
    SENDS_NO_ACK,
    UNSYNCHRONIZED,
    Event,
    State,
    Transition,
    next_state,
)
from stack.tcp.tcb import Tcb
from stack.tcp.tcp_info import sending_fields
from stack.tcp.tx_timestamps import TxTimestamps
from stack.wire.segment import NO_OPTIONS, Flags, Segment, TcpOptions
from stack.wire.seq import seq_add, seq_ge, seq_gt, seq_le, seq_lt, seq_sub

Address: TypeAlias = tuple[int, int]
# (globals: see state.py)
_CLOSED: Final = State.CLOSED
_LISTEN: Final = State.LISTEN
_SYN_RECEIVED: Final = State.SYN_RECEIVED
_ESTABLISHED: Final = State.ESTABLISHED
_TIME_WAIT: Final = State.TIME_WAIT
# frozen and fieldless events: one instance of each serves every connection (as receiver.py's DataAvailable)
_CONNECTED_EVENT: Final = Connected()
_SEND_SPACE_EVENT: Final = SendSpace()
_CLOSED_EVENT: Final = Closed()
RESOURCE_PROBE_INTERVAL: Final = 0.5  # Linux TCP_RESOURCE_PROBE_INTERVAL: a send refused locally is tried again
_NEVER: Final = float("-inf")  # the time of something that has not happened yet
_MIN_SND_MSS: Final = 48  # a floor for a tiny (or hostile) MSS option, as Linux's tcp_min_snd_mss
# the loss probe timeout beyond 2*SRTT with several segments in flight: Linux adds TCP_TIMEOUT_MIN where
# RFC 8985 §7.2 adds nothing; we follow Linux
PTO_SLACK: Final = timers.TIMEOUT_MIN
PTO_NO_RTT: Final = 1.0  # RFC 8985 §7.2 without an RTT sample (Linux TCP_TIMEOUT_INIT)
RENEGING_TIMEOUT_MIN: Final = 0.01  # the shortest wait before resending data SACKed and not ACKed (Linux)
# tcp_retries2 is a time: what that many doubling timeouts from 200 ms take, whatever this connection's own
# RTO (Linux retransmits_timed_out with TCP_RTO_MIN)
RETRIES_RTO_BASE: Final = 0.2


TransitionHook: TypeAlias = Callable[["Connection", Transition], None]


def receive_window_shift(config: TcpConfig) -> int:
    """Our window scale (RFC 7323 §2.3) as Linux chooses it (tcp_select_initial_window): room for the
    largest the receive buffer may become (tcp_rmem[2], at least net.core.rmem_max), or for the buffer
    SO_RCVBUF fixed."""
    space = max(max(config.receive_buffer, config.receive_buffer_max), rcv_space.RMEM_MAX)
    if config.receive_buffer_locked:
        space = min(space, config.receive_buffer)
    return rcv_space.window_shift(space)


def _cwnd_quota(window: int, flight: int) -> int:
    """Segments the congestion window of `window` packets, `flight` of them in flight, lets one packet hold
    now: what is left of it, at most half of it, so that two packets are in flight (Linux tcp_cwnd_test);
    0 or less when it is full."""
    return min(max(window >> 1, 1), window - flight)


class Connection:
    """A TCB and everything the RFC does with it. Build with `connect()` or `from_syn()`."""

    __slots__ = (
        "config",
        "local",
        "remote",
        "state",
        "tcb",
        "history",
        "on_transition",
        "counters",
        "timers",
        "rto",
        "cc",
        "passive",
        "short_edge",
        "finished",
        "_events",
        "_out",
        "_resends_from",
        "receiver",
        "sender",
        "_syn_options",
        "_retries",
        "retrans_stamp",
        "bytes_acked",
        "probe_stamp",
        "ecn",
        "chrono",
        "_keepalive_probes",
        "_challenge_window",
        "_last_oow_ack",
        "_last_heard",
        "_challenges_sent",
        "ts_ecr_seen",
        "_ts_offset",
        "recovery",
        "orphaned",
        "soft_error",
        "path_mtu",
        "extras",
        "probes_out",
        "mtu_probe",
        "released_info",
        "released_cc",
    )  # thousands of these: no instance dicts

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
        # the controller (cc) and loss recovery are made once the constructors know the ISS and the MSS
        self.passive = False  # came from LISTEN (an RST in SYN_RECEIVED returns there)
        self.finished = False  # the TCB may be deleted (CLOSED, or a child back in LISTEN)
        self._events: list[events.Event] = []  # a list: a deque costs 760 bytes per idle connection
        self._out: list[Segment] = []
        self._resends_from = -1  # the index in _out of this batch's first resend, -1 for none
        self.receiver = Receiver(config, self.tcb, self.timers, self._events)
        # the sending side (sender, recovery, cc, chrono) is None in an orphan in TIME_WAIT: release_sending_side
        self.sender = Sender(self.timers, config.timer_slack)
        self.sender.sndbuf = config.send_buffer
        self.short_edge: int | None = None  # the peer's right edge after it shrank below SND.MAX (§3.8.6)
        self._syn_options = NO_OPTIONS
        self._retries = 0
        # when the first retransmission went, or a SYN was first sent (Linux retrans_stamp); None outside an episode
        self.retrans_stamp: float | None = None
        self.bytes_acked = 0  # how far SND.UNA advanced, SYN and FIN included, never wrapping
        self.probe_stamp: float | None = None  # when the first zero-window probe of a stall went (Linux probes_tstamp)
        self.ecn = Ecn()
        self.chrono = Chrono()  # busy, receive-window-limited and send-buffer-limited time (tcp_info)
        self._keepalive_probes = 0  # unanswered keepalive probes
        self._challenge_window = -1.0  # start of the current one-second challenge-ACK window
        self._last_oow_ack = _NEVER  # when we last answered an unacceptable segment (rate limit)
        self._last_heard = now  # when the peer last sent us anything
        self._challenges_sent = 0
        self.ts_ecr_seen = 0  # TSecr of the segment being processed, for RTT measurement
        self._ts_offset = (config.rng or random).getrandbits(32)  # per-connection timestamp offset, as Linux
        self.orphaned = False  # the application let go of the connection (detach)
        self.soft_error = 0  # errno of the last ICMP soft error (Linux sk_err_soft); see icmp_input.py
        self.path_mtu = 0  # the path MTU an ICMP error taught (RFC 1191, RFC 8201); 0: the link's
        # zero-window and keepalive probes sent since the peer last acknowledged anything (Linux
        # icsk_probes_out, tcpi_probes): an ACK that is not older than SND.UNA says it is alive
        self.probes_out = 0
        self.extras: Extras | None = None  # timestamping and urgent data, once used (socket_extras.py)
        self.mtu_probe: MtuProber | None = None  # packetization-layer path MTU discovery, when configured
        # what the sending side's parts held when an orphan in TIME_WAIT let them go (release_sending_side)
        self.released_info: dict[str, int] | None = None  # its TCP_INFO fields
        self.released_cc: tuple[str, int, int, float | None] | None = None  # controller, cwnd, ssthresh, pacing

    # ------------------------------------------------------------------ construction

    @classmethod
    def connect(
        cls, config: TcpConfig, local: Address, remote: Address, now: float, on_transition: TransitionHook | None = None
    ) -> Connection:
        """Active OPEN (RFC 9293 §3.10.1): choose an ISS, send SYN, enter SYN-SENT."""
        conn = cls(config, local, remote, now)
        conn.on_transition = on_transition
        conn.cc = conn._new_controller(config.mss)  # until the SYN,ACK tells the peer's MSS
        conn._init_send_sequence(initial_sequence_number(local, remote, now, config.rng))
        wscale = receive_window_shift(config) if config.window_scaling else None
        conn.tcb.rcv_wscale = wscale or 0
        conn._offer_syn_options(wscale, config.sack, config.timestamps)
        conn.receiver.owned = True
        conn.receiver.open_window(config.mss)  # the peer's timestamps are not known yet
        conn.enter(Event.ACTIVE_OPEN, now)
        conn.send_syn(now)
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
        iss: int | None = None,
    ) -> Connection:
        """A LISTEN child for an arriving SYN (RFC 9293 §3.10.7.2, third check): send SYN,ACK. `iss`: the
        ISN it must take (it replaces a connection in TIME_WAIT), else a new one (RFC 6528)."""
        conn = cls(config, local, remote, now)
        conn.on_transition = on_transition
        if iss is None:
            iss = initial_sequence_number(local, remote, now, config.rng)
        conn._take_peer_syn(syn, iss, now)
        conn.ecn.ok = (config.ecn or config.ecn_accept) and Ecn.setup_syn(syn)
        tcb = conn.tcb
        scaling = syn.options.wscale is not None and config.window_scaling
        conn._offer_syn_options(tcb.rcv_wscale if scaling else None, tcb.sack_ok, tcb.ts_ok)
        conn.enter(Event.SYN, now)
        conn.send_syn(now)
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
        conn._ts_offset = ts_offset
        conn._take_peer_syn(syn, iss, now)
        conn.tcb.snd_nxt = conn.tcb.snd_max = seq_add(iss, 1)  # the SYN,ACK is out
        conn.enter(Event.SYN_COOKIE, now)
        return conn

    def successor_iss(self) -> int:
        """The ISN of a new incarnation that ends this one's TIME_WAIT: beyond every sequence number this one
        used (RFC 1122 §4.2.2.13), by Linux's margin of a 64 KB window and 2 (tcp_timewait_state_process)."""
        return seq_add(self.tcb.snd_max, 65537) or 1  # (0 is taken to mean "none")

    def _take_peer_syn(self, syn: Segment, iss: int, now: float) -> None:
        """A listener's child takes the peer's SYN (RFC 9293 §3.10.7.2 third check): IRS and RCV.NXT, our ISS,
        the options both ends offered, the peer's window, and the window we open."""
        tcb = self.tcb
        tcb.irs = syn.seq
        tcb.rcv_nxt = seq_add(syn.seq, 1)
        self._negotiate_syn_options(syn.options)
        self.cc = self._new_controller(tcb.snd_mss)  # one controller, made for the MSS both ends agreed
        self._init_send_sequence(iss)
        self.enter(Event.PASSIVE_OPEN, now)  # whoever watches transitions sees a complete connection
        self.passive = True
        if syn.options.wscale is not None and self.config.window_scaling:
            tcb.rcv_wscale = receive_window_shift(self.config)
        self.update_send_window(syn.window, syn.seq, syn.ack, syn_segment=True)
        # Linux makes the socket from the final ACK (tcp_create_openreq_child): the largest window offered,
        # which bounds the segment size (write_queue.mss_cache), counts from that ACK's, not the SYN's
        tcb.max_snd_wnd = 0
        self.receiver.open_window(self.config.mss - (rcv_space.TIMESTAMP_OPTION if tcb.ts_ok else 0))

    def _offer_syn_options(self, wscale: int | None, sack: bool, timestamps: bool) -> None:
        """What our SYN or SYN,ACK offers besides our MSS; its TSval is stamped when it is sent."""
        self._syn_options = TcpOptions(self.config.mss, wscale, sack, (0, 0) if timestamps else None, ())

    def _init_send_sequence(self, iss: int) -> None:
        tcb = self.tcb
        tcb.iss = tcb.snd_una = tcb.snd_nxt = tcb.snd_max = iss
        self.sender.start(iss)
        self.recovery = self._new_recovery(seq_add(iss, 1))

    def _new_recovery(self, first_seq: int) -> Recovery:
        """Loss recovery for data from `first_seq` on: it shares the TCB, the timers and the controller."""
        recovery = Recovery(self.cc, self.tcb, self.timers, self.counters, first_seq, self.config.frto)
        recovery.ts_offset = self._ts_offset
        return recovery

    def apply_peer_syn_options(self, options: TcpOptions) -> None:
        """What the peer's SYN,ACK offered, against what we offer; the controller counts in the MSS agreed."""
        self._negotiate_syn_options(options)
        self._attach_congestion()

    def _negotiate_syn_options(self, options: TcpOptions) -> None:
        """What the peer's SYN (or SYN,ACK) offered, against what we offer: MSS, SACK, timestamps, scaling."""
        tcb = self.tcb
        receiver = self.receiver
        tcb.snd_mss = min(options.mss if options.mss else DEFAULT_MSS, min(self.config.mss, self.path_mss))
        tcb.sack_ok = self.config.sack and options.sack_permitted
        timestamps = options.timestamps
        tcb.ts_ok = self.config.timestamps and timestamps is not None
        if tcb.ts_ok and timestamps is not None:
            receiver.ts_recent = timestamps[0]
            tcb.snd_mss -= 12  # room for the 12 bytes of NOP,NOP,TS on every segment, as Linux
        tcb.snd_mss = max(tcb.snd_mss, _MIN_SND_MSS)
        config = self.config
        if config.mtu_probing:
            self.mtu_probe = MtuProber(
                config.mtu_probing, config.base_mss, config.mtu_probe_threshold, config.mtu_probe_interval
            )
            self.mtu_probe.mss_clamp = options.mss if options.mss else DEFAULT_MSS
        if options.wscale is not None and self.config.window_scaling:
            tcb.snd_wscale = min(options.wscale, 14)  # RFC 7323 §2.3
        else:
            tcb.snd_wscale = tcb.rcv_wscale = 0

    def _attach_congestion(self) -> None:
        self.cc = self.recovery.cc = self._new_controller(self.tcb.snd_mss)

    def _new_controller(self, mss: int) -> congestion.Contained:
        config = self.config
        return congestion.attach(config.congestion, mss, config.initial_window_segments, config.rng, config.hystart)

    def use_path_mtu(self, mtu: int) -> None:
        """A new connection to a destination whose path MTU an ICMP error taught another one (Linux keeps
        it with the route): its segments fit that MTU (the MSS it offers, its config's, fits it too)."""
        self.path_mtu = mtu
        if self.state is State.SYN_RECEIVED:  # the peer's SYN set SND.MSS already; nothing was sent yet
            mss = self.path_mss - (12 if self.tcb.ts_ok else 0)
            if mss < self.tcb.snd_mss:
                self.tcb.snd_mss = max(mss, _MIN_SND_MSS)
                self._attach_congestion()

    def _headers(self) -> int:
        """IP and TCP headers and the options every segment carries: MTU = MSS + this (tcp_mss_to_mtu)."""
        return self._ip_tcp_headers() + (12 if self.tcb.ts_ok else 0)

    def _ip_tcp_headers(self) -> int:
        """The IP and TCP headers without options: IPv6 40 + 20, IPv4 20 + 20 (stack/wire/addr.py)."""
        return 60 if self.remote[0] > 0xFFFFFFFF else 40

    @property
    def mtu_cookie(self) -> int:
        """The path MTU the segment size was last fitted to (Linux icsk_pmtu_cookie)."""
        return self.path_mtu or self.path_mss + self._ip_tcp_headers()

    def route_mtu_changed(self, mtu: int) -> None:
        """The route to the peer was given a new MTU (`ip route change`). As Linux, an open connection
        notices at its next transmission (the socket's cached route is checked then) and fits its segments
        from the send after that (tcp_current_mss). Only a connection that probes its path MTU takes it."""
        if self.mtu_probe is not None:
            self.mtu_probe.route_mtu = (mtu, False)

    def sync_mss(self, mtu: int) -> None:
        """Fit the segment size to a path MTU (Linux tcp_sync_mss): the path, the peer's MSS and what MTU
        probing has proved to pass."""
        prober = self.mtu_probe
        if prober is None:
            return
        prober.path_mtu(mtu)
        options = 12 if self.tcb.ts_ok else 0
        mss = max(prober.clamp(min(mtu - prober.headers, prober.mss_clamp - options)), _MIN_SND_MSS)
        self.path_mtu = mtu
        self.tcb.snd_mss = mss
        self.cc.mss = mss

    def _mtu_probe_succeeded(self, mtu: int) -> None:
        """A probe of `mtu` was acknowledged: larger segments pass (RFC 4821 §7.5). The window keeps the
        bytes it held in segments of the new size, and ssthresh at least 3/4 of it (tcp_mtup_probe_success)."""
        cc = self.cc
        segments = cwnd_after_probe(cc.cwnd // self.tcb.snd_mss, self.tcb.snd_mss, self._headers(), mtu)
        self.counters.mtu_probe_successes += 1
        self.sync_mss(self.mtu_cookie)
        mss = self.tcb.snd_mss
        cc.cwnd = segments * mss
        if cc.ssthresh < INFINITE_SSTHRESH:
            cc.ssthresh = max(cc.ssthresh, ((segments >> 1) + (segments >> 2)) * mss)

    def _send_mtu_probe(self, now: float, mss: int, cwnd: int) -> bool:
        """One probe segment before the rest, when the search wants one (Linux tcp_mtu_probe): only in
        the open state (no recovery, ECN reduction or SACKed data) and with no SACK blocks to carry."""
        prober = self.mtu_probe
        recovery = self.recovery
        tcb = self.tcb
        if (
            prober is None
            or not prober.enabled
            or recovery.in_recovery
            or recovery.ecn_reducing
            or recovery.board.sacked_bytes
            or self.receiver.sack_option_bytes()
        ):
            return False
        unsent = self.sender.unsent(tcb.snd_nxt)
        in_flight = recovery.in_flight
        size = prober.size(now, mss, cwnd // tcb.snd_mss, in_flight, unsent, tcb.snd_wnd, recovery.reordering)
        if not size:
            return False
        self._send_data_segment(self.sender.buffer.offset(tcb.snd_nxt), size, False, now)
        prober.sent(tcb.snd_nxt, size)
        self.counters.mtu_probes += 1
        self.cc.cwnd = self.cc.cwnd - mss  # the probe stands for two segments (tcp_mtu_probe)
        return True

    @property
    def pacing_rate(self) -> float | None:
        """Bytes per second the packets leave at (`kept_pacing_rate`) when something paces them: the
        controller (BBR), a pacing qdisc (fq) or SO_MAX_PACING_RATE (Linux's internal pacing); else None."""
        config = self.config
        if self.cc.pacing_rate is None and not config.fq_pacing and config.max_pacing_rate is None:
            return None
        return self.kept_pacing_rate()

    def kept_pacing_rate(self) -> float | None:
        """Linux's sk_pacing_rate, whether or not anything paces by it: the controller's rate, else the
        window's (`window_pacing_rate`), at most SO_MAX_PACING_RATE, which alone sets it before the first
        RTT sample (sk_max_pacing_rate); None without either."""
        rate = self.cc.pacing_rate
        if rate is None:
            rate = self.window_pacing_rate()
        cap = self.config.max_pacing_rate
        if cap is not None and (rate is None or rate > cap):
            return cap
        return rate

    def window_pacing_rate(self) -> float | None:
        """The rate Linux keeps for a controller with none of its own (tcp_update_pacing_rate,
        pacing.fq_rate); None before the first RTT sample."""
        tcb, cc, config = self.tcb, self.cc, self.config
        in_flight = seq_sub(tcb.snd_nxt, tcb.snd_una)
        return fq_rate(cc.cwnd, cc.ssthresh, in_flight, self.rto.srtt, config.pacing_ss_ratio, config.pacing_ca_ratio)

    @property
    def path_mss(self) -> int:
        """The largest segment the path MTU carries (RFC 1191 §3, RFC 8201 §5.4), without options."""
        if not self.path_mtu:
            return self.config.mss
        return self.path_mtu - self._ip_tcp_headers()

    def set_congestion_control(self, name: str) -> None:
        """TCP_CONGESTION on an open connection (Linux tcp_set_congestion_control): the new controller
        (a registry name or package.module:Class; ValueError if unusable) goes on from the current
        cwnd and ssthresh."""
        if self.cc is None:  # (an orphan in TIME_WAIT has let its controller go)
            raise LocalProtocolError("connection closing")
        mss = self.tcb.snd_mss or self.config.mss
        config = self.config
        new = congestion.attach(name, mss, config.initial_window_segments, config.rng, config.hystart)
        new.cwnd, new.ssthresh = self.cc.cwnd, self.cc.ssthresh
        self.cc = self.recovery.cc = new
        self.config = replace(self.config, congestion=name)

    def renegotiate_syn_options(self, peer: TcpOptions) -> None:
        """Our SYN,ACK in a simultaneous open offers only what the peer's SYN offered too (RFC 7323 §1.3)."""
        ours = self._syn_options
        self._syn_options = TcpOptions(
            ours.mss,
            ours.wscale if peer.wscale is not None else None,
            self.tcb.sack_ok,
            (0, 0) if self.tcb.ts_ok else None,
            ours.sack_blocks,
        )

    # ------------------------------------------------------------------ state

    def enter(self, event: Event, now: float) -> None:
        """The one place the state changes: the new state is looked up in TRANSITIONS and recorded."""
        old = self.state
        new = next_state(old, event)
        t = Transition(old, new, event, now)
        if old in OPENING and (new is _CLOSED or new is _LISTEN):
            self.counters.attempt_fails += 1
        elif old in OPEN_FOR_DATA and new is _CLOSED:
            self.counters.estab_resets += 1
        self.state = new
        self.history.append(t)
        if self.on_transition is not None:
            self.on_transition(self, t)
        if new is _CLOSED:
            self.timers.stop_all()
            self.finished = True
            self._events.append(_CLOSED_EVENT)
        elif new is _TIME_WAIT:
            self.timers.stop_all()
            self.restart_time_wait(now)
            if self.orphaned:
                self.release_sending_side(now)
        elif new is _LISTEN and old is _SYN_RECEIVED:  # a passive child reset: its TCB goes
            self.timers.stop_all()
            self.finished = True
        elif new is _ESTABLISHED:
            self._syn_options = NO_OPTIONS  # our SYN is acknowledged: it is never sent again
            write_queue.expand_sndbuf(self)  # Linux tcp_init_buffer_space
            self._events.append(_CONNECTED_EVENT)
            self.receiver.last_data_rcv = now  # Linux starts tcpi_last_data_recv's clock here
            if self.mtu_probe is not None:  # Linux tcp_mtup_init, when the connection is set up
                self.mtu_probe.start(self.mtu_probe.mss_clamp, self._headers(), now)
            self.receiver.init_buffer_space()
            self.cc.established(self.rto.srtt)  # Linux tcp_init_transfer starts the controller here
            self.arm_keepalive(now)
            if self.sender.fin_queued:  # CLOSE came in SYN_RECEIVED with data queued (RFC 9293 §3.10.4)
                self.enter(Event.CLOSE, now)
        elif new is State.FIN_WAIT_2 and self.orphaned:
            self.timers.start(timers.FIN_WAIT_2, now + self.config.fin_timeout)

    def release_sending_side(self, now: float) -> None:
        """An orphan in TIME_WAIT only answers what arrives: everything of ours is acknowledged, nothing
        more is sent (RFC 9293 §3.10.7.4), and no application reads. The parts only sending needs (sender
        and send buffer, loss recovery with its scoreboard and RACK, the controller and its rate sampler,
        the chronographs) go, as Linux swaps the socket for a small timewait one (tcp_time_wait): a server
        that closes first holds one for every connection for 2*MSL, each walked by Python's garbage
        collector. TCP_INFO and netstat's `-i` go on showing what they held."""
        if self.cc is None:
            return
        self.released_info = sending_fields(self, now)
        self.released_cc = self.controller_state
        # (typed as always there: nothing reads them again, sending is over)
        self.sender = self.recovery = self.cc = self.chrono = None  # type: ignore[assignment]

    @property
    def controller_state(self) -> tuple[str, int, int, float | None]:
        """The controller's name, cwnd, ssthresh and pacing rate (netstat's `-i`): what they were when an orphan
        in TIME_WAIT let the controller go."""
        cc = self.cc
        return (cc.name, cc.cwnd, cc.ssthresh, cc.pacing_rate) if cc is not None else self.released_cc

    def restart_time_wait(self, now: float) -> None:
        """TIME-WAIT lasts 2*MSL from entering it, and again from each retransmitted FIN (RFC 9293 §3.4.2,
        §3.10.7.4 eighth check)."""
        self.timers.start(timers.TIME_WAIT, now + 2 * self.config.msl)

    # ------------------------------------------------------------------ user calls (§3.10.1-5)

    @property
    def send_space(self) -> int:
        """Bytes a write could still queue now (0: it would wait), as write_queue.py counts them."""
        return write_queue.send_space(self) if self.sender is not None else 0  # (None: an orphan in TIME_WAIT)

    @property
    def send_queue_bytes(self) -> int:
        return len(self.sender.buffer) if self.sender is not None else 0

    @property
    def recv_queue_bytes(self) -> int:
        return len(self.receiver)

    @property
    def memory(self) -> MemoryBudget | None:
        """The stack's memory budget (stack/tcp/memory.py), set by the demux; the receiver consults it."""
        return self.receiver.memory

    @memory.setter
    def memory(self, budget: MemoryBudget | None) -> None:
        self.receiver.memory = budget

    @property
    def held_bytes(self) -> int:
        """What the stack's memory budget is charged for: received, out-of-order and queued bytes."""
        receiver = self.receiver
        return len(receiver) + receiver.bytes_held + self.send_queue_bytes

    @property
    def at_eof(self) -> bool:
        """The peer's FIN arrived and every byte before it was read."""
        return self.receiver.at_eof

    @property
    def sack_ok(self) -> bool:
        """Both SYNs carried SACK-permitted (RFC 2018 §2)."""
        return self.tcb.sack_ok

    @property
    def ts_ok(self) -> bool:
        """Both SYNs carried timestamps (RFC 7323 §3.2)."""
        return self.tcb.ts_ok

    @property
    def ts_recent(self) -> int:
        """TS.Recent, the peer's timestamp we echo (RFC 7323 §4.3)."""
        return self.receiver.ts_recent

    def send(
        self,
        data: bytes | bytearray | memoryview,
        now: float,
        more: bool = False,
        eor: bool = False,
        urgent: bool = False,
    ) -> int:
        """SEND (§3.10.2): queue up to send_space bytes; returns how many were taken. `more`: more follows
        soon (MSG_MORE), `eor`: the data ends a record (MSG_EOR), `urgent`: its last byte is urgent
        (MSG_OOB; RFC 9293 §3.8.5: SND.UP is set after it, as Linux's tcp_mark_urg does at the write's end)."""
        n = user_calls.send(self, data, now, more, eor)
        if n and urgent:
            buf = self.sender.buffer
            self.snd_up = seq_add(buf.seq, len(buf))
        if n and self.extras is not None and self.extras.tx_stamps is not None:
            buf = self.sender.buffer
            self.extras.tx_stamps.wrote(seq_add(buf.seq, len(buf) - 1))  # the write's last byte (tcp_tx_timestamp)
        return n

    def _extras(self) -> Extras:
        if self.extras is None:
            self.extras = Extras()
        return self.extras

    @property
    def tx_stamps(self) -> TxTimestamps | None:
        return None if self.extras is None else self.extras.tx_stamps

    @property
    def urgent(self) -> urgent.Urgent | None:
        return None if self.extras is None else self.extras.urgent

    @urgent.setter
    def urgent(self, value: urgent.Urgent | None) -> None:
        self._extras().urgent = value

    @property
    def snd_up(self) -> int | None:
        return None if self.extras is None else self.extras.snd_up

    @snd_up.setter
    def snd_up(self, value: int | None) -> None:
        self._extras().snd_up = value

    def set_tx_timestamping(self, flags: int) -> None:
        """SO_TIMESTAMPING's transmit part (tx_timestamps.py)."""
        extras = self._extras()
        if extras.tx_stamps is None:
            extras.tx_stamps = TxTimestamps()
        extras.tx_stamps.set_flags(flags, self.tcb.snd_una)

    def read(self, max_bytes: int = -1) -> bytes:
        """RECEIVE (§3.10.3): take up to max_bytes in-order bytes (all with -1)."""
        return user_calls.receive(self, max_bytes)

    def discard_unread(self) -> None:
        """Drop the in-order bytes nobody will read (the application closed for reading)."""
        user_calls.discard_unread(self)

    def peek(self, max_bytes: int) -> bytes:
        """Up to max_bytes in-order bytes without taking them (MSG_PEEK): the window does not move."""
        return self.receiver.peek(max_bytes)

    def close(self, now: float) -> None:
        """CLOSE (§3.10.4): a FIN follows the queued data; receiving goes on (half-close)."""
        user_calls.close(self, now)

    def detach(self, now: float) -> None:
        """The application dropped the connection: FIN_WAIT_2 is then bounded by config.fin_timeout."""
        user_calls.detach(self, now)

    def abort(self, now: float) -> None:
        """ABORT (§3.10.5): RST if the peer has a TCB, discard queued data, CLOSED."""
        user_calls.abort(self, now)

    def abort_by_application(self, now: float) -> None:
        """ABORT from the application: as abort(), but a connection in TIME_WAIT only loses its application,
        as Linux's does."""
        user_calls.abort_by_application(self, now)

    # ------------------------------------------------------------------ outputs

    def next_event(self) -> events.Event | None:
        return self._events.pop(0) if self._events else None

    @property
    def events_pending(self) -> bool:
        """Events wait to be taken (segments_to_send too may add one: a writer may go on)."""
        return bool(self._events)

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    @property
    def retransmits(self) -> int:
        """Retransmissions since the last forward progress (Linux icsk_retransmits, netstat's timer column)."""
        return self._retries

    def watch_timers(self, observer: timers.TimerObserver) -> None:
        """Report every timer set, fired and cancelled to `observer` from now on (the `--trace` event log)."""
        observed = timers.ObservedTimers.watching(self.timers, observer)
        self.timers = self.receiver.timers = observed
        if self.sender is not None:  # (an orphan in TIME_WAIT has let go of its sending side)
            self.sender.timers = self.recovery.timers = observed

    def running_timer(self, now: float) -> tuple[str, float] | None:
        """The first running timer as netstat names it, and seconds left."""
        for name, deadline in self.timers.items():
            if name != timers.DELAYED_ACK and name != timers.COMPRESSED_ACK:  # (Linux's /proc shows neither)
                return timers.NETSTAT_NAMES[name], max(0.0, deadline - now)
        return None

    def push(self, now: float, one: bool = False) -> None:
        """Send what the windows allow now, in the middle of a user call (Linux __tcp_push_pending_frames,
        or with `one` tcp_push_one, whose packet never waits for an ACK: tso_defer); the segments are
        handed out with the others by segments_to_send."""
        if self.state in OPEN_FOR_DATA:
            self._output_data(now, one)

    def send_ack(self, now: float) -> None:
        """A pure ACK now, in the middle of taking a segment in (Linux tcp_send_ack), ahead of what the
        segment makes us send."""
        if self.state not in SENDS_NO_ACK:
            self._emit(now, Flags.ACK, self.acceptable_seq())

    def segments_to_send(self, now: float) -> list[Segment]:
        sender = self.sender  # (None: an orphan in TIME_WAIT, release_sending_side)
        sending = sender is not None
        if sender is not None and self.state not in UNSYNCHRONIZED:
            self._output_data(now)
            if sender.space_wanted == WRITER_WAITS_SEGMENT_CAME:  # (no new data went: Linux asks after the push)
                self._check_space(sender, now)
        if self.receiver.ack_now and self.state not in SENDS_NO_ACK:
            self._emit(now, Flags.ACK, self.acceptable_seq())
        if sending:
            self._arm_loss_probe(now)
        if self._resends_from >= 0:
            if len(self._out) - self._resends_from > 1:  # several resends: some may go as one packet
                self._push_resent_packets(self._resends_from)
            self._resends_from = -1
        out, self._out = self._out, []
        if self.config.qdisc_drops:
            return []  # the device's queue took none of them (a qdisc of no room: each send fails locally)
        self.counters.segs_out += len(out)
        return out

    # ------------------------------------------------------------------ timers

    def handle_timer(self, now: float) -> None:
        for name in self.timers.expired(now):
            if self.timers.running(name):
                continue  # an earlier handler of this batch started it again (a probe restarts the RTO)
            if name == timers.RETRANSMIT:
                self._on_retransmit_timeout(now)
            elif name == timers.DELAYED_ACK:
                self.receiver.on_delayed_ack_timeout()
            elif name == timers.COMPRESSED_ACK:
                self.receiver.on_compressed_ack_timeout()
            elif name == timers.PERSIST:
                self._on_persist_timeout(now)
            elif name == timers.LOSS_PROBE:
                self._on_loss_probe(now)
            elif name == timers.RACK_REORDER:
                if self.recovery.on_reorder_timeout(now, self.rto.srtt):
                    self.window_reduced()
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
        # an active open's first timeouts are linear (Linux tcp_syn_linear_timeouts): more retries, no backoff
        linear = self.config.syn_linear_timeouts if self.state is State.SYN_SENT else 0
        if self.state in OPENING:
            limit = self.config.syn_retries + linear if self.state is State.SYN_SENT else self.config.synack_retries
        else:
            limit = self._retries_limit()
        # a peer that keeps answering with a zero window is alive: our retransmissions are its window
        # probes, which must go on as long as it answers (§3.8.6.1); only a peer that missed a probe (silent
        # for longer than one MAX_RTO interval, with slack) goes (Linux tcp_retransmit_timer, "receiver
        # dastardly shrinks window"; an orphan is not spared)
        probing = (
            self.state.synchronized
            and self.tcb.snd_wnd == 0
            and not self.orphaned
            and now - self._last_heard < 1.5 * self.config.max_rto
        )
        # the SYN (or our SYN,ACK, still unacknowledged after CLOSE in SYN_RECEIVED) is what goes again
        syn_first = self.state in OPENING or self.tcb.snd_una == self.tcb.iss
        if self.retrans_stamp is None:
            # the time of the first retransmission, this one (Linux tcp_retransmit_skb); a SYN's is when
            # the SYN was first sent (tcp_connect)
            head = self.recovery.board.first()
            if syn_first:
                self.retrans_stamp = head.xmit_ts if head is not None else now - self.rto.rto
            else:
                self.retrans_stamp = now
        if user_timeout.set_for(self):
            expired = user_timeout.expired(self, now, probing)  # it replaces the count of retries (Linux)
        elif not syn_first:
            # the time tcp_retries2 timeouts would take, from the first retransmission of the episode, once
            # a timeout has come since the last progress (Linux tcp_write_timeout, retransmits_timed_out)
            budget = retries_time(limit, RETRIES_RTO_BASE, self.config.max_rto)
            expired = self._retries > 0 and not probing and now - self.retrans_stamp >= budget - user_timeout.SLACK
        else:
            expired = self._retries >= limit and not probing
            if linear and not expired:
                # the linear timeouts add retries, not time: an active open also ends when syn_retries
                # doubling timeouts would have (Linux tcp_write_timeout, retransmits_timed_out)
                budget = retries_time(self.config.syn_retries, self.config.initial_rto, self.config.max_rto)
                expired = now - self.retrans_stamp >= budget
        if expired:
            self._events.append(TimedOut())  # no RST: the peer is presumed gone (Linux tcp_write_err)
            self.enter(Event.RETRANSMIT_TIMEOUT, now)
            return
        if not probing:
            self._retries += 1
            if self.mtu_probe is not None and self._retries > BLACK_HOLE_RETRIES and self.state.synchronized:
                self._suspect_black_hole(now)
        self.counters.timeouts += 1
        if not linear or self._retries > linear:
            self.rto.on_timeout()
        self.sender.rtt_seq = None  # Karn: never time a retransmitted segment
        if syn_first:
            self.send_syn(now, retransmit=True)
        else:
            self.recovery.on_timeout(now, repeated=self._retries > 1)
            self.window_reduced()
            self._output_data(now, timeout=True)
        self.timers.start(timers.RETRANSMIT, user_timeout.clamp(self, now + self.rto.rto))

    def _mtu_probe_lost(self, rec: SentSegment) -> bool:
        """The probe is to be resent: it was lost, so nothing that large passes (RFC 4821 §7.6, Linux
        tcp_mtup_probe_failed). It goes again in pieces of the current size (tcp_simple_retransmit)."""
        prober = self.mtu_probe
        assert prober is not None  # (called only while probing)
        recovery = self.recovery
        if not prober.probe_mtu or seq_add(recovery.board.seq_of(rec.start), rec.length) != prober.probe_end:
            return False
        prober.lost()
        self.counters.mtu_probe_failures += 1
        recovery.mtu_reduced(self.tcb.snd_mss)
        return True

    def _suspect_black_hole(self, now: float) -> None:
        """Timeouts keep repeating: maybe large segments vanish without an ICMP message (RFC 4821 §7.7,
        Linux tcp_mtu_probing). Probing starts, or its floor halves; what is in flight is cut to the new
        size for the retransmissions."""
        prober = self.mtu_probe
        assert prober is not None  # (called only while probing)
        prober.black_hole(now)
        self.sync_mss(self.mtu_cookie)
        self.recovery.mtu_reduced(self.tcb.snd_mss)

    def _arm_loss_probe(self, now: float) -> None:
        """RFC 8985 §7.2 as Linux (tcp_schedule_loss_probe): a probe timeout after the last send of new data
        or ACK of it, never later than the RTO: a probe due when the RTO is goes out as a probe, without
        backoff. Only with SACK, and only while nothing is SACKed, lost or resent (Linux's Open state)."""
        recovery = self.recovery
        board = recovery.board
        rto_at = self.timers.deadline(timers.RETRANSMIT)
        if (
            not self.tcb.sack_ok
            or not self.config.loss_probes
            or not len(board)
            or recovery.tlp is not None
            or recovery.in_recovery
            or board.sacked_bytes
            or rto_at is None
            or not self.state.synchronized
        ):
            self.timers.stop(timers.LOSS_PROBE)
            return
        srtt = self.rto.srtt
        if srtt is None:
            pto = PTO_NO_RTT
        elif board.one_segment_out():  # a lone segment's ACK may be delayed (WCDelAckT: rto_min)
            pto = timers.in_jiffies(2 * srtt + self.config.min_rto)
        else:
            pto = timers.in_jiffies(2 * srtt + PTO_SLACK)
        deadline = min(self.sender.last_progress + pto, rto_at)
        if deadline <= now:
            # due already: the probe went, or could not (the window kept it back); another waits for an
            # ACK or new data, as Linux schedules probes only then (tcp_schedule_loss_probe)
            self.timers.stop(timers.LOSS_PROBE)
            return
        self.timers.start(timers.LOSS_PROBE, deadline)

    def _on_loss_probe(self, now: float) -> None:
        """RFC 8985 §7.3: send one new segment, or resend the last one, to draw a (SACK) ACK."""
        tcb = self.tcb
        last = self.recovery.board.last()
        if last is None or self.recovery.in_recovery:
            return
        sender = self.sender
        n = min(sender.unsent(tcb.snd_nxt), write_queue.mss_cache(tcb))
        if n > 0 and n <= tcb.snd_wnd - seq_sub(tcb.snd_nxt, tcb.snd_una):  # all of it fits (tcp_snd_wnd_test)
            self._send_data_segment(sender.buffer.offset(tcb.snd_nxt), n, False, now)
            self.recovery.probe_sent(tcb.snd_nxt, False)
            return
        # cut off its packet's skb first, as Linux's tcp_send_loss_probe, even if the window then keeps it
        sender.buffer.split(self.recovery.board.seq_of(last.start))
        last = self._resendable(last)
        if last is None:
            return  # the peer shrank its window below it (§3.8.6): the RTO goes on (Linux __tcp_retransmit_skb)
        self.retransmit(last, now, probe=True)  # resend the last segment (RFC 8985 §7.3)
        self.recovery.probe_sent(tcb.snd_nxt, True)
        self.timers.start(timers.RETRANSMIT, now + self.rto.rto)  # §7.3: re-arm the RTO after a probe

    def _on_persist_timeout(self, now: float) -> None:
        """Zero-window probe (RFC 9293 §3.8.6.1): elicit an ACK carrying the current window."""
        tcb = self.tcb
        sender = self.sender
        unsent = sender.unsent(tcb.snd_nxt)
        if unsent <= 0 or tcb.snd_nxt != tcb.snd_una:
            return
        if self.config.qdisc_drops:
            self._resource_probe(now)
            return
        if tcb.snd_wnd > 0:  # a window too small for SWS avoidance: the override timeout fired
            n = min(min(tcb.snd_wnd, write_queue.mss_cache(tcb)), unsent)
            # pushed, as Linux's window probe (tcp_write_wakeup) is
            self._send_data_segment(sender.buffer.offset(tcb.snd_nxt), n, False, now, push=True)
            return
        if self._probing_gave_up(now):
            return
        self._emit(now, Flags.ACK, seq_add(tcb.snd_una, -1))
        self.counters.window_probes += 1
        self.probes_out += 1
        if sender.persist_backoff < self.config.max_retries:  # it stops doubling there (Linux tcp_send_probe0)
            sender.persist_backoff += 1
        deadline = now + sender.persist_interval(self.rto.rto)
        self.timers.start(timers.PERSIST, user_timeout.clamp_probe(self, deadline))

    def _resource_probe(self, now: float) -> None:
        """Data waits and the local queue refuses every packet: try again every half second without
        backing off, as Linux does for a send that failed locally (tcp_send_probe0 with
        TCP_RESOURCE_PROBE_INTERVAL); the tries count as probes, and TCP_USER_TIMEOUT, counted from the
        first, ends the connection (tcp_probe_timer)."""
        if self._probing_gave_up(now):
            return
        self.probes_out += 1
        deadline = now + RESOURCE_PROBE_INTERVAL
        self.timers.start(timers.PERSIST, user_timeout.clamp_probe(self, deadline))

    def _retries_limit(self) -> int:
        """tcp_retries2, or for an orphan tcp_orphan_retries: 8 by default, while the RTO has not backed
        off to its maximum (Linux tcp_orphan_retries: more than 100 s from a 200 ms RTO)."""
        if not self.orphaned:
            return self.config.max_retries
        retries = self.config.orphan_retries
        if retries == 0 and self.rto.rto < self.config.max_rto:
            return 8
        return retries

    def _probing_gave_up(self, now: float) -> bool:
        """Before a probe: TCP_USER_TIMEOUT since the first one, or tcp_retries2 probes in a row that
        nothing answered, end the connection as a retransmission timeout does, without a RST (Linux
        tcp_probe_timer, tcp_write_err); True if it ended."""
        if self.probe_stamp is None:
            self.probe_stamp = now
            return False
        if user_timeout.probing_expired(self, now) or self.probes_out >= self._retries_limit():
            self._events.append(TimedOut())
            self.enter(Event.RETRANSMIT_TIMEOUT, now)
            return True
        return False

    # ------------------------------------------------------------------ output path

    def send_syn(self, now: float, retransmit: bool = False) -> None:
        """Our SYN (SYN-SENT) or SYN,ACK, first or again, with the options negotiated so far."""
        tcb = self.tcb
        flags = Flags.SYN if self.state is State.SYN_SENT else Flags.SYN | Flags.ACK
        if self.state is State.SYN_SENT and self.config.ecn and not retransmit:
            flags |= Flags.ECE | Flags.CWR  # an ECN-setup SYN; a retransmission goes without (as Linux)
        elif flags & Flags.ACK and self.ecn.ok:
            flags |= Flags.ECE  # an ECN-setup SYN,ACK (RFC 3168 §6.1.1)
        # the window field of a SYN is never scaled (RFC 7323 §2.2)
        window = min(tcb.rcv_wnd, 0xFFFF)
        ack = tcb.rcv_nxt if flags & Flags.ACK else 0
        options = self._syn_options
        if options.timestamps is not None:  # TSval now; TSecr only on a SYN,ACK (RFC 7323 §3.2)
            ts_ecr = self.receiver.ts_recent if flags & Flags.ACK else 0
            options = TcpOptions(
                options.mss, options.wscale, options.sack_permitted, (self.ts_val(now), ts_ecr), options.sack_blocks
            )
        config = self.config
        df = config.pmtu_discovery in PMTUDISC_SETS_DF
        self._out.append(
            Segment(self.local[1], self.remote[1], tcb.iss, ack, flags, window, b"", options, 0, 0, 0, config.tos, df)
        )
        if seq_lt(tcb.snd_max, seq_add(tcb.iss, 1)) or self.state in OPENING:
            tcb.snd_nxt = tcb.snd_max = seq_add(tcb.iss, 1)  # (a FIN sent after it stays: CLOSE in SYN_RECEIVED)
        if retransmit:
            self.counters.retrans_segs += 1
        else:
            self.sender.rtt_seq, self.sender.rtt_time = tcb.iss, now
        self.receiver.ack_now = False
        self.timers.start(timers.RETRANSMIT, now + self.rto.rto)

    def _output_data(self, now: float, push_one: bool = False, timeout: bool = False) -> None:
        """Send what the windows allow (RFC 5681 cwnd, peer's window), with Nagle and SWS avoidance, in
        Linux's GSO packets, each of which may wait for the next ACK (tso_defer; not the first with
        `push_one`). With `timeout` the first resend is the retransmission timer's own."""
        tcb = self.tcb
        sender = self.sender
        unsent = sender.unsent(tcb.snd_nxt)
        if unsent <= 0 and not sender.fin_queued and not self.recovery.board.lost_bytes:
            self._nothing_to_send(unsent)  # most calls (after an ACK, a read, a timer): no loop to run
            return
        if self.config.qdisc_drops:  # nothing can leave: the probe timer tries again (Linux tcp_check_probe_timer)
            if unsent > 0 and tcb.snd_nxt == tcb.snd_una and not self.timers.running(timers.PERSIST):
                self.timers.start(timers.PERSIST, now + max(self.rto.rto, self.config.min_rto))
            return
        prober = self.mtu_probe
        if prober is not None and prober.route_mtu is not None and prober.route_mtu[1]:
            mtu, prober.route_mtu = prober.route_mtu[0], None  # a changed route the last transmission noticed
            self.sync_mss(mtu)
        mss = write_queue.mss_now(self)
        buf = sender.buffer
        recovery = self.recovery
        # the congestion window, or what PRR allows in its place during a recovery, in packets
        # as Linux counts it (a segment shorter than the MSS takes a whole one's room), checked against
        # the packets in flight (tcp_cwnd_test)
        cwnd = self.cc.cwnd if recovery.send_window is None else recovery.send_window
        # (tcp_push_one's send never probes: Linux tcp_write_xmit calls tcp_mtu_probe only without push_one)
        if self.mtu_probe is not None and not push_one and self._send_mtu_probe(now, mss, cwnd):
            cwnd = self.cc.cwnd
        window = max(cwnd // tcb.snd_mss, 1)
        had_unsent = unsent > 0
        if had_unsent:
            self.chrono.start(BUSY, now)
        sent_up_to = tcb.snd_nxt
        first_out = len(self._out)  # this send's segments follow
        # lost segments go first (RFC 6675 §5 NextSeg rule 1), as far as the congestion window allows
        while (lost := recovery.next_lost()) is not None and recovery.in_flight < window:
            lost = self._resendable(lost)
            if lost is None:
                break
            if sender.paced(now, self.pacing_rate):
                return
            self.retransmit(lost, now)
            # Linux counts the resends of tcp_xmit_retransmit_queue by state, not the timer's own
            if timeout:
                timeout = False
            elif recovery.loss_high is None:
                self.counters.fast_retransmits += 1
            else:
                self.counters.slow_start_retransmits += 1
        flight_before = recovery.in_flight  # packets in flight before this send's new data
        marks = sender.marks
        cork = self.config.cork or marks.more
        packet_left = packet_sent = 0  # bytes the paced packet being sent has room for, and has
        paced = self.pacing_rate is not None
        if not paced and unsent > 0:  # (a paced packet grows its skb when it may leave, below)
            self._grow_skb(tcb.snd_nxt, mss, window, flight_before)
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
            urgent_mode = self.extras is not None and self.extras.snd_up is not None
            nodelay = self.config.nodelay or urgent_mode
            if n < mss and sender.holds_back(n, in_record, last, flight, tcb, nodelay, cork and not urgent_mode):
                break
            # one of Linux's GSO packets starts (an unpaced send of one segment at most has nothing to decide)
            later = tcb.snd_nxt != sent_up_to
            if packet_left <= 0 and seq_ge(tcb.snd_nxt, packet_at) and (paced or later or unsent > mss):
                if push_one and later:  # tcp_push_one sends one packet (tcp_write_xmit stops after it)
                    break
                if paced and sender.paced(now, self.pacing_rate):  # paced as a whole (Linux paces skbs)
                    if tcb.snd_nxt != sent_up_to:  # what went before the pacing wait counts for cwnd validation
                        self._cut_packets(sent_up_to, mss, window, flight_before, first_out, max_segs)
                        self.cc.window_used(tcb.snd_una, tcb.snd_nxt, False, recovery.in_flight * tcb.snd_mss)
                    return
                packets = recovery.in_flight
                max_segs = max_segs or write_queue.gso_segments(self, mss)
                if paced or later:  # (an unpaced send's first packet grew before the loop)
                    self._grow_skb(tcb.snd_nxt, mss, window, packets, max_segs * mss)
                if may_wait:
                    waits = tso_defer.decide(self, now, mss, window, packets, max_segs)
                    if waits:
                        break
                may_wait = True
                packet = self._packet_room(tcb.snd_nxt, mss, window, packets, max_segs * mss)
                if paced:
                    packet_left = packet
                else:
                    packet_at = seq_add(tcb.snd_nxt, packet)
            run = self._tso_run(mss, in_record, usable) if in_record >= 2 * mss else 1  # (a run is 2 or more)
            if packet_left > 0:
                run = min(run, packet_left // mss)  # no further than the paced packet
            elif not paced:
                run = min(run, seq_sub(packet_at, tcb.snd_nxt) // mss)  # nor the unpaced one
            if run > 1:
                n = run * mss
                self._send_data_run(offset, run, mss, now)
            else:
                fin = sender.fin_queued and n == unsent
                self._send_data_segment(offset, n, fin, now, pace=packet_left <= 0)
            if packet_left > 0:
                packet_left -= n
                packet_sent += n
                if packet_left <= 0:
                    self._pace(packet_sent, now)
                    packet_sent = 0
            if space_check and (packet_left <= 0 if paced else seq_ge(tcb.snd_nxt, packet_at)):
                # Linux asks after each packet of new data (tcp_event_new_data_sent); the first, with the
                # least in flight, decides whether the buffer grows, and later ones change no answer
                space_check = False
                self._check_space(sender, now)
        if packet_sent:  # a packet cut short by the windows, Nagle or the end of the data
            self._pace(packet_sent, now)
        if space_check and tcb.snd_nxt != sent_up_to:  # (the first packet, cut short)
            self._check_space(sender, now)
        if sender.fin_queued and sender.unsent(tcb.snd_nxt) == 0 and not sender.fin_in_flight(tcb.snd_nxt):
            self._send_data_segment(buf.offset(tcb.snd_nxt), 0, True, now)
        marks.push_once = False
        if seq_gt(tcb.snd_nxt, sent_up_to):
            self._cut_packets(sent_up_to, mss, window, flight_before, first_out, max_segs)
        if prober is not None and prober.route_mtu is not None and tcb.snd_nxt != sent_up_to:
            prober.route_mtu = (prober.route_mtu[0], True)
        unsent = sender.unsent(tcb.snd_nxt)
        if had_unsent:
            room = window - recovery.in_flight
            self._time_sending(now, unsent, mss, room, tcb.snd_nxt != sent_up_to, waits == tso_defer.RWND_LIMITED)
            # cwnd validation as Linux (tcp_write_xmit, tcp_cwnd_validate): was the window the limit?
            full = room <= 0 or waits == tso_defer.CWND_LIMITED
            if full or tcb.snd_nxt != sent_up_to:
                self.cc.window_used(tcb.snd_una, tcb.snd_nxt, full, recovery.in_flight * tcb.snd_mss)
        resending = self.recovery.in_recovery
        self.cc.sending_stopped(unsent, seq_sub(tcb.snd_nxt, tcb.snd_una), resending)  # app-limited?
        # data waiting, nothing in flight, the peer's window too small: probe it (§3.8.6.1)
        if unsent > 0 and tcb.snd_nxt == tcb.snd_una:
            if not self.timers.running(timers.PERSIST):
                sender.persist_backoff = 0
                self.probe_stamp = None
                self.timers.start(timers.PERSIST, now + sender.persist_interval(self.rto.rto))
        else:
            self.timers.stop(timers.PERSIST)

    def _collapse(self, rec: SentSegment, seq: int) -> bool:
        """A segment about to be resent that is shorter than an MSS and than the peer's window takes in
        the segments sent after it while the whole fits in both: each one segment, not SACKed, not after
        the end of a MSG_EOR record (Linux tcp_retrans_try_collapse). They become one segment on the
        scoreboard and one skb in the send buffer. Returns whether one taken in carried PSH (Linux ORs
        the flags of the skbs it joins); the last one's PSH is the resend's own."""
        tcb = self.tcb
        if rec.segments != 1:
            return False
        sender = self.sender
        board = self.recovery.board
        marks = sender.marks
        fin_end = seq_add(sender.fin_seq, 1) if sender.fin_seq is not None else None
        window_end = seq_add(tcb.snd_una, tcb.snd_wnd)
        room = seq_sub(window_end, seq)
        space = min(room if room > 0 else tcb.snd_mss, write_queue.mss_now(self))
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

    def _resendable(self, rec: SentSegment) -> SentSegment | None:
        """What of a segment may be resent inside the peer's window, which may have shrunk below what we
        sent (§3.8.6: resend "the old unacknowledged data between SND.UNA and SND.UNA+SND.WND"), as Linux's
        __tcp_retransmit_skb: all of it; its first part, cut off where the window ends inside it; nothing
        when it starts beyond the window, unless it is the first unacknowledged one: that probes a closed
        window whole."""
        tcb = self.tcb
        board = self.recovery.board
        seq = board.seq_of(rec.start)
        room = tcb.snd_wnd - seq_sub(seq, tcb.snd_una)
        if room <= 0:
            return rec if seq == tcb.snd_una else None
        if rec.length > room:
            board.cut(rec, room)  # the rest goes when the window moves on
        return rec

    def _cut_packets(self, start: int, mss: int, window: int, flight: int, first_out: int, max_segs: int) -> None:
        """What was just sent from `start` (segments from `first_out` in the output; `flight` packets were
        in flight before it) left as Linux's GSO packets of up to `max_segs` segments (the send's own
        tcp_tso_autosize, 0 if it did not need one), each its own skb: an skb is cut where a packet
        ends inside it (tso_fragment), so the send buffer counts the skbs Linux would. A packet holds at
        most half the window, so that two are in flight (tcp_cwnd_test); each grew its skb before it left
        (_output_data)."""
        buf = self.sender.buffer
        left = seq_sub(self.tcb.snd_nxt, start)  # bytes sent from start on
        if left <= mss:  # one segment at most (a short reply): no packet of several, only the skb cut at its end
            buf.split(self.tcb.snd_nxt)
            return
        packet = (max_segs or write_queue.gso_segments(self, mss)) * mss
        pos = start
        packet_ends = set()
        while left > 0:
            room = self._packet_room(pos, mss, window, flight, packet)
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
            self._push_packet_ends(first_out, packet_ends)

    def _grow_skb(self, pos: int, mss: int, window: int, flight: int, packet: int = 0) -> None:
        """The skb at `pos`, if it is shorter than the packet that may leave now, takes bytes from the next
        one, all of it if they fit (Linux 6.10's tcp_grow_skb in tcp_write_xmit, so that the rest of an skb
        cut short by a window does not go out as a small packet), unless it ends a record. Its PSH mark, if
        any, goes with its end."""
        buf = self.sender.buffer
        skb_end = buf.skb_end(pos)
        if skb_end is None:
            return
        quota = _cwnd_quota(window, flight)
        if quota <= 0:  # no packet may leave: no growth either
            return
        if not packet:
            packet = write_queue.gso_segments(self, mss) * mss
        missing = min(quota * mss, packet) - ((skb_end - pos) & 0xFFFFFFFF)
        marks = self.sender.marks
        if missing <= 0 or marks.ends_record(skb_end):
            return
        grown = buf.grow(skb_end, missing)
        if grown is not None and marks.pushes(skb_end):
            marks.moved(skb_end, grown)

    def _packet_room(self, pos: int, mss: int, window: int, flight: int, packet: int = 0) -> int:
        """Bytes one GSO packet from `pos` holds (0: no data there): `packet` (else Linux's tcp_tso_autosize,
        write_queue.gso_segments), no more than half the window so that two are in flight
        (tcp_cwnd_test), never beyond the skb it starts in."""
        skb_end = self.sender.buffer.skb_end(pos)
        if skb_end is None:
            return 0
        if not packet:
            packet = write_queue.gso_segments(self, mss) * mss
        quota = max(_cwnd_quota(window, flight), 1) * mss
        return min(min(packet, quota), (skb_end - pos) & 0xFFFFFFFF)  # (the skb ends beyond pos)

    def _pace(self, length: int, now: float) -> None:
        """A packet of `length` data bytes left (Linux tcp_update_skb_after_send): once the connection's
        first ten segments are out, the next packet waits its time at the pacing rate."""
        rate = self.pacing_rate
        tcb = self.tcb
        if rate and seq_sub(tcb.snd_max, tcb.iss) > UNPACED_SEGMENTS * tcb.snd_mss:
            self.sender.pace(length, now, rate)

    def _push_resent_packets(self, first: int) -> None:
        """Resends go out as Linux's: a lost skb (a packet as first sent) again as one packet, whole or as
        much of it as the window lets go, up to a GSO packet's size; a packet of several segments carries
        PSH on its last one (__tcp_transmit_skb). The resends are among the output's segments from `first`
        on: one packet's segments follow each other in sequence, inside one skb."""
        out = self._out
        buf = self.sender.buffer
        most = write_queue.gso_segments(self, write_queue.mss_now(self))
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

    def _push_packet_ends(self, first_out: int, ends: set[int]) -> None:
        """A GSO packet of several segments carries PSH on its last one, as Linux forces it on every GSO
        packet (__tcp_transmit_skb) so that the receiver's GRO hands the packet up at once. One pass over
        this send's segments, newest first: an end inside a super-segment (which has its PSH) matches none."""
        out = self._out
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

    def _nothing_to_send(self, unsent: int) -> None:
        """What _output_data's full path ends with when nothing is queued, no FIN waits and nothing is lost:
        a send attempt that found no data (app-limited, RFC 9293 §3.8.6.1's probe not needed)."""
        tcb = self.tcb
        self.sender.marks.push_once = False
        self.cc.sending_stopped(unsent, seq_sub(tcb.snd_nxt, tcb.snd_una), self.recovery.in_recovery)
        self.timers.stop(timers.PERSIST)

    def _time_sending(self, now: float, unsent: int, mss: int, cwnd_room: int, sent: bool, rwnd_wait: bool) -> None:
        """Linux's chronographs after a send attempt (tcp_write_xmit, tcp_cwnd_validate), `cwnd_room` packets
        left in the congestion window: receive-window limited while the peer's window, not cwnd, keeps the
        next segment back (or a packet waits for it, `rwnd_wait`); send-buffer limited when all is sent,
        cwnd had room, and the application waits for buffer space."""
        tcb = self.tcb
        flight = seq_sub(tcb.snd_nxt, tcb.snd_una)
        if rwnd_wait or (unsent > 0 and cwnd_room > 0 and tcb.snd_wnd - flight < min(mss, unsent)):
            self.chrono.start(RWND_LIMITED, now)
        else:
            self.chrono.stop(RWND_LIMITED, now, unsent == 0 and flight == 0)
        cwnd_limited = cwnd_room <= 0
        if sent and not cwnd_limited and unsent == 0 and self.sender.space_wanted:
            if self.state in OPEN_FOR_DATA:
                self.chrono.start(SNDBUF_LIMITED, now)

    def window_shrunk(self, edge: int) -> None:
        """The peer's right window edge is left of SND.MAX (a zero or shrunk window, §3.8.6): it dropped
        what we sent beyond the edge. Remember the lowest such edge until the window opens again."""
        if self.short_edge is None or seq_lt(edge, self.short_edge):
            self.short_edge = edge

    def window_opened(self, now: float, ack: int) -> None:
        """The peer's window opened after being zero or shrunk below what we sent. Data sent beyond its
        edge was dropped: resend the first segment now, before new data and rather than when the
        (backed-off) retransmission timer fires (§3.8.6: "retransmit normally the old unacknowledged
        data"; the window update is the answer to our last probe, §3.8.6.1). Sending new data first
        would put it beyond a hole, where a receiver with a tiny buffer may hold it and close its window."""
        short, self.short_edge = self.short_edge, None
        board = self.recovery.board
        head = board.first_from(ack)  # not acked by it
        if head is None or head.sacked:
            return
        start = board.seq_of(head.start)
        dropped = short is not None and seq_ge(start, short)
        if self.rto.backoff == 0 and not dropped:
            return
        if dropped and short is not None:  # all of it beyond the edge is resent first: lost segments go before new data
            board.mark_lost_from(short)
        self.rto.reset_backoff()
        self.recovery.board.mark_lost(head)
        self.retransmit(self._resendable(head) or head, now)
        self.timers.start(timers.RETRANSMIT, now + self.rto.rto)

    def _tso_run(self, mss: int, unsent: int, usable: int) -> int:
        """How many full segments may leave as one super-segment that the device cuts back to MSS (TSO,
        `config.tso_max_bytes`): only on the plain path, where each piece is what the loop would send
        alone (no recovery, SACK option, CWR or FIN to place), else 1. A paced flow's run ends with its
        packet (the caller's limit)."""
        limit = self.config.tso_max_bytes // mss
        if (
            limit < 2
            or (self.extras is not None and self.extras.snd_up is not None)
            or self.recovery.in_recovery
            or self.ecn.cwr_pending
        ):
            return 1
        if self.receiver.sack_option_bytes():
            return 1
        run = min(limit, min(unsent, usable) // mss)
        if self.sender.fin_queued and run * mss == unsent:
            run -= 1  # the FIN goes with the last piece, which the plain path sends
        return run

    def _send_data_run(self, offset: int, run: int, mss: int, now: float) -> None:
        """`run` full segments as one Segment (its `gso` = mss): the device cuts it into exactly the segments
        the loop would have sent. The scoreboard, the controller and the rate sampler record the run once
        and know its segments, so a lost one is resent alone."""
        tcb = self.tcb
        sender = self.sender
        buf = sender.buffer
        seq = tcb.snd_nxt
        n = run * mss
        end = seq_add(seq, n)
        # a super-segment always ends with PSH, as Linux's GSO packets (__tcp_transmit_skb: it lets the
        # receiver's GRO hand the run up at once)
        flags = Flags.ACK | Flags.PSH
        self._emit(now, flags, seq, buf.take(offset, n), ECT0 if self.ecn.ok else 0, gso=mss)
        self.recovery.on_sent(seq, n, now, mss)
        self.counters.segs_out += run - 1  # segments_to_send counts the Segment once
        sender.last_progress = now
        tcb.snd_nxt = end
        if seq_gt(end, tcb.snd_max):
            tcb.snd_max = end
        self.timers.start_if_idle(timers.RETRANSMIT, now + self.rto.rto)  # RFC 6298 (5.1)

    def _send_data_segment(
        self, offset: int, n: int, fin: bool, now: float, push: bool = False, pace: bool = True
    ) -> None:
        """One segment of `n` bytes from `offset` (with the FIN when `fin`), paced as a packet of its own
        unless the caller paces the packet it belongs to."""
        tcb = self.tcb
        sender = self.sender
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
        if 0 < n < write_queue.mss_now(self):  # smaller than a full segment now (Nagle)
            sender.snd_sml = end
        ecn = 0
        if self.ecn.ok and n:  # new data only: never retransmissions or pure ACKs (RFC 3168 §6.1.5)
            ecn = ECT0
            if self.ecn.cwr_pending:
                flags |= Flags.CWR  # we reduced the window after an ECE (§6.1.2)
                self.ecn.cwr_pending = False
        self._emit(now, flags, seq, payload, ecn)
        self.recovery.on_sent(seq, length, now)
        sender.last_progress = now
        tcb.snd_nxt = end
        if seq_gt(end, tcb.snd_max):
            tcb.snd_max = end
        if pace and n:
            self._pace(n, now)
        self.timers.start_if_idle(timers.RETRANSMIT, now + self.rto.rto)  # RFC 6298 (5.1)

    def retransmit(self, rec: SentSegment, now: float, probe: bool = False) -> None:
        """Send one scoreboard record again, with the FIN (and PSH) it carried. The first retransmission of
        an episode, not a loss probe, starts the time that tcp_retries2 and TCP_USER_TIMEOUT measure (Linux
        tcp_retransmit_skb)."""
        if self.retrans_stamp is None and not probe:
            self.retrans_stamp = now
        if self.mtu_probe is not None and self._mtu_probe_lost(rec):
            rec = self.recovery.next_lost() or rec
        sender = self.sender
        buf = sender.buffer
        seq = self.recovery.board.seq_of(rec.start)
        pushed = self._collapse(rec, seq)
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
        if self._resends_from < 0:
            self._resends_from = len(self._out)  # where this batch's resends start (_push_resent_packets)
        self._emit(now, flags, seq, buf.take(offset, n))
        self.recovery.on_sent(seq, rec.length, now)
        if n:
            self._pace(n, now)
        self.counters.retrans_segs += 1
        if seq == self.tcb.snd_una and not probe and not self.timers.running(timers.RACK_REORDER):
            # the first segment outstanding went again: its timeout counts from now (Linux
            # tcp_xmit_retransmit_queue, unless RACK's timer holds the one timer Linux has)
            self.timers.start(timers.RETRANSMIT, now + self.rto.rto)
        else:
            self.timers.start_if_idle(timers.RETRANSMIT, now + self.rto.rto)

    def _emit(
        self,
        now: float,
        flags: int,
        seq: int,
        payload: bytes | memoryview = b"",
        ecn: int = 0,
        gso: int = 0,
    ) -> None:
        """Queue one segment carrying our current ACK, window and SACK blocks (with `gso`: a run of
        segments of that size, for a device that cuts it)."""
        tcb = self.tcb
        if self.ecn.ece_pending:
            flags |= Flags.ECE  # echo congestion until the peer's CWR (RFC 3168 §6.1.3)
        receiver = self.receiver
        window, sack = receiver.acknowledgment(now, payload)
        if tcb.ts_ok:
            ts_val = ts_clock(now, self._ts_offset)
            if sack:
                options = TcpOptions(None, None, False, (ts_val, receiver.ts_recent), sack)
            else:  # nearly every segment
                options = TcpOptions(None, None, False, (ts_val, receiver.ts_recent))
        else:
            options = TcpOptions(None, None, False, None, sack) if sack else NO_OPTIONS
        config = self.config
        df = config.pmtu_discovery in PMTUDISC_SETS_DF
        segment = Segment(
            self.local[1],
            self.remote[1],
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
        extras = self.extras
        if extras is not None and extras.snd_up is not None and seq_lt(seq, extras.snd_up):
            segment = self._mark_urgent(segment, seq, extras.snd_up)
        self._out.append(segment)
        if payload:  # every data segment (or run), new or resent, feeds the controller and the rate estimator
            self.cc.data_sent(seq, len(payload), seq_sub(tcb.snd_max, tcb.snd_una), now, gso)
            self.sender.data_sent_at = now
            if extras is not None and extras.tx_stamps is not None:
                extras.tx_stamps.sent(seq, len(payload), now)
        elif self.sender is not None:  # (an orphan in TIME_WAIT has let go of its sending side)
            self.sender.nondata_sent(now)

    def _mark_urgent(self, seg: Segment, seq: int, snd_up: int) -> Segment:
        """A segment that starts before SND.UP carries URG and the offset of SND.UP, the byte after the
        urgent data (RFC 9293 §3.8.5; Linux __tcp_transmit_skb), 0xFFFF when that is farther away and
        more will be sent before it."""
        offset = seq_sub(snd_up, seq)
        if offset < 0x10000:
            return seg.with_flags(seg.flags | Flags.URG, offset)
        if seq_gt(seq_add(seq, 0xFFFF), self.tcb.snd_nxt):
            return seg.with_flags(seg.flags | Flags.URG, 0xFFFF)
        return seg

    def ts_val(self, now: float) -> int:
        """Our timestamp clock: milliseconds plus a per-connection offset (RFC 7323 §5.4)."""
        return ts_clock(now, self._ts_offset)

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

    def emit_rst(self, seq: int, now: float) -> None:
        """A RST of ours, <SEQ=seq><CTL=RST,ACK> (ABORT, keepalive timeout). As Linux's
        (tcp_send_active_reset) it carries the timestamp option when the connection uses timestamps."""
        receiver = self.receiver
        options = TcpOptions(timestamps=(self.ts_val(now), receiver.ts_recent)) if self.tcb.ts_ok else NO_OPTIONS
        flags = Flags.RST | Flags.ACK
        rst = Segment(
            self.local[1],
            self.remote[1],
            seq,
            self.tcb.rcv_nxt,
            flags,
            0,
            options=options,
            tos=self.config.tos,
            df=self.config.pmtu_discovery in PMTUDISC_SETS_DF,
        )
        self._out.append(rst)
        self.counters.resets_out += 1

    def answer_with_reset(self, seg: Segment) -> None:
        """Answer this segment with the RST RFC 9293 §3.10.7 prescribes (nothing for a RST)."""
        rst = reset_for(seg)
        if rst is not None:
            self._out.append(rst)
            self.counters.resets_out += 1

    # ------------------------------------------------------------------ helpers for segment arrival

    def update_send_window(self, window: int, seq: int, ack: int, syn_segment: bool = False) -> None:
        """SND.WND, SND.WL1, SND.WL2 from a segment (§3.10.7.4 fifth check); a SYN's window is unscaled."""
        tcb = self.tcb
        tcb.snd_wnd = window if syn_segment else window << tcb.snd_wscale
        tcb.snd_wl1 = seq
        tcb.snd_wl2 = ack
        if tcb.snd_wnd > tcb.max_snd_wnd:
            tcb.max_snd_wnd = tcb.snd_wnd

    def on_reset(self, refused: bool, now: float) -> None:
        """A RST (or a hard ICMP error) ends the connection: refused if the handshake had not completed."""
        self._events.append(Reset(refused, self.state is State.CLOSE_WAIT))
        self.sender.buffer.clear()
        self.recovery.reset()
        self.enter(Event.REFUSED if refused else Event.RST, now)

    def _rtt_sample(self, ack: int, now: float) -> float | None:
        """What an ACK that moves SND.UNA to `ack` measures, as Linux's tcp_ack_update_rtt: every such ACK
        is timed (RFC 6298 §3 asks for one sample per RTT at least), from when the first segment it newly
        acknowledges was sent, unless it acknowledges one sent twice (Karn's rule); else from the
        earliest segment it newly SACKed; else from the timestamp it echoes (RFC 7323 §4.1)."""
        sender = self.sender
        if sender.rtt_seq is not None:  # our SYN, not on the scoreboard (and not resent)
            if seq_gt(ack, sender.rtt_seq):
                sender.rtt_seq = None
                return now - sender.rtt_time
        else:
            recovery = self.recovery
            sent_at = recovery.board.first_sent_below(ack)
            if sent_at is None:
                sent_at = recovery.sack_sent_at
            if sent_at is not None:
                return now - sent_at
        if self.tcb.ts_ok and self.ts_ecr_seen:
            rtt = ((ts_clock(now, self._ts_offset) - self.ts_ecr_seen) & 0xFFFFFFFF) / 1000
            if rtt < 60.0:
                return rtt
        return None

    def on_ack_advanced(self, ack: int, now: float) -> None:
        """SND.UNA < SEG.ACK <= SND.MAX (§3.10.7.4 fifth check): free acknowledged data."""
        tcb = self.tcb
        sender = self.sender
        acked = seq_sub(ack, tcb.snd_una)
        flight_before = seq_sub(tcb.snd_max, tcb.snd_una)
        sack_ok = self.tcb.sack_ok
        rtt = self._rtt_sample(ack, now)
        if rtt is not None:
            self.rto.on_sample(rtt, ack, tcb.snd_nxt)
        extras = self.extras
        if extras is not None:
            if extras.tx_stamps is not None:
                extras.tx_stamps.acked(tcb.snd_una, ack, now)
            if extras.snd_up is not None and seq_ge(ack, extras.snd_up):
                extras.snd_up = None  # the urgent data is acknowledged: urgent mode ends (Linux tcp_clean_rtx_queue)
        tcb.snd_una = ack
        self.bytes_acked += acked
        if seq_lt(tcb.snd_nxt, ack):
            tcb.snd_nxt = ack
        sender.marks.acked(ack)
        sender.buffer.ack(ack)
        if self._queues_empty():
            self.chrono.stop(BUSY, now, True)
        self._retries = 0
        sender.last_progress = now
        # the backoff stays until an RTT sample (above) collapses the RTO: RFC 6298 §5 (the note after
        # 5.7) and Linux (tcp_ack_update_rtt); without timestamps a retransmission's ACK gives none (Karn)
        # the window grows by what this ACK delivered (Linux tcp_cong_avoid with acked_sacked): SACKed bytes
        # were delivered when their SACK came; without SACK each duplicate ACK stood for one segment
        # (in bytes, and in segments for a window counted in packets, as Linux's)
        board = self.recovery.board
        packets = board.packets_below(ack)
        if sack_ok:
            # (and what its own SACK blocks newly delivered above it: Linux's acked_sacked)
            delivered = acked - board.sacked_below(ack) + self.recovery.newly_sacked
            packets += self.recovery.newly_sacked_packets
        elif packets:
            # one segment filled the hole, the duplicate ACKs counted the rest (Linux tcp_remove_reno_sacks)
            reno_sacked = self.recovery.reno_sacked
            delivered = max(acked - reno_sacked * tcb.snd_mss, min(acked, tcb.snd_mss))
            packets = max(packets - reno_sacked, 1)
        else:
            delivered = acked
        if self.mtu_probe is not None and (mtu := self.mtu_probe.acked(ack)):
            self._mtu_probe_succeeded(mtu)  # (before the window grows on this ACK, as Linux)
        if self.recovery.tlp is not None:
            # (before the window grows on this ACK, as Linux's tcp_process_tlp_ack runs before tcp_cong_control)
            if self.recovery.probe_acked(ack, flight_before, now):
                self.window_reduced()
        recovery = self.recovery
        # F-RTO's question: is there new data, and does the peer's window let it go? (Linux tcp_process_loss)
        if recovery.loss_high is not None and seq_gt(seq_add(ack, tcb.snd_wnd), tcb.snd_max):
            unsent = sender.unsent(tcb.snd_nxt)
        else:
            unsent = 0
        recovery.on_ack_advanced(ack, acked, self.ts_ecr_seen, unsent, self.retrans_stamp, now)
        # on_ack(AckSample) after the recovery's exits and before its entries: a recovery this ACK ends lets
        # it grow the window (Linux's tcp_cong_control after tcp_fastretrans_alert); one it starts takes
        # the growth back (Recovery.after_ack)
        recovery.cwnd_before_ack = self.cc.cwnd
        self.cc.ack_received(ack, delivered, packets, flight_before, now)
        if self.retrans_stamp is not None and not recovery.in_recovery and not recovery.board.retransmissions_out():
            # the episode is over: the next retransmission starts the time again (Linux
            # tcp_retrans_stamp_cleanup); until then partial ACKs do not
            self.retrans_stamp = None
        reduced_until = self.ecn.reduced_until
        if (
            reduced_until is not None
            and recovery.ecn_reducing
            and not recovery.in_recovery
            and seq_gt(ack, reduced_until)
        ):
            # data sent after the window an ECN reduction answered is acknowledged, so our CWR has reached
            # the receiver: the reduction ends, cwnd is ssthresh and grows again (RFC 3168 §6.1.2; Linux
            # holds CWR until something above high_seq is acknowledged, tcp_fastretrans_alert)
            self.cc.on_recovery_exit()
            recovery.end_ecn_reduction()
        if tcb.snd_una == tcb.snd_max:
            self.timers.stop(timers.RETRANSMIT)  # RFC 6298 (5.2)
        elif recovery.board.head_sacked():
            # the ACK stopped below data the receiver SACKed: it may have dropped it (reneging), so a
            # timeout soon resends it unless a later ACK covers it (Linux tcp_check_sack_reneging)
            wait = timers.in_jiffies((self.rto.srtt or 0.0) / 2)
            self.timers.start(timers.RETRANSMIT, now + max(wait, RENEGING_TIMEOUT_MIN))
        else:
            self.timers.start(timers.RETRANSMIT, now + self.rto.rto)  # RFC 6298 (5.3)

    def _check_space(self, sender: Sender, now: float) -> None:
        """A writer waits (Linux tcp_check_space, asked after each packet of new data sent and after the
        send attempt an arriving segment makes): the buffer may grow while the congestion window is not
        filled, and the writer wakes once a third of the buffer is free (tcp_new_space,
        sk_stream_write_space)."""
        if write_queue.should_expand(self):
            write_queue.expand_sndbuf(self)
        if write_queue.writeable(self):
            sender.space_wanted = NO_WRITER_WAITS
            self._events.append(_SEND_SPACE_EVENT)
            self.chrono.stop(SNDBUF_LIMITED, now, self._queues_empty())
        else:
            sender.space_wanted = WRITER_WAITS

    def _queues_empty(self) -> bool:
        """Nothing sent waits for its ACK and nothing waits to be sent (Linux tcp_rtx_and_write_queues_empty)."""
        tcb = self.tcb
        return tcb.snd_una == tcb.snd_max and self.sender.unsent(tcb.snd_nxt) == 0

    @property
    def fin_acked(self) -> bool:
        fin_seq = self.sender.fin_seq
        return fin_seq is not None and seq_gt(self.tcb.snd_una, fin_seq)

    def receive_segment(self, seg: Segment, now: float) -> None:
        self._last_heard = now
        sender = self.sender
        if sender is not None:  # what arrives pushes the queue without MSG_MORE (Linux tcp_data_snd_check)
            sender.marks.more = False
            if sender.space_wanted:  # and then asks whether a waiting writer may go on
                sender.space_wanted = WRITER_WAITS_SEGMENT_CAME
        self.counters.segs_in += 1
        rcv_nxt = self.tcb.rcv_nxt
        segment_arrives(self, seg, now)
        pending = self.extras is not None and self.extras.urgent is not None
        if (seg.flags & Flags.URG or pending) and self._acceptable_urgent(seg, rcv_nxt):
            urgent.segment_arrived(self, seg, rcv_nxt)
        if self.config.keepalive and not self.finished:
            self._keepalive_probes = 0
            self.arm_keepalive(now)

    def _acceptable_urgent(self, seg: Segment, rcv_nxt: int) -> bool:
        """A segment whose URG bit (or text) counts (§3.10.7.4 sixth check): synchronized, no RST, and
        starting within the window offered when it arrived."""
        if not self.state.synchronized or self.finished or seg.flags & Flags.RST:
            return False
        return seq_sub(seg.seq, rcv_nxt) <= max(self.tcb.rcv_wnd, 1) and seq_ge(seg.seq, seq_add(rcv_nxt, -0xFFFF))

    def on_ece(self, now: float, cwnd_before: int) -> None:
        """RFC 3168 §6.1.2: an ECE echo is congestion without loss: the controller reduces its window as for
        a loss, at most once per window of data and not during a recovery that has reduced it already.
        It reduces from `cwnd_before`, the window before the ACK that carried the ECE: that ACK does not
        grow it (Linux enters CWR before its window update, tcp_fastretrans_alert)."""
        tcb = self.tcb
        ecn = self.ecn
        if self.recovery.in_recovery or (ecn.reduced_until is not None and seq_le(tcb.snd_una, ecn.reduced_until)):
            return  # the receiver echoes ECE until our CWR, sent after that window, reaches it
        prior_cwnd = min(self.cc.cwnd, cwnd_before)
        self.cc.cwnd = prior_cwnd
        self.cc.reduce_for_ecn(seq_sub(tcb.snd_max, tcb.snd_una), now)
        self.recovery.enter_ecn_reduction(prior_cwnd)
        ecn.reduced_until = tcb.snd_max
        self.window_reduced()
        self.counters.ecn_reductions += 1

    def window_reduced(self) -> None:
        """The congestion window was reduced, for an ECE or a loss: with ECN the next new data carries CWR
        (RFC 3168 §6.1.2: "reduces its congestion window for any reason"; Linux tcp_ecn_queue_cwr)."""
        if self.ecn.ok:
            self.ecn.cwr_pending = True

    def may_answer_pure_ack(self, now: float) -> bool:
        """Answers to unacceptable segments without data are rate limited (Linux tcp_invalid_ratelimit):
        two ends whose ACKs fall outside each other's window would otherwise answer each other forever."""
        if self._answer_limited(now):
            self.counters.oow_acks_skipped += 1
            return False
        return True

    def challenge_ack(self, now: float) -> None:
        """RFC 5961 §7: challenge ACKs are rate limited, so they cannot be turned into an amplifier. First
        as every answer to an unacceptable segment, then to challenge_ack_limit a second (Linux
        tcp_send_challenge_ack: the per-socket limit, then the global one)."""
        if self._answer_limited(now):
            self.counters.challenge_acks_skipped += 1
            return
        if now - self._challenge_window >= 1.0:
            self._challenge_window = now
            self._challenges_sent = 0
        if self._challenges_sent < self.config.challenge_ack_limit:
            self._challenges_sent += 1
            self.counters.challenge_acks += 1
            self.receiver.ack_now = True
        else:
            self.counters.challenge_acks_skipped += 1

    def _answer_limited(self, now: float) -> bool:
        """At most one answer to unacceptable segments per invalid_ratelimit, challenge ACKs and ACKs to
        out-of-window segments together (Linux __tcp_oow_rate_limited, shared through last_oow_ack_time)."""
        if now - self._last_oow_ack < self.config.invalid_ratelimit:
            return True
        self._last_oow_ack = now
        return False

    # ------------------------------------------------------------------ keepalive (RFC 1122 §4.2.3.6)

    def arm_keepalive(self, now: float) -> None:
        """(Re)start the idle timer; called on every segment received and when SO_KEEPALIVE is set."""
        if self.config.keepalive and self.state in OPEN_FOR_DATA:
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
            self.emit_rst(self.acceptable_seq(), now)  # as Linux (tcp_keepalive_timer): the peer may still be there
            self.enter(Event.KEEPALIVE_TIMEOUT, now)
            return
        # a probe carries SEG.SEQ = SND.NXT - 1 so that the peer must answer with an ACK
        self._emit(now, Flags.ACK, seq_add(tcb.snd_una, -1))
        self._keepalive_probes += 1
        self.probes_out += 1
        self.counters.keepalive_probes += 1
        self.timers.start(timers.KEEPALIVE, now + self.config.keepalive_interval)
