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


def _wait_closed(served, port: int = 80, timeout: float = 10.0) -> None:
    """Until no connection on `port` is left but the listener (the final ACK of LAST_ACK arrived)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [r for r in served.netstat() if r["local"].endswith(f":{port}") and r["state"] != "LISTEN"]
        if not rows:
            return
        time.sleep(0.05)
    raise AssertionError(f"connections on port {port} still open: {rows}")


def test_ladder_of_a_curl_request_shows_the_passive_open_and_close(netns, tmp_path):
    """A kernel client (curl) fetches a page and closes first: the ladder drawn from the pcap and the
    event log has the three-way handshake (RFC 9293 §3.5) and the four-way close seen from the
    passive side, with the states the stack's connection went through: LISTEN (the child of the
    listening socket), SYN_RECV, ESTABLISHED, CLOSE_WAIT, LAST_ACK, CLOSED."""
    pytest.importorskip("matplotlib")
    from stack.plot_ladder import Note, Seg, add_syn_options, fold, from_trace

    pcap, trace, png = tmp_path / "p.pcap", tmp_path / "t.jsonl", tmp_path / "ladder.png"
    served = start_serve(netns, tmp_path, "--pcap", str(pcap), "--trace", str(trace))
    body = netns.run(["curl", "-sS", "-m", "30", f"http://{ADDR}/bytes/20000"])
    assert body.returncode == 0 and len(body.stdout) == 20000, body.stderr
    _wait_closed(served)
    assert served.stop() == 0

    rows = fold(from_trace(str(trace), port=80).rows)
    segs = [r for r in rows if isinstance(r, Seg)]
    assert [(s.outgoing, s.flags) for s in segs[:3]] == [(False, "S"), (True, "S."), (False, ".")]
    fins = [s for s in segs if "F" in s.flags]
    assert [s.outgoing for s in fins] == [False, True]  # curl closes first, then the stack
    assert [r.text for r in rows if isinstance(r, Note) and r.kind == "state"] == [
        "LISTEN", "SYN_RECV", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSE"
    ]  # fmt: skip

    result = subprocess.run(
        [sys.executable, "-m", "stack.cli", "plot", "--ladder", str(pcap), "--trace", str(trace), "-o", str(png)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "states LISTEN SYN_RECV ESTABLISHED CLOSE_WAIT LAST_ACK CLOSE" in result.stdout
    with_options = from_trace(str(trace), port=80)
    add_syn_options(with_options, str(pcap))
    syn, synack = [r for r in with_options.rows if isinstance(r, Seg)][:2]
    assert "sackOK" in syn.options and "TS" in syn.options  # the kernel's SYN, from the capture
    assert synack.options.startswith("<mss 1460,")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000
