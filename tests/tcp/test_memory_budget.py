"""The stack-wide memory budget as the core sees it (stack/tcp/memory.py, Linux tcp_mem): under pressure
out-of-order data is pruned and windows stop growing; at the limit new data is dropped unacknowledged,
except on a connection whose receive queue is empty, and writes wait unless the send buffer is empty."""

from __future__ import annotations

from stack.tcp.memory import FORCED_SEND, MemoryBudget
from stack.tcp.state import State
from tests.tcp.conftest import IRS, ISS, seg, sent

LIMIT = 1 << 20


def _budget(used: int) -> MemoryBudget:
    budget = MemoryBudget(LIMIT)
    budget.charge(used)
    return budget


def test_memory_budget_pressure_from_three_quarters_until_below_half():
    """Linux tcp_mem: pressure is entered at tcp_mem[1] and left below tcp_mem[0] (hysteresis)."""
    budget = _budget(LIMIT * 3 // 4 - 1)
    assert not budget.pressure
    budget.charge(1)
    assert budget.pressure and budget.pressures == 1 and not budget.exhausted
    budget.charge(-LIMIT // 4)
    assert budget.pressure  # still above half
    budget.charge(-1)
    assert not budget.pressure
    budget.charge(LIMIT)
    assert budget.exhausted and budget.pressures == 2


def test_established_out_of_order_under_pressure_prunes_the_queue(conn_in):
    """Linux tcp_prune_ofo_queue: held out-of-order data goes (the sender still has it, RFC 2018 §8)."""
    c = conn_in(State.ESTABLISHED)
    c.receive_segment(seg(".", IRS + 1 + 100, ISS + 1, b"b" * 100), 0.0)
    assert c.held_bytes == 100
    c.memory = _budget(LIMIT * 3 // 4)
    c.receive_segment(seg(".", IRS + 1 + 300, ISS + 1, b"c" * 100), 0.0)
    assert c.held_bytes == 0 and c.counters.events().ofo_pruned == 1
    assert sent(c, 0.0) == [(".", ISS + 1, IRS + 1, b"")]  # a duplicate ACK, without SACK blocks to renege


def test_established_in_order_data_at_the_limit_dropped_unacknowledged(conn_in):
    """Linux TCPRcvQDrop: nothing is acknowledged that was not kept, so nothing acknowledged is lost."""
    c = conn_in(State.ESTABLISHED)
    c.memory = _budget(LIMIT)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"a" * 100), 0.0)  # an empty queue takes it anyway
    sent(c, 0.0)
    c.receive_segment(seg(".", IRS + 101, ISS + 1, b"b" * 100), 0.0)
    assert c.recv_queue_bytes == 100 and c.counters.events().rcvq_drops == 1
    assert sent(c, 0.0) == [(".", ISS + 1, IRS + 101, b"")]
    assert c.read() == b"a" * 100


def test_established_window_stops_growing_under_pressure(conn_in):
    """Linux tcp_mem[1]: a read frees buffer space, but the window offered does not grow."""
    c = conn_in(State.ESTABLISHED, receive_buffer=20000)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, b"a" * 10000), 0.0)
    window = c.segments_to_send(1.0)[0].window
    c.memory = _budget(LIMIT * 3 // 4)
    c.read()
    assert sent(c, 1.0) == []  # no window update announces room
    c.receive_segment(seg(".", IRS + 10001, ISS + 1, b"b" * 10), 1.0)
    assert c.segments_to_send(2.0)[0].window <= window - 10


def test_established_writes_at_the_limit_wait_unless_the_send_buffer_is_empty(conn_in):
    """Linux sk_forced_mem_schedule: an empty send buffer may still take a little, so an answer goes out."""
    c = conn_in(State.ESTABLISHED)
    c.memory = _budget(LIMIT)
    assert c.send(b"x" * 100_000, 0.0) == FORCED_SEND
    assert c.send(b"y", 0.0) == 0
    c.memory.charge(-LIMIT)
    assert c.send(b"y", 0.0) == 1
