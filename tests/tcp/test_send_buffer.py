"""The send buffer hands segments views of the bytes SEND queued, not copies: immutable bytes are kept as
they are, and a payload byte that can change is copied once into the buffer; the device's packet is one
copy more."""

import random

import pytest

from stack.tcp import send_buffer
from stack.tcp.send_buffer import SendBuffer
from stack.tcp.state import State
from stack.wire.codec import BatchEncoder, TcpPacket, decode
from tests.tcp.conftest import IRS, ISS, LOCAL, REMOTE, seg

TSO = 65000


def _send_all(c, data) -> tuple[bytes, list]:
    """Send `data` to the end, acknowledging each flush; what the peer got and every payload sent."""
    assert c.send(data, 0.0) == len(data)
    got = bytearray()
    payloads = []
    now = 0.0
    while len(got) < len(data):
        out = [s for s in c.segments_to_send(now) if s.payload]
        assert out
        payloads += [s.payload for s in out]
        enc = BatchEncoder()
        for s in out:
            enc.tcp(LOCAL[0], REMOTE[0], s)
        for packet in enc.build().packets():  # one copy into the packets
            decoded = decode(bytes(packet))
            assert type(decoded) is TcpPacket
            got += decoded.segment.payload
        now += 0.01
        c.receive_segment(seg(".", IRS + 1, ISS + 1 + len(got)), now)
    return bytes(got), payloads


def _copied(payloads: list) -> int:
    """Payload bytes that are not a read-only view into the buffer (a segment joined across arenas)."""
    return sum(len(p) for p in payloads if type(p) is not memoryview or not p.readonly)


def test_established_bulk_send_of_a_bytearray_copies_each_payload_byte_twice_on_its_way_to_the_device(conn_in):
    """Copies per payload byte of a buffer that can change, from SEND to the device's buffer: one into the
    send buffer, none from it into a segment (a read-only view), one when the batch builder writes the
    packet."""
    c = conn_in(State.ESTABLISHED, tso_max_bytes=TSO)
    data = bytearray(random.Random(1).randbytes(200_000))
    got, payloads = _send_all(c, data)
    assert got == data
    assert 1 + _copied(payloads) / len(data) + 1 == 2


def test_established_bulk_send_of_bytes_copies_each_payload_byte_once_on_its_way_to_the_device(conn_in):
    """Immutable bytes are kept, not copied, by SEND: the segments are views of the caller's own bytes, and
    the batch builder's copy into the packet is the only one."""
    c = conn_in(State.ESTABLISHED, tso_max_bytes=TSO)
    data = random.Random(2).randbytes(200_000)
    got, payloads = _send_all(c, data)
    assert got == data
    assert _copied(payloads) == 0
    assert all(p.obj is data for p in payloads)


def test_established_send_of_bytes_across_skbs_keeps_them_in_one_arena(conn_in):
    """A write longer than an skb reaches the buffer in parts, each the same view of the caller's bytes
    from a further start: the parts extend one arena, in place."""
    c = conn_in(State.ESTABLISHED, tso_max_bytes=TSO)
    data = random.Random(3).randbytes(200_000)
    assert c.send(data, 0.0) == len(data)
    buf = c.sender.buffer
    assert buf.skbs > 1
    assert len(buf._arenas) == 1 and buf._arenas[0][1].obj is data


def test_send_buffer_keeps_a_large_write_of_bytes_as_it_is():
    buf = SendBuffer()
    data = bytes(range(256)) * 256
    assert buf.append(data, 1 << 20) == len(data)
    view = buf.take(1000, 3000)
    assert view.obj is data and bytes(view) == data[1000:4000]


def test_send_buffer_copies_a_small_write_of_bytes():
    """Below _KEEP_MIN an arena of its own costs more than the copy."""
    buf = SendBuffer()
    data = b"small" * 100
    buf.append(data, 1 << 20)
    assert buf.take(0, 10).obj is not data


def test_send_buffer_copies_small_parts_of_large_bytes_beyond_its_pin_bound():
    """A kept arena keeps its whole bytes object alive: small parts of many large objects are kept only
    while those objects come to no more than twice the bytes held and _PIN_SLACK, then copied."""
    buf = SendBuffer()
    kept = 0
    for _ in range(20):
        big = bytes(128 * 1024)
        buf.append(memoryview(big)[: send_buffer._KEEP_MIN], 1 << 30)
        kept += buf.take(len(buf) - 1, 1).obj is big
    assert 0 < kept < 20
    assert buf._pinned <= 2 * len(buf) + send_buffer._PIN_SLACK
    buf.ack(buf.seq + len(buf))
    assert buf._pinned == 0


def test_send_buffer_fills_a_copy_arena_before_keeping_the_rest_of_a_write():
    """Every arena but the last holds all it can: a kept write first fills the room the last copy arena
    has, so no copy arena is left part empty behind it."""
    buf = SendBuffer()
    buf.append(bytearray(b"h" * 100), 1 << 20)
    body = bytes(range(251)) * 400
    buf.append(body, 1 << 20)
    copy_arena = buf._arenas[0][0]
    assert type(copy_arena) is bytearray and len(buf._arenas[0][1]) == len(copy_arena)
    assert bytes(buf.take(0, len(buf))) == b"h" * 100 + body


@pytest.mark.parametrize("seed", range(40))
def test_send_buffer_random_writes_takes_and_acks_match_the_stream(seed, monkeypatch):
    """Writes of every kind (bytes, bytearrays, views of either, parts of one write with a growing start,
    the same bytes object again from another start), limits, takes and ACKs in random order: every take
    is the stream's bytes, views already taken never change, and the copy arenas hold no more than the
    bytes queued and one arena being filled."""
    monkeypatch.setattr(send_buffer, "_spares", [])
    rng = random.Random(seed)
    pool = rng.randbytes(300_000)
    buf = SendBuffer()
    stream = bytearray()  # every byte queued, from the first
    acked = 0
    held: list[tuple[memoryview, bytes]] = []
    for _ in range(300):
        op = rng.random()
        if op < 0.5:
            size = rng.choice([rng.randrange(1, 3000), rng.randrange(3000, 100_000)])
            start = rng.randrange(0, len(pool) - size)
            kind = rng.randrange(4)
            if kind == 0:
                data = pool[start : start + size]
            elif kind == 1:
                data = bytearray(pool[start : start + size])
            elif kind == 2:
                data = memoryview(pool)[start : start + size]  # parts of the same bytes, overlapping
            else:
                data = memoryview(pool)  # the whole pool from `start`, in parts
            view = memoryview(data).cast("B")
            at = start if kind == 3 else 0
            end = at + size
            while at < end:
                n = buf.append(view, min(rng.randrange(1, 70_000), end - at), len(view) - at, at)
                stream += view[at : at + n]
                at += n
            if kind == 1:
                data[:] = bytes(len(data))  # the caller reuses its buffer
        elif op < 0.8 and len(buf):
            off = rng.randrange(len(buf))
            n = rng.randrange(1, min(len(buf) - off, 80_000) + 1)
            view = buf.take(off, n)
            assert bytes(view) == stream[acked + off : acked + off + n]
            held.append((view, bytes(view)))
        elif len(buf):
            n = rng.randrange(len(buf) + 1)
            buf.ack(buf.seq + n)
            acked += n
        assert len(buf) == len(stream) - acked
        copy_capacity = sum(len(a) for a, _ in buf._arenas if type(a) is bytearray)
        assert copy_capacity <= len(buf) + 2 * send_buffer._ARENA_MAX
    assert all(bytes(view) == copy for view, copy in held)


def test_send_buffer_view_keeps_its_bytes_after_the_ack_and_later_writes():
    """An arena is written once: a payload view still held (a queued segment, the pcap) never changes."""
    buf = SendBuffer()
    buf.append(b"a" * 3000, 1 << 20)
    view = buf.take(1000, 1000)
    buf.ack(3000)
    for _ in range(50):
        buf.append(b"b" * 5000, 1 << 20)
        buf.ack(buf.seq + 5000)
    assert bytes(view) == b"a" * 1000


def test_send_buffer_segment_across_two_arenas_is_joined_in_order():
    buf = SendBuffer()
    buf.append(b"x" * 100, 1 << 20)  # a small arena first
    buf.append(bytes(range(256)) * 40, 1 << 20)  # fills it up, then a second
    assert len(buf) == 100 + 10240
    assert bytes(buf.take(90, 300)) == b"x" * 10 + bytes(range(256))[:256] + bytes(range(34))
    buf.ack(buf.seq + 2500)  # the first arena is gone
    assert bytes(buf.take(0, 10)) == (bytes(range(256)) * 40)[2400:2410]


def test_send_buffer_takes_only_up_to_its_limit_from_a_mutable_buffer():
    """The caller's bytearray may change after SEND returns: what was queued is a copy."""
    buf = SendBuffer()
    pending = bytearray(b"hello world")
    assert buf.append(pending, 5) == 5
    pending[:5] = b"HELLO"
    assert bytes(buf.take(0, 5)) == b"hello" and len(buf) == 5


def _bulk(buf: SendBuffer, fill: int) -> None:
    """A bulk sender's write (of a buffer it reuses: copied) and its ACK: `fill` bytes through full-sized arenas."""
    chunk = bytearray(range(256)) * 256
    while fill > 0:
        buf.append(chunk, 1 << 30)
        fill -= len(chunk)
    buf.ack(buf.seq + len(buf))


def test_send_buffer_reuses_a_full_sized_arena_nothing_views_any_more(monkeypatch):
    """A bulk sender's acknowledged arena is taken again by the next write, as it is: no new memory is
    allocated, zeroed and faulted in per megabyte sent."""
    monkeypatch.setattr(send_buffer, "_spares", [])
    buf = SendBuffer()
    _bulk(buf, 4 << 20)
    spares = list(send_buffer._spares)
    assert spares and all(len(a) == send_buffer._ARENA_MAX for a in spares)
    _bulk(buf, 2 << 20)
    buf.append(bytearray(b"next"), 1 << 30, reserve=send_buffer._ARENA_MAX)
    assert any(arena is spare for arena, _ in buf._arenas for spare in spares)
    assert bytes(buf.take(len(buf) - 4, 4)) == b"next"


def test_send_buffer_never_reuses_an_arena_a_segment_still_views(monkeypatch):
    """A payload view held elsewhere (a queued segment, the pcap) keeps its arena out of reuse: its
    bytes never change, however much is written after."""
    monkeypatch.setattr(send_buffer, "_spares", [])
    buf = SendBuffer()
    buf.append(bytearray(b"a" * 100_000), 1 << 30, reserve=send_buffer._ARENA_MAX)
    view = buf.take(1000, 1000)
    buf.ack(buf.seq + len(buf))
    assert send_buffer._spares == []
    for _ in range(8):
        _bulk(buf, 2 << 20)
    assert bytes(view) == b"a" * 1000


def test_send_buffer_keeps_few_spare_arenas(monkeypatch):
    """The spares are for the process, bounded: memory a burst took is given back beyond them."""
    monkeypatch.setattr(send_buffer, "_spares", [])
    buffers = [SendBuffer() for _ in range(10)]
    for buf in buffers:
        buf.append(bytearray(b"z" * 10), 1 << 30, reserve=send_buffer._ARENA_MAX)
    for buf in buffers:
        buf.clear()
    assert len(send_buffer._spares) == send_buffer._SPARES_MAX
