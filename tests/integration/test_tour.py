"""`tcpstack tour` produces all eleven TCP states against the kernel; a watcher sees each in netstat."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time

from stack import control
from stack.tour import STATES


def test_tour_shows_all_eleven_states_in_netstat():
    """RFC 9293 §3.3.2 (the state diagram): LISTEN, SYN_SENT, SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1,
    FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT and CLOSED, each reached against the kernel and
    seen from outside, as `tcpstack netstat --json --closed` reports it, while the tour runs."""
    tour = subprocess.Popen(
        [sys.executable, "-m", "stack.cli", "tour", "--pause", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pattern = os.path.join(control.CONTROL_DIR, f"tour-{tour.pid}-*.sock")
    seen: set[str] = set()
    deadline = time.monotonic() + 120
    try:
        while tour.poll() is None and time.monotonic() < deadline:
            for path in glob.glob(pattern):
                try:
                    seen.update(row["state"] for row in control.request(path, "netstat", closed=True))
                except OSError:
                    pass  # starting or gone
            time.sleep(0.01)
        output = tour.communicate(timeout=30)[0]
    finally:
        if tour.poll() is None:
            tour.kill()
            tour.wait()
    assert tour.returncode == 0, output
    assert "tour OK: all 11 states" in output, output
    assert set(STATES) <= seen, f"never seen from outside: {set(STATES) - seen}\n{output}"
    assert not glob.glob(pattern), "the tour left control sockets behind"
