"""Files the stack records into (the pcap, the event log): a write that fails stops the recording, never
the stack."""

from __future__ import annotations

import logging
from typing import IO, Any

log = logging.getLogger(__name__)


class RecordingFile:
    """A file opened for writing whose first failing write or flush (a full disk, a closed pipe) is logged
    once and ends the recording: what follows is dropped, and the connections whose packets and events
    it recorded go on as if nothing had been asked of it."""

    def __init__(self, f: IO[Any], name: str) -> None:
        self._f = f
        self.name = name
        self.failed = False

    @property
    def closed(self) -> bool:
        return self._f.closed

    def write(self, data: Any) -> None:
        if self.failed:
            return
        try:
            self._f.write(data)
        except OSError as exc:
            self._fail(exc)

    def flush(self) -> None:
        if self.failed:
            return
        try:
            self._f.flush()
        except OSError as exc:
            self._fail(exc)

    def close(self) -> None:
        try:
            self._f.close()  # (flushes what it still holds, which may fail once more)
        except OSError as exc:
            if not self.failed:
                self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.failed = True
        log.error("%s: %s: recording stopped; the stack goes on", self.name, exc.strerror or exc)
