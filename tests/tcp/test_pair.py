"""Two connections back to back over a lossy, delaying in-memory link, in virtual time."""

from __future__ import annotations

import hashlib
import heapq
import random

import pytest

from stack.tcp.config import TcpConfig
from stack.tcp.connection import Connection
from stack.tcp.listener import Listener
from stack.tcp.state import State

CLIENT = (0x0A000001, 40000)
SERVER = (0x0A000002, 7)


def run_transfer(loss: float, size: int, seed: int) -> tuple[Connection, Connection, bytes, bytes]:
    """The client sends `size` bytes and closes; the server answers with their sha256 and closes."""
    rng = random.Random(seed)
    config = TcpConfig(msl=1.0)
    data = rng.randbytes(size)
    now = 0.0
    client = Connection.connect(config, CLIENT, SERVER, now)
    listener = Listener(config, SERVER)
    server: Connection | None = None
    link: list[tuple[float, int, str, object]] = []
    order = 0
    sent = 0
    received = bytearray()
    answer = bytearray()
    client_closed = server_closed = False
    for _ in range(200_000):
        if client.state is State.ESTABLISHED and sent < size:
            sent += client.send(data[sent : sent + 65536], now)
        if sent == size and not client_closed and client.state is State.ESTABLISHED:
            client.close(now)
            client_closed = True
        if server is not None:
            received += server.read()
            if server.at_eof and not server_closed and server.state is State.CLOSE_WAIT:
                server.send(hashlib.sha256(received).digest(), now)
                server.close(now)
                server_closed = True
        answer += client.read()
        for conn, to in ((client, "server"), (server, "client")):
            if conn is None:
                continue
            for s in conn.segments_to_send(now):
                if rng.random() >= loss:
                    order += 1
                    heapq.heappush(link, (now + 0.01 + rng.random() * 0.002, order, to, s))
            while conn.next_event() is not None:
                pass
        deadlines = [d for d in (client.next_deadline(), server and server.next_deadline()) if d]
        if link:
            deadlines.append(link[0][0])
        if not deadlines:
            break
        now = max(now, min(deadlines))
        while link and link[0][0] <= now:
            _, _, to, s = heapq.heappop(link)
            if to == "server":
                if server is None:
                    server = listener.on_syn(CLIENT, s, now)
                else:
                    server.receive_segment(s, now)
            else:
                client.receive_segment(s, now)
        for conn in (client, server):
            if conn is not None and conn.next_deadline() is not None and conn.next_deadline() <= now:
                conn.handle_timer(now)
    return client, server, bytes(received) if received == data else b"", bytes(answer)


@pytest.mark.parametrize(("loss", "seed"), [(0.0, 1), (0.02, 2), (0.1, 3)])
def test_pair_transfer_over_lossy_link_completes_intact(loss, seed):
    client, server, received, answer = run_transfer(loss, 300_000, seed)
    assert received, "server did not receive the exact data"
    assert answer == hashlib.sha256(received).digest()
    assert client.state is State.CLOSED and server.state is State.CLOSED
    assert [t.new for t in client.history][-2:] == [State.TIME_WAIT, State.CLOSED]
