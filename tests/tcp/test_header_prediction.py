"""Header prediction in ESTABLISHED (stack/tcp/header_prediction.py): which segments take the fast path,
and that every other segment takes the full path of RFC 9293 §3.10.7.4.

Every test runs twins: the same connection built twice, one with header prediction and one without, fed
the same segments, user calls and timers. Whatever path a segment takes, both twins must send the same
segments and end in the same state, down to every field of every object the connection holds; only the
counters of predicted segments (TCPHPHits, TCPHPAcks) tell them apart.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace
from enum import Enum

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stack.tcp.segment_arrives as segment_arrives_module
from stack.tcp.config import TcpConfig
from stack.tcp.connection import Connection
from stack.tcp.ecn import CE
from stack.tcp.errors import LocalProtocolError
from stack.tcp.memory import MemoryBudget
from stack.tcp.state import State
from stack.wire.segment import Flags, Segment, TcpOptions
from tests.tcp.conftest import IssDraws

LOCAL = (0x0A070002, 80)
REMOTE = (0x0A070001, 40000)
ISS, IRS = 1000, 5000
MASK = 0xFFFFFFFF
MSS = 1448  # the peer's: 1460 less the timestamp option
PEER_WSCALE = 2
TS0 = 70000  # the peer's first TSval
CONFIG = TcpConfig(mss=1460, msl=1.0, receive_buffer=65535, delayed_ack=0.04)
_HP_COUNTERS = ("hp_hits", "hp_acks")


@dataclass
class Peer:
    """What the peer of a twin pair has seen and sent: its sequence numbers follow ours."""

    ts: int = TS0 + 1
    win: int = 65535  # the raw window field it sends


def established(
    config: TcpConfig,
    ts: bool = True,
    sack: bool = True,
    wscale: bool = True,
    iss: int = ISS,
    irs: int = IRS,
    peer_wscale: int = PEER_WSCALE,
) -> Connection:
    """A passive open completed by real segments at time 0, with the options the peer's SYN offered (its
    window scale `peer_wscale`, if `wscale`)."""
    config = replace(config, rng=IssDraws(iss))
    syn_flags = Flags.SYN | Flags.ECE | Flags.CWR if config.ecn else Flags.SYN
    options = TcpOptions(
        mss=1460,
        wscale=peer_wscale if wscale else None,
        sack_permitted=sack,
        timestamps=(TS0, 0) if ts else None,
    )
    c = Connection.from_syn(config, LOCAL, REMOTE, Segment(40000, 80, irs, 0, syn_flags, 65535, options=options), 0.0)
    synack = c.segments_to_send(0.0)[0]
    echo = synack.options.timestamps
    ack_opts = TcpOptions(timestamps=(TS0 + 1, echo[0])) if echo else TcpOptions()
    c.receive_segment(Segment(40000, 80, (irs + 1) & MASK, (iss + 1) & MASK, Flags.ACK, 65535, options=ack_opts), 0.0)
    c.segments_to_send(0.0)
    assert c.state is State.ESTABLISHED
    while c.next_event() is not None:
        pass
    return c


def twins(
    ts: bool = True, sack: bool = True, wscale: bool = True, iss: int = ISS, irs: int = IRS, **changes
) -> tuple[Connection, Connection]:
    """(fast, full): the same established connection with and without header prediction."""
    config = replace(CONFIG, **changes)
    fast = established(config, ts, sack, wscale, iss, irs)
    full = established(replace(config, header_prediction=False), ts, sack, wscale, iss, irs)
    return fast, full


_PLAIN = (bool, int, float, str, bytes, Enum, type(None))
_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = tuple(n for c in cls.__mro__ for n in getattr(c, "__slots__", ()) if n not in _HP_COUNTERS)
        _FIELDS[cls] = names
    return names


def snapshot(obj: object, seen: set[int]) -> object:
    """Every field of `obj` and of the objects it holds, as plain values (each object once)."""
    if isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, (memoryview, bytearray)):
        return bytes(obj)
    if isinstance(obj, (list, tuple)):
        return [snapshot(x, seen) for x in obj]
    if isinstance(obj, dict):
        return sorted((k, snapshot(v, seen)) for k, v in obj.items())
    if isinstance(obj, (TcpConfig, random.Random)) or callable(obj):
        return type(obj).__name__  # the twins' configs differ in header_prediction alone
    if id(obj) in seen:
        return "seen"
    seen.add(id(obj))
    out: list[object] = [type(obj).__name__]
    for name in _fields(type(obj)):
        if hasattr(obj, name):
            out.append(snapshot(getattr(obj, name), seen))
    if hasattr(obj, "__dict__"):
        out.append(snapshot(vars(obj), seen))
    return out


def state_of(conn: Connection) -> object:
    return snapshot(conn, set())


def hp(conn: Connection) -> tuple[int, int]:
    return conn.counters.hp_hits, conn.counters.hp_acks


def feed(pair: tuple[Connection, Connection], seg: Segment, now: float) -> list[Segment]:
    """The segment to both twins; both must answer alike and end alike. Returns the answer."""
    fast, full = pair
    fast.receive_segment(seg, now)
    full.receive_segment(seg, now)
    return settle(pair, now)


def feed_predicted(pair: tuple[Connection, Connection], seg: Segment, now: float, monkeypatch) -> list[Segment]:
    """As feed, and the twin with header prediction must take its fast path."""
    fast, full = pair
    full.receive_segment(seg, now)
    with monkeypatch.context() as patched:
        patched.setattr(segment_arrives_module, "_synchronized", _full_path_not_taken)
        fast.receive_segment(seg, now)
    return settle(pair, now)


def settle(pair: tuple[Connection, Connection], now: float) -> list[Segment]:
    fast, full = pair
    out, expected = fast.segments_to_send(now), full.segments_to_send(now)
    assert out == expected
    assert state_of(fast) == state_of(full)
    assert hp(full) == (0, 0)
    return out


def peer_seg(
    conn: Connection,
    peer: Peer,
    flags: int = Flags.ACK,
    data: bytes = b"",
    dseq: int = 0,
    ack: int | None = None,
    win: int | None = None,
    ts: int | None | bool = True,
    sack: tuple[tuple[int, int], ...] = (),
    ecn: int = 0,
    urgent: int = 0,
) -> Segment:
    """A segment from the peer: at RCV.NXT (+ dseq), acknowledging SND.UNA unless `ack` says otherwise,
    with a newer timestamp (`ts=False`: none, an int: that TSval)."""
    tcb = conn.tcb
    tsval = peer.ts if ts is True else ts
    peer.ts += 1
    options = TcpOptions(
        timestamps=(tsval & MASK, conn.ts_val(0.0)) if tcb.ts_ok and ts is not False else None, sack_blocks=sack
    )
    return Segment(
        40000,
        80,
        (tcb.rcv_nxt + dseq) & MASK,
        (tcb.snd_una if ack is None else ack) & MASK,
        Flags(flags),
        peer.win if win is None else win,
        data,
        options,
        urgent=urgent,
        ecn=ecn,
    )


def with_flight(pair: tuple[Connection, Connection], segments: int, now: float = 0.0) -> None:
    """Our application sends `segments` full segments (they leave at once: the initial window)."""
    for c in pair:
        c.send(b"x" * (segments * MSS), now)
    settle(pair, now)


# ------------------------------------------------------------------ segments that take the fast path


def test_established_in_order_data_takes_fast_path(monkeypatch):
    """RFC 9293 §3.10.7.4 seventh check for the predicted segment: SEG.SEQ = RCV.NXT, flags ACK,PSH,
    in the window: the text is appended and our ACK scheduled (the first data: at once, quickack).
    TCPHPHits counts as Linux's: not the first data (no memory was reserved for it: Linux's slow path
    reserves a page), then the next segment, which that page takes."""
    pair, peer = twins(), Peer()
    fast = pair[0]
    out = feed_predicted(pair, peer_seg(fast, peer, Flags.ACK | Flags.PSH, b"hello"), 0.01, monkeypatch)
    assert [(s.flags, s.ack) for s in out] == [(Flags.ACK, IRS + 6)]
    assert hp(fast) == (0, 0)
    feed_predicted(pair, peer_seg(fast, peer, Flags.ACK | Flags.PSH, b"world"), 0.011, monkeypatch)
    assert fast.counters.by_linux_name()["TCPHPHits"] == 1  # as `tcpstack stats` names it
    assert fast.read() == b"helloworld"


def test_established_in_order_data_run_takes_fast_path_and_acks_every_second(monkeypatch):
    """§3.8.6.3: the fast path schedules ACKs as the full path does: every second full-sized segment.
    Read at once, each packet gives its memory back and the reserve with it (sk_mem_reclaim), so none is
    a TCPHPHits for Linux (10 such segments on Linux 6.18: none)."""
    pair, peer = twins(), Peer()
    fast = pair[0]
    acks = []
    for i in range(40):
        acks += feed_predicted(pair, peer_seg(fast, peer, Flags.ACK, b"d" * MSS), 0.01 + i * 0.0001, monkeypatch)
        pair[0].read(), pair[1].read()
    assert hp(fast) == (0, 0)
    assert acks[-1].ack == IRS + 1 + 40 * MSS
    assert len(acks) < 40  # quickack ends; then one ACK per two segments


def test_established_first_full_segment_judged_as_a_receiver_rtt_sample_by_the_size_before_it(monkeypatch):
    """RFC 7323 §4.1 as Linux takes a receiver's RTT sample (tcp_rcv_rtt_measure_ts before
    tcp_measure_rcv_mss, on both of its paths): the first full-sized data segment is judged against the
    segment size estimated before it, so the fast path starts the buffer's right-sizing at the same point,
    from the same space, as the full path (a 4 KB receive buffer, where the two points differ)."""
    pair, peer = twins(receive_buffer=4096), Peer()
    fast = pair[0]
    for c in pair:
        c.send(b"x", 0.0)  # (its TSval is the first the peer's segment echoes that no segment echoed)
    settle(pair, 0.0)
    feed_predicted(pair, peer_seg(fast, peer, Flags.ACK, b"d" * MSS), 0.0, monkeypatch)
    assert fast.receiver.rcv_space == pair[1].receiver.rcv_space


def test_established_data_acking_new_data_takes_fast_path(monkeypatch):
    """§3.10.7.4 fifth check (SND.UNA < SEG.ACK =< SND.MAX) and seventh check in one predicted segment."""
    pair, peer = twins(), Peer()
    fast = pair[0]
    with_flight(pair, 3)
    feed_predicted(pair, peer_seg(fast, peer, Flags.ACK | Flags.PSH, b"reply", ack=ISS + 1 + MSS), 0.02, monkeypatch)
    assert fast.read() == b"reply"
    assert fast.tcb.snd_una == ISS + 1 + MSS


def test_established_pure_ack_advancing_snd_una_takes_fast_path():
    """§3.10.7.4 fifth check: SND.UNA < SEG.ACK =< SND.MAX sets SND.UNA, frees the acknowledged data,
    takes an RTT sample and grows the window; the predicted ACK does all of it, and more data goes out."""
    pair, peer = twins(), Peer()
    fast = pair[0]
    for c in pair:
        c.send(b"y" * (30 * MSS), 0.0)
    settle(pair, 0.0)
    cwnd = fast.cc.cwnd
    out = feed(pair, peer_seg(fast, peer, ack=ISS + 1 + 2 * MSS), 0.02)
    assert hp(fast) == (0, 1)
    assert fast.tcb.snd_una == ISS + 1 + 2 * MSS
    assert fast.rto.srtt is not None and fast.cc.cwnd > cwnd
    assert sum(len(s.payload) for s in out) >= 2 * MSS  # slow start: more than the ACK released


def test_established_pure_ack_of_everything_stops_retransmission_timer_on_fast_path():
    """RFC 6298 (5.2): all data acknowledged: the retransmission timer stops, on the fast path too."""
    pair, peer = twins(), Peer()
    fast = pair[0]
    with_flight(pair, 2)
    feed(pair, peer_seg(fast, peer, ack=ISS + 1 + 2 * MSS), 0.02)
    assert hp(fast) == (0, 1)
    assert fast.timers.deadline("retransmit") is None


def test_established_ack_without_timestamps_takes_fast_path(monkeypatch):
    """RFC 7323 §3.2: without negotiated timestamps no segment needs one to be predicted."""
    pair, peer = twins(ts=False, sack=False, wscale=False), Peer()
    fast = pair[0]
    with_flight(pair, 2)
    feed_predicted(pair, peer_seg(fast, peer, ack=ISS + 1 + MSS), 0.02, monkeypatch)
    feed_predicted(pair, peer_seg(fast, peer, Flags.ACK | Flags.PSH, b"abc"), 0.03, monkeypatch)
    assert hp(fast) == (0, 1)


def _full_path_not_taken(conn: Connection, seg: Segment, now: float) -> None:
    raise AssertionError("the segment took the full path")


def test_established_ack_with_grown_window_takes_fast_path(monkeypatch):
    """§3.10.7.4 fifth check: an ACK newer than the last window update sets SND.WND, SND.WL1, SND.WL2;
    for an open window whose right edge stays at or beyond SND.MAX that is all the update does, and the
    fast path does it. TCPHPAcks counts, as Linux's, only ACKs that repeat the window."""
    pair, peer = twins(), Peer()
    fast, full = pair
    with_flight(pair, 3)
    seg = peer_seg(fast, peer, ack=ISS + 1 + MSS, win=peer.win + 1000)
    full.receive_segment(seg, 0.02)
    monkeypatch.setattr(segment_arrives_module, "_synchronized", _full_path_not_taken)
    fast.receive_segment(seg, 0.02)
    settle(pair, 0.02)
    assert fast.tcb.snd_wnd == fast.tcb.max_snd_wnd == (peer.win + 1000) << PEER_WSCALE
    assert hp(fast) == (0, 0)


def test_established_data_with_smaller_open_window_takes_fast_path(monkeypatch):
    """§3.10.7.4 fifth and seventh checks: in-order data whose window shrinks but still covers SND.MAX
    updates SND.WND (MAX.SND.WND stays) and is appended, on the fast path."""
    pair, peer = twins(), Peer()
    fast, full = pair
    with_flight(pair, 3)
    seg = peer_seg(fast, peer, Flags.ACK | Flags.PSH, b"reply", win=peer.win - 1)
    full.receive_segment(seg, 0.02)
    monkeypatch.setattr(segment_arrives_module, "_synchronized", _full_path_not_taken)
    fast.receive_segment(seg, 0.02)
    settle(pair, 0.02)
    assert fast.tcb.snd_wnd == (peer.win - 1) << PEER_WSCALE < fast.tcb.max_snd_wnd
    assert fast.read() == b"reply"


# ------------------------------------------------------------------ segments that take the full path


def _unpredicted(name: str, pair: tuple[Connection, Connection], peer: Peer) -> Segment:
    """A segment that fails one prediction condition, after setting up what it needs."""
    fast = pair[0]
    data = b"z" * 100
    una, mx = fast.tcb.snd_una, fast.tcb.snd_max
    cases = {
        "window_below_snd_max": lambda: peer_seg(fast, peer, ack=una + MSS, win=MSS >> PEER_WSCALE),
        "out_of_order": lambda: peer_seg(fast, peer, data=data, dseq=MSS),
        "old_data": lambda: peer_seg(fast, peer, data=data, dseq=-100),
        "sack_block": lambda: peer_seg(fast, peer, ack=una, sack=((una + MSS, una + 2 * MSS),)),
        "urg": lambda: peer_seg(fast, peer, Flags.ACK | Flags.URG, data, urgent=1),
        "rst": lambda: peer_seg(fast, peer, Flags.ACK | Flags.RST),
        "syn": lambda: peer_seg(fast, peer, Flags.SYN, ack=0),
        "fin": lambda: peer_seg(fast, peer, Flags.ACK | Flags.FIN, data),
        "no_ack_bit": lambda: peer_seg(fast, peer, Flags.PSH, data),
        "ece": lambda: peer_seg(fast, peer, Flags.ACK | Flags.ECE, data),
        "old_timestamp": lambda: peer_seg(fast, peer, data=data, ts=TS0 - 5),
        "no_timestamp": lambda: peer_seg(fast, peer, data=data, ts=False),
        "ack_beyond_snd_max": lambda: peer_seg(fast, peer, data=data, ack=mx + 1),
        "ack_below_snd_una": lambda: peer_seg(fast, peer, data=data, ack=una - 1),
        "duplicate_ack": lambda: peer_seg(fast, peer, ack=una),
        "zero_window": lambda: peer_seg(fast, peer, ack=una + MSS, win=0),
        "ce_mark": lambda: peer_seg(fast, peer, data=data, ecn=CE),
        "beyond_our_window": lambda: peer_seg(fast, peer, data=b"w" * 70000),
    }
    return cases[name]()


UNPREDICTED = [
    "window_below_snd_max",
    "out_of_order",
    "old_data",
    "sack_block",
    "urg",
    "rst",
    "syn",
    "fin",
    "no_ack_bit",
    "ece",
    "old_timestamp",
    "no_timestamp",
    "ack_beyond_snd_max",
    "ack_below_snd_una",
    "duplicate_ack",
    "zero_window",
    "ce_mark",
    "beyond_our_window",
]


def test_established_unpredicted_segment_takes_full_path():
    """Each segment that fails one condition of the prediction (RFC 9293 §3.10.7.4: acceptability, RST,
    SYN, ACK, URG, text, FIN; RFC 7323 §5.3 PAWS; RFC 2018 SACK; RFC 3168 ECN) is left to the full path,
    with the same outcome as without header prediction."""
    for name in UNPREDICTED:
        pair, peer = twins(ecn=True), Peer()
        with_flight(pair, 3)
        feed(pair, _unpredicted(name, pair, peer), 0.02)
        assert hp(pair[0]) == (0, 0), name


def test_established_data_after_held_out_of_order_data_takes_full_path():
    """§3.10.7.4 seventh check: in-order data that fills a hole also delivers what was held, and is ACKed
    at once (RFC 5681 §4.2): the full path's work."""
    pair, peer = twins(), Peer()
    fast = pair[0]
    feed(pair, peer_seg(fast, peer, data=b"b" * MSS, dseq=MSS), 0.01)
    out = feed(pair, peer_seg(fast, peer, data=b"a" * MSS), 0.02)
    assert hp(fast) == (0, 0)
    assert out[-1].ack == IRS + 1 + 2 * MSS


def test_established_data_under_memory_pressure_takes_full_path():
    """§3.10.7.4 seventh check under memory pressure (stack/tcp/memory.py): the full path decides what of
    the text is kept."""
    pair, peer = twins(), Peer()
    for c in pair:
        budget = MemoryBudget(1000)
        budget.charge(900)
        c.memory = budget
    feed(pair, peer_seg(pair[0], peer, data=b"m" * 300), 0.01)
    assert hp(pair[0]) == (0, 0)


def test_established_ack_after_window_shrank_takes_full_path():
    """§3.8.6: after the peer shrank its window below SND.MAX, an ACK that reopens it resends the first
    segment beyond the old edge (connection.window_opened): the full path's work."""
    pair, peer = twins(), Peer()
    fast = pair[0]
    with_flight(pair, 4)
    feed(pair, peer_seg(fast, peer, ack=ISS + 1 + MSS, win=MSS >> PEER_WSCALE), 0.02)
    assert fast.short_edge is not None
    feed(pair, peer_seg(fast, peer, ack=ISS + 1 + 2 * MSS, win=MSS >> PEER_WSCALE), 0.03)
    assert hp(fast) == (0, 0)


# ------------------------------------------------------------------ differential: random segment sequences


@st.composite
def steps(draw) -> list[tuple]:
    """Peer segments near what the connection expects (mostly predictable, often not), user calls, time."""
    out = []
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["seg", "seg", "seg", "seg", "send", "read", "time", "close", "pressure"]))
        if kind == "seg":
            out.append(
                (
                    "seg",
                    draw(st.sampled_from([0x10, 0x18, 0x10, 0x18, 0x11, 0x30, 0x14, 0x02, 0x50, 0x90, 0x08])),
                    draw(st.sampled_from([0, 0, 0, 0, 1, -1, MSS, -MSS, 70000])),  # seq - RCV.NXT
                    draw(st.sampled_from(["una", "some", "some", "max", "max+1", "una-1", "wild"])),
                    draw(st.sampled_from([0, 0, 1, 100, MSS, MSS, 3 * MSS])),
                    draw(st.sampled_from(["same", "same", "same", "less", "more", "zero"])),
                    draw(st.sampled_from(["newer", "newer", "newer", "same", "older", "none"])),
                    draw(st.sampled_from([False, False, False, True])),  # a SACK block
                    draw(st.sampled_from([0, 0, 0, 2, CE])),
                    draw(st.integers(0, MASK)),
                )
            )
        elif kind == "send":
            out.append(("send", draw(st.sampled_from([1, 100, MSS, 5 * MSS, 40 * MSS]))))
        elif kind == "read":
            out.append(("read", draw(st.sampled_from([-1, 1, MSS]))))
        elif kind == "close":
            out.append(("close",))
        elif kind == "pressure":
            out.append(("pressure", draw(st.booleans())))
        else:
            out.append(("time", draw(st.sampled_from([0.0, 0.001, 0.04, 0.3, 1.5]))))
    return out


def attempt(call, *args) -> object:
    """What a user call returned, or the error it raised (sending after CLOSE is one)."""
    try:
        return call(*args)
    except LocalProtocolError as e:
        return str(e)


def run_twins(pair: tuple[Connection, Connection], peer: Peer, plan: list[tuple]) -> None:
    now = 0.0
    fast = pair[0]
    for step in plan:
        if step[0] == "seg":
            _, flags, dseq, ack_kind, n, win_kind, ts_kind, sack, ecn, wild = step
            tcb = fast.tcb
            flight = (tcb.snd_max - tcb.snd_una) & MASK
            ack = {
                "una": tcb.snd_una,
                "some": tcb.snd_una + (wild % (flight + 1)),
                "max": tcb.snd_max,
                "max+1": tcb.snd_max + 1,
                "una-1": tcb.snd_una - 1,
                "wild": wild,
            }[ack_kind]
            if win_kind != "same":
                peer.win = {"less": max(peer.win - 1000, 0), "more": min(peer.win + 1000, 65535), "zero": 0}[win_kind]
            elif peer.win == 0:
                peer.win = 16000
            ts = {"newer": True, "same": peer.ts - 1, "older": peer.ts - 100, "none": False}[ts_kind]
            blocks = ((tcb.snd_una + MSS) & MASK, (tcb.snd_una + 2 * MSS) & MASK) if sack else None
            seg = peer_seg(fast, peer, flags, bytes([wild & 0xFF]) * n, dseq, ack, None, ts, (blocks,) if sack else ())
            feed(pair, replace(seg, ecn=ecn), now)
        elif fast.finished:
            return  # a RST or a timeout ended both: no more user calls
        elif step[0] in ("send", "close"):
            outcomes = [
                attempt(c.send, b"s" * step[1], now) if step[0] == "send" else attempt(c.close, now) for c in pair
            ]
            assert outcomes[0] == outcomes[1]
            settle(pair, now)
        elif step[0] == "pressure":
            for c in pair:
                c.memory = MemoryBudget(1000)
                c.memory.charge(900 if step[1] else 0)  # from 3/4 of the limit: pressure
        elif step[0] == "read":
            assert pair[0].read(step[1]) == pair[1].read(step[1])
            for c in pair:
                c.receiver.maybe_window_update()
            settle(pair, now)
        else:
            now += step[1]
            for c in pair:
                c.handle_timer(now)
            settle(pair, now)


@settings(
    max_examples=int(os.environ.get("TCPSTACK_FUZZ_EXAMPLES", "80")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    plan=steps(),
    ts=st.booleans(),
    sack=st.booleans(),
    wscale=st.booleans(),
    ecn=st.booleans(),
    receive_buffer=st.sampled_from([4096, 65535]),
    congestion=st.sampled_from(["cubic", "reno", "bbr"]),
    tso=st.sampled_from([0, 65536]),
    numbers=st.sampled_from([(ISS, IRS), (MASK - 3 * MSS, MASK - 2 * MSS), (MASK - 5, (1 << 31) - 7)]),
)
def test_established_random_segments_fast_path_matches_full_path(
    plan, ts, sack, wscale, ecn, receive_buffer, congestion, tso, numbers
):
    """RFC 9293 §3.10.7.4 as a whole: whatever mix of predictable and unpredictable segments, user calls and
    timers arrives, header prediction changes no segment sent and no field of the connection; also where
    either side's sequence numbers wrap at 2**32 or cross 2**31 (the fast path's inlined arithmetic)."""
    iss, irs = numbers
    pair = twins(
        ts, sack, wscale, iss, irs, ecn=ecn, receive_buffer=receive_buffer, congestion=congestion, tso_max_bytes=tso
    )
    run_twins(pair, Peer(), plan)


def test_established_long_random_run_takes_both_paths():
    """RFC 9293 §3.10.7.4, the differential run above is not vacuous: a long seeded run of the same steps
    predicts many data segments and ACKs, leaves many others to the full path, and the twins never differ."""
    rng = random.Random(11)
    pair, peer = twins(ecn=True), Peer()
    plan: list[tuple] = [("send", 40 * MSS)]
    for _ in range(1500):
        r = rng.random()
        if r < 0.35:
            plan.append(("seg", 0x10, 0, "some", 0, "same", "newer", False, 0, rng.getrandbits(32)))
        elif r < 0.7:
            plan.append(("seg", 0x18, 0, "una", MSS, "same", "newer", False, 0, rng.getrandbits(32)))
        elif r < 0.8:
            plan.append(("send", rng.choice([100, MSS, 10 * MSS])))
        elif r < 0.85:
            plan.append(("read", -1))
        elif r < 0.9:
            plan.append(("time", rng.choice([0.001, 0.04, 0.3])))
        else:
            plan.append(
                (
                    "seg",
                    rng.choice([0x10, 0x18, 0x30, 0x50]),  # (a FIN would end the run's ESTABLISHED)
                    rng.choice([0, 1, MSS, -MSS]),
                    rng.choice(["una", "some", "max+1", "una-1"]),
                    rng.choice([0, 100, MSS]),
                    rng.choice(["same", "less", "more", "zero"]),
                    rng.choice(["newer", "older", "none"]),
                    rng.random() < 0.3,
                    rng.choice([0, CE]),
                    rng.getrandbits(32),
                )
            )
    run_twins(pair, peer, plan)
    hits, acks = hp(pair[0])
    assert hits > 200 and acks > 50
    assert pair[0].counters.segs_in - hits - acks > 100  # the rest took the full path
