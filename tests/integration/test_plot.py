"""`serve --pcap --trace` during a lossy curl download, then `tcpstack plot` draws it."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys

import pytest

from stack.services.http import pattern_sha256
from stack.trace import read_events
from tests.integration.conftest import ADDR, start_serve

SIZE = 1_000_000


def test_lossy_download_pcap_and_trace_plot_to_png(netns, tmp_path):
    """5% loss both ways: the log has the connection's segments, timers and recovery; the plot
    finds retransmissions in the pcap and draws both panels into a PNG."""
    pytest.importorskip("matplotlib")
    pcap, trace, png = tmp_path / "p.pcap", tmp_path / "t.jsonl", tmp_path / "out.png"
    served = start_serve(netns, tmp_path, "--fault", "loss=5%,seed=7", "--pcap", str(pcap), "--trace", str(trace))
    body = netns.run(["curl", "-sS", "-m", "120", f"http://{ADDR}/bytes/{SIZE}"])
    assert body.returncode == 0, body.stderr
    assert len(body.stdout) == SIZE
    assert hashlib.sha256(body.stdout).hexdigest() == pattern_sha256(SIZE)
    assert served.stop() == 0  # SIGTERM: pcap and event log flushed and closed

    events = list(read_events(str(trace)))
    http = [e for e in events if e.get("local") == f"{ADDR}:80"]
    assert sum(e["len"] for e in http if e["ev"] == "seg" and e["dir"] == "out") >= SIZE
    assert any(e["ev"] == "seg" and e.get("rexmit") for e in http)
    assert any(e["ev"] == "recovery" and e["action"] == "enter" for e in http)
    assert any(e["ev"] == "timer" and e["name"] == "retransmit" for e in http)

    result = subprocess.run(
        [sys.executable, "-m", "stack.cli", "plot", str(pcap), "--trace", str(trace), "-o", str(png)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r"(\d+) data segments, (\d+) retransmitted, (\d+) recoveries", result.stdout)
    assert match, result.stdout
    segments, retransmitted, recoveries = map(int, match.groups())
    assert segments >= SIZE // 1460 and retransmitted > 0 and recoveries > 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000
