"""Linux's send chronographs (tcp_chrono_start/stop) behind tcpi_busy_time, tcpi_rwnd_limited and
tcpi_sndbuf_limited: what each times, and which one a connection is in."""

from stack.tcp.chrono import BUSY, RWND_LIMITED, SNDBUF_LIMITED, UNSPEC, Chrono
from stack.tcp.state import State
from stack.tcp.tcp_info import tcp_info
from tests.tcp.conftest import IRS, ISS, seg


def test_chrono_later_condition_takes_over_and_gives_way_to_busy():
    c = Chrono()
    c.start(BUSY, 1.0)
    c.start(RWND_LIMITED, 2.0)
    c.start(BUSY, 2.5)  # BUSY ranks below what is timed: nothing changes
    c.stop(RWND_LIMITED, 3.0, queues_empty=False)
    assert c.kind == BUSY
    c.stop(BUSY, 4.0, queues_empty=True)
    assert c.kind == UNSPEC
    assert c.elapsed(10.0) == (3.0, 1.0, 0.0)


def test_chrono_stop_of_a_condition_not_timed_changes_nothing():
    c = Chrono()
    c.start(SNDBUF_LIMITED, 0.0)
    c.stop(RWND_LIMITED, 1.0, queues_empty=False)
    assert c.kind == SNDBUF_LIMITED
    assert c.elapsed(2.0) == (2.0, 0.0, 2.0)


def test_established_window_smaller_than_a_segment_counts_as_rwnd_limited(conn_in):
    """RFC 9293 §3.8.6: the data waits for the peer's window, and the time it waits is rwnd-limited."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=100), 0.0)
    c.segments_to_send(0.0)
    c.send(b"x" * 1000, 0.0)
    assert c.segments_to_send(0.0) == []
    info = tcp_info(c, 0.1)
    assert (info["tcpi_busy_time"], info["tcpi_rwnd_limited"]) == (100_000, 100_000)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=65535), 0.1)
    assert len(c.segments_to_send(0.1)) == 1
    c.receive_segment(seg(".", IRS + 1, ISS + 1001, win=65535), 0.15)
    info = tcp_info(c, 1.0)  # everything acknowledged at 0.15: the clock stopped there
    assert (info["tcpi_busy_time"], info["tcpi_rwnd_limited"]) == (150_000, 100_000)


def test_established_full_send_buffer_all_sent_counts_as_sndbuf_limited(conn_in):
    """The application waits for buffer space while cwnd has room and nothing is left unsent: Linux
    times that as send-buffer limited until an ACK frees space (tcp_cwnd_validate, tcp_check_space)."""
    c = conn_in(State.ESTABLISHED, send_buffer=3000, send_buffer_locked=True)
    # a record fills one skb, and with its overhead the buffer: the next write waits for room
    assert c.send(b"x" * 3000, 0.0, eor=True) == 3000
    assert c.send(b"x" * 2000, 0.0) == 0
    assert len(c.segments_to_send(0.0)) == 3
    assert tcp_info(c, 0.04)["tcpi_sndbuf_limited"] == 40_000
    c.receive_segment(seg(".", IRS + 1, ISS + 3001), 0.05)
    info = tcp_info(c, 1.0)
    assert (info["tcpi_busy_time"], info["tcpi_sndbuf_limited"], info["tcpi_rwnd_limited"]) == (50_000, 50_000, 0)
