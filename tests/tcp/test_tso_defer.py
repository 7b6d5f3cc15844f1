"""When a packet of several segments waits for the next ACK (Linux tcp_tso_should_defer, tso_defer.py).

Each test starts where the initial window (10 segments of 1460 bytes, sent at 1.0 s) has just left and
another 10 segments wait in one skb; the window and flight each test passes say how much room is free.
"""

import pytest

from stack.tcp import tso_defer
from stack.tcp.connection import Connection
from stack.tcp.state import State

MSS = 1460
SENT_AT = 1.0
GSO_SEGMENTS = 44  # a 64 KB GSO packet


@pytest.fixture
def burst(conn_in) -> Connection:
    c = conn_in(State.ESTABLISHED)
    c.send(b"d" * (20 * MSS), SENT_AT)
    assert len(c.segments_to_send(SENT_AT)) == 10
    return c


def test_established_one_segment_of_room_with_the_ack_due_waits_for_it(burst):
    """The oldest segment's ACK is due now (SRTT 0 after an instant handshake) and one segment of a
    window of 11 is free: the packet waits for that ACK, the congestion window the limit."""
    assert tso_defer.decide(burst, SENT_AT, MSS, 11, 10, GSO_SEGMENTS) == tso_defer.CWND_LIMITED


def test_established_nothing_sent_for_a_millisecond_sends_at_once(burst):
    """Linux defers only if the last transmission was recent (1 ms), so that an idle sender does not
    hold back the packet that starts a burst."""
    assert tso_defer.decide(burst, SENT_AT + 0.0011, MSS, 11, 10, GSO_SEGMENTS) == tso_defer.SEND


def test_established_a_third_of_the_window_free_sends_at_once(burst):
    """tcp_tso_win_divisor 3: with 30 of 40 segments free (more than a third) the packet goes."""
    assert tso_defer.decide(burst, SENT_AT, MSS, 40, 10, GSO_SEGMENTS) == tso_defer.SEND


def test_established_a_whole_gso_packet_free_sends_at_once(burst):
    """Room for a whole GSO packet (two segments here) is worth sending, however small the share."""
    assert tso_defer.decide(burst, SENT_AT, MSS, 11, 9, 2) == tso_defer.SEND


def test_established_ack_not_due_yet_sends_at_once(burst):
    """With a 100 ms SRTT the oldest segment's ACK is due 100 ms after it left, later than
    min(SRTT/2, 1 ms) from now: waiting for it would idle the window."""
    burst.rto.srtt = 0.1
    assert tso_defer.decide(burst, SENT_AT, MSS, 11, 10, GSO_SEGMENTS) == tso_defer.SEND


def test_established_small_peer_window_waits_receive_window_limited(burst):
    """The peer's window, not cwnd, leaves one segment free: the packet waits, receive-window limited."""
    burst.tcb.snd_wnd = 11 * MSS
    assert tso_defer.decide(burst, SENT_AT, MSS, 20, 10, GSO_SEGMENTS) == tso_defer.RWND_LIMITED


def test_rto_recovery_sends_at_once(burst):
    """Linux never defers from Recovery or Loss on (icsk_ca_state >= TCP_CA_Recovery)."""
    now = burst.next_deadline()
    burst.handle_timer(now)
    burst.segments_to_send(now)
    assert burst.recovery.in_recovery
    assert tso_defer.decide(burst, now, MSS, 11, 10, GSO_SEGMENTS) == tso_defer.SEND
