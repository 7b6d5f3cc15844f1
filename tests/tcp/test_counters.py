"""A connection's counters under Linux's names, and a stack's sum of the connections that closed."""

from __future__ import annotations

from dataclasses import fields

from stack.tcp.counters import Counters, Events


def test_counters_add_sums_every_counter_under_its_linux_name():
    """`tcpstack stats` adds the counters of closed connections to those of open ones (Linux's MIB sums)."""
    total, one, two = Counters(), Counters(), Counters()
    one.segs_in = 3
    one.events().timeouts = 1
    two.segs_in = 4
    two.events().ofo_pruned = 2
    total.add(one)
    total.add(two)
    names = total.by_linux_name()
    assert names["InSegsConn"] == 7 and names["TCPTimeouts"] == 1 and names["OfoPruned"] == 2
    assert sum(names.values()) == 10
    assert one.by_linux_name()["InSegsConn"] == 3  # what was added stays as it was


def test_counters_hold_no_events_until_the_first():
    """An idle connection keeps no event counters; reading them makes none; they show as 0 by name."""
    counters = Counters()
    assert counters.events_seen() == Events() and counters.by_linux_name()["TCPTimeouts"] == 0
    assert counters == Counters()  # (reading kept nothing)
    counters.events().timeouts += 1
    assert counters.events_seen().timeouts == 1 and counters != Counters()


def test_counters_add_leaves_events_unmade_when_none_were_counted():
    """A stack's total of clean connections makes no event counters for them."""
    total = Counters()
    total.add(Counters())
    assert total == Counters()


def test_counters_start_at_zero_every_one():
    """A new connection's counters: the written constructors set every field the tables name."""
    counters, events = Counters(), Events()
    named = [f for f in fields(Counters) if "linux" in f.metadata]
    assert [getattr(counters, f.name) for f in named] == [0] * len(named)
    assert [getattr(events, f.name) for f in fields(Events)] == [0] * len(fields(Events))


def test_counters_add_covers_every_field_the_table_names():
    """The written-out sums add each counter to itself, none to another and none left out."""
    total, one = Counters(), Counters()
    named = [f for f in fields(Counters) if "linux" in f.metadata] + list(fields(Events))
    for value, f in enumerate(named, start=1):
        setattr(one if f in fields(Counters) else one.events(), f.name, value)
    total.add(one)
    total.add(one)
    got = [getattr(total if f in fields(Counters) else total.events(), f.name) for f in named]
    assert got == [2 * v for v in range(1, len(named) + 1)]
