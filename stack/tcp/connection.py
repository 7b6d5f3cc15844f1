"""One TCP connection, sans I/O: segments and `now` in; segments, events and deadlines out.

Input processing (RFC 9293 §3.10.7) lives in `segment_arrives.py`, the output path in `output.py` and the
timers' handlers in `timeouts.py`; this module holds the TCB, the state, the user calls (§3.10.1-5) and
what an ACK does to the sending side.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import Final, TypeAlias

from stack.tcp import (
    congestion,
    events,
    fast_open,
    output,
    rcv_space,
    timeouts,
    timers,
    urgent,
    user_calls,
    write_queue,
)
from stack.tcp.chrono import BUSY, SNDBUF_LIMITED, Chrono
from stack.tcp.config import TcpConfig
from stack.tcp.congestion.base import INFINITE_SSTHRESH
from stack.tcp.counters import Counters
from stack.tcp.ecn import Ecn
from stack.tcp.errors import LocalProtocolError
from stack.tcp.events import Closed, Connected, Reset, SendSpace, TimedOut, Unreachable
from stack.tcp.isn import initial_sequence_number
from stack.tcp.memory import MemoryBudget
from stack.tcp.mtu_probing import MtuProber, cwnd_after_probe
from stack.tcp.pacing import fq_rate
from stack.tcp.receiver import DEFAULT_MSS, Receiver
from stack.tcp.recovery import Recovery
from stack.tcp.rto import RtoEstimator, ts_clock
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
_FIN_WAIT_2: Final = State.FIN_WAIT_2
_TIME_WAIT: Final = State.TIME_WAIT
# frozen and fieldless events: one instance of each serves every connection (as receiver.py's DataAvailable)
_CONNECTED_EVENT: Final = Connected()
_SEND_SPACE_EVENT: Final = SendSpace()
_CLOSED_EVENT: Final = Closed()
_NEVER: Final = float("-inf")  # the time of something that has not happened yet
_MIN_SND_MSS: Final = 48  # a floor for a tiny (or hostile) MSS option, as Linux's tcp_min_snd_mss
RENEGING_TIMEOUT_MIN: Final = 0.01  # the shortest wait before resending data SACKed and not ACKed (Linux)


TransitionHook: TypeAlias = Callable[["Connection", Transition], None]


def receive_window_shift(config: TcpConfig) -> int:
    """Our window scale (RFC 7323 §2.3) as Linux chooses it (tcp_select_initial_window): room for the
    largest the receive buffer may become (tcp_rmem[2], at least net.core.rmem_max), or for the buffer
    SO_RCVBUF fixed."""
    space = max(max(config.receive_buffer, config.receive_buffer_max), rcv_space.RMEM_MAX)
    if config.receive_buffer_locked:
        space = min(space, config.receive_buffer)
    return rcv_space.window_shift(space)


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
        "out",
        "resends_from",
        "receiver",
        "sender",
        "syn_options",
        "retransmits",
        "retrans_stamp",
        "bytes_acked",
        "probe_stamp",
        "ecn",
        "chrono",
        "keepalive_probes",
        "_challenge_window",
        "_last_oow_ack",
        "last_heard",
        "_challenges_sent",
        "ts_ecr_seen",
        "ts_offset",
        "recovery",
        "orphaned",
        "soft_error",
        "path_mtu",
        "ip_options_bytes",
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
        self.out: list[Segment] = []
        self.resends_from = -1  # the index in out of this batch's first resend, -1 for none
        self.receiver = Receiver(config, self.tcb, self.timers, self._events)
        # the sending side (sender, recovery, cc, chrono) is None in an orphan in TIME_WAIT: release_sending_side
        self.sender = Sender(self.timers, config.timer_slack)
        self.sender.sndbuf = config.send_buffer
        self.short_edge: int | None = None  # the peer's right edge after it shrank below SND.MAX (§3.8.6)
        self.syn_options = NO_OPTIONS
        self.retransmits = 0  # since the last forward progress (Linux icsk_retransmits, netstat's timer column)
        # when the first retransmission went, or a SYN was first sent (Linux retrans_stamp); None outside an episode
        self.retrans_stamp: float | None = None
        self.bytes_acked = 0  # how far SND.UNA advanced, SYN and FIN included, never wrapping
        self.probe_stamp: float | None = None  # when the first zero-window probe of a stall went (Linux probes_tstamp)
        self.ecn = Ecn()
        self.chrono = Chrono()  # busy, receive-window-limited and send-buffer-limited time (tcp_info)
        self.keepalive_probes = 0  # unanswered keepalive probes
        self._challenge_window = -1.0  # start of the current one-second challenge-ACK window
        self._last_oow_ack = _NEVER  # when we last answered an unacceptable segment (rate limit)
        self.last_heard = now  # when the peer last sent us anything
        self._challenges_sent = 0
        self.ts_ecr_seen = 0  # TSecr of the segment being processed, for RTT measurement
        self.ts_offset = (config.rng or random).getrandbits(32)  # per-connection timestamp offset, as Linux
        self.orphaned = False  # the application let go of the connection (detach)
        self.soft_error = 0  # errno of the last ICMP soft error (Linux sk_err_soft); see icmp_input.py
        self.path_mtu = 0  # the path MTU an ICMP error taught (RFC 1191, RFC 8201); 0: the link's
        self.ip_options_bytes = 0  # IPv4 options every segment carries (carry_ip_options)
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
        output.send_syn(conn, now)
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
        takes_fast_open: bool = False,
        fast_open_reply: tuple[bytes, bool] | None = None,
    ) -> Connection:
        """A LISTEN child for an arriving SYN (RFC 9293 §3.10.7.2, third check): send SYN,ACK. `iss`: the
        ISN it must take (it replaces a connection in TIME_WAIT), else a new one (RFC 6528). With
        `takes_fast_open` the listener took the SYN's fast open (stack/tcp/fast_open.py): the child takes the
        SYN's data and is ready for its application at once; `fast_open_reply` is the cookie (and its
        option's form) the SYN,ACK hands out."""
        conn = cls(config, local, remote, now)
        conn.on_transition = on_transition
        if iss is None:
            iss = initial_sequence_number(local, remote, now, config.rng)
        conn._take_peer_syn(syn, iss, now)
        conn.ecn.ok = (config.ecn or config.ecn_accept) and Ecn.setup_syn(syn)
        tcb = conn.tcb
        scaling = syn.options.wscale is not None and config.window_scaling
        conn._offer_syn_options(tcb.rcv_wscale if scaling else None, tcb.sack_ok, tcb.ts_ok, fast_open_reply)
        conn.enter(Event.SYN, now)
        if takes_fast_open:
            conn._open_fast(syn, now)
        output.send_syn(conn, now)
        if takes_fast_open:  # its own numbers start after the SYN,ACK, as Linux's child's (snd_una = ISS + 1)
            tcb.snd_una = tcb.snd_nxt
        return conn

    def _open_fast(self, syn: Segment, now: float) -> None:
        """A fast open child (RFC 7413 §4.2.2, Linux tcp_fastopen_create_child): a full connection in
        SYN_RECEIVED that its application may take, read and write at once; the SYN's data is in its
        receive buffer (the SYN,ACK acknowledges it) and the transfer is set up as Linux's
        tcp_init_transfer sets it up there, not at ESTABLISHED."""
        extras = self._extras()
        extras.fast_open = fast_open.CHILD
        self.passive = False  # a full socket: a RST ends it, the application hears of it (tcp_reset)
        self._set_up_transfer(now)
        if syn.payload:
            self.receiver.take_syn_data(syn.payload, rcv_space.header_bytes(syn))
            extras.fast_open |= fast_open.SYN_DATA_ACKED

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
        conn.ts_offset = ts_offset
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

    def _offer_syn_options(
        self, wscale: int | None, sack: bool, timestamps: bool, fast_open_reply: tuple[bytes, bool] | None = None
    ) -> None:
        """What our SYN or SYN,ACK offers besides our MSS; its TSval is stamped when it is sent. A fast open
        cookie to hand out goes on the first SYN,ACK only (output.send_syn)."""
        cookie, exp = fast_open_reply if fast_open_reply is not None else (None, False)
        self.syn_options = TcpOptions(self.config.mss, wscale, sack, (0, 0) if timestamps else None, (), cookie, exp)

    def _init_send_sequence(self, iss: int) -> None:
        tcb = self.tcb
        tcb.iss = tcb.snd_una = tcb.snd_nxt = tcb.snd_max = iss
        self.sender.start(iss)
        self.recovery = self._new_recovery(seq_add(iss, 1))

    def _new_recovery(self, first_seq: int) -> Recovery:
        """Loss recovery for data from `first_seq` on: it shares the TCB, the timers and the controller."""
        recovery = Recovery(self.cc, self.tcb, self.timers, self.counters, first_seq, self.config.frto)
        recovery.ts_offset = self.ts_offset
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

    def carry_ip_options(self, size: int) -> None:
        """Every segment from now on carries `size` bytes of IPv4 options: a record route or timestamp
        option that the segment opening this passive connection asked to be sent back (RFC 1122 §4.2.3.8
        allows it; Linux sends them in every segment, its inet_opt). Segments shrink by as much (Linux's
        icsk_ext_hdr_len) and leave one by one, not as super-segments. Called as the connection is made,
        before it sends anything: the controller starts afresh with the smaller MSS."""
        self.ip_options_bytes = size
        self.tcb.snd_mss = max(self.tcb.snd_mss - size, _MIN_SND_MSS)
        self.config = self.receiver.config = replace(self.config, tso_max_bytes=0)
        self._attach_congestion()

    def header_bytes(self) -> int:
        """IP and TCP headers and the options every segment carries: MTU = MSS + this (tcp_mss_to_mtu)."""
        return self._ip_tcp_headers() + (rcv_space.TIMESTAMP_OPTION if self.tcb.ts_ok else 0)

    def _ip_tcp_headers(self) -> int:
        """The IP and TCP headers without TCP options: IPv6 40 + 20, IPv4 20 + 20 (stack/wire/addr.py), and
        the IPv4 options the connection carries."""
        return (60 if self.remote[0] > 0xFFFFFFFF else 40) + self.ip_options_bytes

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
        segments = cwnd_after_probe(cc.cwnd // self.tcb.snd_mss, self.tcb.snd_mss, self.header_bytes(), mtu)
        self.counters.events().mtu_probe_successes += 1
        self.sync_mss(self.mtu_cookie)
        mss = self.tcb.snd_mss
        cc.cwnd = segments * mss
        if cc.ssthresh < INFINITE_SSTHRESH:
            cc.ssthresh = max(cc.ssthresh, ((segments >> 1) + (segments >> 2)) * mss)

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
        ours = self.syn_options
        self.syn_options = TcpOptions(
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
            self.counters.events().attempt_fails += 1
        elif old in OPEN_FOR_DATA and new is _CLOSED:
            self.counters.events().estab_resets += 1
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
            self.syn_options = NO_OPTIONS  # our SYN is acknowledged: it is never sent again
            if not self.fast_open:  # (a fast open child was set up when it was made)
                self._set_up_transfer(now)
            timeouts.arm_keepalive(self, now)
            if self.sender.fin_queued:  # CLOSE came in SYN_RECEIVED with data queued (RFC 9293 §3.10.4)
                self.enter(Event.CLOSE, now)
        elif new is State.FIN_WAIT_2 and self.orphaned:
            self.timers.start(timers.FIN_WAIT_2, now + self.config.fin_timeout)

    def fast_open_synack_acked(self, now: float) -> None:
        """The ACK of a fast open child's SYN,ACK, which lies before its SND.UNA (Linux's child counts from
        ISS + 1, the SYN,ACK is its request's): the SYN,ACK's RTT sample (none if it was resent), and the
        retransmission timer restarted for what the child sent meanwhile (tcp_rcv_synrecv_state_fastopen)."""
        tcb, sender = self.tcb, self.sender
        if sender.rtt_seq is not None:
            sender.rtt_seq = None
            self.rto.on_sample(now - sender.rtt_time, tcb.snd_una, tcb.snd_nxt)
        self.retransmits = 0
        self.retrans_stamp = None
        if tcb.snd_max != tcb.snd_una:
            self.timers.start(timers.RETRANSMIT, now + self.rto.rto)
        else:
            self.timers.stop(timers.RETRANSMIT)

    def _set_up_transfer(self, now: float) -> None:
        """The connection is ready for its application (Linux tcp_init_transfer and what surrounds it)."""
        write_queue.expand_sndbuf(self)  # Linux tcp_init_buffer_space
        self._events.append(_CONNECTED_EVENT)
        self.receiver.last_data_rcv = now  # Linux starts tcpi_last_data_recv's clock here
        if self.mtu_probe is not None:  # Linux tcp_mtup_init, when the connection is set up
            self.mtu_probe.start(self.mtu_probe.mss_clamp, self.header_bytes(), now)
        self.receiver.init_buffer_space()
        self.cc.established(self.rto.srtt)  # Linux tcp_init_transfer starts the controller here

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

    def shutdown_receive(self) -> None:
        """shutdown(SHUT_RD): the application reads no more (Linux sets RCV_SHUTDOWN). Data keeps being
        acknowledged, but new data in FIN_WAIT_1 or FIN_WAIT_2 is answered by RST, as after close()."""
        self._extras().receive_shut = True

    @property
    def receive_shut(self) -> bool:
        """The application will read no more: it closed or let go of the connection, or shut reading."""
        return self.orphaned or (self.extras is not None and self.extras.receive_shut)

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
        if self.data_may_leave:
            output.output_data(self, now, one)

    @property
    def fast_open(self) -> int:
        """fast_open.CHILD for a fast open child (RFC 7413), which its application has, reads and sends
        before the handshake ends; with fast_open.SYN_DATA_ACKED its SYN,ACK acknowledged data."""
        return 0 if self.extras is None else self.extras.fast_open

    @property
    def data_may_leave(self) -> bool:
        """What SEND queued may be sent now: in ESTABLISHED and CLOSE_WAIT, or early (sends_early)."""
        return self.state in OPEN_FOR_DATA or self.sends_early

    @property
    def sends_early(self) -> bool:
        """A fast open child sends data in SYN_RECEIVED, after its SYN,ACK (Linux tcp_sendmsg_locked)."""
        return self.state is _SYN_RECEIVED and self.fast_open != 0

    def send_ack(self, now: float) -> None:
        """A pure ACK now, in the middle of taking a segment in (Linux tcp_send_ack), ahead of what the
        segment makes us send."""
        if self.state not in SENDS_NO_ACK:
            output.emit(self, now, Flags.ACK, self.acceptable_seq())

    def segments_to_send(self, now: float) -> list[Segment]:
        sender = self.sender  # (None: an orphan in TIME_WAIT, release_sending_side)
        sending = sender is not None
        if sender is not None and (self.state not in UNSYNCHRONIZED or self.sends_early):
            output.output_data(self, now)
            if sender.space_wanted == WRITER_WAITS_SEGMENT_CAME:  # (no new data went: Linux asks after the push)
                self.check_space(sender, now)
        if self.receiver.ack_now and self.state not in SENDS_NO_ACK:
            output.emit(self, now, Flags.ACK, self.acceptable_seq())
        if sending:
            timeouts.arm_loss_probe(self, now)
        if self.resends_from >= 0:
            if len(self.out) - self.resends_from > 1:  # several resends: some may go as one packet
                output.push_resent_packets(self, self.resends_from)
            self.resends_from = -1
        out, self.out = self.out, []
        if self.config.qdisc_drops:
            return []  # the device's queue took none of them (a qdisc of no room: each send fails locally)
        self.counters.segs_out += len(out)
        return out

    def handle_timer(self, now: float) -> None:
        """Run what the timers due by `now` do (timeouts.py)."""
        timeouts.handle_timer(self, now)

    def unreachable(self, error: int, now: float) -> None:
        """An ICMP error about our SYN or SYN,ACK ends the opening (Linux tcp_done_with_error: what was
        received stays readable); the application hears `error`."""
        self.soft_error = error
        self._events.append(Unreachable(error))
        self.sender.buffer.clear()
        self.recovery.reset()
        self.enter(Event.ICMP, now)

    def time_out(self, cause: Event, now: float) -> None:
        """The peer is presumed gone (no RST: Linux tcp_write_err): the application hears TimedOut."""
        self._events.append(TimedOut())
        self.enter(cause, now)

    # ------------------------------------------------------------------ the peer's window

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
        output.retransmit(self, output.resendable(self, head) or head, now)
        self.timers.start(timers.RETRANSMIT, now + self.rto.rto)

    def ts_val(self, now: float) -> int:
        """Our timestamp clock: milliseconds plus a per-connection offset (RFC 7323 §5.4)."""
        return ts_clock(now, self.ts_offset)

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
        """A RST ends the connection: refused if it ends an active open before its handshake completed (an
        ICMP error ends an opening through `unreachable`)."""
        self._events.append(Reset(refused, self.state is State.CLOSE_WAIT))
        self.sender.buffer.clear()
        self.recovery.reset()
        # (a fast open child in SYN_RECEIVED is reset, not refused, but ends as an active open's does)
        self.enter(Event.REFUSED if refused or self.state is _SYN_RECEIVED else Event.RST, now)

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
            rtt = ((ts_clock(now, self.ts_offset) - self.ts_ecr_seen) & 0xFFFFFFFF) / 1000
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
        self.retransmits = 0  # since the last forward progress (Linux icsk_retransmits, netstat's timer column)
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

    def check_space(self, sender: Sender, now: float) -> None:
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
        self.last_heard = now
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
            self.keepalive_probes = 0
            timeouts.arm_keepalive(self, now)

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
        self.counters.events().ecn_reductions += 1

    def window_reduced(self) -> None:
        """The congestion window was reduced, for an ECE or a loss: with ECN the next new data carries CWR
        (RFC 3168 §6.1.2: "reduces its congestion window for any reason"; Linux tcp_ecn_queue_cwr)."""
        if self.ecn.ok:
            self.ecn.cwr_pending = True

    def challenge_ack(self, now: float) -> None:
        """RFC 5961 §7: challenge ACKs are rate limited, so they cannot be turned into an amplifier. First
        as every answer to an unacceptable segment, then to challenge_ack_limit a second (Linux
        tcp_send_challenge_ack: the per-socket limit, then the global one)."""
        if self._answer_limited(now):
            self.counters.events().challenge_acks_skipped += 1
            return
        if now - self._challenge_window >= 1.0:
            self._challenge_window = now
            self._challenges_sent = 0
        if self._challenges_sent < self.config.challenge_ack_limit:
            self._challenges_sent += 1
            self.counters.events().challenge_acks += 1
            self.receiver.ack_now = True
        else:
            self.counters.events().challenge_acks_skipped += 1

    def may_answer(self, now: float, paws: bool = False) -> bool:
        """Whether an answer to an unacceptable segment without data may go now (Linux tcp_oow_rate_limited):
        two ends whose ACKs fall outside each other's window would otherwise answer each other forever.
        One held back is counted as Linux counts it: in TIME-WAIT, before a passive open completes (a
        SYN,ACK again for a retransmitted SYN too), in an orphaned FIN-WAIT-2, for a segment PAWS dropped
        (`paws`), or else."""
        if not self._answer_limited(now):
            return True
        events = self.counters.events()
        if self.state is _TIME_WAIT:
            events.time_wait_acks_skipped += 1  # (tcp_timewait_state_process)
        elif self.state is _SYN_RECEIVED and self.passive:
            events.syn_recv_acks_skipped += 1  # (tcp_check_req)
        elif self.state is _FIN_WAIT_2 and self.orphaned:
            events.fin_wait_2_acks_skipped += 1  # (the FIN_WAIT2 time-wait sock)
        elif paws:
            events.paws_acks_skipped += 1
        else:
            events.oow_acks_skipped += 1
        return False

    def challenge_syn(self, now: float) -> None:
        """A SYN on a synchronized connection, in the window or not (RFC 5961 §4.2), meets a challenge ACK
        (Linux counts each as TCPSYNChallenge; TIME-WAIT, as Linux's time-wait sock, challenges nothing)."""
        self.counters.events().syn_challenges += 1
        self.challenge_ack(now)

    def _answer_limited(self, now: float) -> bool:
        """At most one answer to unacceptable segments per invalid_ratelimit, challenge ACKs and ACKs to
        out-of-window segments together (Linux __tcp_oow_rate_limited, shared through last_oow_ack_time)."""
        if now - self._last_oow_ack < self.config.invalid_ratelimit:
            return True
        self._last_oow_ack = now
        return False
