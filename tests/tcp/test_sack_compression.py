"""SACK compression (Linux tcp_comp_sack_*, stack/tcp/sack_compression.py), in virtual time: which ACKs of
out-of-order data wait, for how long, and how TCPAckCompressed counts them. The scripts in
tests/scripts/options/sack_compression_*.pkt show the same against Linux."""

from __future__ import annotations

from dataclasses import replace

from stack.tcp import timers
from stack.tcp.config import TcpConfig
from stack.tcp.connection import Connection
from stack.tcp.counters import Counters
from stack.tcp.sack_compression import SackCompression
from stack.tcp.state import State
from stack.wire.segment import Flags, Segment, TcpOptions
from tests.tcp.conftest import IRS, ISS, LOCAL, REMOTE, IssDraws

MASK = 0xFFFFFFFF
SEG = 1000
CONFIG = TcpConfig(mss=1460, msl=1.0, delayed_ack=0.04)
REPLY = b"reply"  # ours, which the peer's segments above the hole acknowledge


def test_sack_compression_holds_nothing_for_the_first_three_at_one_rcv_nxt():
    """__tcp_ack_snd_check: dup_ack_counter lets TCP_FASTRETRANS_THRESH duplicate ACKs go first."""
    compression = SackCompression(Counters())
    assert [compression.hold(100, 44) for _ in range(5)] == [False, False, False, True, True]
    assert compression.held == 2


def test_sack_compression_counts_duplicates_again_for_a_new_rcv_nxt():
    """compressed_ack_rcv_nxt: once RCV.NXT moved, three duplicate ACKs go at once again."""
    compression = SackCompression(Counters())
    for _ in range(4):
        compression.hold(100, 44)
    assert [compression.hold(200, 44) for _ in range(4)] == [False, False, False, True]


def test_sack_compression_holds_at_most_the_limit():
    """tcp_comp_sack_nr: with that many held, the next ACK goes at once."""
    compression = SackCompression(Counters())
    assert [compression.hold(100, 2) for _ in range(6)] == [False, False, False, True, True, False]


def test_sack_compression_counts_every_held_ack_an_ack_stands_for():
    """tcp_event_ack_sent adds every held ACK to TCPAckCompressed; the timer sends one of them itself."""
    counters = Counters()
    compression = SackCompression(counters)
    for _ in range(6):
        compression.hold(100, 44)
    compression.send_one()
    compression.ack_sent()
    assert (counters.events().ack_compressed, compression.held) == (2, 0)


def _opened(
    config: TcpConfig,
    handshake_rtt: float,
    data_rtt: float,
    data: bytes = b"d" * SEG,
    sack: bool = True,
    reply: bool = True,
) -> tuple[Connection, int]:
    """A passive open with timestamps whose handshake ACK comes `handshake_rtt` after our SYN,ACK (the
    sender's RTT) and whose first `data` echoes the SYN,ACK's timestamp `data_rtt` after it (the receiver's,
    when the segment is full-sized); our `reply` to it makes the exchange interactive, so no quick ACKs go.
    Returns the connection and the peer's next timestamp."""
    options = TcpOptions(mss=SEG, wscale=7, sack_permitted=sack, timestamps=(100, 0))
    syn = _from_peer(IRS, b"", options, Flags.SYN)
    c = Connection.from_syn(replace(config, rng=IssDraws(ISS)), LOCAL, REMOTE, syn, 0.0)
    synack_ts = c.segments_to_send(0.0)[0].options.timestamps[0]
    c.receive_segment(_from_peer(IRS + 1, b"", TcpOptions(timestamps=(101, synack_ts))), handshake_rtt)
    c.segments_to_send(handshake_rtt)
    c.receive_segment(_from_peer(IRS + 1, data, TcpOptions(timestamps=(102, synack_ts))), data_rtt)
    if reply:
        c.send(REPLY, data_rtt)
    c.segments_to_send(data_rtt)
    assert c.state is State.ESTABLISHED
    return c, 103


def _from_peer(seq: int, data: bytes, options: TcpOptions, flags: Flags = Flags.ACK, acked: int = 0) -> Segment:
    """A segment from the peer acknowledging our SYN and `acked` bytes of ours."""
    ack = (ISS + 1 + acked) & MASK if flags & Flags.ACK else 0
    return Segment(REMOTE[1], LOCAL[1], seq & MASK, ack, flags, 502, data, options)


def _above_hole(c: Connection, nth: int, ts: int, now: float, acked: int = len(REPLY)) -> list[Segment]:
    """The `nth` segment beyond a one-segment hole at RCV.NXT arrives at `now`: what goes at once. It echoes
    the timestamp the last segment echoed, so it is no sample of the receiver's RTT."""
    seq = IRS + 1 + SEG * (nth + 2)
    echo = TcpOptions(timestamps=(ts, c.receiver.last_tsecr))
    c.receive_segment(_from_peer(seq, b"d" * SEG, echo, acked=acked), now)
    return c.segments_to_send(now)


def test_established_out_of_order_ack_waits_5_percent_of_the_shorter_round_trip():
    """__tcp_ack_snd_check: the held ACK's timer is 5% of the receiver's RTT or, when shorter, the
    sender's SRTT: here 10 ms, so 0.5 ms."""
    c, ts = _opened(CONFIG, handshake_rtt=0.01, data_rtt=0.03)  # SRTT 10 ms, receiver's RTT 30 ms
    # (the first acknowledges our reply a round trip after it: SRTT stays 10 ms)
    assert all(len(_above_hole(c, i, ts, 0.04)) == 1 for i in range(3))  # three duplicate ACKs at once
    assert _above_hole(c, 3, ts, 0.04) == []
    assert c.timers.deadline(timers.COMPRESSED_ACK) == 0.04 + 0.0005
    c.handle_timer(0.0405)
    (ack,) = c.segments_to_send(0.0405)
    assert ack.options.sack_blocks == ((IRS + 1 + 2 * SEG, IRS + 1 + 6 * SEG),)


def test_established_out_of_order_ack_waits_at_most_comp_sack_delay():
    """tcp_comp_sack_delay_ns bounds the wait: 5% of 200 ms would be 10 ms."""
    c, ts = _opened(replace(CONFIG, comp_sack_delay=0.002), handshake_rtt=0.2, data_rtt=0.2)
    for i in range(4):
        _above_hole(c, i, ts, 0.5)
    assert c.timers.deadline(timers.COMPRESSED_ACK) == 0.5 + 0.002


def test_established_out_of_order_ack_without_a_receiver_rtt_waits_no_time():
    """__tcp_ack_snd_check takes the receiver's RTT estimate, 0 before a sample: then the timer is 0,
    whatever the sender's SRTT (here the first data was a short segment: no sample)."""
    c, ts = _opened(CONFIG, handshake_rtt=0.1, data_rtt=0.2, data=b"d" * 10)
    for i in range(4):
        seq = IRS + 11 + SEG * (i + 1)
        echo = TcpOptions(timestamps=(ts, c.receiver.last_tsecr))
        c.receive_segment(_from_peer(seq, b"d" * SEG, echo, acked=len(REPLY)), 0.3)
        c.segments_to_send(0.3)
    assert c.receiver.rcv_rtt == 0
    assert c.timers.deadline(timers.COMPRESSED_ACK) == 0.3


def test_established_out_of_order_acks_in_quickack_mode_are_not_held():
    """tcp_in_quickack_mode sends at once before duplicate ACKs are counted: without our reply the
    connection is not interactive, and its first data granted quick ACKs."""
    c, ts = _opened(CONFIG, handshake_rtt=0.1, data_rtt=0.2, reply=False)
    assert all(len(_above_hole(c, i, ts, 0.3, acked=0)) == 1 for i in range(6))
    assert c.receiver.out_of_order is not None and c.receiver.out_of_order.compression is None


def test_established_out_of_order_acks_without_sack_are_not_held():
    """tcp_is_sack: without SACK nothing is compressed; every duplicate ACK goes (RFC 5681 §4.2)."""
    c, ts = _opened(CONFIG, handshake_rtt=0.1, data_rtt=0.2, sack=False)
    assert all(len(_above_hole(c, i, ts, 0.3)) == 1 for i in range(6))


def test_established_ack_with_data_stands_for_the_held_acks():
    """tcp_event_ack_sent: our data carries the ACK; the held ones are counted and their timer stops."""
    c, ts = _opened(CONFIG, handshake_rtt=0.1, data_rtt=0.1)
    for i in range(5):
        _above_hole(c, i, ts, 0.3)
    c.send(b"more", 0.3)
    (data,) = c.segments_to_send(0.3)
    assert data.payload == b"more" and len(data.options.sack_blocks) == 1
    assert not c.timers.running(timers.COMPRESSED_ACK)
    assert c.counters.events().ack_compressed == 2
