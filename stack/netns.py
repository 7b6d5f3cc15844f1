"""Private network namespaces for the demo, tests and benchmarks: unique names, always removed."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Callable

_counter = itertools.count()


class NetNs:
    """A network namespace this process created; `close()` kills what was started in it and deletes it."""

    def __init__(self, prefix: str = "tcpstack") -> None:
        self.name = f"{prefix}-{os.getpid()}-{next(_counter)}"
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        self._procs: list[subprocess.Popen] = []
        self.run(["ip", "link", "set", "lo", "up"], check=True)

    def cmd(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        return subprocess.run(self.cmd(argv), **kwargs)

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(self.cmd(argv), **kwargs)
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def __enter__(self) -> NetNs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.02):
    """Poll `condition` until it returns something truthy; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
