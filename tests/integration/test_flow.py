"""Flow control against the kernel: a client that stops reading makes the stack probe a zero window."""

from __future__ import annotations

import sys

from stack.netns import wait_for
from tests.integration.conftest import ADDR

# Reads some chargen, stops until the test says so, then reads more; checks the stream has no gap.
SLOW_READER = r"""
import os, socket, sys
from stack.services.chargen import chargen_lines, PRINTABLE
flag = sys.argv[1]
cycle = chargen_lines(len(PRINTABLE))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
s.connect((sys.argv[2], 19))
got = bytearray()
def read_until(n):
    while len(got) < n:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("stream ended early")
        got.extend(chunk)
read_until(100_000)
open(flag + ".paused", "w").close()
while not os.path.exists(flag):
    __import__("time").sleep(0.05)  # the test creates the flag once it has seen the probing
read_until(2_000_000)
expected = (cycle * (len(got) // len(cycle) + 1))[: len(got)]
sys.exit(0 if bytes(got) == expected else "the stream lost or reordered bytes")
"""


def test_zero_window_is_probed_and_transfer_resumes_without_loss(served, tmp_path):
    flag = tmp_path / "go"
    reader = served.ns.popen([sys.executable, "-c", SLOW_READER, str(flag), ADDR])

    def stalled_row():
        return next(
            (
                r
                for r in served.netstat()
                if r["local"] == f"{ADDR}:19"
                and r["state"] == "ESTABLISHED"
                and r["timer"] == "probe"
                and r["send_q"] > 0
            ),
            None,
        )

    wait_for(lambda: (tmp_path / "go.paused").exists(), 30, "the reader to pause")
    wait_for(stalled_row, 30, "the stack to probe the zero window")
    flag.touch()
    assert reader.wait(timeout=120) == 0


# Sends one HTTP request with Connection: close, reads the response and then holds the socket open
# without closing it, so the stack (which closed first) waits in FIN_WAIT_2.
HALF_OPEN_CLIENT = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], 80))
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
while s.recv(65536):
    pass
open(sys.argv[2], "w").close()
time.sleep(60)  # killed by the test's namespace teardown
"""


def test_orphaned_fin_wait_2_times_out_in_netstat(netns, tmp_path):
    from tests.integration.conftest import start_serve

    served = start_serve(netns, tmp_path, "--fin-timeout", "2")
    netns.popen([sys.executable, "-c", HALF_OPEN_CLIENT, ADDR, str(tmp_path / "got-response")])
    wait_for(lambda: (tmp_path / "got-response").exists(), 30, "the response")

    def fin_wait_2():
        return next((r for r in served.netstat() if r["state"] == "FIN_WAIT2"), None)

    row = wait_for(fin_wait_2, 10, "a FIN_WAIT2 row")
    assert row["timer"] == "timewait" and 0 < row["timer_left"] <= 2.0
    wait_for(lambda: fin_wait_2() is None, 10, "the FIN_WAIT_2 timeout")
