"""Batched packet I/O on a non-blocking fd (TUN, or a SOCK_SEQPACKET socket in tests), in C.

A batch is one C buffer of records (an IP packet, after a virtio_net_hdr when the TUN has offloads on)
with their offsets and lengths: the C parser and builder take it whole, one call per batch. Reads go
into an arena that is never written twice, so payloads can be memoryviews into it rather than copies.
"""

from __future__ import annotations

import os
from typing import Final

from stack._fast import ffi, lib
from stack.wire.batch import PacketBatch, uncleared
from stack.wire.codec import BatchEncoder

_MAX_BATCH: Final = 64
_SCRATCH_SIZE: Final = 65535 + 64  # write_flush: a virtio_net_hdr and the largest packet built whole
_scratch: Final = uncleared("char[]", _SCRATCH_SIZE)  # one record's headers at a time (the loop is single-threaded)
_items: Final = ffi.new("int *")


class BatchReader:
    """Reads up to `max_packets` records per call into the current arena; a full arena is left to the
    payload views that still use it and a new one begins."""

    def __init__(self, max_packets: int = _MAX_BATCH, max_size: int = 65535, vnet: int = 0) -> None:
        self._room = max_size + vnet  # the largest record one read may return
        self._arena_size = max(1 << 18, 16 * self._room)
        self._max = max_packets
        self._vnet = vnet
        self._offs = ffi.new("uint32_t[]", max_packets)
        self._lens = ffi.new("uint32_t[]", max_packets)
        self._new_arena()

    def _new_arena(self) -> None:
        self._arena = uncleared("char[]", self._arena_size)
        self._view = memoryview(ffi.buffer(self._arena)).toreadonly()
        self._used = 0

    def read(self, fd: int) -> PacketBatch:
        if self._arena_size - self._used < self._room + 8:
            self._new_arena()
        offs, lens = self._offs, self._lens
        n = lib.fast_read_arena(fd, self._arena, self._arena_size, self._used, self._room, self._max, offs, lens)
        if n < 0:
            raise OSError(-n, os.strerror(-n))
        if n:
            self._used = offs[n - 1] + lens[n - 1]
        return PacketBatch(self._arena, self._view, offs, lens, n, self._vnet)


def write_batch(fd: int, batch: PacketBatch | list[bytes], vnet: int = 0) -> int:
    """Writes the records, one write(2) each in one C call; returns how many went out (a full queue
    drops the rest). A list of IP packets is laid out as a batch first."""
    if not isinstance(batch, PacketBatch):
        batch = PacketBatch.of(batch, vnet)
    if not batch.n:
        return 0
    n = lib.fast_write_records(fd, batch.buf, batch.offs, batch.lens, batch.n)
    if n < 0:
        raise OSError(-n, os.strerror(-n))
    return n


def write_flush(fd: int, out: BatchEncoder) -> int:
    """Writes an encoder's flush: with `vnet`, each record with one writev straight from its payloads, its
    headers through a small buffer, without laying the records out (the kernel copies the payloads once,
    into its skb); without, built into one buffer and written record by record. Returns the records
    written; a full queue drops the rest, as a NIC would."""
    if not out.vnet:
        return write_batch(fd, out.build())
    segs, payloads, plens, gso_sizes, raw, n = out.pending()
    count = lib.fast_send_batch(
        fd, _scratch, _SCRATCH_SIZE, segs, payloads, plens, gso_sizes, raw, n, out.vnet, out.gso, _items
    )
    out.sent(_items[0], max(count, 0))
    if count < 0:
        raise OSError(-count, os.strerror(-count))
    return count
