"""Receive memory against the kernel's TCP: an application that does not read, with a small SO_RCVBUF, is
sent small segments; the stack makes room as Linux does (`tcpstack stats`: PruneCalled, TCPRcvCollapsed)
and, once the application reads, every byte arrives."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from stack.netns import wait_for
from tests.integration.conftest import ADDR, PEER

SIZE = 30_000
COUNTERS = ("PruneCalled", "TCPRcvCollapsed", "RcvPruned", "TCPRcvQDrop")

# Holds every connection's data unread (SO_RCVBUF 4000: 8000 bytes of memory) until a line "read" on
# stdin; "stats" prints the stack's counters; at the peer's FIN it prints what it received.
SERVER = rf"""
import asyncio, hashlib, json, socket, sys
from stack import Stack

unread = []

class Unread(asyncio.Protocol):
    def connection_made(self, transport):
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4000)
        transport.pause_reading()
        unread.append(transport)
        self.digest, self.size = hashlib.sha256(), 0

    def data_received(self, data):
        self.digest.update(data)
        self.size += len(data)

    def eof_received(self):
        print("received", self.size, self.digest.hexdigest(), flush=True)

async def main():
    stack = await Stack.open_tun("tun0", "{ADDR}", "{PEER}")
    await stack.create_server(Unread, "{ADDR}", 9)
    print("listening", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if line.strip() == "stats":
            stats = stack.stats()
            print("stats", json.dumps({{name: stats[name] for name in {COUNTERS!r}}}), flush=True)
        elif line.strip() == "read":
            for transport in unread:
                transport.resume_reading()

asyncio.run(main())
"""

# Sends SIZE bytes 100 at a time, each write once the one before has left as a segment of its own (no
# bytes unsent, tcpi_notsent_bytes), until the stack's window closes; then the rest at once, and waits
# for the stack to close.
CLIENT = rf"""
import socket, struct, sys, time
data = bytes(i * 7 % 251 for i in range({SIZE}))
s = socket.create_connection(("{ADDR}", 9))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

def unsent_and_window():
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    return struct.unpack_from("I", info, 144)[0], struct.unpack_from("I", info, 228)[0]

sent = 0
while sent < len(data):
    s.sendall(data[sent : sent + 100])
    sent += 100
    unsent, window = unsent_and_window()
    while unsent and window:
        time.sleep(0.001)
        unsent, window = unsent_and_window()
    if not window:
        break
s.sendall(data[sent:])
s.shutdown(socket.SHUT_WR)
print("sent", flush=True)
sys.exit(0 if s.recv(1) == b"" else "the stack sent data")
"""


def _lines(path, prefix: str) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith(prefix)]


def _counters(server: subprocess.Popen, out) -> dict:
    """The stack's counters, as the server prints them when asked."""
    asked = len(_lines(out, "stats")) + 1
    server.stdin.write("stats\n")
    server.stdin.flush()
    wait_for(lambda: len(_lines(out, "stats")) >= asked, 10, "the server's counters")
    return json.loads(_lines(out, "stats")[-1].split(" ", 1)[1])


def test_established_unread_small_segments_make_room_and_lose_nothing(netns, tmp_path):
    """Linux tcp_prune_queue: small segments cost far more memory than their data, so a receiver that does
    not read makes room by copying them into compact packets (PruneCalled, TCPRcvCollapsed), and refuses
    what it still cannot hold; the kernel sends that again (RFC 9293 §3.8.6), and once the application
    reads, the stream arrives whole and in order."""
    out = tmp_path / "server.out"
    with open(out, "w") as f:
        server = netns.popen(
            [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=f, stderr=subprocess.STDOUT, text=True
        )
    try:
        wait_for(lambda: _lines(out, "listening") or server.poll() is not None, 30, "the library server")
        assert server.poll() is None, out.read_text()
        client_out = tmp_path / "client.out"
        with open(client_out, "w") as f:
            client = netns.popen([sys.executable, "-c", CLIENT], stdout=f, stderr=subprocess.STDOUT)
        wait_for(lambda: _lines(client_out, "sent") or client.poll() is not None, 60, "the client's writes")
        assert client.poll() is None, client_out.read_text()

        def room_made() -> dict | None:
            got = _counters(server, out)
            return got if got["PruneCalled"] and got["TCPRcvCollapsed"] else None

        made = wait_for(room_made, 30, "the stack to make room")
        server.stdin.write("read\n")
        server.stdin.flush()
        assert client.wait(timeout=60) == 0, client_out.read_text()
        expected = hashlib.sha256(bytes(i * 7 % 251 for i in range(SIZE))).hexdigest()
        assert _lines(out, "received") == [f"received {SIZE} {expected}"], (out.read_text(), made)
    finally:
        server.kill()
        server.wait(timeout=15)
