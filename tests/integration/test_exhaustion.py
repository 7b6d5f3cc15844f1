"""Exhaustion: many connections held open, clients that never read, clients that vanish, a slow loris.

Throughout each, new clients must still be served. Kernel sockets are created inside the test's
namespace by the test process itself (tests/integration/hostile.py), so thousands of them need no
helper processes. TCPSTACK_EXHAUST_CONNECTIONS sets the number of concurrent connections.
"""

from __future__ import annotations

import errno
import hashlib
import os
import resource
import selectors
import socket
import time

import pytest

from stack.netns import NetNs, wait_for
from stack.services.http import pattern_sha256
from tests.integration.conftest import ADDR, Served, start_serve
from tests.integration.hostile import RssSampler, inside

CONNECTIONS = int(os.environ.get("TCPSTACK_EXHAUST_CONNECTIONS", "10000"))
PER_CONNECTION_LIMIT_KIB = 64  # the stack's memory for one idle ESTABLISHED echo connection, at most
CURL_SECONDS = 5.0  # a new client is served within this, whatever else is going on


def _curl_served(ns: NetNs, size: int = 100_000) -> float:
    """A new client downloads and checks /bytes/size; returns how long it took."""
    started = time.monotonic()
    result = ns.run(["curl", "-sS", "-m", "30", f"http://{ADDR}/bytes/{size}"], timeout=60)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(result.stdout).hexdigest() == pattern_sha256(size)
    return took


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"needs {need} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def open_echo_connections(ns: NetNs, n: int, in_flight: int = 200, timeout: float = 300) -> list[socket.socket]:
    """n connections to echo (port 7), each used once (a line sent and echoed back) and left open.
    At most `in_flight` handshakes at a time, like a client pool, so the SYN queue is not the test."""
    with inside(ns):
        todo = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    sel = selectors.DefaultSelector()
    done: list[socket.socket] = []
    pending = 0
    deadline = time.monotonic() + timeout
    while len(done) < n:
        while todo and pending < in_flight:
            s = todo.pop()
            s.setblocking(False)
            rc = s.connect_ex((ADDR, 7))
            assert rc in (0, errno.EINPROGRESS), os.strerror(rc)
            sel.register(s, selectors.EVENT_WRITE, "connecting")
            pending += 1
        assert time.monotonic() < deadline, f"only {len(done)} of {n} connections in {timeout} s"
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            if key.data == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                assert err == 0, f"connection {len(done) + pending} failed: {os.strerror(err)}"
                s.send(b"ping\n")
                sel.modify(s, selectors.EVENT_READ, "echo")
            else:
                assert s.recv(16) == b"ping\n"
                sel.unregister(s)
                pending -= 1
                done.append(s)
    sel.close()
    return done


def _established(served: Served) -> int:
    return served.stats().get("CurrEstab", 0)


def test_serve_many_concurrent_connections_each_used_once_stays_responsive(served: Served):
    """RFC 9293 §3.3.1: each connection is a TCB; memory grows with their number, and a new client is
    still served while they are all held open. The stack's cost per connection is printed."""
    _raise_fd_limit(CONNECTIONS + 1000)
    rss = RssSampler(served.proc.pid)
    started = time.monotonic()
    conns = open_echo_connections(served.ns, CONNECTIONS)
    opened_in = time.monotonic() - started
    try:
        wait_for(lambda: _established(served) >= CONNECTIONS, 60, f"{CONNECTIONS} ESTABLISHED")
        held = rss.sample()
        took = _curl_served(served.ns)
        per_conn = (held - rss.baseline) / CONNECTIONS
        print(
            f"\n{CONNECTIONS} connections opened and used in {opened_in:.1f} s "
            f"({CONNECTIONS / opened_in:.0f}/s); RSS {rss.baseline} -> {held} KiB = {per_conn:.1f} KiB per "
            f"connection; a new curl took {took:.2f} s with all of them open"
        )
        assert took < CURL_SECONDS
        assert per_conn < PER_CONNECTION_LIMIT_KIB
    finally:
        # clients leave a few hundred at a time: 10,000 FINs at once would mostly be dropped at the
        # TUN's 500-packet queue, which tests the kernel's FIN retransmission rather than the stack
        for i in range(0, len(conns), 400):
            for s in conns[i : i + 400]:
                s.close()
            left = max(len(conns) - i - 400, 0)
            wait_for(lambda left=left: _established(served) <= left + 50, 60, "a wave of closes")
    try:
        wait_for(lambda: _established(served) == 0, 120, "every connection closed")
    except TimeoutError:
        states: dict[str, int] = {}
        for row in served.netstat():
            states[row["state"]] = states.get(row["state"], 0) + 1
        raise AssertionError(f"120 s after the clients closed: {states}; {served.stats()}") from None
    assert len(served.netstat()) < 100  # what remains is listeners and a few closing connections


def test_established_clients_that_never_read_hold_bounded_memory_while_others_are_served(served: Served):
    """RFC 9293 §3.8.6.1: a receiver that does not read closes its window; the sender keeps its data
    (Send-Q bounded by the send buffer), loses nothing, and serves others meanwhile."""
    size, sleepers = 5_000_000, 20
    rss = RssSampler(served.proc.pid)
    socks = []
    with inside(served.ns):
        for _ in range(sleepers):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            socks.append(s)
    try:
        for s in socks:
            s.connect((ADDR, 80))
            s.sendall(f"GET /bytes/{size} HTTP/1.1\r\nHost: {ADDR}\r\n\r\n".encode())

        def all_stalled() -> bool:
            rows = _http_rows(served)
            return len(rows) == sleepers and all(r["send_q"] > 0 for r in rows)

        wait_for(all_stalled, 60, "every non-reading client to stall its download")
        timers = {r["timer"] for r in _http_rows(served)}
        # the window stays closed while new clients come and go
        hold_until = time.monotonic() + 10
        served_meanwhile = 0
        while time.monotonic() < hold_until:
            assert _curl_served(served.ns) < CURL_SECONDS
            served_meanwhile += 1
            rss.sample()
        rows = _http_rows(served)
        assert len(rows) == sleepers and all(r["state"] == "ESTABLISHED" for r in rows), rows
        send_q = max(r["send_q"] for r in rows)
        timers |= {r["timer"] for r in rows}
        # then one reads, and every byte is there. (Only one: the others, left stalled while it reads,
        # resume slowly, 13 and 26 s for 5 MB each after a 12 s stall, because the stack recovers a
        # reopened window through its backed-off retransmission timer; reported, not fixed here.)
        socks[0].settimeout(60)
        body = _read_http_body(socks[0])
        assert len(body) == size and hashlib.sha256(body).hexdigest() == pattern_sha256(size)
    finally:
        for s in socks:
            s.close()
    print(
        f"\n{sleepers} zero-window clients for 10 s: {served_meanwhile} curls served meanwhile; largest Send-Q "
        f"{send_q} bytes; timers seen {sorted(timers)}; RSS {rss.baseline} -> peak {rss.peak} KiB"
    )
    assert rss.peak - rss.baseline < sleepers * 4 * 1024  # a few MiB per stalled connection at most


def _http_rows(served: Served) -> list[dict]:
    return [r for r in served.netstat() if r["local"] == f"{ADDR}:80" and r["remote"] != "0.0.0.0:*"]


def _read_http_body(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, "closed before the headers"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")))
    parts = [body]
    got = len(body)
    while got < length:
        chunk = s.recv(1 << 20)
        assert chunk, f"closed after {got} of {length} bytes"
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _vanish(ns: NetNs, ports: list[int]) -> None:
    """From now on nothing leaves the kernel from these client ports to the echo port: to the stack
    they vanish, without FIN or RST (the namespace's own firewall; removed with the namespace). Only
    the echo connections' 4-tuples: a later client may get one of their port numbers for another port
    (curl to HTTP while they live), or for any port once they are gone."""
    ports_set = ", ".join(str(p) for p in ports)
    rules = (
        "table ip vanish {\n chain out {\n  type filter hook output priority 0; policy accept;\n"
        f"  tcp sport {{ {ports_set} }} tcp dport 7 drop\n }}\n}}\n"
    )
    result = ns.run(["nft", "-f", "-"], input=rules.encode())
    assert result.returncode == 0, result.stderr


def test_established_idle_clients_that_vanish_without_fin_are_reaped_by_keepalive(netns, tmp_path):
    """RFC 1122 §4.2.3.6: keepalive probes find peers that vanished without FIN; after the last
    unanswered probe the connection is dropped, and new clients are served meanwhile."""
    served = start_serve(netns, tmp_path, "--keepalive", "1,1,2")
    vanishing = 50
    conns = open_echo_connections(netns, vanishing)
    try:
        wait_for(lambda: _established(served) == vanishing, 30, "the idle connections")
        _vanish(netns, [s.getsockname()[1] for s in conns])
        assert _curl_served(netns) < CURL_SECONDS
        started = time.monotonic()
        wait_for(lambda: _established(served) == 0, 30, "keepalive to drop every vanished client")
        reaped_in = time.monotonic() - started
    finally:
        for s in conns:
            s.close()
    assert served.stats().get("TCPKeepAlive", 0) >= 2 * vanishing
    assert _curl_served(netns) < CURL_SECONDS
    print(f"\n{vanishing} vanished idle clients reaped by keepalive (1 s idle, 2 probes) in {reaped_in:.1f} s")


def _backoffs(served: Served) -> int:
    stats = served.stats()
    return stats.get("TCPTimeouts", 0) + stats.get("TCPWinProbe", 0)


def test_established_clients_vanishing_mid_download_back_off_while_others_are_served(served: Served):
    """RFC 6298 (5.5): with the peer gone, retransmissions back off exponentially (or, for a peer whose
    window had closed before it vanished, zero-window probes, RFC 9293 §3.8.6.1: which one depends on how
    much the client had buffered when it went); the stack keeps serving others and its memory stays
    bounded by what the vanished connections had queued."""
    vanishing = 30
    rss = RssSampler(served.proc.pid)
    socks = []
    with inside(served.ns):
        socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(vanishing)]
    try:
        for s in socks:
            s.connect((ADDR, 80))
            s.sendall(f"GET /bytes/50000000 HTTP/1.1\r\nHost: {ADDR}\r\n\r\n".encode())
            s.recv(65536)  # the download is under way
        _vanish(served.ns, [s.getsockname()[1] for s in socks])
        wait_for(
            lambda: _backoffs(served) >= 2 * vanishing, 60, "retransmission timeouts or zero-window probes to back off"
        )
        took = _curl_served(served.ns)
        rss.sample()
        rows = _http_rows(served)
        backing_off = [r for r in rows if r["timer"] in ("on", "probe")]  # netstat's names for the two
        assert len(rows) == vanishing and len(backing_off) == vanishing, [(r["timer"], r["state"]) for r in rows]
    finally:
        for s in socks:
            s.close()
    assert took < CURL_SECONDS
    assert rss.peak - rss.baseline < vanishing * 4 * 1024
    grown = rss.peak - rss.baseline
    print(f"\n{vanishing} clients vanished mid-download: a new curl took {took:.2f} s; RSS +{grown} KiB")


def test_established_slow_loris_does_not_starve_new_clients(served: Served):
    """A slow loris holds many HTTP connections open with a header that never ends (one byte a second);
    every new client is still served promptly."""
    loris = 300
    with inside(served.ns):
        socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(loris)]
    try:
        for s in socks:
            s.connect((ADDR, 80))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        wait_for(lambda: _established(served) >= loris, 30, "the slow loris connections")
        ends = time.monotonic() + 8
        served_meanwhile, slowest = 0, 0.0
        while time.monotonic() < ends:
            for s in socks:
                s.send(b"X")  # never the blank line that ends the header
            slowest = max(slowest, _curl_served(served.ns, 10_000))
            served_meanwhile += 1
        still_open = _established(served)
    finally:
        for s in socks:
            s.close()
    assert slowest < CURL_SECONDS
    print(
        f"\nslow loris: {loris} connections dribbling headers for 8 s; {served_meanwhile} curls served, slowest "
        f"{slowest:.2f} s; {still_open} connections still open at the end (the 20 s header timeout is yet to come)"
    )
