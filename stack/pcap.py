"""Classic libpcap files of raw IPv4 packets, readable by tcpdump and Wireshark, and a capturing device."""

from __future__ import annotations

import struct
import time
from typing import IO, Any

from stack.recording_file import RecordingFile
from stack.wire.batch import PacketBatch

LINKTYPE_RAW = 101  # raw IPv4/IPv6, no link-layer header
_MAGIC_USEC = 0xA1B2C3D4
STDOUT = "-"  # as tcpdump's `-w -`: the capture goes to standard output, e.g. into `tcpdump -r -`


def _open(path: str) -> tuple[IO[Any], str]:
    """The file and its name for errors. Standard output is file descriptor 1 itself (the CLI points
    sys.stdout at stderr), left open when the writer closes."""
    if path == STDOUT:
        return open(1, "wb", closefd=False), "standard output"  # noqa: SIM115 - lives as long as the stack
    return open(path, "wb"), path  # noqa: SIM115 - lives as long as the stack


class PcapWriter:
    """A capture written to `path`, or to standard output for STDOUT ("-")."""

    def __init__(self, path: str, snaplen: int = 65535) -> None:
        self._file = RecordingFile(*_open(path))
        self._file.write(struct.pack("<IHHiIII", _MAGIC_USEC, 2, 4, 0, 0, snaplen, LINKTYPE_RAW))
        self._snaplen = snaplen

    def write(self, packet: bytes, timestamp: float | None = None) -> None:
        t = time.time() if timestamp is None else timestamp
        sec = int(t)
        usec = int((t - sec) * 1_000_000)
        data = packet[: self._snaplen]
        self._file.write(struct.pack("<IIII", sec, usec, len(data), len(packet)))
        self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class CapturingDevice:
    """Wraps a device and records every packet in and out, as it crosses the device: with TUN offloads a
    coalesced super-segment is one record (as tcpdump shows it on a TSO/GRO interface), its checksum
    filled in."""

    def __init__(self, inner, writer: PcapWriter) -> None:
        self.inner = inner
        self.writer = writer
        self.name = inner.name
        self.mtu = inner.mtu
        self.vnet = getattr(inner, "vnet", 0)
        self.gso = getattr(inner, "gso", False)

    def fileno(self) -> int:
        return self.inner.fileno()

    def read_batch(self) -> PacketBatch:
        batch = self.inner.read_batch()
        self._record(batch)
        return batch

    def write_batch(self, batch: PacketBatch | list[bytes]) -> None:
        if not isinstance(batch, PacketBatch):
            batch = PacketBatch.of(batch, self.vnet)
        self._record(batch)
        self.inner.write_batch(batch)

    def _record(self, batch: PacketBatch) -> None:
        now = time.time()
        packets = batch.captured()
        for p in packets:
            self.writer.write(p, now)
        if packets:
            self.writer.flush()  # per batch, so `tcpdump -r` and Wireshark can follow the file live

    def close(self) -> None:
        self.inner.close()
        self.writer.close()
