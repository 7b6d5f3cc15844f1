"""The few files a packetdrill script makes and reads: virtual, never on the host.

gtests' sendfile scripts write zeroes into a file with `dd if=/dev/zero of=/tmp/NAME` (packetdrill's
payloads are zeroes), then open() it and sendfile() it to a socket. Here the shell line records the
file's size, open() gives a descriptor for it, and sendfile() sends that many zero bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_FILE_BYTES = 64 << 20  # what a script may create: its bytes are sent for real


@dataclass
class OpenFile:
    path: str
    offset: int = 0


@dataclass
class Files:
    sizes: dict[str, int] = field(default_factory=dict)  # path -> bytes (all zero)
    open: dict[int, OpenFile] = field(default_factory=dict)  # descriptor -> file

    def create(self, path: str, size: int) -> None:
        if not 0 <= size <= MAX_FILE_BYTES:
            raise ValueError(f"a file of {size} bytes")
        self.sizes[path] = size

    def remove(self, path: str) -> None:
        self.sizes.pop(path, None)

    def read(self, fd: int, offset: int | None, count: int) -> int:
        """How many bytes a read of `count` at `offset` (None: the descriptor's own) gets; the
        descriptor's offset moves only when none was given, as sendfile(2)."""
        f = self.open[fd]
        start = f.offset if offset is None else offset
        n = max(0, min(count, self.sizes.get(f.path, 0) - start))
        if offset is None:
            f.offset += n
        return n
