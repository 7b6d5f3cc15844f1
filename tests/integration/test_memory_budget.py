"""The stack-wide memory budget (--memory-limit, like Linux's tcp_mem) against hundreds of kernel
clients that push data to echo and never read: every connection's buffers are within their own
bounds, but without a budget their sum grows with the number of clients (about 2 MB each here)."""

from __future__ import annotations

import socket
import time

from stack.netns import wait_for
from tests.integration.conftest import ADDR, start_serve
from tests.integration.hostile import RssSampler, inside
from tests.integration.test_exhaustion import CURL_SECONDS, _curl_served

LIMIT = 16 << 20
CLIENTS = 300
PUSH = 2_000_000  # bytes each client tries to push; echo holds them (the client never reads the echo)
PUSH_SECONDS = 8.0
# per connection, outside the budget: echo's StreamReader (it pauses at 128 KiB, after taking a whole
# delivery, up to 64 KiB super-segments with TUN offloads), the core's objects, allocator slack
APP_MARGIN = CLIENTS * 384 * 1024


def test_established_300_non_reading_clients_stay_within_memory_budget_while_curl_is_served(netns, tmp_path):
    """Linux tcp_mem: above pressure windows stop growing and out-of-order data is pruned; at the limit new
    data is dropped before it is acknowledged (TCPRcvQDrop), so nothing acknowledged is ever lost."""
    served = start_serve(netns, tmp_path, "--memory-limit", str(LIMIT))
    rss = RssSampler(served.proc.pid)
    socks = []
    with inside(netns):
        for _ in range(CLIENTS):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and never read
            socks.append(s)
    try:
        for s in socks:
            s.connect((ADDR, 7))
            s.setblocking(False)
        pushed = dict.fromkeys(socks, 0)
        chunk = b"x" * 65536
        curls = []
        worst_use = 0
        until = time.monotonic() + PUSH_SECONDS
        while time.monotonic() < until:
            for s in socks:
                while pushed[s] < PUSH:
                    try:
                        pushed[s] += s.send(chunk)
                    except BlockingIOError:
                        break
            rss.sample()
            stats = served.stats()
            worst_use = max(worst_use, stats["CurrMemoryBytes"])
            if stats["MemoryPressure"] and len(curls) < 3:
                curls.append(_curl_served(netns))  # a new client while the stack is under pressure
        stats = served.stats()
        total = sum(pushed.values())
    finally:
        for s in socks:
            s.close()
    print(
        f"\n{CLIENTS} non-reading echo clients pushed {total / 1e6:.0f} MB in {PUSH_SECONDS:.0f} s; budget use peak "
        f"{worst_use / 2**20:.1f} MiB of {LIMIT / 2**20:.0f}; RSS {rss.baseline} -> peak {rss.peak} KiB; curls "
        f"{[round(c, 2) for c in curls]} s; pressures {stats['TCPMemoryPressures']}, TCPRcvQDrop "
        f"{stats['TCPRcvQDrop']}, OfoPruned {stats['OfoPruned']}"
    )
    assert total > 2 * LIMIT, "the clients did not push enough to test the budget"
    assert stats["TCPMemoryPressures"] >= 1 and stats["TCPRcvQDrop"] > 0
    assert curls and max(curls) < CURL_SECONDS
    # beyond the limit only what each connection is always allowed: 16 KiB received, 16 KiB queued to send,
    # and its application's unsent writes (the transport pauses the writer at 64 KiB, after one 64 KiB write)
    assert worst_use <= LIMIT + CLIENTS * (16 + 16 + 128) * 1024, worst_use
    assert (rss.peak - rss.baseline) * 1024 < LIMIT + APP_MARGIN, (rss.baseline, rss.peak)
    wait_for(lambda: served.stats()["CurrMemoryBytes"] == 0, 60, "the budget to be returned as clients go")
