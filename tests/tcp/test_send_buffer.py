"""The send buffer hands segments views of the bytes SEND queued, not copies: every payload byte is copied
once into the buffer and once into the packet the device gets."""

import random

from stack.tcp import send_buffer
from stack.tcp.send_buffer import SendBuffer
from stack.tcp.state import State
from stack.wire.codec import BatchEncoder, TcpPacket, decode
from tests.tcp.conftest import IRS, ISS, LOCAL, REMOTE, seg

TSO = 65000


def test_established_bulk_send_copies_each_payload_byte_twice_on_its_way_to_the_device(conn_in):
    """Copies per payload byte from SEND to the device's buffer: one into the send buffer, none from it
    into a segment (a read-only view), one when the batch builder writes the packet."""
    c = conn_in(State.ESTABLISHED, tso_max_bytes=TSO)
    data = random.Random(1).randbytes(200_000)
    assert c.send(data, 0.0) == len(data)
    copies = 1  # SEND into the buffer
    got = bytearray()
    taken = copied = 0
    now = 0.0
    while len(got) < len(data):
        out = [s for s in c.segments_to_send(now) if s.payload]
        assert out
        copied += sum(len(s.payload) for s in out if type(s.payload) is not memoryview or not s.payload.readonly)
        taken += sum(len(s.payload) for s in out)
        enc = BatchEncoder()
        for s in out:
            enc.tcp(LOCAL[0], REMOTE[0], s)
        batch = enc.build()  # one copy into the packets
        for packet in batch.packets():
            decoded = decode(bytes(packet))
            assert type(decoded) is TcpPacket
            got += decoded.segment.payload
        now += 0.01
        c.receive_segment(seg(".", IRS + 1, ISS + 1 + len(got)), now)
    assert bytes(got) == data
    assert copies + copied / taken + 1 == 2


def test_established_send_of_bytes_across_skbs_hands_the_buffer_views_of_them(conn_in, monkeypatch):
    """SEND's one copy is the send buffer's: a write longer than a skb reaches the buffer in parts that
    are views of the caller's bytes (a slice of bytes would be a copy of its own)."""
    c = conn_in(State.ESTABLISHED, tso_max_bytes=TSO)
    handed = []
    append = SendBuffer.append

    def recording(self, data, limit, reserve=0):
        handed.append(data)
        return append(self, data, limit, reserve)

    monkeypatch.setattr(SendBuffer, "append", recording)
    data = random.Random(2).randbytes(200_000)
    assert c.send(data, 0.0) == len(data)
    assert len(handed) > 1  # several skbs
    assert all(type(part) is memoryview and part.obj is data for part in handed)


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
    """A bulk sender's write and its ACK: `fill` bytes through full-sized arenas."""
    chunk = bytes(range(256)) * 256
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
    buf.append(b"next", 1 << 30, reserve=send_buffer._ARENA_MAX)
    assert any(arena is spare for arena, _ in buf._arenas for spare in spares)
    assert bytes(buf.take(len(buf) - 4, 4)) == b"next"


def test_send_buffer_never_reuses_an_arena_a_segment_still_views(monkeypatch):
    """A payload view held elsewhere (a queued segment, the pcap) keeps its arena out of reuse: its
    bytes never change, however much is written after."""
    monkeypatch.setattr(send_buffer, "_spares", [])
    buf = SendBuffer()
    buf.append(b"a" * 100_000, 1 << 30, reserve=send_buffer._ARENA_MAX)
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
        buf.append(b"z" * 10, 1 << 30, reserve=send_buffer._ARENA_MAX)
    for buf in buffers:
        buf.clear()
    assert len(send_buffer._spares) == send_buffer._SPARES_MAX
