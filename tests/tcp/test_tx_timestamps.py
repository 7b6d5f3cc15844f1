"""SO_TIMESTAMPING's transmit reports (stack/tcp/tx_timestamps.py), as Linux makes them for TCP."""

from __future__ import annotations

from stack.tcp import tx_timestamps as ts
from stack.tcp.tx_timestamps import SCM_TSTAMP_ACK, SCM_TSTAMP_SCHED, SCM_TSTAMP_SND, TxTimestamps

ALL = ts.TX_SCHED | ts.TX_SOFTWARE | ts.TX_ACK | ts.SOFTWARE | ts.OPT_ID


def stamps(flags: int = ALL, snd_una: int = 1000) -> TxTimestamps:
    t = TxTimestamps()
    t.set_flags(flags, snd_una)
    return t


def kinds(t: TxTimestamps) -> list[tuple[int, int]]:
    return [(r.kind, r.key) for r in t.queue]


def test_established_retransmission_of_marked_byte_reports_sched_and_snd_again():
    """Linux keeps the timestamp request on the buffer (skb_shinfo tx_flags), so each transmission of the
    marked byte, a retransmission too, is stamped when it enters the scheduler and leaves the device."""
    t = stamps()
    t.wrote(1099)
    t.sent(1000, 100, 0.1)
    t.sent(1000, 100, 0.4)
    assert kinds(t) == [(SCM_TSTAMP_SCHED, 99), (SCM_TSTAMP_SND, 99)] * 2
    assert [r.time for r in t.queue] == [0.1, 0.1, 0.4, 0.4]


def test_established_segment_without_marked_byte_reports_nothing():
    """Only the write's last byte is marked (tcp_tx_timestamp): a segment before it is not stamped."""
    t = stamps()
    t.wrote(1999)
    t.sent(1000, 500, 0.1)
    assert t.queue == []


def test_established_ack_passing_byte_reports_once():
    """The ACK report comes the first time the cumulative ACK passes the byte (tcp_ack_tstamp)."""
    t = stamps()
    t.wrote(1099)
    t.acked(1000, 1099, 0.2)  # up to the byte, not past it
    assert t.queue == []
    t.acked(1000, 1100, 0.3)
    t.acked(1100, 1200, 0.4)
    assert kinds(t) == [(SCM_TSTAMP_ACK, 99)]


def test_established_opt_id_set_later_counts_keys_from_snd_una_then():
    """sock_set_timestamping: sk_tskey is SND.UNA when OPT_ID is first set; keys wrap modulo 2**32."""
    t = stamps(ts.TX_ACK, snd_una=0xFFFFFF00)
    t.set_flags(ts.TX_ACK | ts.OPT_ID, 0xFFFFFFF0)
    t.set_flags(ts.TX_ACK | ts.OPT_ID, 0x10)  # already set: the base stays
    t.wrote(0x0F)
    t.acked(0xFFFFFFF0, 0x10, 1.0)
    assert kinds(t) == [(SCM_TSTAMP_ACK, 0x1F)]


def test_established_without_opt_id_key_is_zero_and_tsonly_carries_no_packet():
    t = stamps(ts.TX_SCHED | ts.OPT_TSONLY)
    t.wrote(1099)
    t.sent(1000, 100, 0.1)
    (report,) = t.queue
    assert (report.key, report.packet, report.software) == (0, False, False)


def test_established_write_before_flags_is_not_marked():
    """The request is taken per write (tcp_tx_timestamp reads the socket's flags at the write)."""
    t = TxTimestamps()
    t.wrote(1099)
    t.set_flags(ALL, 1000)
    t.sent(1000, 100, 0.1)
    t.acked(1000, 1100, 0.2)
    assert t.queue == []


def test_established_unread_reports_are_bounded():
    """Bad input never grows memory without bound: beyond MAX_QUEUED unread reports new ones are dropped."""
    t = stamps(ts.TX_SCHED)
    for i in range(ts.MAX_QUEUED + 10):
        t.wrote(1000 + i)
        t.sent(1000 + i, 1, 0.0)
    assert len(t.queue) == ts.MAX_QUEUED
    assert t.dropped == 10


def test_established_marks_of_unacknowledged_writes_are_bounded():
    """A peer that never acknowledges cannot grow the marks with every small write: beyond MAX_MARKS a
    write's mark replaces the newest one, as a write into Linux's last skb replaces that skb's key."""
    t = stamps(ts.TX_SOFTWARE | ts.OPT_ID)
    for i in range(ts.MAX_MARKS + 100):
        t.wrote(1000 + i)
    t.sent(1000 + ts.MAX_MARKS - 2, 102, 0.0)  # the bytes of the last 102 writes
    assert [key for _, key in kinds(t)] == [ts.MAX_MARKS - 2, ts.MAX_MARKS + 99]  # the last one took the newest mark


def test_established_segment_across_the_sequence_wrap_reports_its_marked_bytes():
    """RFC 9293 §3.4 sequence space: marks just below 2**32 and just past it are in the segment."""
    t = stamps(snd_una=0xFFFFFF00)
    t.wrote(0xFFFFFFF0)
    t.wrote(0x10)
    t.wrote(0x300)  # after the segment
    t.sent(0xFFFFFF00, 0x200, 0.0)
    assert [key for kind, key in kinds(t) if kind == SCM_TSTAMP_SND] == [0xF0, 0x110]
