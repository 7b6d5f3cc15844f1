"""Whole batches through the C fast path, and the TUN offloads' virtio_net_hdr (linux/virtio_net.h).

A super-segment must be exactly what the kernel cuts back into the segments the core emitted (as
tcp_gso_segment does: the header copied, SEQ advanced by gso_size, PSH and FIN on the last piece only).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import replace

import pytest
from stack._fast import ffi, lib

from stack.aio.batchio import BatchReader, write_batch, write_flush
from stack.wire.batch import VNET_HDR_LEN, PacketBatch
from stack.wire.codec import BatchDecoder, BatchEncoder, Rejected, TcpPacket, decode, encode_tcp
from stack.wire.reasons import DropReason
from stack.wire.segment import Flags, Segment, TcpOptions

SRC, DST = 0x0A070002, 0x0A070001
SRC6, DST6 = int(ipaddress.IPv6Address("fd3d::2")), int(ipaddress.IPv6Address("fd3d::1"))
MSS = 1448
TS = TcpOptions(timestamps=(1000, 2000))
VNET = struct.Struct("=BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset


def _data(seq: int, n: int, flags: Flags = Flags.ACK, ack: int = 5000, port: int = 80) -> Segment:
    return Segment(port, 40000, seq, ack, flags, 500, bytes((seq + i) & 0xFF for i in range(n)), TS)


def _run(n: int, last: int = MSS, last_flags: Flags = Flags.ACK | Flags.PSH) -> list[Segment]:
    segs = [_data(1 + i * MSS, MSS) for i in range(n - 1)]
    return [*segs, _data(1 + (n - 1) * MSS, last, last_flags)]


def _build(segs: list[Segment], vnet: int = VNET_HDR_LEN, gso: bool = True) -> PacketBatch:
    enc = BatchEncoder(vnet, gso)
    for seg in segs:
        enc.tcp(SRC, DST, seg)
    return enc.build()


def _records(batch: PacketBatch) -> list[bytes]:
    return [bytes(batch.view[batch.offs[i] : batch.offs[i] + batch.lens[i]]) for i in range(batch.n)]


def _kernel_cut(record: bytes) -> list[Segment]:
    """What the kernel makes of a record: its checksum completed, then cut at gso_size."""
    flags, gso_type, _, gso_size, _, _ = VNET.unpack_from(record)
    done = bytearray(record)
    assert lib.fast_vnet_complete_csum(ffi.from_buffer(done), len(done)) == (flags & 1)
    whole = decode(bytes(done[VNET_HDR_LEN:]))
    assert type(whole) is TcpPacket
    seg = whole.segment
    if not gso_type:
        return [seg]
    pieces = []
    payload = bytes(seg.payload)
    for start in range(0, len(payload), gso_size):
        last = start + gso_size >= len(payload)
        piece_flags = seg.flags if last else seg.flags & ~(Flags.PSH | Flags.FIN)
        pieces.append(
            Segment(
                seg.src_port, seg.dst_port, (seg.seq + start) & 0xFFFFFFFF, seg.ack, piece_flags, seg.window,
                payload[start : start + gso_size], seg.options, seg.urgent, seg.ecn,
            )
        )  # fmt: skip
    return pieces


def test_batch_without_vnet_is_what_encode_tcp_builds():
    segs = _run(3)
    assert _records(_build(segs, vnet=0, gso=False)) == [bytes(encode_tcp(SRC, DST, s)) for s in segs]


def test_batch_gso_run_of_full_segments_is_one_super_segment_the_kernel_cuts_back():
    """virtio_net_hdr: NEEDS_CSUM with csum_start/offset at the TCP checksum, GSO_TCPV4, gso_size = MSS."""
    segs = _run(4, last=100)
    batch = _build(segs)
    assert batch.n == 1
    record = _records(batch)[0]
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = VNET.unpack_from(record)
    assert (flags, gso_type, gso_size, csum_start, csum_offset) == (1, 1, MSS, 20, 16)
    assert hdr_len == 20 + 32  # IP + TCP with the timestamp option
    assert struct.unpack_from("!H", record, VNET_HDR_LEN + 2)[0] == 52 + 3 * MSS + 100
    assert _kernel_cut(record) == segs


def test_batch_gso_checksum_is_left_partial_for_the_kernel():
    """On send the checksum field holds the pseudo-header sum only (Linux tcp_v4_send_check)."""
    record = _records(_build([_data(1, 10, Flags.ACK | Flags.PSH)]))[0]
    assert VNET.unpack_from(record)[:2] == (1, 0)  # NEEDS_CSUM, not GSO
    assert type(decode(record[VNET_HDR_LEN:])) is Rejected  # partial: not a valid checksum yet
    assert _kernel_cut(record) == [_data(1, 10, Flags.ACK | Flags.PSH)]


@pytest.mark.parametrize(
    "segs, expected",
    [
        # a short segment ends a run, the next full one starts another
        ([_data(1, MSS), _data(1 + MSS, 10), _data(11 + MSS, MSS)], [2, 1]),
        # PSH or FIN only on the last piece: a PSH in the middle ends the run
        ([_data(1, MSS, Flags.ACK | Flags.PSH), _data(1 + MSS, MSS)], [1, 1]),
        ([_data(1, MSS), _data(1 + MSS, MSS, Flags.ACK | Flags.FIN)], [2]),
        # a different ACK, a gap in sequence, another connection
        ([_data(1, MSS), _data(1 + MSS, MSS, ack=6000)], [1, 1]),
        ([_data(1, MSS), _data(2 + MSS, MSS)], [1, 1]),
        ([_data(1, MSS), _data(1 + MSS, MSS, port=81)], [1, 1]),
        # pure ACKs and CWR never lead a run
        ([_data(1, 0), _data(1, 0)], [1, 1]),
        ([_data(1, MSS, Flags.ACK | Flags.CWR), _data(1 + MSS, MSS)], [1, 1]),
    ],
)
def test_batch_gso_merges_only_what_the_kernel_cuts_back_the_same(segs, expected):
    batch = _build(segs)
    records = _records(batch)
    assert [len(_kernel_cut(r)) for r in records] == expected
    assert [p for r in records for p in _kernel_cut(r)] == segs


def test_batch_gso_super_segment_stays_within_64k():
    segs = _run(60)
    records = _records(_build(segs))
    assert len(records) == 2
    assert all(len(r) - VNET_HDR_LEN <= 65535 for r in records)
    assert [p for r in records for p in _kernel_cut(r)] == segs


def test_batch_vnet_raw_packet_goes_out_as_it_is_after_an_empty_header():
    enc = BatchEncoder(VNET_HDR_LEN, True)
    packet = bytes(encode_tcp(SRC, DST, _data(1, 5)))
    enc.packet(packet)
    assert _records(enc.build()) == [bytes(VNET_HDR_LEN) + packet]


def _vnet_record(packet: bytes, flags: int = 0, gso_type: int = 0, gso_size: int = 0) -> bytes:
    return VNET.pack(flags, gso_type, 0, gso_size, 20 if flags & 1 else 0, 16 if flags & 1 else 0) + packet


def _bad_checksum(seg: Segment) -> bytes:
    packet = bytearray(encode_tcp(DST, SRC, seg))
    packet[36] ^= 0xFF  # the TCP checksum
    return bytes(packet)


@pytest.mark.parametrize("flags", [1, 2])  # NEEDS_CSUM (partial), DATA_VALID (checked by the kernel)
def test_parse_batch_trusts_a_checksum_the_kernel_vouches_for(flags):
    seg = _data(1, 100)
    batch = PacketBatch.of([_vnet_record(_bad_checksum(seg), flags)], 0)
    batch.vnet = VNET_HDR_LEN  # the records already carry their header
    (pkt,) = BatchDecoder().decode(batch)
    assert type(pkt) is TcpPacket and pkt.segment == seg


def test_parse_batch_verifies_the_checksum_without_a_flag():
    batch = PacketBatch.of([_vnet_record(_bad_checksum(_data(1, 100)))], 0)
    batch.vnet = VNET_HDR_LEN
    assert BatchDecoder().decode(batch) == [Rejected(DropReason.BAD_TCP_CHECKSUM)]


def test_parse_batch_counts_super_segments_and_rejects_a_record_shorter_than_its_header():
    big = _data(1, 3 * MSS)
    packets = [_vnet_record(bytes(encode_tcp(DST, SRC, big)), 1, 1, MSS), b"\x01\x02"]
    batch = PacketBatch.of(packets, 0)
    batch.vnet = VNET_HDR_LEN
    decoder = BatchDecoder()
    got = decoder.decode(batch)
    assert got[0].segment == replace(big, gso=MSS)  # the kernel's segment size comes with it
    assert got[1] == Rejected(DropReason.TOO_SHORT)
    assert decoder.super_segments == 1
    assert decoder.parts_beyond_first == 2  # three wire segments in one


def test_captured_fills_in_a_partial_checksum_on_a_copy():
    batch = _build(_run(3))
    before = _records(batch)
    (captured,) = batch.captured()
    whole = decode(captured)
    assert type(whole) is TcpPacket and len(whole.segment.payload) == 3 * MSS
    assert _records(batch) == before


@pytest.fixture
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_read_batch_payloads_are_views_of_the_read_buffer_never_overwritten(pair):
    """No copy between the device and the core: a TCP payload is a view into the arena the kernel read
    into, and later reads never write where earlier payloads still point."""
    a, b = pair
    reader, decoder = BatchReader(max_packets=8, max_size=1600), BatchDecoder()
    first = [_data(1 + i * 100, 100) for i in range(8)]
    write_batch(a.fileno(), [encode_tcp(DST, SRC, s) for s in first])
    batch = reader.read(b.fileno())
    kept = [p.segment.payload for p in decoder.decode(batch)]
    assert all(type(p) is memoryview and p.obj is batch.view.obj for p in kept)
    for _ in range(300):  # enough to fill the arena and start another
        write_batch(a.fileno(), [encode_tcp(DST, SRC, _data(7, 1400))] * 8)
        decoder.decode(reader.read(b.fileno()))
    assert [bytes(p) for p in kept] == [s.payload for s in first]


def test_batch_gso_segment_from_the_core_goes_out_as_it_is_cut():
    """A run the core already made one Segment (`gso` = its piece size) keeps that size and is never
    merged with what follows."""
    run = replace(_data(1, 3 * MSS, Flags.ACK), gso=MSS)
    after = _data(1 + 3 * MSS, MSS, Flags.ACK | Flags.PSH)
    records = _records(_build([run, after]))
    assert [VNET.unpack_from(r)[1:4:2] for r in records] == [(1, MSS), (0, 0)]  # gso_type, gso_size
    assert [p for r in records for p in _kernel_cut(r)] == [
        _data(1, MSS),
        _data(1 + MSS, MSS),
        _data(1 + 2 * MSS, MSS),
        after,
    ]


def test_decode_of_a_captured_packet_may_skip_a_partial_tcp_checksum():
    """A packet sniffed on a TUN device with offloads carries the checksum the device completes later."""
    seg = _data(1, 100)
    assert type(decode(_bad_checksum(seg))) is Rejected
    pkt = decode(_bad_checksum(seg), tcp_checksum=False)
    assert type(pkt) is TcpPacket and pkt.segment == seg


def test_batch_gso_ipv6_run_from_the_core_is_one_super_segment_the_kernel_cuts_back():
    """TSO6: an IPv6 run goes out as one record with gso_type TCPV6, its checksum left partial over the
    IPv6 pseudo-header (RFC 8200 §8.1), and cut it is exactly the segments; a lone IPv6 segment goes whole."""
    run = replace(_data(1, 3 * MSS, Flags.ACK | Flags.PSH), gso=MSS)
    alone = _data(1 + 3 * MSS, 100, Flags.ACK | Flags.PSH)
    enc = BatchEncoder(VNET_HDR_LEN, True)
    for s in (run, alone):
        enc.tcp(SRC6, DST6, s, flow=7)
    records = _records(enc.build())
    assert [VNET.unpack_from(r)[1:4:2] for r in records] == [(4, MSS), (0, 0)]  # gso_type TCPV6, gso_size
    assert [p for r in records for p in _kernel_cut(r)] == [
        _data(1, MSS, Flags.ACK),
        _data(1 + MSS, MSS, Flags.ACK),
        _data(1 + 2 * MSS, MSS, Flags.ACK | Flags.PSH),
        alone,
    ]


# ------------------------------------------------------------------ a flush written without being laid out


def _flush(enc: BatchEncoder) -> None:
    """A flush of every kind of item: a run the C builder merges, a short segment, a run the core made
    one Segment, another connection, a whole packet, IPv6 segments (one whole, one super-segment)."""
    for seg in _run(5, last=300):
        enc.tcp(SRC, DST, seg)
    enc.tcp(SRC, DST, replace(_data(1 + 10 * MSS, 3 * MSS), gso=MSS))
    enc.tcp(SRC, DST, _data(7, 20, Flags.ACK | Flags.PSH, port=81))
    enc.packet(bytes(encode_tcp(SRC, DST, _data(1, 5))))
    enc.tcp(SRC6, DST6, _data(1, 100, Flags.ACK | Flags.PSH), flow=7)
    enc.tcp(SRC6, DST6, replace(_data(101, 2 * MSS, Flags.ACK | Flags.PSH), gso=MSS), flow=7)


def _received(sock: socket.socket) -> list[bytes]:
    records = []
    while True:
        try:
            records.append(sock.recv(1 << 17))
        except BlockingIOError:
            return records


def test_write_flush_writes_exactly_the_records_build_lays_out(pair):
    """write_flush with offloads writes each record with one writev, headers from a small buffer and payloads
    from where they are: byte for byte the records `build` lays out, in order, and it counts the segments
    merged into super-segments as `build` does."""
    a, b = pair
    laid_out, written = BatchEncoder(VNET_HDR_LEN, True), BatchEncoder(VNET_HDR_LEN, True)
    _flush(laid_out)
    _flush(written)
    expected = _records(laid_out.build())
    assert write_flush(a.fileno(), written) == len(expected) == 6
    assert _received(b) == expected
    assert written.merged_segments == laid_out.merged_segments == 4 + 2 + 1


def test_write_flush_writes_each_payload_from_where_it_is(pair):
    """No copy on the way out but the kernel's: write_flush hands writev the payload's own memory (a byte
    changed after the segment was queued goes out changed)."""
    a, b = pair
    backing = bytearray(b"a" * 100)
    enc = BatchEncoder(VNET_HDR_LEN, True)
    enc.tcp(SRC, DST, replace(_data(1, 0, Flags.ACK | Flags.PSH), payload=memoryview(backing)))
    backing[:] = b"b" * 100
    assert write_flush(a.fileno(), enc) == 1
    assert _received(b)[0].endswith(b"b" * 100)


def test_write_flush_cuts_a_long_run_of_small_segments_at_the_iovec_limit(pair):
    """A run takes at most 63 payloads in one writev; the rest starts another super-segment, and the
    kernel cuts both back into exactly the segments."""
    a, b = pair
    segs = [_data(1 + i * 10, 10) for i in range(100)]
    enc = BatchEncoder(VNET_HDR_LEN, True)
    for seg in segs:
        enc.tcp(SRC, DST, seg)
    assert write_flush(a.fileno(), enc) == 2
    records = _received(b)
    assert [len(_kernel_cut(r)) for r in records] == [63, 37]
    assert [p for r in records for p in _kernel_cut(r)] == segs


def test_write_flush_to_a_full_queue_drops_the_rest_and_says_how_many_went(pair):
    """As a NIC's full ring: what does not fit is dropped, not queued, and write_flush returns what went out."""
    a, b = pair
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    enc = BatchEncoder(VNET_HDR_LEN, True)
    for i in range(200):
        enc.tcp(SRC, DST, _data(1 + i * 1000, 1000, port=1000 + i))  # one record each
    sent = write_flush(a.fileno(), enc)
    assert 0 < sent < 200
    assert len(_received(b)) == sent
    assert len(enc) == 0  # the flush is done either way


def test_write_flush_without_offloads_writes_the_packets_build_lays_out(pair):
    """Without a virtio_net_hdr the flush is built (IPv4 runs cut by software GSO) and written packet by
    packet: the same packets as the built batch."""
    a, b = pair
    laid_out, written = BatchEncoder(0), BatchEncoder(0)
    _flush(laid_out)
    _flush(written)
    expected = _records(laid_out.build())
    assert write_flush(a.fileno(), written) == len(expected)
    assert _received(b) == expected
