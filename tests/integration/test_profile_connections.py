"""tools/profile-connections: what a short connection and a round trip cost `tcpstack serve`, in counts that
load does not change (the tool makes and removes its own namespace)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent.parent / "tools" / "profile-connections"


def test_profile_connections_counts_bytecodes_per_connection_and_round_trip():
    """--bytecodes counts what the serving process executes between two signals around each workload: the
    same count twice (opcode tracing, not time), and a connection costs more than a round trip."""
    argv = [sys.executable, str(TOOL), "--connections", "200", "--round-trips", "400", "--bytecodes"]
    counts = []
    for _ in range(2):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        per = dict(
            re.findall(r"(connections|round-trips): Python bytecodes per \S+ \(sys.settrace\): (\d+)", done.stdout)
        )
        assert set(per) == {"connections", "round-trips"}, done.stdout
        counts.append((int(per["connections"]), int(per["round-trips"])))
    (connection, round_trip), again = counts
    assert connection > round_trip > 1000
    assert abs(again[0] - connection) < connection // 20 and abs(again[1] - round_trip) < round_trip // 20
