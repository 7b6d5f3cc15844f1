"""`serve --workers 2`: one process per queue of a multi-queue TUN device, the kernel spreading flows over
them; netstat and stats speak for all workers."""

from __future__ import annotations

import hashlib
import subprocess

from stack.netns import wait_for
from stack.services.http import pattern_sha256
from tests.integration.conftest import ADDR, start_serve

CLIENTS = 16


def test_workers_spread_connections_and_netstat_stats_merge_them(netns, tmp_path):
    """Each worker listens on every service port and owns the connections the kernel hashes to its queue
    (as SO_REUSEPORT spreads them over kernel sockets); the control socket merges both workers."""
    served = start_serve(netns, tmp_path, "--workers", "2")
    rows = served.netstat()
    listening = [(r["worker"], r["local"]) for r in rows if r["state"] == "LISTEN"]
    assert sorted(w for w, _ in listening) == [0] * 4 + [1] * 4
    clients = [
        netns.popen(["nc", "-N", ADDR, "9"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL) for _ in range(CLIENTS)
    ]
    try:

        def established() -> list[dict]:
            rows = [r for r in served.netstat() if r["state"] == "ESTABLISHED"]
            return rows if len(rows) == CLIENTS else []

        rows = wait_for(established, 30, f"{CLIENTS} established connections")
        assert {r["worker"] for r in rows} == {0, 1}  # all 16 on one queue: 1 chance in 32768
        stats = served.stats()
        assert stats["Workers"] == 2
        assert stats["CurrEstab"] == CLIENTS
        assert stats["PassiveOpens"] == CLIENTS
    finally:
        for c in clients:
            c.stdin.close()
            c.wait(timeout=30)
    assert served.stop() == 0
    assert netns.run(["ip", "link", "show", "tun0"]).returncode != 0  # the last queue closed


def test_workers_serve_a_download_and_ping(netns, tmp_path):
    served = start_serve(netns, tmp_path, "--workers", "2")
    got = netns.run(["curl", "-sS", "-m", "60", f"{served.url}/bytes/10000000"], timeout=90)
    assert got.returncode == 0, got.stderr
    assert hashlib.sha256(got.stdout).hexdigest() == pattern_sha256(10_000_000)
    assert netns.run(["ping", "-c", "2", "-W", "2", ADDR]).returncode == 0
    assert served.stop() == 0
    assert "with 2 workers" in served.log()


def test_workers_hang_up_stops_the_parent_and_then_every_worker(netns, tmp_path):
    """A terminal that closes hangs up its whole process group, the workers too: they leave it to the
    parent, which stops them as on SIGTERM (a worker that died of it alone would stop the others with an
    error), and the device goes with the last queue."""
    import os
    import signal

    from stack.netns import descendants

    served = start_serve(netns, tmp_path, "--workers", "2")
    processes = descendants(served.proc.pid)
    assert len(processes) == 3
    for pid in reversed(processes):  # the workers first, as they may be the first to hear it
        os.kill(pid, signal.SIGHUP)
    assert served.proc.wait(timeout=30) == 0, served.log()
    assert "exited; stopping" not in served.log()
    assert netns.run(["ip", "link", "show", "tun0"]).returncode != 0
