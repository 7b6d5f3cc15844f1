"""A batch of packets in one C buffer, as the C parser takes a read and the C builder makes a flush."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from stack._fast import ffi, lib

VNET_HDR_LEN: Final = lib.FAST_VNET_HDR_LEN  # struct virtio_net_hdr, before each packet when TUN offloads are on
# for buffers the kernel or the builder writes in full before anything reads them
uncleared: Final = ffi.new_allocator(should_clear_after_alloc=False)


class PacketBatch:
    """Records i = buf[offs[i] : offs[i] + lens[i]], each starting with `vnet` bytes of virtio_net_hdr."""

    __slots__ = ("buf", "view", "offs", "lens", "n", "vnet")

    def __init__(self, buf, view: memoryview, offs, lens, n: int, vnet: int) -> None:
        self.buf = buf
        self.view = view
        self.offs = offs
        self.lens = lens
        self.n = n
        self.vnet = vnet

    def __len__(self) -> int:
        return self.n

    def __bool__(self) -> bool:  # as __len__ says (compiled code tests an optional one by __bool__ only)
        return self.n != 0

    def packets(self) -> list[memoryview]:
        """The IP packets, without their virtio_net_hdr (checksums may be partial: see `captured`)."""
        view, offs, lens, vnet = self.view, self.offs, self.lens, self.vnet
        return [view[offs[i] + vnet : offs[i] + lens[i]] for i in range(self.n)]

    def captured(self) -> Sequence[bytes | memoryview]:
        """The IP packets as a capture file should hold them: a checksum left to the device (NEEDS_CSUM)
        is filled in, on a copy; a super-segment stays one packet, as tcpdump shows it on a TSO device."""
        if not self.vnet:
            return self.packets()
        out: list[bytes | memoryview] = []
        for i in range(self.n):
            record = bytearray(self.view[self.offs[i] : self.offs[i] + self.lens[i]])
            lib.fast_vnet_complete_csum(ffi.from_buffer(record), len(record))
            out.append(bytes(record[self.vnet :]))
        return out

    @classmethod
    def of(cls, packets: Sequence[bytes | memoryview], vnet: int = 0) -> PacketBatch:
        """A batch from IP packets with complete checksums (their virtio_net_hdr, if any, says nothing)."""
        n = len(packets)
        offs = ffi.new("uint32_t[]", max(n, 1))
        lens = ffi.new("uint32_t[]", max(n, 1))
        pos = 0
        for i, p in enumerate(packets):
            offs[i] = pos
            lens[i] = vnet + len(p)
            pos += vnet + len(p)
        data = bytearray(pos)
        pos = 0
        for p in packets:
            data[pos + vnet : pos + vnet + len(p)] = p
            pos += vnet + len(p)
        buf = ffi.from_buffer(data)
        return cls(buf, memoryview(data).toreadonly(), offs, lens, n, vnet)
