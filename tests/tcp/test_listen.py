"""LISTEN: a SYN creates a child in SYN_RECEIVED; the Listener's queues (RFC 9293 §3.10.7.2)."""

from dataclasses import replace

import pytest

from stack.tcp.connection import Connection
from stack.tcp.listener import Listener
from stack.tcp.state import State
from stack.wire.segment import TcpOptions
from tests.tcp.conftest import CONFIG, IRS, ISS, LOCAL, REMOTE, seg


def test_listen_syn_sends_synack_with_mss_and_enters_syn_received():
    """§3.10.7.2 third check: SYN in LISTEN -> SYN,ACK <SEQ=ISS><ACK=RCV.NXT>, SYN-RECEIVED."""
    c = Connection.from_syn(CONFIG, LOCAL, REMOTE, seg("S", IRS, options=TcpOptions(mss=1400)), 0.0)
    out = c.segments_to_send(0.0)
    assert [(s.flags, s.seq, s.ack) for s in out] == [(0x12, ISS, IRS + 1)]
    assert out[0].options.mss == CONFIG.mss
    assert c.state is State.SYN_RECEIVED
    assert [str(t) for t in c.history] == ["CLOSE -> LISTEN (passive open)", "LISTEN -> SYN_RECV (SYN)"]
    assert c.tcb.snd_mss == 1400


def test_listen_syn_without_mss_option_assumes_536():
    """§3.7.1: without the MSS option the send MSS is 536."""
    c = Connection.from_syn(CONFIG, LOCAL, REMOTE, seg("S", IRS), 0.0)
    assert c.tcb.snd_mss == 536


def test_listen_syn_with_wscale_negotiates_scaling_both_ways():
    """RFC 7323 §2.2: both SYNs carry the option -> SND.WND scaled by the peer's shift, ours applied out."""
    config = replace(CONFIG, window_scaling=True, receive_buffer=1 << 20, receive_buffer_max=1 << 20)
    c = Connection.from_syn(config, LOCAL, REMOTE, seg("S", IRS, win=1000, options=TcpOptions(wscale=7)), 0.0)
    (synack,) = c.segments_to_send(0.0)
    assert synack.options.wscale == 5  # 1 MiB that cannot grow needs a shift of 5 to fit 16 bits
    assert synack.window == 0xFFFF  # the window in a SYN,ACK is never scaled (RFC 7323 §2.2)
    assert c.tcb.snd_wnd == 1000  # nor the one in the SYN
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=1000), 0.0)
    assert c.tcb.snd_wnd == 1000 << 7
    c.send(b"x", 0.0)
    (data,) = c.segments_to_send(0.0)
    assert data.window == (718 * 1460 + 31) >> 5  # the first window, 1 MiB in whole segments, rounded up


def test_listen_syn_without_wscale_disables_scaling():
    """RFC 7323 §2.2: scaling only when both sides sent the option; our SYN,ACK then omits it."""
    config = replace(CONFIG, window_scaling=True, receive_buffer=1 << 20)
    c = Connection.from_syn(config, LOCAL, REMOTE, seg("S", IRS, win=1000), 0.0)
    (synack,) = c.segments_to_send(0.0)
    assert synack.options.wscale is None
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=1000), 0.0)
    assert (c.tcb.snd_wscale, c.tcb.rcv_wscale, c.tcb.snd_wnd) == (0, 0, 1000)
    c.send(b"x", 0.0)
    assert c.segments_to_send(0.0)[0].window == 0xFFFF  # the 1 MiB buffer, clamped to 16 bits


def test_listen_listener_established_child_moves_to_accept_queue():
    """§3.10.7.2: each SYN gets a child; once ESTABLISHED it waits in the accept queue."""
    listener = Listener(CONFIG, LOCAL)
    child = listener.on_syn(REMOTE, seg("S", IRS), 0.0)
    assert child is not None and child in listener.syn_queue and listener.accept() is None
    child.receive_segment(seg(".", IRS + 1, ISS + 1), 0.0)
    listener.on_established(child)
    assert listener.accept() is child and not listener.syn_queue


def test_listen_listener_full_syn_queue_drops_syn_silently():
    """Like Linux: a SYN that finds the SYN queue full is dropped (the peer retries), and counted."""
    listener = Listener(replace(CONFIG, syn_backlog=2), LOCAL)
    assert listener.on_syn((REMOTE[0], 1), seg("S", IRS), 0.0) is not None
    assert listener.on_syn((REMOTE[0], 2), seg("S", IRS), 0.0) is not None
    assert listener.on_syn((REMOTE[0], 3), seg("S", IRS), 0.0) is None
    assert listener.overflows == 1 and len(listener.syn_queue) == 2


def test_listen_listener_full_accept_queue_drops_syn():
    """Like Linux (sk_acceptq_is_full): a backlog of N holds N + 1 children; then new SYNs are dropped."""
    listener = Listener(CONFIG, LOCAL, backlog=0)
    child = listener.on_syn((REMOTE[0], 1), seg("S", IRS), 0.0)
    listener.on_established(child)
    assert listener.on_syn((REMOTE[0], 2), seg("S", IRS), 0.0) is None
    assert listener.overflows == 1


@pytest.mark.parametrize(
    ("backlog", "taken"), [(0, 0), (5, 5), (4096, 4096), (4097, 4096), (1 << 31, 4096), (-1, 4096)]
)
def test_listen_backlog_above_somaxconn_or_negative_is_somaxconn(backlog, taken):
    """Linux __sys_listen: a backlog above net.core.somaxconn (4096), or negative (compared as unsigned), is
    somaxconn; so listen(fd, -1) asks for the most, not for a queue that is always full."""
    assert Listener(CONFIG, LOCAL, backlog=backlog).backlog == taken


def test_listen_backlog_configured_above_somaxconn_is_kept():
    """A stack configured with a larger backlog (serve --backlog) lets listen() ask for that much."""
    assert Listener(replace(CONFIG, backlog=10000), LOCAL, backlog=10000).backlog == 10000


def test_listen_listener_close_enters_closed_through_the_table():
    """§3.10.4: CLOSE in LISTEN -> CLOSED, recorded like every transition."""
    listener = Listener(CONFIG, LOCAL)
    listener.close(1.0)
    assert [str(t) for t in listener.history] == ["CLOSE -> LISTEN (passive open)", "LISTEN -> CLOSE (CLOSE)"]
