"""tools/bench's own failures: a server that cannot start stops the bench at once, saying which and why."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench"


def _namespaces_of(pid: int) -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    names = (line.split()[0] for line in listed.splitlines())
    return [name for name in names if name.startswith("tcpstack-bench-") and f"-{pid}-" in name]


def test_bench_stops_at_once_when_a_kernel_server_exits_before_it_is_ready(tmp_path):
    """The kernel column's server exits at start-up (here uvloop cannot be imported): the bench ends within
    seconds with that server's exit status, not after its 30 s wait for the server to be ready, and
    removes the namespaces it made."""
    (tmp_path / "uvloop.py").write_text('raise ImportError("no uvloop in this test")\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    argv = [sys.executable, str(BENCH), "--rows", "rtt", "--rounds", "1", "--only", "kernel veth"]
    started = time.monotonic()
    bench = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = bench.communicate(timeout=120)
    assert time.monotonic() - started < 20, err
    assert bench.returncode != 0
    assert "bench: the kernel server (k) exited with status 1 before it was ready" in err, err
    assert "no uvloop in this test" in err  # the server's own error, on the bench's stderr
    assert _namespaces_of(bench.pid) == []
