"""tools/profile-connections: what a short connection and a round trip cost `tcpstack serve`, in counts that
load does not change (the tool makes and removes its own namespace)."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent.parent / "tools" / "profile-connections"


def test_profile_connections_counts_bytecodes_per_connection_and_round_trip():
    """--bytecodes counts what the serving process executes between two signals around each workload, per
    connection and per round trip: about the same counts twice (opcode tracing, not time), whatever ran
    before (the second run counts twice the connections before its round trips), and a connection costs
    more than a round trip."""
    counts = []
    for connections in ("200", "400"):
        argv = [sys.executable, str(TOOL), "--connections", connections, "--round-trips", "400", "--bytecodes"]
        out = _run(argv, timeout=120)
        per = dict(re.findall(r"(connections|round-trips): Python bytecodes per \S+ \(sys.settrace\): (\d+)", out))
        assert set(per) == {"connections", "round-trips"}, out
        counts.append((int(per["connections"]), int(per["round-trips"])))
    (connection, round_trip), again = counts
    assert connection > round_trip > 1000
    # how packets fall into read batches still varies a little from run to run
    assert abs(again[0] - connection) < connection // 10 and abs(again[1] - round_trip) < round_trip // 10


def test_profile_connections_timeline_times_each_step_of_a_short_connection():
    """--timeline captures the device with tcpdump and times every step of each measured connection: the
    server's three turnarounds, the client's three and the cycle from one SYN to the next, which holds
    every step (the server's FIN overlaps the next SYN, but not by a whole cycle)."""
    argv = [sys.executable, str(TOOL), "--connections", "200", "--round-trips", "50", "--timeline"]
    out = _run(argv, timeout=180)
    assert "timeline at the TUN device (tcpdump, 200 connections)" in out, out
    rows = re.findall(r"^  (server|client|cycle) +(.+?) +(\d+) us +(\d+) us$", out, re.MULTILINE)
    steps = {name: (int(p50), int(p90)) for _side, name, p50, p90 in rows}
    assert [side for side, *_ in rows] == ["server", "client", "server", "client", "server", "client", "cycle"]
    cycle = steps.pop("SYN in -> next SYN in")
    for name, (p50, p90) in steps.items():
        assert 0 < p50 <= p90, (name, out)
        assert p50 < cycle[0], (name, out)


def test_profile_connections_sample_splits_serves_time_by_layer_and_function():
    """--sample has py-spy sample the serving process during each workload: the layers' shares make up the
    whole (each rounded), and the functions every segment passes through, the stack's input and flush and
    the core's receive_segment (compiled or not), are among those shown, each in some but not all samples;
    the functions' own shares, each sample counted once, add up to no more than the whole."""
    argv = [sys.executable, str(TOOL), "--connections", "1000", "--round-trips", "2000", "--sample"]
    out = _run([*argv, "--sample-seconds", "3"], timeout=180)
    for mode in ("connections", "round-trips"):
        lines = out.split(f"{mode}: where serve's time goes (py-spy --native, ", 1)[1].splitlines()
        samples = int(lines[0].split(" ", 1)[0])
        indented = list(itertools.takewhile(lambda line: line.startswith("  "), lines[1:]))
        layers = indented[0].removeprefix("  by layer: ")
        shares = [int(share) for share in re.findall(r" (\d+)%", layers)]
        assert samples > 0 and "Python (interpreted)" in layers and abs(sum(shares) - 100) <= len(shares), out
        assert indented[1] == "  by function, callees included:", out
        own_at = indented.index("  by function, its own time:")
        functions = [re.fullmatch(r" +(\d+\.\d)%  (.+)", line).groups() for line in indented[2:own_at]]
        names = [name for _share, name in functions]
        for step in ("_input", "_flush"):  # (stack/aio/stack.py is compiled with the core where the build is current)
            assert f"Stack.{step} (stack/aio/stack.py)" in names or f"stack.Stack.{step} (compiled)" in names, out
        assert any("receive_segment" in name for name in names), out
        assert all(0 < float(share) < 100 for share, _name in functions), out
        own = [re.fullmatch(r" +(\d+\.\d)%  (.+)", line).groups() for line in indented[own_at + 1 :]]
        assert own and sum(float(share) for share, _name in own) <= 100.5, out


def test_profile_connections_strace_counts_every_workers_system_calls():
    """With `-- --workers 2`, --strace attaches to every process of `serve`: the workers, not the parent,
    read the device and write to it, so a connection and a round trip each show reads and writes."""
    argv = [sys.executable, str(TOOL), "--connections", "200", "--round-trips", "500", "--strace"]
    out = _run([*argv, "--", "--workers", "2"], timeout=180)
    for unit in ("connection", "round-trip"):
        line = re.search(rf"^{unit}s: system calls per {unit} \(strace -c\): (.*)$", out, re.MULTILINE)
        assert line is not None, out
        calls = {name: float(n) for name, n in re.findall(r"(\w+) (\d+\.\d+)", line.group(1))}
        assert calls.get("read", 0) >= 1 and calls.get("writev", 0) + calls.get("write", 0) >= 1, out


def test_profile_connections_refuses_per_process_counts_with_workers():
    """--calls and --bytecodes count what one process runs: with `-- --workers 2` each is refused with its
    reason, before anything runs."""
    for option in ("--calls", "--bytecodes"):
        argv = [sys.executable, str(TOOL), option, "--", "--workers", "2"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and "count one process" in proc.stderr, proc.stderr


def _run(argv: list[str], timeout: float) -> str:
    """The tool's output; stopped with SIGTERM if it overruns, so that it removes its namespace."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out


def test_profile_connections_sample_follows_every_worker():
    """With `-- --workers 2` the parent only waits, the workers serve: --sample samples each process (one
    py-spy each), so the workers' time is there, not only the parent's idle waits."""
    argv = [sys.executable, str(TOOL), "--connections", "200", "--round-trips", "200", "--sample"]
    out = _run([*argv, "--sample-seconds", "2", "--", "--workers", "2"], timeout=180)
    for mode in ("connections", "round-trips"):
        sampled = re.search(rf"{mode}: where serve's time goes \(py-spy --native, (\d+) samples of (\d+) ", out)
        assert sampled and int(sampled.group(1)) > 0 and int(sampled.group(2)) > 0, out
        assert "stack.Stack._input (compiled)" in out or "Stack._input (stack/aio/stack.py)" in out, out
