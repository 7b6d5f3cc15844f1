"""tools/bench's own failures: a server or client that fails stops the bench at once, saying which and why."""

from __future__ import annotations

import os
import re
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


def test_bench_stops_with_the_client_and_its_error_when_a_client_fails(tmp_path):
    """A client that fails (here an `ab` that refuses to run) stops the bench with one line that names the
    client, its column, its exit status and its own error, not a traceback, and removes the namespaces."""
    fake_ab = tmp_path / "ab"
    fake_ab.write_text('#!/bin/sh\necho "ab: refused in this test" >&2\nexit 22\n')
    fake_ab.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    argv = [sys.executable, str(BENCH), "--rows", "ab", "--rounds", "1", "--only", "kernel veth"]
    bench = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = bench.communicate(timeout=120)
    assert bench.returncode == 1, err
    assert "bench: ab -q -n ... (kernel veth) exited with status 22: ab: refused in this test" in err, err
    assert "Traceback" not in err, err
    assert _namespaces_of(bench.pid) == []


def test_bench_loss_row_takes_the_median_of_loss_runs_downloads_of_each():
    """`--loss` times `--loss-runs` lossy downloads from each server (one random loss pattern is too few to
    compare by) and reports their medians and the median of the runs' ratios, with the namespaces removed
    afterwards."""
    argv = [sys.executable, str(BENCH), "--rows", "rtt", "--rounds", "1", "--round-trips", "50"]
    argv += ["--only", "kernel veth", "--loss", "--loss-runs", "3"]
    bench = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = bench.communicate(timeout=300)
    assert bench.returncode == 0, err
    last = out.splitlines()[-1]
    assert last.startswith("20 MB download at 2% loss both ways (NFQUEUE router, CUBIC both), median of 3: "), out
    assert " s, kernel " in last and "; median ratio of runs " in last, last
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert [line for line in listed.splitlines() if f"-{bench.pid}-" in line] == []  # the lossy router's too


def test_bench_connections_and_ab_rows_report_the_servers_cpu_per_connection_and_request():
    """Under the connections and ab rows, each column's server program's CPU time per connection and per
    request (its processes' threads, from /proc), with a ratio, and how often the scheduler put it on a
    CPU per 1,000 (no ratio: it tells how the time was spent, not how well), for the kernel's server and
    for tcpstack, so that the speed rows can be read against what they cost."""
    argv = [sys.executable, str(BENCH), "--rows", "connections,ab", "--rounds", "1", "--connections", "100"]
    argv += ["--requests", "400", "--only", "kernel veth,tcpstack offl on"]
    bench = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = bench.communicate(timeout=300)
    assert bench.returncode == 0, err
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("kernel veth"))
    table = [line for line in lines[header + 1 :] if not line.startswith("(")]
    rows = {line[:18].strip(): line[18:].split() for line in table}
    assert list(rows) == [
        "connections/s",
        "CPU us/conn",
        "on CPU/1k conn",
        "ab -c 8 req/s",
        "CPU us/req",
        "on CPU/1k req",
    ], out
    for name in ("CPU us/conn", "CPU us/req"):
        *cells, ratio = rows[name]
        assert len(cells) == 5, out  # kernel veth, +offl, x2 (two processes), tcpstack offl on, and x2
        # a server spends microseconds on each, not nothing and not seconds
        assert all(1 < float(cell) < 100_000 for cell in cells), out
        assert float(ratio) > 0, out
    for name in ("on CPU/1k conn", "on CPU/1k req"):
        *cells, ratio = rows[name]
        assert len(cells) == 5 and all(float(cell) >= 0 for cell in cells) and ratio == "-", out
    # what a second process gains the kernel's server and tcpstack, each against its one-process column
    gains = re.search(r"\(a second process, ab -c 8 req/s: kernel veth ([\d.]+), tcpstack offl on ([\d.]+)\)", out)
    assert gains is not None and all(float(g) > 0 for g in gains.groups()), out
    assert _namespaces_of(bench.pid) == []
