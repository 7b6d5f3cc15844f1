"""Two connections back to back over a lossy, reordering in-memory link, in virtual time."""

from __future__ import annotations

import heapq
import random

import pytest

from stack.tcp.config import TcpConfig
from stack.tcp.connection import Connection
from stack.tcp.listener import Listener
from stack.tcp.state import Event, State
from stack.wire.segment import Segment

CLIENT = (0x0A000001, 40000)
SERVER = (0x0A000002, 7)


class Endpoint:
    """An application that sends `data`, shuts down its sending side once it is all queued (a
    half-close: shutdown(SHUT_WR), not close(), since it goes on reading), and reads everything."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sent = 0
        self.closed = False
        self.received = bytearray()
        self.conn: Connection | None = None

    def run(self, now: float) -> None:
        conn = self.conn
        if conn is None:
            return
        self.received += conn.read()
        if conn.state in (State.ESTABLISHED, State.CLOSE_WAIT) and not self.closed:
            self.sent += conn.send(self.data[self.sent : self.sent + 65536], now)
            if self.sent == len(self.data):
                conn.close(now)
                self.closed = True
        while conn.next_event() is not None:
            pass


def run_pair(size: int, loss: float, seed: int) -> tuple[Endpoint, Endpoint]:
    """Each side sends `size` random bytes; segments are lost with probability `loss` and delayed
    10-14 ms (so some overtake others). Runs until neither side has a deadline."""
    rng = random.Random(seed)
    config = TcpConfig(msl=1.0)
    client, server = Endpoint(rng.randbytes(size)), Endpoint(rng.randbytes(size))
    listener = Listener(config, SERVER)
    now = 0.0
    client.conn = Connection.connect(config, CLIENT, SERVER, now)
    link: list[tuple[float, int, Endpoint, Segment]] = []
    order = 0
    for _ in range(1_000_000):
        for end, peer in ((client, server), (server, client)):
            end.run(now)
            if end.conn is not None:
                for s in end.conn.segments_to_send(now):
                    if rng.random() >= loss:
                        order += 1
                        heapq.heappush(link, (now + 0.01 + rng.random() * 0.004, order, peer, s))
        deadlines = [e.conn.next_deadline() for e in (client, server) if e.conn is not None]
        deadlines = [d for d in deadlines if d is not None] + ([link[0][0]] if link else [])
        if not deadlines:
            break
        now = max(now, min(deadlines))
        while link and link[0][0] <= now:
            _, _, to, s = heapq.heappop(link)
            if to.conn is None:
                to.conn = listener.on_syn(CLIENT, s, now)
            else:
                to.conn.receive_segment(s, now)
        for e in (client, server):
            d = e.conn.next_deadline() if e.conn is not None else None
            if d is not None and d <= now:
                e.conn.handle_timer(now)
    return client, server


@pytest.mark.parametrize(("loss", "seed"), [(0.0, 1), (0.02, 2), (0.1, 3), (0.1, 4)])
def test_pair_one_megabyte_each_way_over_lossy_link_arrives_intact(loss, seed):
    """RFC 9293 reliability: with loss and reordering, both byte streams arrive exactly, then both
    sides close (one through TIME_WAIT) and end CLOSED."""
    client, server = run_pair(1 << 20, loss, seed)
    assert bytes(server.received) == client.data
    assert bytes(client.received) == server.data
    for e in (client, server):
        assert e.conn.state is State.CLOSED
        assert e.conn.history[-1].event in (Event.ACK_OF_FIN, Event.TIME_WAIT_TIMEOUT)
    assert State.TIME_WAIT in {t.new for e in (client, server) for t in e.conn.history}
    if loss:
        assert client.conn.counters.retrans_segs + server.conn.counters.retrans_segs > 0
