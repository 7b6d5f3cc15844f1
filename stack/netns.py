"""Private network namespaces for the demo, tests and benchmarks: unique names, always removed."""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

_counter = itertools.count()
_CLONE_NEWNET = 0x40000000


class NetNs:
    """A network namespace this process created; `close()` kills what was started in it and deletes it."""

    def __init__(self, prefix: str = "tcpstack") -> None:
        _unwind_on_sigterm()
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

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """This thread inside the namespace for a while: sockets made meanwhile stay in it for good."""
        libc = ctypes.CDLL(None, use_errno=True)
        with open("/proc/self/ns/net") as home, open(f"/run/netns/{self.name}") as target:
            if libc.setns(target.fileno(), _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {self.name}")
            try:
                yield
            finally:
                libc.setns(home.fileno(), _CLONE_NEWNET)

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


def _unwind_on_sigterm() -> None:
    """SIGTERM ends this process as an exception would, so that every NetNs it made is closed on the way
    out (a program stopped by a timeout, `timeout` or kill leaves no namespace behind). Only where SIGTERM
    still does its default (a program with a handler of its own keeps it) and in the main thread, the
    only one that may set handlers."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


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


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (tcpstack --workers forks)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def start_serve(
    ns: NetNs,
    control_path: str,
    log_path: str,
    *extra: str,
    addr: str = "10.7.0.2",
    peer: str = "10.7.0.1/24",
    timeout: float = 30,
    python_options: tuple[str, ...] = (),
    stdout: int | None = None,
) -> subprocess.Popen:
    """`tcpstack serve` on tun0 inside `ns`, logging to `log_path`; returns once its control socket answers.
    `python_options` go to the interpreter before the module (e.g. `-m cProfile -o FILE` to profile it);
    `stdout` (e.g. subprocess.PIPE, for `--pcap -`) instead of the log."""
    from stack import control

    with open(log_path, "w") as log:
        proc = ns.popen(
            [
                sys.executable,
                *python_options,
                "-m",
                "stack.cli",
                "serve",
                "--tun",
                "tun0",
                "--addr",
                addr,
                "--peer",
                peer,
                "--control",
                control_path,
                *extra,
            ],
            stdout=log if stdout is None else stdout,
            stderr=log,
        )

    def ready() -> bool:
        if proc.poll() is not None:
            with open(log_path) as f:
                raise RuntimeError(f"tcpstack serve exited with {proc.returncode}:\n{f.read()}")
        try:
            control.request(control_path, "netstat")
            return True
        except OSError:
            return False

    wait_for(ready, timeout, "tcpstack serve to answer on its control socket")
    return proc
