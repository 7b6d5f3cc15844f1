"""Pacing: a controller's pacing_rate spaces our segments (what BBR needs, draft-cardwell §4.2.1)."""

from stack.tcp.congestion.reno import Reno
from stack.tcp.state import State
from tests.tcp.conftest import sent

MSS = 1460


class PacedReno(Reno):
    """Reno that asks for 146 kB/s: one full segment every 10 ms."""

    def __init__(self, mss: int, initial_window_segments: int = 10) -> None:
        super().__init__(mss, initial_window_segments)
        self.pacing_rate = 146_000.0


def test_established_pacing_rate_spaces_segments_with_a_timer(conn_in):
    c = conn_in(State.ESTABLISHED, congestion="tests.tcp.test_pacing:PacedReno")
    c.send(b"d" * (3 * MSS), 0.0)
    assert len(sent(c, 0.0)) == 1  # the window allows three; the rate allows one now
    assert c.timers.deadline("pacing") == 0.01
    c.handle_timer(0.01)
    assert len(sent(c, 0.01)) == 1
    c.handle_timer(0.02)
    assert len(sent(c, 0.02)) == 1


def test_established_no_pacing_rate_sends_the_window_at_once(conn_in):
    c = conn_in(State.ESTABLISHED, congestion="reno")
    c.send(b"d" * (3 * MSS), 0.0)
    assert len(sent(c, 0.0)) == 3


class FastPacedReno(Reno):
    """Reno that asks for 14.6 MB/s: one full segment every 0.1 ms, finer than a millisecond timer."""

    def __init__(self, mss: int, initial_window_segments: int = 10) -> None:
        super().__init__(mss, initial_window_segments)
        self.pacing_rate = 14_600_000.0


def test_established_pacing_timer_late_by_the_slack_catches_up(conn_in):
    """A pacing timer that fires a millisecond late (the loop's resolution, `timer_slack`) lets the
    segments that a millisecond at the rate allows leave at once, as Linux sends ~1 ms per TSO burst;
    without slack a late timer sends one segment per wake-up and the rate collapses."""
    c = conn_in(State.ESTABLISHED, congestion="tests.tcp.test_pacing:FastPacedReno", timer_slack=0.001)
    c.send(b"d" * (10 * MSS), 0.0)
    assert len(sent(c, 0.0)) == 1
    c.handle_timer(0.0011)  # due at 0.0001, fired on the next millisecond tick
    assert len(sent(c, 0.0011)) == 10 - 1


def test_established_pacing_without_slack_sends_one_per_late_timer(conn_in):
    c = conn_in(State.ESTABLISHED, congestion="tests.tcp.test_pacing:FastPacedReno")
    c.send(b"d" * (10 * MSS), 0.0)
    assert len(sent(c, 0.0)) == 1
    c.handle_timer(0.0011)
    assert len(sent(c, 0.0011)) == 1
