"""Nothing blocks the event loop: while the heaviest request the HTTP service accepts is computed (the
sha256 of MAX_HASH_BYTES of /bytes/N), ping and an echo round trip through the same stack stay fast."""

from __future__ import annotations

import re
import socket
import time

from stack.services.http import MAX_HASH_BYTES, pattern_sha256
from tests.integration.conftest import ADDR, Served
from tests.integration.hostile import connect

SLOW = 0.25  # seconds: an echo or ping round trip on this TUN takes about a millisecond


def _echo_rtt(sock: socket.socket) -> float:
    started = time.monotonic()
    sock.sendall(b"x" * 100)
    got = b""
    while len(got) < 100:
        got += sock.recv(100 - len(got))
    return time.monotonic() - started


def test_serve_heaviest_sha256_request_leaves_ping_and_echo_fast(served: Served):
    """RFC 1122 §4.2.3.1 aside, a host that stops answering for seconds looks dead: no request may hold
    the loop (the service bounds N and hashes in a worker thread)."""
    echo = connect(served.ns, (ADDR, 7))
    assert _echo_rtt(echo) < SLOW  # warm: the connection and the loop work
    heavy = served.ns.popen(
        ["curl", "-sS", "-m", "120", f"http://{ADDR}/bytes/{MAX_HASH_BYTES}.sha256"], stdout=-1, stderr=-1, text=True
    )
    ping = served.ns.popen(["ping", "-c", "20", "-i", "0.05", "-W", "5", ADDR], stdout=-1, text=True)
    started = time.monotonic()
    rtts = []
    while heavy.poll() is None:
        rtts.append(_echo_rtt(echo))
        time.sleep(0.01)
    hashing = time.monotonic() - started
    out, err = heavy.communicate()
    echo.close()
    ping_out, _ = ping.communicate(timeout=30)
    assert out.strip() == pattern_sha256(MAX_HASH_BYTES), err
    assert max(rtts) < SLOW, f"an echo round trip took {max(rtts):.3f} s while hashing ({hashing:.2f} s)"
    assert len(rtts) >= 5, f"the heavy request took only {hashing:.2f} s: it did not overlap the round trips"
    times = [float(t) for t in re.findall(r"time=([\d.]+) ms", ping_out)]
    assert len(times) == 20, ping_out
    assert max(times) < SLOW * 1000, ping_out
