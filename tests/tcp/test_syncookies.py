"""SYN cookies (RFC 4987 §3.6): the cookie functions, and a listener answering SYNs without state once its
SYN queue is full, then building the connection from the ACK that returns the cookie (Linux's scheme)."""

from __future__ import annotations

from dataclasses import replace
from random import Random

import pytest

from stack.demux import Demux
from stack.tcp import syncookies
from stack.tcp.connection import Connection
from stack.tcp.listener import Listener
from stack.tcp.state import State
from stack.wire.segment import NO_OPTIONS, Flags, Segment, TcpOptions
from stack.wire.seq import seq_add
from tests.tcp.conftest import CONFIG, IRS, LOCAL, REMOTE, events, seg

SECRET = bytes(range(32))
TUPLE = (LOCAL[0], LOCAL[1], REMOTE[0], REMOTE[1])
COOKIES = replace(CONFIG, syn_backlog=1, timestamps=False)


# ---------------------------------------------------------------- the cookie itself


@pytest.mark.parametrize("index", range(len(syncookies.MSS_TABLE)))
def test_cookie_made_then_checked_returns_its_mss_index(index):
    """RFC 4987 §3.6: the ISN alone carries the MSS index back."""
    cookie = syncookies.make_cookie(SECRET, TUPLE, IRS, index, now=1000.0)
    assert syncookies.check_cookie(SECRET, TUPLE, IRS, cookie, now=1000.5) == index


@pytest.mark.parametrize(
    ("peer_mss", "entry"), [(None, 536), (535, 536), (536, 536), (1299, 536), (1300, 1300), (1459, 1440), (9000, 1460)]
)
def test_cookie_mss_index_is_largest_table_entry_not_above_peer_mss(peer_mss, entry):
    """Linux's table; no MSS option means 536 (RFC 9293 §3.7.1)."""
    assert syncookies.MSS_TABLE[syncookies.mss_index(peer_mss)] == entry


@pytest.mark.parametrize(("made", "checked"), [(0.0, 59.9), (59.9, 60.1), (0.0, 119.9), (600.0, 719.0)])
def test_cookie_from_this_or_the_previous_minute_is_accepted(made, checked):
    """A cookie lives until its minute counter is two steps old (Linux MAX_SYNCOOKIE_AGE)."""
    cookie = syncookies.make_cookie(SECRET, TUPLE, IRS, 2, made)
    assert syncookies.check_cookie(SECRET, TUPLE, IRS, cookie, checked) == 2


@pytest.mark.parametrize(("made", "checked"), [(0.0, 120.0), (59.9, 120.0), (600.0, 800.0), (0.0, 256 * 60.0)])
def test_cookie_two_minutes_old_is_rejected(made, checked):
    """RFC 4987 §3.6: the counter limits a cookie's life, also after the 8-bit counter wraps."""
    cookie = syncookies.make_cookie(SECRET, TUPLE, IRS, 2, made)
    assert syncookies.check_cookie(SECRET, TUPLE, IRS, cookie, checked) is None


@pytest.mark.parametrize("bit", range(32))
def test_cookie_with_any_bit_flipped_is_rejected(bit):
    """A forged ISN: the MAC over tuple and counter no longer gives a table index."""
    cookie = syncookies.make_cookie(SECRET, TUPLE, IRS, 1, 30.0)
    assert syncookies.check_cookie(SECRET, TUPLE, IRS, cookie ^ (1 << bit), 30.0) is None


def test_cookie_for_another_tuple_sequence_or_key_is_rejected():
    """The MAC covers the 4-tuple, the peer's ISN and the stack's secret."""
    cookie = syncookies.make_cookie(SECRET, TUPLE, IRS, 3, 30.0)
    other_port = (*TUPLE[:3], TUPLE[3] + 1)
    assert syncookies.check_cookie(SECRET, other_port, IRS, cookie, 30.0) is None
    assert syncookies.check_cookie(SECRET, TUPLE, IRS + 1, cookie, 30.0) is None
    assert syncookies.check_cookie(bytes(32), TUPLE, IRS, cookie, 30.0) is None


@pytest.mark.parametrize("wscale", [None, 0, 7, 14])
@pytest.mark.parametrize("sack", [False, True])
def test_cookie_tsval_low_bits_carry_wscale_and_sack(wscale, sack):
    """Like Linux: the low 6 bits of TSval hold the options, and TSval never runs ahead of the clock."""
    options = syncookies.CookieOptions(wscale, sack, ecn=False)
    for ts_now in (0, 5, 63, 64, 1_000_000, 0xFFFFFFFF):
        tsval = syncookies.stamp_tsval(ts_now, options)
        assert (ts_now - tsval) & 0xFFFFFFFF < 64
        assert syncookies.read_tsecr(tsval) == options


# ---------------------------------------------------------------- a listener in cookie mode


def _listener(config=COOKIES, backlog: int | None = None) -> Listener:
    return Listener(config, LOCAL, backlog, cookie_secret=SECRET)


def _fill_syn_queue(listener: Listener) -> None:
    assert isinstance(listener.syn_arrives((REMOTE[0], 1), seg("S", 1), 0.0), Connection)


MSS_ONLY = TcpOptions(mss=1460)


def _synack(listener: Listener, options: TcpOptions = MSS_ONLY, now: float = 0.0) -> Segment:
    answer = listener.syn_arrives(REMOTE, seg("S", IRS, options=options), now)
    assert isinstance(answer, Segment)
    return answer


def _ack_for(synack: Segment, data: bytes = b"", options: TcpOptions = NO_OPTIONS, win: int = 1000) -> Segment:
    return seg(".", IRS + 1, seq_add(synack.seq, 1), data=data, win=win, options=options)


def test_listen_syn_queue_full_syn_answered_by_cookie_synack_without_state():
    """RFC 4987 §3.6, Linux tcp_syncookies=1: with the SYN queue full a SYN gets a SYN,ACK and no TCB."""
    listener = _listener()
    _fill_syn_queue(listener)
    synack = _synack(listener, TcpOptions(mss=1400))
    assert synack.flags == Flags.SYN | Flags.ACK
    assert (synack.src_port, synack.dst_port, synack.ack) == (LOCAL[1], REMOTE[1], IRS + 1)
    assert synack.options == TcpOptions(mss=COOKIES.mss)  # no timestamps: no room for wscale or SACK
    assert syncookies.check_cookie(SECRET, TUPLE, IRS, synack.seq, 0.0) == syncookies.mss_index(1400)
    assert len(listener.syn_queue) == 1
    assert (listener.counters["SyncookiesSent"], listener.counters["TCPReqQFullDoCookies"]) == (1, 1)


def test_listen_syn_queue_with_room_syn_gets_a_child_not_a_cookie():
    """tcp_syncookies=1: cookies only when the queue overflows."""
    listener = _listener()
    assert isinstance(listener.syn_arrives(REMOTE, seg("S", IRS), 0.0), Connection)
    assert listener.counters["SyncookiesSent"] == 0


def test_listen_syncookies_2_answers_every_syn_with_a_cookie():
    """tcp_syncookies=2: every SYN, even with room in the queue."""
    listener = _listener(replace(COOKIES, syncookies=2))
    assert isinstance(listener.syn_arrives(REMOTE, seg("S", IRS), 0.0), Segment)
    assert not listener.syn_queue and listener.counters["TCPReqQFullDoCookies"] == 0


def test_listen_syncookies_0_full_syn_queue_drops_syn_and_counts():
    """tcp_syncookies=0: the SYN is dropped (TCPReqQFullDrop, ListenDrops); the peer retransmits."""
    listener = _listener(replace(COOKIES, syncookies=0))
    _fill_syn_queue(listener)
    assert listener.syn_arrives(REMOTE, seg("S", IRS), 0.0) is None
    assert (listener.counters["TCPReqQFullDrop"], listener.counters["ListenDrops"]) == (1, 1)


def test_listen_cookie_ack_creates_established_child_with_the_cookies_mss():
    """RFC 4987 §3.6: the returning ACK rebuilds the TCB; its send MSS is the table entry."""
    listener = _listener()
    _fill_syn_queue(listener)
    synack = _synack(listener, TcpOptions(mss=1400))
    child = listener.ack_arrives(REMOTE, _ack_for(synack), 1.0)
    assert isinstance(child, Connection)
    assert child.state is State.ESTABLISHED
    assert [str(t) for t in child.history] == [
        "CLOSE -> LISTEN (passive open)",
        "LISTEN -> SYN_RECV (ACK of SYN cookie)",
        "SYN_RECV -> ESTABLISHED (ACK of SYN)",
    ]
    tcb = child.tcb
    assert (tcb.iss, tcb.snd_una, tcb.irs, tcb.rcv_nxt) == (synack.seq, seq_add(synack.seq, 1), IRS, IRS + 1)
    assert tcb.snd_mss == 1300 and tcb.snd_wnd == 1000
    assert (child.sack_ok, child.ts_ok, tcb.snd_wscale) == (False, False, 0)
    assert events(child) == ["Connected"]
    assert listener.counters["SyncookiesRecv"] == 1


def test_listen_cookie_child_moves_to_accept_queue_on_its_connected_event():
    """The child waits like any child whose handshake completed until its owner sees Connected."""
    listener = _listener()
    _fill_syn_queue(listener)
    child = listener.ack_arrives(REMOTE, _ack_for(_synack(listener)), 1.0)
    assert child in listener.syn_queue and listener.accept() is None
    listener.on_established(child)
    assert listener.accept() is child


def test_listen_cookie_ack_carrying_data_delivers_it():
    """A lost bare ACK: the first data segment returns the cookie and its text is received."""
    listener = _listener()
    _fill_syn_queue(listener)
    child = listener.ack_arrives(REMOTE, _ack_for(_synack(listener), data=b"hello"), 1.0)
    assert isinstance(child, Connection)
    assert child.read() == b"hello" and child.tcb.rcv_nxt == IRS + 6


def test_listen_forged_cookie_ack_gets_rst_and_counts_failure():
    """RFC 9293 §3.10.7.2: an ACK in LISTEN that is not our cookie gets <SEQ=SEG.ACK><CTL=RST>."""
    listener = _listener()
    _fill_syn_queue(listener)
    synack = _synack(listener)
    forged = replace(_ack_for(synack), ack=seq_add(synack.seq, 2))
    answer = listener.ack_arrives(REMOTE, forged, 1.0)
    assert answer == Segment(LOCAL[1], REMOTE[1], forged.ack, 0, Flags.RST, 0)
    assert listener.counters["SyncookiesFailed"] == 1 and listener.counters["SyncookiesRecv"] == 0


def test_listen_cookie_ack_with_altered_sequence_number_is_rejected():
    """The MAC covers the peer's ISN: an ACK with another SEG.SEQ does not pass."""
    listener = _listener()
    _fill_syn_queue(listener)
    altered = replace(_ack_for(_synack(listener)), seq=IRS + 2)
    assert isinstance(listener.ack_arrives(REMOTE, altered, 1.0), Segment)
    assert listener.counters["SyncookiesFailed"] == 1


def test_listen_cookie_ack_two_minutes_later_is_rejected():
    """RFC 4987 §3.6: old cookies expire (two steps of the minute counter)."""
    listener = _listener(replace(COOKIES, syncookies=2))
    synack = _synack(listener, now=10.0)
    answer = listener.ack_arrives(REMOTE, _ack_for(synack), 130.0)
    assert isinstance(answer, Segment) and answer.flags == Flags.RST
    assert listener.counters["SyncookiesFailed"] == 1


def test_listen_ack_with_no_cookie_sent_recently_gets_rst_without_a_check():
    """Linux checks ACKs as cookies only within 2 minutes of the last one sent (tcp_synq_no_recent_overflow)."""
    listener = _listener()
    answer = listener.ack_arrives(REMOTE, seg(".", IRS + 1, 12345), 0.0)
    assert isinstance(answer, Segment) and answer.flags == Flags.RST
    assert listener.counters["SyncookiesFailed"] == 0


def test_listen_cookie_with_timestamps_carries_wscale_and_sack_in_tsval():
    """RFC 7323 + Linux: with timestamps the SYN,ACK offers wscale and SACK, their values ride in TSval."""
    config = replace(
        COOKIES, timestamps=True, window_scaling=True, sack=True, receive_buffer=1 << 20, receive_buffer_max=1 << 20
    )
    listener = _listener(config)
    _fill_syn_queue(listener)
    syn_options = TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamps=(777, 0))
    synack = _synack(listener, syn_options, now=5.0)
    opts = synack.options
    assert (opts.mss, opts.wscale, opts.sack_permitted) == (config.mss, 5, True)
    tsval, tsecr = opts.timestamps
    assert tsecr == 777 and tsval & syncookies.TS_MASK == 7 | syncookies.TS_SACK
    child = listener.ack_arrives(REMOTE, _ack_for(synack, options=TcpOptions(timestamps=(800, tsval))), 5.01)
    assert isinstance(child, Connection)
    assert (child.tcb.snd_wscale, child.tcb.rcv_wscale, child.sack_ok, child.ts_ok) == (7, 5, True, True)
    assert child.tcb.snd_wnd == 1000 << 7
    assert child.ts_recent == 800
    assert child.tcb.snd_mss == 1460 - 12  # TS on every segment


def test_listen_cookie_child_keeps_the_cookies_timestamp_clock():
    """Later TSvals continue the SYN,ACK's clock: the offset is derived from the secret, not drawn anew."""
    config = replace(COOKIES, timestamps=True)
    listener = _listener(config)
    _fill_syn_queue(listener)
    synack = _synack(listener, TcpOptions(mss=1460, timestamps=(777, 0)), now=5.0)
    tsval = synack.options.timestamps[0]
    child = listener.ack_arrives(REMOTE, _ack_for(synack, options=TcpOptions(timestamps=(800, tsval))), 5.0)
    assert 0 <= (child.ts_val(5.0) - tsval) & 0xFFFFFFFF < 64


def test_listen_cookie_ack_without_timestamps_gives_no_wscale_no_sack():
    """Without timestamps the cookie holds only the MSS: the child uses neither scaling nor SACK."""
    config = replace(COOKIES, window_scaling=True, sack=True)
    listener = _listener(config)
    _fill_syn_queue(listener)
    synack = _synack(listener, TcpOptions(mss=1460, wscale=7, sack_permitted=True))
    assert synack.options == TcpOptions(mss=config.mss)
    child = listener.ack_arrives(REMOTE, _ack_for(synack), 1.0)
    assert (child.tcb.snd_wscale, child.tcb.rcv_wscale, child.sack_ok) == (0, 0, False)


def test_listen_cookie_ack_with_accept_queue_full_is_dropped_then_taken_once_room():
    """Linux: no room in the accept queue drops the ACK (ListenOverflows, ListenDrops); the peer resends."""
    listener = _listener(replace(COOKIES, syncookies=2), backlog=0)  # room for one (Linux: backlog + 1)
    peers = [(REMOTE[0], 1), (REMOTE[0], 2)]
    synacks = [listener.syn_arrives(p, replace(seg("S", IRS), src_port=p[1]), 0.0) for p in peers]
    acks = [replace(_ack_for(s), src_port=p[1]) for s, p in zip(synacks, peers, strict=True)]
    first = listener.ack_arrives(peers[0], acks[0], 0.1)
    listener.on_established(first)  # the accept queue is now full
    assert listener.ack_arrives(peers[1], acks[1], 0.2) is None
    assert (listener.counters["ListenOverflows"], listener.counters["ListenDrops"]) == (1, 1)
    assert listener.accept() is first
    assert isinstance(listener.ack_arrives(peers[1], acks[1], 1.2), Connection)  # the retransmitted ACK


# ---------------------------------------------------------------- through the demultiplexer


def test_demux_cookie_ack_registers_the_child_as_a_passive_open():
    """The child joins the connection table like any other; the next segment of the tuple reaches it."""
    demux = Demux(replace(COOKIES, syncookies=2))
    demux.listen(LOCAL)
    _, synack = demux.segment_arrives(REMOTE[0], LOCAL[0], seg("S", IRS, options=TcpOptions(mss=1460)), 0.0)
    assert synack is not None and synack.flags == Flags.SYN | Flags.ACK
    assert not demux.connections and demux.counters["OutRsts"] == 0
    child, reply = demux.segment_arrives(REMOTE[0], LOCAL[0], _ack_for(synack), 0.5)
    assert reply is None and child is demux.connections[TUPLE]
    assert demux.counters["PassiveOpens"] == 1 and demux.counters["SyncookiesRecv"] == 1
    demux.segment_arrives(REMOTE[0], LOCAL[0], seg("P.", IRS + 1, synack.seq + 1, data=b"abc"), 0.6)
    assert child.read() == b"abc"


def test_demux_listeners_share_the_stacks_secret_and_counters():
    """One key per stack (drawn at start), one set of counters for `tcpstack stats`."""
    demux = Demux(replace(COOKIES, syncookies=2))
    a, b = demux.listen((LOCAL[0], 80)), demux.listen((LOCAL[0], 81))
    assert a.cookie_secret == b.cookie_secret == demux.cookie_secret and a.counters is b.counters is demux.counters
    assert Demux(COOKIES).cookie_secret != demux.cookie_secret


def test_listen_cookie_key_comes_from_the_configs_rng():
    """RFC 4987 §3.6 with injected randomness: the same seed gives the same cookie key, hence the same
    cookie for the same SYN (a repeatable run); another seed gives another."""

    def cookie(seed: int) -> int:
        listener = Listener(replace(COOKIES, syncookies=2, rng=Random(seed)), LOCAL)
        answer = listener.syn_arrives(REMOTE, seg("S", IRS, options=TcpOptions(mss=1460)), 1.0)
        assert isinstance(answer, Segment) and answer.flags == Flags.SYN | Flags.ACK
        return answer.seq

    assert cookie(5) == cookie(5) != cookie(6)
