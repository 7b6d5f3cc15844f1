"""`tcpstack script --trace/--pcap`: what a script run did, in its virtual time."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from scapy.layers.inet import TCP
from scapy.utils import rdpcap

SCRIPT = str(Path(__file__).parents[1] / "scripts" / "close" / "active_close_time_wait.pkt")


def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stack.cli", "script", *args], capture_output=True, text=True)


def test_script_pcap_and_event_log_record_the_run_in_virtual_time(tmp_path):
    pcap, log = tmp_path / "run.pcap", tmp_path / "run.jsonl"
    result = _script(SCRIPT, "--pcap", str(pcap), "--trace", str(log))
    assert result.returncode == 0 and result.stdout.startswith("PASS"), result.stdout + result.stderr
    packets = rdpcap(str(pcap))
    flags = [str(p[TCP].flags) for p in packets]
    assert flags[:4] == ["S", "SA", "A", "FA"], flags  # the handshake, then our FIN
    times = [float(p.time) for p in packets]
    assert times[0] == 0.0 and times == sorted(times) and times[-1] < 10  # the script's clock, not the wall's
    events = [json.loads(line) for line in log.read_text().splitlines()]
    states = [(e["from"], e["to"]) for e in events if e["ev"] == "state"]
    assert ("FIN_WAIT2", "TIME_WAIT") in states, states
    assert all(e["t"] < 10 for e in events)


def test_script_trace_alone_prints_transitions_with_virtual_times():
    result = _script(SCRIPT, "--trace")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "trace: 0.120000 192.0.2.1:40000 FIN_WAIT2 -> TIME_WAIT (FIN)" in result.stderr, result.stderr


def test_script_pcap_needs_exactly_one_script(tmp_path):
    result = _script(SCRIPT, SCRIPT, "--pcap", str(tmp_path / "x.pcap"))
    assert result.returncode == 2 and "one FILE.pkt" in result.stderr


def test_script_pcap_to_standard_output_is_the_capture_and_the_result_goes_to_stderr(tmp_path):
    """`--pcap -`, as tcpdump's `-w -`: stdout is the capture alone (for `| tcpdump -r -`), so the
    PASS line goes to stderr; no file named "-" is made."""
    result = subprocess.run(
        [sys.executable, "-m", "stack.cli", "script", SCRIPT, "--pcap", "-"], capture_output=True, cwd=tmp_path
    )
    assert result.returncode == 0 and result.stderr.startswith(b"PASS"), result.stderr
    flags = [str(p[TCP].flags) for p in rdpcap(io.BytesIO(result.stdout))]
    assert flags[:4] == ["S", "SA", "A", "FA"], flags
    assert list(tmp_path.iterdir()) == []


def test_script_pcap_to_a_terminal_is_refused(tmp_path):
    """A capture is binary: written to a terminal it would only garble the screen."""
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "stack.cli", "script", SCRIPT, "--pcap", "-"],
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == 2
    assert "standard output is a terminal" in result.stderr
