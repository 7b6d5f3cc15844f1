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
