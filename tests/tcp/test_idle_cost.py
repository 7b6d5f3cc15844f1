"""What an idle connection holds in the core: a budget, measured with tracemalloc (counted, not timed)."""

from __future__ import annotations

import gc
import tracemalloc

from stack.demux import Demux
from stack.tcp import congestion
from stack.tcp.config import TcpConfig
from stack.tcp.connection import Connection
from stack.tcp.state import State
from stack.wire.segment import Flags, Segment, TcpOptions

LOCAL_IP, REMOTE_IP = 0x0A070002, 0x0A070001
# bytes per idle ESTABLISHED connection (4,301 measured with the core interpreted, 4.0 kB compiled): TCB,
# receiver, sender, recovery, controller, counters (8 bytes each: the five every segment moves; those of
# rarer events are made at the first of them)
CORE_BUDGET = 4310


def _accept_one(demux: Demux, port: int) -> Connection:
    """A passive open as Linux's client makes it (MSS, window scale, SACK, timestamps), accepted."""
    options = TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamps=(1, 0))
    conn, _ = demux.segment_arrives(
        REMOTE_IP, LOCAL_IP, Segment(port, 7, 1000, 0, Flags.SYN, 64240, options=options), 1.0
    )
    (synack,) = conn.segments_to_send(1.0)
    ack = Segment(
        port, 7, 1001, synack.seq + 1, Flags.ACK, 502, options=TcpOptions(timestamps=(2, synack.options.timestamps[0]))
    )
    demux.segment_arrives(REMOTE_IP, LOCAL_IP, ack, 1.001)
    assert conn.segments_to_send(1.001) == [] and conn.state is State.ESTABLISHED
    while conn.next_event() is not None:
        pass
    demux.accepted(conn, demux.listeners[7])
    return conn


def test_established_idle_connection_core_state_stays_within_budget():
    """RFC 9293 §3.3.1's TCB and what the core keeps beside it for an idle connection (no data yet): the
    parts a short or idle connection never uses must not make 1,000 of them cost megabytes."""
    demux = Demux(TcpConfig(mss=1460))
    demux.listen((LOCAL_IP, 7))
    _accept_one(demux, 39999)  # first-use allocations (caches, interned values) are not per connection
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        held = [_accept_one(demux, 40000 + i) for i in range(500)]
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    per_connection = sum(stat.size_diff for stat in after.compare_to(before, "filename")) / len(held)
    assert per_connection <= CORE_BUDGET, f"{per_connection:.0f} bytes per idle connection"
    assert all(conn not in demux.parent for conn in held)  # the listener lets go of what was accepted


def test_listen_syn_builds_one_controller_for_the_agreed_mss(monkeypatch):
    """A passive open makes one congestion controller, after the SYN's options set SND.MSS (RFC 9293
    §3.7.1, less the timestamp option, RFC 7323): none is built and thrown away per connection."""
    built = []
    attach = congestion.attach

    def counting_attach(*args, **kwargs):
        built.append(args[1])
        return attach(*args, **kwargs)

    monkeypatch.setattr(congestion, "attach", counting_attach)
    demux = Demux(TcpConfig(mss=1460))
    demux.listen((LOCAL_IP, 7))
    conn = _accept_one(demux, 40000)
    assert built == [1448] and conn.cc.mss == conn.tcb.snd_mss == 1448
    assert conn.recovery.cc is conn.cc
