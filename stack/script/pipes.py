"""pipe(2) as the scripts use it: a byte count with Linux's default capacity, filled by splice(2) from a
socket. The bytes themselves are never looked at (a script's data are zeroes)."""

from __future__ import annotations

from dataclasses import dataclass

CAPACITY = 65536  # Linux's default pipe size: 16 pages (pipe(7))


@dataclass
class Pipe:
    held: int = 0  # bytes written and not yet read

    @property
    def room(self) -> int:
        return CAPACITY - self.held


@dataclass(frozen=True)
class End:
    pipe: Pipe
    writes: bool  # the write end (pipefd[1]) or the read end (pipefd[0])
