"""Batched packet I/O on a non-blocking fd (TUN, or a SOCK_SEQPACKET socket in tests), in C."""

from __future__ import annotations

import os

from stack._fast import ffi, lib

_MAX_BATCH = 64


class BatchReader:
    """Reads up to `max_packets` whole packets per call into one preallocated buffer."""

    def __init__(self, max_packets: int = _MAX_BATCH, max_size: int = 65535) -> None:
        self._slot = max_size
        self._max = max_packets
        self._buf = ffi.new("char[]", max_packets * max_size)
        self._view = ffi.buffer(self._buf)
        self._lens = ffi.new("uint32_t[]", max_packets)

    def read(self, fd: int) -> list[bytes]:
        n = lib.fast_read_batch(fd, self._buf, self._slot, self._max, self._lens)
        if n < 0:
            raise OSError(-n, os.strerror(-n))
        slot, view, lens = self._slot, self._view, self._lens
        return [view[i * slot : i * slot + lens[i]] for i in range(n)]


def write_batch(fd: int, packets: list[bytes]) -> int:
    """Writes the packets in one C call; returns how many went out (a full queue drops the rest)."""
    if not packets:
        return 0
    n = lib.fast_write_batch(fd, b"".join(packets), [len(p) for p in packets], len(packets))
    if n < 0:
        raise OSError(-n, os.strerror(-n))
    return n
