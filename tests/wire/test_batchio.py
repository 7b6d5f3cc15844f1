"""Batched packet I/O keeps packet boundaries (a SOCK_SEQPACKET pair stands in for TUN)."""

import socket

import pytest

from stack.aio.batchio import BatchReader, write_batch


@pytest.fixture
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_batch_write_then_read_keeps_each_packet(pair):
    a, b = pair
    packets = [bytes([i]) * (i * 10 + 1) for i in range(20)]
    assert write_batch(a.fileno(), packets) == 20
    assert BatchReader().read(b.fileno()).packets() == packets


def test_batch_read_with_nothing_ready_returns_empty(pair):
    assert BatchReader().read(pair[1].fileno()).packets() == []


def test_batch_read_stops_at_max_packets(pair):
    a, b = pair
    write_batch(a.fileno(), [b"x"] * 10)
    reader = BatchReader(max_packets=4)
    assert len(reader.read(b.fileno())) == 4
    assert len(reader.read(b.fileno())) == 4
    assert len(reader.read(b.fileno())) == 2


def test_batch_read_on_a_bad_fd_raises_oserror():
    with pytest.raises(OSError):
        BatchReader().read(-1)
