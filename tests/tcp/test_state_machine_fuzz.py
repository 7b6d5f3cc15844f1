"""Hypothesis state machines over the TCP core in virtual time: arbitrary segments, timers and user calls.

`OneConnection` drives a single Connection (active open, or passive through a Listener) with segments
from a peer that is partly honest and partly hostile: random sequence and acknowledgment numbers, any
flags, windows and options, payloads of any length. `TwoConnections` joins a client and a server
(each behind a real Demux) through a virtual wire that loses, reorders, duplicates and corrupts.

Both check after every step what RFC 9293 promises whatever arrives: nothing raises except
LocalProtocolError for a user call the state does not allow (§3.10), SND.UNA <= SND.NXT <= SND.MAX,
buffers stay within their configured sizes, every transition is an edge of TRANSITIONS, and the
application receives a prefix of what the peer sent, in order and once.

Payload bytes are a fixed function of their sequence number (`stream()`), so whatever sequence number
a segment claims, its bytes agree with every other segment's; data delivered twice, out of order or
from outside the stream shows up as a mismatch. TCPSTACK_FUZZ_EXAMPLES raises the number of examples.
"""

from __future__ import annotations

import os
import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from stack.demux import Demux
from stack.tcp.config import TcpConfig
from stack.tcp.connection import Connection
from stack.tcp.errors import LocalProtocolError
from stack.tcp.events import Closed, Connected, Reset, TimedOut
from stack.tcp.listener import Listener
from stack.tcp.state import State
from stack.wire.codec import TcpPacket, decode, encode_tcp
from stack.wire.segment import NO_OPTIONS, Flags, Segment, TcpOptions
from stack.wire.seq import seq_add, seq_ge, seq_le, seq_sub
from tests.tcp.conftest import IssDraws, check_history, check_receive_memory

EXAMPLES = int(os.environ.get("TCPSTACK_FUZZ_EXAMPLES", "150"))
MASK = 0xFFFFFFFF
LOCAL = (0x0A000002, 80)
REMOTE = (0x0A000001, 40000)

# ------------------------------------------------------------------ the byte stream both directions use

_PERIOD = 65521  # prime, so the pattern does not line up with windows or buffer sizes
_ONE_PERIOD = random.Random(9293).randbytes(_PERIOD)
_TABLE = _ONE_PERIOD + _ONE_PERIOD[:8192]  # periodic, so a slice that starts near the period's end continues right


def stream(seq: int, n: int) -> bytes:
    """The n bytes a segment at sequence number `seq` carries: a function of the sequence number only."""
    out = bytearray()
    while n > 0:
        k = min(n, (1 << 32) - seq, 8192)  # split at the 2**32 wrap, where seq % PERIOD jumps
        start = seq % _PERIOD
        out += _TABLE[start : start + k]
        seq = (seq + k) & MASK
        n -= k
    return bytes(out)


@pytest.mark.parametrize("seq", [0, _PERIOD - 1, 4 * _PERIOD - 3, MASK - 1])
def test_stream_bytes_depend_only_on_their_sequence_number(seq: int) -> None:
    """The oracle itself: a byte is the same whichever segment carries it, also across the period's end."""
    whole = stream(seq, 5)
    assert all(whole[k:] == stream((seq + k) & MASK, 5 - k) for k in range(5))


# ------------------------------------------------------------------ strategies

u32 = st.integers(0, MASK)
MIN_PEER_MSS = 0  # any MSS option, even 0: SND.MSS is clamped to 48 as Linux's tcp_min_snd_mss
configs = st.builds(
    TcpConfig,
    mss=st.sampled_from([536, 1000, 1460]),
    msl=st.sampled_from([0.5, 2.0]),
    send_buffer=st.sampled_from([1024, 8192, 65536]),
    receive_buffer=st.sampled_from([1024, 4096, 65535, 1 << 20]),
    window_scaling=st.booleans(),
    timestamps=st.booleans(),
    sack=st.booleans(),
    nodelay=st.booleans(),
    loss_probes=st.booleans(),
    keepalive=st.booleans(),
    keepalive_idle=st.sampled_from([1.0, 30.0]),
    keepalive_interval=st.just(1.0),
    keepalive_count=st.just(3),
    fin_timeout=st.sampled_from([1.0, 10.0]),
    max_retries=st.sampled_from([3, 15]),
    syn_retries=st.sampled_from([2, 6]),
    synack_retries=st.sampled_from([2, 5]),
    challenge_ack_limit=st.sampled_from([2, 1000]),
)
flag_sets = st.one_of(
    st.sampled_from(
        [
            Flags.ACK,
            Flags.ACK | Flags.PSH,
            Flags.ACK | Flags.FIN,
            Flags.SYN,
            Flags.SYN | Flags.ACK,
            Flags.RST,
            Flags.RST | Flags.ACK,
            Flags.FIN,
            Flags(0),
        ]
    ),
    st.integers(0, 255).map(Flags),
)
windows = st.one_of(st.sampled_from([0, 1, 512, 1460, 65535]), st.integers(0, 65535))
small_delta = st.one_of(st.integers(-3, 3), st.integers(-70000, 70000))
MAX_PAYLOAD = 3000
payload_lengths = st.one_of(st.just(0), st.integers(1, 16), st.integers(0, MAX_PAYLOAD))
dts = st.one_of(st.sampled_from([0.0, 0.001, 0.04, 0.2, 1.0, 3.0]), st.floats(0, 200, allow_nan=False))


@st.composite
def hostile_options(draw, base: int) -> TcpOptions:
    """Any option values, including ones the RFCs forbid (wscale > 14, MSS 0, inverted SACK blocks)."""
    if draw(st.integers(0, 3)) == 0:
        return TcpOptions()
    block_edge = st.one_of(u32, st.integers(-5000, 70000).map(lambda d: (base + d) & MASK))
    return TcpOptions(
        mss=draw(st.none() | st.integers(MIN_PEER_MSS, 65535)),
        wscale=draw(st.none() | st.integers(0, 255)),
        sack_permitted=draw(st.booleans()),
        timestamps=draw(st.none() | st.tuples(u32, u32)),
        sack_blocks=tuple(draw(st.lists(st.tuples(block_edge, block_edge), max_size=4))),
    )


# ------------------------------------------------------------------ checks shared by both machines


def check_connection(conn: Connection) -> None:
    """What must hold for a connection after any step, whatever arrived."""
    tcb = conn.tcb
    # SND.UNA <= SND.NXT <= SND.MAX (RFC 9293 §3.3.1; SND.MAX is where go-back-N started, RFC 6298)
    assert seq_le(tcb.snd_una, tcb.snd_nxt), (tcb.snd_una, tcb.snd_nxt)
    assert seq_le(tcb.snd_nxt, tcb.snd_max), (tcb.snd_nxt, tcb.snd_max)
    config = conn.config
    if conn.sender is None:  # only an orphan in TIME_WAIT lets its sending side go (release_sending_side), for good
        assert conn.orphaned and conn.state in (State.TIME_WAIT, State.CLOSED), conn.state
    else:
        # Linux's rule: a write starts an skb only while the buffer is below sk_sndbuf, which autotuning
        # grows at most to tcp_wmem[2]; the last skb takes at most a 64 KB size goal while unsent, and what
        # is left of it when its head was sent (tso_fragment) is the last skb again: beyond the buffer, at
        # most a size goal and what is in flight
        assert conn.sender.sndbuf <= max(config.send_buffer, config.send_buffer_max)
        in_flight = seq_sub(tcb.snd_max, tcb.snd_una)
        assert conn.send_queue_bytes < conn.sender.sndbuf + 65536 + in_flight
    held = conn.receiver.bytes_held  # out-of-order bytes are buffer space too (§3.8.6)
    # the receive memory (twice SO_RCVBUF, as Linux doubles it) grows with autotuning (tcp_rcvbuf_grow,
    # tcp_clamp_window) up to tcp_rmem[2] only; a packet is taken while the memory used is within it, and an
    # in-order segment past the window is kept whole (Linux's tcp_data_queue): never more than that and one
    rcvbuf = conn.receiver.rcvbuf
    assert rcvbuf <= max(2 * config.receive_buffer, config.receive_buffer_max), rcvbuf
    total = conn.recv_queue_bytes + held
    assert 0 <= held and total <= rcvbuf + MAX_PAYLOAD, (conn.recv_queue_bytes, held, rcvbuf)
    # receive memory as Linux's skbs: no byte of the receive queue in two packets, packets held out of
    # order only while bytes are held, and the charge is what the packets cost (else the window closes)
    receiver = conn.receiver
    assert sum(skb[0] for skb in receiver._skbs) <= conn.recv_queue_bytes
    out_of_order = receiver.out_of_order
    if out_of_order is not None:
        assert len(out_of_order.queue) <= max(held, 0)  # every run holds at least one byte
        assert held or not out_of_order._packets, out_of_order._packets
    check_receive_memory(conn)
    check_history(conn.history, conn.state)
    if conn.state is State.CLOSED:
        assert conn.finished and conn.next_deadline() is None


def check_outbound(conn: Connection, seg: Segment, app_data: bytes) -> None:
    """A segment we send survives the wire codec unchanged and carries exactly the application's bytes."""
    assert 0 <= seg.window <= 0xFFFF and 0 <= seg.urgent <= 0xFFFF
    assert len(seg.payload) <= max(conn.tcb.snd_mss, 0)
    packet = decode(encode_tcp(conn.local[0], conn.remote[0], seg))
    assert isinstance(packet, TcpPacket) and packet.segment == seg, (seg, packet)
    if seg.payload:
        offset = seq_sub(seg.seq, seq_add(conn.tcb.iss, 1))
        assert 0 <= offset and app_data[offset : offset + len(seg.payload)] == seg.payload, (offset, seg)
        assert seq_le(seq_add(seg.seq, len(seg.payload)), conn.tcb.snd_max), (seg, conn.tcb)


def user_call(conn: Connection, call, *args):
    """A user call may refuse with LocalProtocolError (§3.10), and then leaves the connection as it was."""
    before = (conn.state, len(conn.history), conn.send_queue_bytes, conn.recv_queue_bytes)
    try:
        return call(*args)
    except LocalProtocolError:
        assert (conn.state, len(conn.history), conn.send_queue_bytes, conn.recv_queue_bytes) == before
        return None


def fire_timers(conn: Connection, now: float, flush) -> None:
    """Expired timers fire, and a few rounds at the same `now` leave none in the past (no busy loop)."""
    for _ in range(4):
        deadline = conn.next_deadline()
        if deadline is None or deadline > now:
            return
        conn.handle_timer(now)
        flush()
    deadline = conn.next_deadline()
    assert deadline is None or deadline > now, f"timer stuck at {deadline} <= {now}: {conn.timers.items()}"


# ------------------------------------------------------------------ one connection, hostile peer


class OneConnection(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.conn: Connection | None = None
        self.listener: Listener | None = None
        self.app_sent = bytearray()  # what send() accepted, from ISS+1 on
        self.delivered = 0  # bytes read() returned so far
        self.peer_payloads: list[tuple[int, int]] = []  # (seq, len) of every payload the peer sent
        self.closed_seen = False
        self.close_called = False
        self.last_rcv_nxt: int | None = None
        self.last_snd_una: int | None = None

    @initialize(
        config=configs,
        iss=st.one_of(u32, st.sampled_from([0, MASK - 5, 1 << 31])),
        peer_isn=u32,
        mode=st.sampled_from(["active", "passive"]),
        syn_options=hostile_options(0),
    )
    def open(self, config: TcpConfig, iss: int, peer_isn: int, mode: str, syn_options: TcpOptions) -> None:
        config = replace(config, rng=IssDraws(iss))  # the ISS comes from the machine: wraparound is explored
        self.config = config
        self.peer_isn = peer_isn
        if mode == "active":
            self.conn = Connection.connect(config, LOCAL, REMOTE, self.now)
        else:
            self.listener = Listener(config, LOCAL, now=self.now)
            syn = Segment(REMOTE[1], LOCAL[1], peer_isn, 0, Flags.SYN, 65535, b"", syn_options)
            child = self.listener.on_syn(REMOTE, syn, self.now)
            assert child is not None
            self.conn = child
        self.flush()

    # ---------------------------------------------------------------- plumbing

    def flush(self) -> None:
        conn = self.conn
        for seg in conn.segments_to_send(self.now):
            check_outbound(conn, seg, self.app_sent)
        while (event := conn.next_event()) is not None:
            assert not self.closed_seen, f"{event} after Closed"  # Closed is always the last event
            self.closed_seen = type(event) is Closed
        if self.listener is not None and conn.state is State.ESTABLISHED and conn in self.listener.syn_queue:
            self.listener.on_established(conn)  # what the Stack does with an established child
            assert self.listener.accept() is conn

    def arrive(self, seg: Segment) -> None:
        if seg.payload:  # a SYN takes the first sequence number, its data follows (RFC 9293 §3.4)
            self.peer_payloads.append((seq_add(seg.seq, 1 if seg.flags & Flags.SYN else 0), len(seg.payload)))
        self.conn.receive_segment(seg, self.now)
        self.flush()

    def segment(self, seq: int, ack: int, flags: Flags, window: int, length: int, options=NO_OPTIONS) -> Segment:
        seq &= MASK
        data = stream(seq_add(seq, 1) if flags & Flags.SYN else seq, length)  # a SYN's data starts after it
        return Segment(REMOTE[1], LOCAL[1], seq, ack & MASK, flags, window, data, options)

    @property
    def rcv_base(self) -> int:
        """Where the peer's next in-order byte goes (its ISN + 1 before the connection learned IRS)."""
        tcb = self.conn.tcb
        return tcb.rcv_nxt if self.conn.state is not State.SYN_SENT else seq_add(self.peer_isn, 1)

    # ---------------------------------------------------------------- the peer

    @rule()
    def peer_completes_handshake(self) -> None:
        """The honest peer: SYN,ACK to our SYN, or the ACK of our SYN,ACK."""
        tcb = self.conn.tcb
        if self.conn.state is State.SYN_SENT:
            opts = TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamps=(1, tcb.iss))
            self.arrive(self.segment(self.peer_isn, tcb.iss + 1, Flags.SYN | Flags.ACK, 65535, 0, opts))
        else:
            self.arrive(self.segment(self.rcv_base, tcb.snd_max, Flags.ACK, 65535, 0))

    @rule(
        length=payload_lengths,
        delta=st.one_of(st.just(0), small_delta),
        fin=st.booleans(),
        window=windows,
        unacked=st.sampled_from([0, 0, 1, 100]),
    )
    def peer_sends_data(self, length: int, delta: int, fin: bool, window: int, unacked: int) -> None:
        """Data near RCV.NXT (in order, a little ahead, or a retransmission), acking all or most of
        what we sent (not acking our FIN makes a FIN here a simultaneous close)."""
        tcb = self.conn.tcb
        flags = Flags.ACK | Flags.PSH | (Flags.FIN if fin else Flags(0))
        ack = seq_add(tcb.snd_max, -min(unacked, seq_sub(tcb.snd_max, tcb.snd_una)))
        self.arrive(self.segment(self.rcv_base + delta, ack, flags, window, length))

    @rule(exact=st.booleans(), with_ack=st.booleans())
    def peer_resets(self, exact: bool, with_ack: bool) -> None:
        """A RST at RCV.NXT resets (RFC 5961 §3.2); anywhere else in the window draws a challenge ACK."""
        seq = self.rcv_base if exact else self.rcv_base + 1
        if self.conn.state is State.SYN_SENT:
            seq, with_ack = 0, True  # in SYN-SENT a RST counts only with an acceptable ACK (§3.10.7.3)
        flags = Flags.RST | (Flags.ACK if with_ack else Flags(0))
        self.arrive(self.segment(seq, self.conn.tcb.snd_max, flags, 0, 0))

    @rule(acked=st.floats(0, 1), window=windows, sack=st.booleans())
    def peer_acks(self, acked: float, window: int, sack: bool) -> None:
        """An ACK for part of our flight, maybe with a SACK block above it."""
        tcb = self.conn.tcb
        flight = seq_sub(tcb.snd_max, tcb.snd_una)
        ack = seq_add(tcb.snd_una, int(flight * acked))
        blocks = ((seq_add(ack, 100), tcb.snd_max),) if sack and flight > 200 else ()
        self.arrive(self.segment(self.rcv_base, ack, Flags.ACK, window, 0, TcpOptions(sack_blocks=blocks)))

    @rule(data=st.data(), flags=flag_sets, window=windows, length=payload_lengths)
    def hostile_segment(self, data, flags: Flags, window: int, length: int) -> None:
        """Anything at all: sequence and acknowledgment numbers near the window edges or random."""
        tcb = self.conn.tcb
        seq = data.draw(
            st.one_of(
                small_delta.map(lambda d: self.rcv_base + d),
                st.integers(-(1 << 31), 1 << 31).map(lambda d: self.rcv_base + d),
                u32,
            ),
            label="seq",
        )
        ack = data.draw(
            st.one_of(
                small_delta.map(lambda d: tcb.snd_una + d),
                small_delta.map(lambda d: tcb.snd_max + d),
                st.integers(0, 3).map(lambda d: tcb.iss + d),
                u32,
            ),
            label="ack",
        )
        options = data.draw(hostile_options(tcb.snd_una), label="options")
        self.arrive(self.segment(seq, ack, flags, window, length, options))

    @rule()
    @precondition(lambda self: self.listener is not None)
    def listener_closes(self) -> None:
        self.listener.close(self.now)

    @rule(data=st.data())
    @precondition(lambda self: self.listener is not None)
    def syn_flood_to_listener(self, data) -> None:
        """More SYNs from other ports: the listener's queues stay within their bounds."""
        port = data.draw(st.integers(1, 65535), label="port")
        syn = self.segment(data.draw(u32, label="isn"), 0, Flags.SYN, 65535, 0)
        self.listener.on_syn((REMOTE[0], port), syn, self.now)

    # ---------------------------------------------------------------- time

    @rule(dt=dts)
    def time_passes(self, dt: float) -> None:
        self.now += dt
        fire_timers(self.conn, self.now, self.flush)

    @rule()
    def next_timer_fires(self) -> None:
        deadline = self.conn.next_deadline()
        if deadline is not None:
            self.now = max(self.now, deadline)
            fire_timers(self.conn, self.now, self.flush)

    # ---------------------------------------------------------------- the application

    @rule(n=st.one_of(st.integers(0, 100), st.integers(0, 100_000)))
    def app_send(self, n: int) -> None:
        conn = self.conn
        may_send = not self.close_called and conn.state in (
            State.SYN_SENT,
            State.SYN_RECEIVED,
            State.ESTABLISHED,
            State.CLOSE_WAIT,
        )
        offset = len(self.app_sent)
        data = stream((offset * 7) & MASK, n)  # the application's own bytes, unrelated to the peer's
        try:
            taken = conn.send(data, self.now)
        except LocalProtocolError:
            assert not may_send, f"send refused in {conn.state}"
        else:
            assert may_send, f"send accepted in {conn.state} after close={self.close_called}"
            assert 0 <= taken <= n
            self.app_sent += data[:taken]
        self.flush()

    @rule(max_bytes=st.sampled_from([-1, 0, 1, 100, 5000]))
    def app_reads(self, max_bytes: int) -> None:
        conn = self.conn
        got = conn.read(max_bytes)
        assert max_bytes < 0 or len(got) <= max_bytes
        if got:
            start = seq_add(conn.tcb.irs, 1 + self.delivered)
            assert got == stream(start, len(got)), f"delivered bytes at offset {self.delivered} are not the peer's"
            self.delivered += len(got)
            self.check_peer_sent(start, len(got))
        self.flush()

    def check_peer_sent(self, start: int, n: int) -> None:
        """Every byte delivered lies in some payload the peer actually sent."""
        covered = sorted(
            (seq_sub(s, start), seq_sub(s, start) + length)
            for s, length in self.peer_payloads
            if -(1 << 30) < seq_sub(s, start) < n
        )
        reach = 0
        for lo, hi in covered:
            if lo > reach:
                break
            reach = max(reach, hi)
        assert reach >= n, f"delivered {n} bytes from {start}, but the peer only sent up to +{reach}"

    @rule()
    def app_closes(self) -> None:
        conn = self.conn
        before = (conn.state, len(conn.history))
        try:
            conn.close(self.now)
        except LocalProtocolError:
            assert (conn.state, len(conn.history)) == before
        else:
            self.close_called = True  # a FIN is queued (or the connection is gone): SEND is refused now
        self.flush()

    @rule(dice=st.integers(0, 3))
    def app_aborts(self, dice: int) -> None:
        if dice:
            return  # only one time in four: an abort ends the interesting part of the run
        self.conn.abort(self.now)
        assert self.conn.state is State.CLOSED
        self.flush()

    @rule()
    def app_detaches(self) -> None:
        self.conn.detach(self.now)
        self.flush()

    # ---------------------------------------------------------------- invariants

    @invariant()
    def connection_is_consistent(self) -> None:
        if self.conn is None:
            return
        check_connection(self.conn)
        tcb = self.conn.tcb
        if self.conn.state.synchronized or self.conn.state is State.SYN_RECEIVED:
            # RCV.NXT and SND.UNA only move forward (§3.4, §3.10.7.4)
            if self.last_rcv_nxt is not None:
                assert seq_ge(tcb.rcv_nxt, self.last_rcv_nxt), (tcb.rcv_nxt, self.last_rcv_nxt)
            if self.last_snd_una is not None:
                assert seq_ge(tcb.snd_una, self.last_snd_una), (tcb.snd_una, self.last_snd_una)
            self.last_rcv_nxt, self.last_snd_una = tcb.rcv_nxt, tcb.snd_una
        received = self.delivered + self.conn.recv_queue_bytes
        if received:  # RCV.NXT counts every byte received, plus one for a FIN
            assert received <= seq_sub(tcb.rcv_nxt, seq_add(tcb.irs, 1)), (received, tcb.rcv_nxt, tcb.irs)

    @invariant()
    def listener_queues_are_bounded(self) -> None:
        if self.listener is None:
            return
        listener = self.listener
        assert len(listener.syn_queue) <= self.config.syn_backlog
        assert len(listener.accept_queue) <= listener.backlog
        check_history(listener.history, listener.state)


def test_one_connection_survives_any_segments_timers_and_calls():
    """RFC 9293 §3.10: remote input never raises; user calls raise LocalProtocolError only where the
    state refuses them; the invariants in the module docstring hold after every step."""
    run_state_machine_as_test(
        OneConnection,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


# ------------------------------------------------------------------ two connections over a bad wire

CLIENT_IP, SERVER_IP, SERVER_PORT = 0x0A000001, 0x0A000002, 80


class Side:
    """One end: a Demux (so unmatched segments get RSTs), its connection, and an application that
    writes what it wants to send as buffer space allows, reads everything, and closes when told to."""

    def __init__(self, name: str, ip: int, demux: Demux) -> None:
        self.name = name
        self.ip = ip
        self.demux = demux
        self.conn: Connection | None = None
        self.to_send = bytearray()  # what the application wants to send
        self.sent = bytearray()  # the part send() accepted
        self.received = bytearray()
        self.want_close = False
        self.closed = False
        self.failed = False  # a Reset or TimedOut ended it early
        self.closed_seen = False
        self.ready = False  # the application has the connection: connect() or accept() returned it

    def pump(self, now: float) -> None:
        conn = self.conn
        if not self.ready or self.closed or conn.finished:
            return
        if len(self.sent) < len(self.to_send):
            taken = user_call(conn, conn.send, bytes(self.to_send[len(self.sent) :]), now)
            self.sent += self.to_send[len(self.sent) : len(self.sent) + (taken or 0)]
        if self.want_close and len(self.sent) == len(self.to_send):
            user_call(conn, conn.close, now)
            self.closed = True


class TwoConnections(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.wire: list[tuple[Side, int, bytes]] = []  # (to, src ip, raw IPv4 packet)
        self.corrupted: set[bytes] = set()  # packets corrupted once already

    @initialize(config=configs, client_iss=u32, server_iss=u32)
    def open(self, config: TcpConfig, client_iss: int, server_iss: int) -> None:
        config = replace(config, max_retries=15, syn_retries=6, synack_retries=5)  # loss must not kill it
        self.client = Side("client", CLIENT_IP, Demux(replace(config, rng=IssDraws(client_iss))))
        self.server = Side("server", SERVER_IP, Demux(replace(config, rng=IssDraws(server_iss))))
        self.server.demux.listen((SERVER_IP, SERVER_PORT))
        self.client.conn = self.client.demux.connect(CLIENT_IP, (SERVER_IP, SERVER_PORT), self.now)
        self.flush()

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.client, self.server

    def other(self, side: Side) -> Side:
        return self.server if side is self.client else self.client

    def flush(self) -> None:
        """What the Stack does after every input: applications act, segments go out, events are taken."""
        for side in self.sides:
            for conn in list(side.demux.connections.values()):
                if conn is side.conn:
                    side.pump(self.now)
                for seg in conn.segments_to_send(self.now):
                    check_outbound(conn, seg, side.sent if conn is side.conn else b"")
                    self.wire.append((self.other(side), side.ip, encode_tcp(conn.local[0], conn.remote[0], seg)))
                while (event := conn.next_event()) is not None:
                    if conn is side.conn:
                        assert not side.closed_seen, f"{event} after Closed"
                        side.closed_seen = type(event) is Closed
                        side.failed = side.failed or type(event) in (Reset, TimedOut)
                        side.ready = side.ready or type(event) is Connected  # connect()/accept() returns
                if conn.finished:
                    side.demux.remove(conn)  # what the Stack does with a finished connection
            if side.conn is not None:
                side.received += side.conn.read()

    def deliver(self, to: Side, src: int, raw: bytes) -> None:
        packet = decode(raw)
        if not isinstance(packet, TcpPacket):
            return  # a corrupted packet fails its checksum: a loss
        conn, rst = to.demux.segment_arrives(src, to.ip, packet.segment, self.now)
        if conn is not None and (to.conn is None or to.conn.state is State.LISTEN):
            to.conn = conn  # the server's child (a new one if the first was reset before it was accepted)
        if rst is not None:
            self.wire.append((self.other(to), to.ip, encode_tcp(to.ip, src, rst)))
        self.flush()

    def deliver_everything(self, limit: int = 20_000) -> None:
        """Deliver in order until the wire is empty; packets that keep answering each other with no
        time passing (an ACK war) fail the test instead of spinning forever."""
        for _ in range(limit):
            if not self.wire:
                return
            self.deliver(*self.wire.pop(0))
        bouncing = [decode(raw).segment for _, _, raw in self.wire]
        raise AssertionError(f"{limit} packets delivered and the wire is still not empty: {bouncing[:6]}")

    def fire_all_timers(self) -> None:
        for side in self.sides:
            for conn in list(side.demux.connections.values()):
                fire_timers(conn, self.now, self.flush)

    # ---------------------------------------------------------------- the wire

    @rule(data=st.data())
    @precondition(lambda self: self.wire)
    def wire_delivers_any_packet(self, data) -> None:
        """Reordering: any packet in flight may arrive next."""
        i = data.draw(st.integers(0, len(self.wire) - 1), label="packet")
        self.deliver(*self.wire.pop(i))

    @rule(n=st.integers(1, 40))
    @precondition(lambda self: self.wire)
    def wire_delivers_in_order(self, n: int) -> None:
        """A good stretch: the next n packets arrive in order (what they trigger joins the queue)."""
        for _ in range(n):
            if not self.wire:
                break
            self.deliver(*self.wire.pop(0))

    @rule(data=st.data())
    @precondition(lambda self: self.wire)
    def wire_loses_a_packet(self, data) -> None:
        self.wire.pop(data.draw(st.integers(0, len(self.wire) - 1), label="packet"))

    @rule(data=st.data())
    @precondition(lambda self: self.wire)
    def wire_duplicates_a_packet(self, data) -> None:
        self.wire.append(self.wire[data.draw(st.integers(0, len(self.wire) - 1), label="packet")])

    @rule(data=st.data())
    @precondition(lambda self: any(raw not in self.corrupted for _, _, raw in self.wire))
    def wire_corrupts_a_packet(self, data) -> None:
        """One byte of a packet changes. Only once per packet: the Internet checksum (RFC 1071) detects
        any error in one byte, but two errors in one packet can cancel (+1 and -1 in the same column),
        and TCP then delivers what the wire made of the data, in Linux too."""
        intact = [i for i, (_, _, raw) in enumerate(self.wire) if raw not in self.corrupted]
        i = data.draw(st.sampled_from(intact), label="packet")
        to, src, raw = self.wire[i]
        at = data.draw(st.integers(0, len(raw) - 1), label="byte")
        flip = data.draw(st.integers(1, 255), label="xor")
        corrupted = raw[:at] + bytes([raw[at] ^ flip]) + raw[at + 1 :]
        self.corrupted.add(corrupted)
        self.wire[i] = (to, src, corrupted)

    # ---------------------------------------------------------------- time and applications

    @rule(dt=st.one_of(st.sampled_from([0.0, 0.001, 0.01, 0.04, 0.2, 1.0]), st.floats(0, 5, allow_nan=False)))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.fire_all_timers()

    @rule(client=st.booleans(), n=st.one_of(st.integers(1, 2000), st.integers(1, 100_000)))
    def app_writes(self, client: bool, n: int) -> None:
        side = self.client if client else self.server
        if not side.want_close:
            side.to_send += random.Random(len(side.to_send) * 2 + client).randbytes(n)
        self.flush()

    @rule(client=st.booleans())
    def app_closes(self, client: bool) -> None:
        (self.client if client else self.server).want_close = True
        self.flush()

    # ---------------------------------------------------------------- invariants and the end

    @invariant()
    def both_consistent_and_prefix(self) -> None:
        if not hasattr(self, "client"):
            return
        for side in self.sides:
            for conn in side.demux.connections.values():
                check_connection(conn)
            assert side.received == self.other(side).sent[: len(side.received)], f"{side.name} got wrong bytes"

    def teardown(self) -> None:
        """Both applications close, the wire turns perfect, and everything must arrive exactly."""
        if not hasattr(self, "client"):
            return
        for side in self.sides:
            side.want_close = True
        for _ in range(100_000):
            self.flush()
            self.deliver_everything()
            deadlines = [
                d for side in self.sides for conn in side.demux.connections.values() if (d := conn.next_deadline())
            ]
            if not deadlines:
                if any(side.ready and not side.closed and not side.conn.finished for side in self.sides):
                    continue  # accept() just returned the server's connection: it writes and closes too
                break
            self.now = max(self.now, min(deadlines))
            self.fire_all_timers()
        else:
            raise AssertionError("the pair never went quiet")
        client, server = self.sides
        moved = len(client.sent) + len(server.sent)
        event("failed" if client.failed or server.failed else f"clean, {'>' if moved > 10_000 else '<='}10 kB")
        if client.failed or server.failed:
            return  # retries ran out while the wire was hostile: the prefix invariant already held
        for side in self.sides:
            assert side.sent == side.to_send, f"{side.name} could not send all it wanted"
            assert self.other(side).received == side.sent, (side.name, len(side.sent))
            # a server child reset before it was established goes back to LISTEN (§3.10.7.4), also finished
            assert side.conn.state in (State.CLOSED, State.LISTEN) and side.conn.finished, side.conn.state


def test_two_connections_over_a_bad_wire_transfer_identical_bytes():
    """RFC 9293 §3.4/§3.10.7.4: with loss, reordering, duplication and corruption, each side reads
    exactly what the other sent, once and in order, and both reach CLOSED."""
    run_state_machine_as_test(
        TwoConnections,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


# ------------------------------------------------------------------ bugs the machines found, reduced
# Each was found by the machines above and fixed in stack/tcp; these keep the fixes in place.


def test_syn_received_close_with_queued_data_retransmits_syn_ack_not_data_at_iss():
    """RFC 9293 §3.10.4 CLOSE in SYN-RECEIVED: with data queued, the FIN waits for ESTABLISHED; until
    then only the SYN,ACK is retransmitted, and nothing else ever carries sequence number ISS."""
    listener = Listener(TcpConfig(rng=IssDraws(1000)), LOCAL)
    conn = listener.on_syn(REMOTE, Segment(REMOTE[1], LOCAL[1], 5000, 0, Flags.SYN, 65535), 0.0)
    conn.segments_to_send(0.0)  # SYN,ACK seq=1000
    conn.send(b"x", 0.0)
    conn.close(0.0)
    early = conn.segments_to_send(0.0)
    rto = conn.next_deadline()
    conn.handle_timer(rto)
    retransmitted = conn.segments_to_send(rto)
    assert all(s.flags & Flags.SYN for s in early + retransmitted), [str(s) for s in early + retransmitted]


def test_syn_received_tiny_mss_option_with_timestamps_still_sends_data():
    """RFC 9293 §3.7.1/RFC 7323 §3.2: SND.MSS is the peer's MSS less the 12 bytes of timestamp option;
    an MSS option of 1 must not leave it at 0 or below (Linux clamps to 48, tcp_min_snd_mss)."""
    syn = Segment(REMOTE[1], LOCAL[1], 5000, 0, Flags.SYN, 65535, b"", TcpOptions(mss=1, timestamps=(1, 0)))
    conn = Listener(TcpConfig(timestamps=True, rng=IssDraws(1000)), LOCAL).on_syn(REMOTE, syn, 0.0)
    conn.segments_to_send(0.0)
    conn.receive_segment(Segment(REMOTE[1], LOCAL[1], 5001, 1001, Flags.ACK, 65535), 0.0)
    conn.send(b"hello", 0.0)
    sent = conn.segments_to_send(0.0)
    assert conn.tcb.snd_mss > 0 and any(s.payload for s in sent), (conn.tcb.snd_mss, [str(s) for s in sent])


def test_established_fast_retransmit_never_sends_beyond_snd_max():
    """RFC 5681 §3.2 step 4: fast retransmit resends the segment that appears lost, data already
    sent; bytes beyond SND.MAX are new data, subject to the windows and to SND.MAX's update."""
    syn = Segment(REMOTE[1], LOCAL[1], 5000, 0, Flags.SYN, 65535, b"", TcpOptions(mss=1460))
    conn = Listener(TcpConfig(rng=IssDraws(1000)), LOCAL).on_syn(REMOTE, syn, 0.0)
    conn.segments_to_send(0.0)
    conn.receive_segment(Segment(REMOTE[1], LOCAL[1], 5001, 1001, Flags.ACK, 65535), 0.0)
    conn.send(b"a" * 100, 0.0)
    conn.segments_to_send(0.0)  # [1001, 1101)
    conn.send(b"b" * 50, 0.0)
    assert conn.segments_to_send(0.0) == []  # Nagle holds the small second segment
    for _ in range(3):  # three duplicate ACKs
        conn.receive_segment(Segment(REMOTE[1], LOCAL[1], 5001, 1001, Flags.ACK, 65535), 0.01)
    for s in conn.segments_to_send(0.01):
        assert seq_le(seq_add(s.seq, len(s.payload)), conn.tcb.snd_max), (str(s), conn.tcb.snd_max)


def test_established_pure_acks_after_rto_do_not_bounce_forever():
    """RFC 9293 §3.10.7.4 first check: an unacceptable segment is answered by an ACK. After both
    sides lose a full window and rewind SND.NXT (RFC 6298 (5.4)), each side's pure ACK carries
    SEQ=SND.MAX, the right edge of the other's window, so each answers the other's ACK with an ACK,
    forever. (Linux sends SND.NXT clamped to the window and rate-limits these answers,
    tcp_invalid_ratelimit.)"""
    config = TcpConfig(
        mss=536, receive_buffer=1024, window_scaling=False, sack=False, loss_probes=False, rng=IssDraws(1000)
    )
    client = Connection.connect(config, REMOTE, LOCAL, 0.0)
    [syn] = client.segments_to_send(0.0)
    server = Listener(config, LOCAL).on_syn(REMOTE, syn, 0.0)
    [syn_ack] = server.segments_to_send(0.0)
    client.receive_segment(syn_ack, 0.0)
    [ack] = client.segments_to_send(0.0)
    server.receive_segment(ack, 0.0)
    server.segments_to_send(0.0)
    for conn in (client, server):
        conn.send(b"x" * 1024, 0.0)
        conn.segments_to_send(0.0)  # a full window, lost
        conn.handle_timer(1.0)
        conn.segments_to_send(1.0)  # the retransmission, lost too
    client.handle_timer(3.0)
    wire = [(server, seg) for seg in client.segments_to_send(3.0)]  # this one arrives
    for _ in range(20):
        if not wire:
            break
        to, seg = wire.pop(0)
        to.receive_segment(seg, 3.0)
        wire += [(client if to is server else server, out) for out in to.segments_to_send(3.0)]
    assert not wire, f"still bouncing: {[str(s) for _, s in wire]}"


def test_established_zero_window_receiver_that_answers_is_never_timed_out():
    """RFC 9293 §3.8.6.1: the sender must keep probing a zero window as long as the receiver answers
    ("must not close the connection"); here a receiver whose buffer is full answers every
    retransmission with a zero window. Linux treats those retransmissions as probes (tcp_retransmit_timer,
    'receiver dastardly shrinks window') and times out only a silent peer."""
    syn = Segment(REMOTE[1], LOCAL[1], 5000, 0, Flags.SYN, 65535, b"", TcpOptions(mss=1460))
    conn = Listener(TcpConfig(rng=IssDraws(1000)), LOCAL).on_syn(REMOTE, syn, 0.0)
    conn.segments_to_send(0.0)
    conn.receive_segment(Segment(REMOTE[1], LOCAL[1], 5001, 1001, Flags.ACK, 3000), 0.0)
    conn.send(b"x" * 100_000, 0.0)
    conn.segments_to_send(0.0)  # what the 3000-byte window allows; the receiver drops it, its buffer full
    now = 0.0
    while now < 3600.0 and (deadline := conn.next_deadline()) is not None:
        now = deadline
        conn.handle_timer(now)
        if conn.segments_to_send(now):  # alive: every probe or retransmission is answered, window 0
            conn.receive_segment(Segment(REMOTE[1], LOCAL[1], 5001, 1001, Flags.ACK, 0), now)
            conn.segments_to_send(now)
    assert conn.state is State.ESTABLISHED, f"after {now:.0f} s: {conn.history[-1]}"
