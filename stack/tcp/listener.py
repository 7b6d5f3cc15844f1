"""A LISTEN socket: a child connection per SYN, bounded SYN and accept queues, SYN cookies (like Linux).

Overload follows Linux: a SYN that finds the SYN queue full is answered with a SYN cookie (RFC 4987
§3.6, `syncookies.py`) when `config.syncookies` is 1 (2: every SYN), else dropped; a SYN or a final ACK
that finds the accept queue full is dropped, so the peer retransmits. The counters use Linux's names.
"""

from __future__ import annotations

import errno
from collections import Counter, deque
from typing import Final, TypeAlias

from stack.tcp import fast_open, rcv_space, syncookies
from stack.tcp.config import PMTUDISC_SETS_DF, PathConfigs, TcpConfig
from stack.tcp.connection import Address, Connection, TransitionHook, receive_window_shift
from stack.tcp.reset import reset_for
from stack.tcp.state import Event, State, Transition, next_state
from stack.wire.segment import Flags, Segment, TcpOptions
from stack.wire.seq import seq_add

ListenerAnswer: TypeAlias = Connection | Segment | None  # a new child, a segment to answer with, or nothing (dropped)
SOMAXCONN: Final = 4096  # Linux's net.core.somaxconn


def fast_open_option(no_cookie: bool, value: int, connected: bool) -> int:
    """TCP_FASTOPEN's queue length (at most somaxconn) or, with `no_cookie`, TCP_FASTOPEN_NO_COOKIE's 0 or 1,
    as Linux's do_tcp_setsockopt takes them: on a socket without a connection only (OSError EINVAL)."""
    if connected or value < 0 or (no_cookie and value > 1):
        raise OSError(errno.EINVAL, "Invalid argument")
    return value if no_cookie else min(value, SOMAXCONN)


def listen_backlog(backlog: int, config: TcpConfig) -> int:
    """listen(2)'s backlog as Linux's __sys_listen takes it: one above somaxconn, or negative (compared as
    unsigned), is somaxconn; here that is Linux's default, or the configured backlog when larger."""
    limit = max(SOMAXCONN, config.backlog)
    return backlog if 0 <= backlog <= limit else limit


class Listener:
    def __init__(
        self,
        config: TcpConfig,
        local: Address,
        backlog: int | None = None,
        now: float = 0.0,
        *,
        cookie_secret: bytes | None = None,
        counters: Counter[str] | None = None,
        fast_open_key: fast_open.LazyKey | None = None,
    ) -> None:
        self.config = config
        self.path_configs = PathConfigs()  # for children over IPv6 or of the stack's own connections
        self.local = local  # the bound address may be a wildcard (stack/wire/addr.py): children get the SYN's
        self.state = State.CLOSED
        self.history: list[Transition] = []
        self.enter(Event.PASSIVE_OPEN, now)
        self.backlog = config.backlog if backlog is None else listen_backlog(backlog, config)
        # children not yet reported established to the owner: half-open ones, and ones whose final ACK
        # (or SYN cookie) arrived but whose Connected event the owner has not seen; it moves them on
        self.syn_queue: set[Connection] = set()
        self.accept_queue: deque[Connection] = deque()
        self.overflows = 0  # SYNs dropped because a queue was full
        self.counters: Counter[str] = Counter() if counters is None else counters  # the stack's, when given
        self.cookie_secret = syncookies.new_secret(config.rng) if cookie_secret is None else cookie_secret
        self._cookie_sent_at: float | None = None  # Linux's last_overflow: ACKs are checked as cookies after it
        # fast open (stack/tcp/fast_open.py): how many children in SYN_RECEIVED it may have at once (TCP_FASTOPEN's
        # queue length; 0: none, the listener takes no fast open), and the stack's key when none is configured
        self.fast_open_queue = 0
        if config.fast_open & fast_open.SERVER_WO_SOCKOPT1 and config.fast_open & fast_open.SERVER_ENABLE:
            self.fast_open_queue = min(self.backlog, SOMAXCONN)  # every listener (Linux inet_listen)
        self.fast_open_no_cookie = False  # TCP_FASTOPEN_NO_COOKIE: data in a SYN taken without a cookie
        self.fast_open_key = fast_open_key if fast_open_key is not None else fast_open.LazyKey(config.rng)
        self._fast_open_children: set[Connection] = set()

    def enter(self, event: Event, now: float) -> None:
        """The listener's own CLOSED -> LISTEN -> CLOSED, looked up in the same table as connections'."""
        new = next_state(self.state, event)
        self.history.append(Transition(self.state, new, event, now))
        self.state = new

    def close(self, now: float) -> None:
        """CLOSE in LISTEN (§3.10.4): the listener is deleted; half-open children are reset by the caller."""
        if self.state is State.LISTEN:
            self.enter(Event.CLOSE, now)

    # ------------------------------------------------------------------ arriving segments

    def syn_arrives(
        self,
        remote: Address,
        syn: Segment,
        now: float,
        on_transition: TransitionHook | None = None,
        local: Address | None = None,
        iss: int | None = None,
        path_mtu: int = 0,
    ) -> ListenerAnswer:
        """RFC 9293 §3.10.7.2 third check, with Linux's overload rules (tcp_conn_request). `local` is the
        address the SYN was sent to (the listener's own when None); `iss` the ISN a connection that
        replaces one in TIME_WAIT must take (then never a cookie, as Linux); `path_mtu` the path MTU
        learned for the peer (0: none)."""
        mode = self.config.syncookies
        queue_full = len(self.syn_queue) >= self.config.syn_backlog
        if iss is None and (mode == 2 or (mode == 1 and queue_full)):
            if self.accept_queue_full():
                self.overflows += 1
                self._drop_overflow()
                return None
            if queue_full:
                self.counters["TCPReqQFullDoCookies"] += 1
            return self._cookie_synack(remote, syn, now, local or self.local, path_mtu)
        return self.on_syn(remote, syn, now, on_transition, local, iss, path_mtu)

    def on_syn(
        self,
        remote: Address,
        syn: Segment,
        now: float,
        on_transition: TransitionHook | None = None,
        local: Address | None = None,
        iss: int | None = None,
        path_mtu: int = 0,
    ) -> Connection | None:
        """A child in SYN_RECEIVED for the SYN, or None: a full queue drops the SYN silently, as Linux does."""
        if len(self.syn_queue) >= self.config.syn_backlog:
            self.overflows += 1
            self.counters["TCPReqQFullDrop"] += 1
            self.counters["ListenDrops"] += 1
            return None
        if self.accept_queue_full():
            self.overflows += 1
            self._drop_overflow()
            return None
        local = local or self.local
        config = self._config_for(local, remote, path_mtu)
        take, reply = self._fast_open(remote[0], local[0], syn)
        child = Connection.from_syn(config, local, remote, syn, now, on_transition, iss, take, reply)
        self.syn_queue.add(child)
        if take:
            self._fast_open_children.add(child)
        return child

    def _fast_open(self, remote_ip: int, local_ip: int, syn: Segment) -> tuple[bool, tuple[bytes, bool] | None]:
        """RFC 7413 §4.2 as Linux's tcp_try_fastopen: whether a child takes the SYN's data and goes to its
        application at once, and the cookie its SYN,ACK hands out (with the SYN's form of the option)."""
        offered = syn.options.fast_open
        exp = syn.options.fast_open_exp
        if offered == b"":
            self.counters["TCPFastOpenCookieReqd"] += 1
        flags = self.config.fast_open
        if not (flags & fast_open.SERVER_ENABLE and (syn.payload or offered is not None) and self._fast_open_room()):
            return False, None
        if flags & fast_open.SERVER_COOKIE_NOT_REQD or self.fast_open_no_cookie:
            self.counters["TCPFastOpenPassive"] += 1
            return True, None
        if offered is None:  # data without a cookie: an ordinary SYN
            return False, None
        keys = self.config.fast_open_keys or (self.fast_open_key.get(),)
        valid = [fast_open.cookie(key, remote_ip, local_ip) for key in keys]
        if offered == b"":
            return False, (valid[0], exp)
        if offered == valid[0]:
            self.counters["TCPFastOpenPassive"] += 1
            return True, None
        if offered in valid[1:]:  # made with the backup key: good, and the primary's is handed out
            self.counters["TCPFastOpenPassive"] += 1
            self.counters["TCPFastOpenPassiveAltKey"] += 1
            return True, (valid[0], exp)
        self.counters["TCPFastOpenPassiveFail"] += 1
        return False, (valid[0], exp)

    def _fast_open_room(self) -> bool:
        """The listener takes fast open and has fewer children still in SYN_RECEIVED than its queue allows
        (Linux tcp_fastopen_queue_check)."""
        if self.fast_open_queue <= 0:
            return False
        children = self._fast_open_children
        for child in [c for c in children if c.state is not State.SYN_RECEIVED]:
            children.discard(child)
        if len(children) >= self.fast_open_queue:
            self.counters["TCPFastOpenListenOverflow"] += 1
            return False
        return True

    def ack_arrives(
        self,
        remote: Address,
        seg: Segment,
        now: float,
        on_transition: TransitionHook | None = None,
        local: Address | None = None,
        path_mtu: int = 0,
    ) -> ListenerAnswer:
        """§3.10.7.2 second check: an ACK in LISTEN gets <SEQ=SEG.ACK><CTL=RST>, unless it returns one of
        our SYN cookies (checked only within syncookies.VALID_FOR of the last one sent, as Linux)."""
        reset = reset_for(seg)
        if seg.flags & (Flags.SYN | Flags.RST) or not self._cookies_recent(now):
            return reset
        local = local or self.local
        tuple4 = (local[0], local[1], remote[0], remote[1])
        peer_isn = seq_add(seg.seq, -1)
        iss = seq_add(seg.ack, -1)
        index = syncookies.check_cookie(self.cookie_secret, tuple4, peer_isn, iss, now)
        peer = self._peer_options(index, seg, local) if index is not None else None
        if peer is None:
            self.counters["SyncookiesFailed"] += 1
            return reset
        self.counters["SyncookiesRecv"] += 1
        if self.accept_queue_full():
            self._drop_overflow()  # the peer retransmits; its next segment returns the cookie again
            return None
        syn = Segment(seg.src_port, seg.dst_port, peer_isn, 0, Flags.SYN, seg.window, b"", peer)
        offset = syncookies.ts_offset(self.cookie_secret, local[0], remote[0])
        config = self._config_for(local, remote, path_mtu)
        child = Connection.from_cookie(config, local, remote, syn, iss, offset, now, on_transition)
        self.syn_queue.add(child)  # the owner moves it to the accept queue on its Connected event
        child.receive_segment(seg, now)
        return child

    def take_fast_open_options(self, queue: int, no_cookie: bool) -> None:
        """What TCP_FASTOPEN and TCP_FASTOPEN_NO_COOKIE set on the socket before listen(): a queue set there
        wins over the one net.ipv4.tcp_fastopen's 0x400 gives (Linux inet_listen fills only an unset one)."""
        if queue:
            self.fast_open_queue = queue
        self.fast_open_no_cookie = no_cookie

    def set_fast_open_option(self, no_cookie: bool, value: int) -> None:
        """TCP_FASTOPEN (0 turns fast open off) or TCP_FASTOPEN_NO_COOKIE set while listening, as
        fast_open_option took it."""
        if no_cookie:
            self.fast_open_no_cookie = bool(value)
        else:
            self.fast_open_queue = value

    # ------------------------------------------------------------------ queues

    def accept_queue_full(self) -> bool:
        return len(self.accept_queue) > self.backlog  # Linux sk_acceptq_is_full: backlog N holds N + 1

    def on_established(self, child: Connection) -> None:
        self.syn_queue.discard(child)
        self.accept_queue.append(child)

    def forget(self, child: Connection) -> None:
        """A child that ended: gone from the SYN queue; one in the accept queue stays, as Linux's stays,
        and accept() returns it closed, with the data it received and its error."""
        self.syn_queue.discard(child)

    def accept(self) -> Connection | None:
        if not self.accept_queue:
            return None
        conn = self.accept_queue.popleft()
        conn.receiver.owned = True  # the application has it: its buffer may grow (Linux sk->sk_socket)
        return conn

    def refuse_final_ack(self) -> None:
        """A child's final ACK found the accept queue full: dropped, the child stays in SYN_RECEIVED and
        its SYN,ACK retransmission draws the ACK again (Linux, tcp_abort_on_overflow=0)."""
        self._drop_overflow()

    # ------------------------------------------------------------------ SYN cookies

    def _drop_overflow(self) -> None:
        self.counters["ListenOverflows"] += 1
        self.counters["ListenDrops"] += 1

    def _cookies_recent(self, now: float) -> bool:
        if self.config.syncookies == 2:
            return True
        sent = self._cookie_sent_at
        return self.config.syncookies == 1 and sent is not None and now - sent < syncookies.VALID_FOR

    def _config_for(self, local: Address, remote: Address, path_mtu: int = 0) -> TcpConfig:
        return self.path_configs.of(self.config, local[0], remote[0], path_mtu)

    def _cookie_synack(self, remote: Address, syn: Segment, now: float, local: Address, path_mtu: int) -> Segment:
        """The SYN,ACK for a SYN answered without state. Without timestamps it carries only our MSS, as
        Linux's: window scaling and SACK need the TSval bits to come back (RFC 4987 §3.6)."""
        config = self._config_for(local, remote, path_mtu)
        peer = syn.options
        index = syncookies.mss_index(peer.mss, _mss_table(local))
        tuple4 = (local[0], local[1], remote[0], remote[1])
        iss = syncookies.make_cookie(self.cookie_secret, tuple4, syn.seq, index, now)
        options = TcpOptions(mss=config.mss)
        if config.timestamps and peer.timestamps is not None:
            wscale = peer.wscale if config.window_scaling else None
            carried = syncookies.CookieOptions(
                min(wscale, syncookies.MAX_WSCALE) if wscale is not None else None, config.sack and peer.sack_permitted
            )
            offset = syncookies.ts_offset(self.cookie_secret, local[0], remote[0])
            ts_now = (int(now * 1000) + offset) & 0xFFFFFFFF  # Connection.ts_val's clock
            options = TcpOptions(
                mss=config.mss,
                wscale=receive_window_shift(config) if wscale is not None else None,
                sack_permitted=carried.sack_permitted,
                timestamps=(syncookies.stamp_tsval(ts_now, carried), peer.timestamps[0]),
            )
        self._cookie_sent_at = now
        self.counters["SyncookiesSent"] += 1
        self.counters["OutSegs"] += 1
        # the first window as a connection's (rcv_space.first_window); a SYN's is never scaled (RFC 7323 §2.2)
        mss = config.mss - (rcv_space.TIMESTAMP_OPTION if options.timestamps is not None else 0)
        full = rcv_space.win_from_space(rcv_space.sk_rcvbuf(config.receive_buffer), rcv_space.DEFAULT_SCALING_RATIO)
        window = min(rcv_space.first_window(full, config.receive_buffer_locked, mss), 0xFFFF)
        ack = seq_add(syn.seq, 1)
        return Segment(
            self.local[1],
            syn.src_port,
            iss,
            ack,
            Flags.SYN | Flags.ACK,
            window,
            b"",
            options,
            tos=config.tos,
            df=config.pmtu_discovery in PMTUDISC_SETS_DF,
        )

    def _peer_options(self, index: int, ack: Segment, local: Address) -> TcpOptions | None:
        """The peer's SYN options as the cookie recorded them; None if its TSecr cannot be ours."""
        mss = _mss_table(local)[index]
        ts = ack.options.timestamps
        if not self.config.timestamps or ts is None or ts[1] == 0:
            return TcpOptions(mss=mss)  # no timestamps: no window scaling, no SACK
        carried = syncookies.read_tsecr(ts[1])
        if carried.sack_permitted and not self.config.sack:
            return None  # SACK was switched off since: the cookie cannot be honoured (as Linux)
        return TcpOptions(mss=mss, wscale=carried.wscale, sack_permitted=carried.sack_permitted, timestamps=(ts[0], 0))


def _mss_table(local: Address) -> tuple[int, ...]:
    """The MSS values a cookie can carry: IPv6 peers send other ones (stack/wire/addr.py: bit 128)."""
    return syncookies.MSS_TABLE6 if local[0] > 0xFFFFFFFF else syncookies.MSS_TABLE
