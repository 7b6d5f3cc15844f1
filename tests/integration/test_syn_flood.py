"""50,000 spoofed SYNs from the kernel side (RFC 4987): the stack answers with SYN cookies once its SYN
queue is full, a real curl still gets its page during the flood, and the stack's memory stays bounded.

The SYNs come from a raw socket inside the test's own namespace, with random source addresses in
198.18.0.0/15 (RFC 2544's benchmarking range); the stack's SYN,ACKs to them go back into the same
namespace, which has no route anywhere else, and are dropped there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from stack.netns import wait_for
from tests.integration.conftest import ADDR

SYNS = 50_000
RSS_GROWTH_BOUND_KB = 20 * 1024  # the stated bound: the flood may add at most 20 MB to the stack's RSS

# Runs in the namespace: builds the SYNs with the stack's own codec and sends them from a raw socket.
FLOODER = r"""
import random, socket, sys, time
from stack.wire.codec import encode_tcp
from stack.wire.segment import Flags, Segment, TcpOptions

count, dst, port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(5)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
options = TcpOptions(mss=1460, wscale=7, sack_permitted=True)
sent = 0
for burst in range(0, count, 250):
    for _ in range(min(250, count - burst)):
        src = 0xC6120000 | rng.getrandbits(17)
        seg = Segment(rng.randrange(1024, 65536), port, rng.getrandbits(32), 0, Flags.SYN, 64240, b"", options)
        s.sendto(encode_tcp(src, dst, seg), (socket.inet_ntoa(dst.to_bytes(4, "big")), 0))
        sent += 1
    time.sleep(0.004)  # about 50,000 a second: the flood outruns the SYN queue, not the TUN's own queue
print(sent)
"""


def _rss_kb(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def _stats_json(served) -> dict:
    result = served.ns.run(
        [sys.executable, "-m", "stack.cli", "stats", "--control", served.control, "--json"], text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_spoofed_syn_flood_gets_cookies_while_curl_is_served_and_rss_stays_bounded(served):
    pid = served.proc.pid
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert b"stack.cli" in f.read()  # `ip netns exec` ran the stack in this very process
    warm = served.ns.run(["curl", "-sS", "-m", "20", f"{served.url}/"], text=True)  # load everything once
    assert warm.returncode == 0, warm.stderr
    baseline = _rss_kb(pid)

    dst = int.from_bytes(bytes(map(int, ADDR.split("."))), "big")
    flood = served.ns.popen(
        [sys.executable, "-c", FLOODER, str(SYNS), str(dst), "80"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    peak = baseline
    try:
        wait_for(lambda: served.stats().get("SyncookiesSent", 0) > 0, 60, "the stack to send SYN cookies")
        started = time.monotonic()
        curl = served.ns.run(["curl", "-sS", "-m", "60", f"{served.url}/"], text=True)
        curl_seconds = time.monotonic() - started
        assert curl.returncode == 0, curl.stderr
        assert "Hello from tcpstack" in curl.stdout
        while flood.poll() is None:
            peak = max(peak, _rss_kb(pid))
            time.sleep(0.05)
        out, err = flood.communicate(timeout=120)
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait()
    assert flood.returncode == 0, err
    assert int(out) == SYNS

    # the stack works through what reached it: wait until its counts stop moving
    last = -1

    def settled() -> bool:
        nonlocal last
        stats = served.stats()
        seen, last = last, stats["SyncookiesSent"] + stats["PassiveOpens"]
        return seen == last

    wait_for(settled, 60, "the stack to finish the flood", interval=0.5)
    peak = max(peak, _rss_kb(pid, "VmHWM"))
    stats = _stats_json(served)
    print(
        f"\nSYN flood: {SYNS} sent, SyncookiesSent={stats['SyncookiesSent']} "
        f"TCPReqQFullDoCookies={stats['TCPReqQFullDoCookies']} SyncookiesRecv={stats['SyncookiesRecv']} "
        f"PassiveOpens={stats['PassiveOpens']} RSS {baseline} kB -> peak {peak} kB; curl took {curl_seconds:.2f} s"
    )
    assert stats["SyncookiesSent"] >= SYNS // 2  # most SYNs reached the stack and found the queue full
    assert stats["SyncookiesRecv"] >= 1  # curl's connection came from its cookie
    assert stats["SyncookiesFailed"] == 0
    assert stats["CurrConnections"] <= 256 + 10  # the SYN queue of port 80 and little else
    assert peak - baseline < RSS_GROWTH_BOUND_KB
    after = served.ns.run(["curl", "-sS", "-m", "30", f"{served.url}/bytes/100000"])
    assert after.returncode == 0 and len(after.stdout) == 100_000
