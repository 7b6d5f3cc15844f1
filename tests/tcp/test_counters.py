"""A connection's counters under Linux's names, and a stack's sum of the connections that closed."""

from __future__ import annotations

from dataclasses import fields

from stack.tcp.counters import Counters


def test_counters_add_sums_every_counter_under_its_linux_name():
    """`tcpstack stats` adds the counters of closed connections to those of open ones (Linux's MIB sums)."""
    total, one, two = Counters(), Counters(), Counters()
    one.segs_in, one.timeouts = 3, 1
    two.segs_in, two.ofo_pruned = 4, 2
    total.add(one)
    total.add(two)
    names = total.by_linux_name()
    assert names["InSegsConn"] == 7 and names["TCPTimeouts"] == 1 and names["OfoPruned"] == 2
    assert sum(names.values()) == 10
    assert one.by_linux_name()["InSegsConn"] == 3  # what was added stays as it was


def test_counters_start_at_zero_every_one():
    """A new connection's counters: the written constructor sets every field the table names."""
    counters = Counters()
    assert [getattr(counters, f.name) for f in fields(Counters)] == [0] * len(fields(Counters))


def test_counters_add_covers_every_field_the_table_names():
    """The written-out sum adds each counter to itself, none to another and none left out."""
    total, one = Counters(), Counters()
    for value, f in enumerate(fields(Counters), start=1):
        setattr(one, f.name, value)
    total.add(one)
    total.add(one)
    assert [getattr(total, f.name) for f in fields(Counters)] == [2 * v for v in range(1, len(fields(Counters)) + 1)]
