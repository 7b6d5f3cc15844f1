"""What a connection costs the stack, counted rather than timed: the memory an idle one holds, the loop
wake-ups and system calls of a request/response round trip, and what is kept of connections that closed."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import sys
import time
import tracemalloc

import pytest
import uvloop

from stack import core_build
from stack.aio.stack import Stack
from stack.aio.tun import SocketPairDevice
from stack.services import SERVICES
from stack.tcp.connection import Connection
from tests.test_loopback import _pair, run

# These count calls by interposing on the stack's and the core's methods, which the compiled glue calls
# natively (stack/core_build.py, GLUE): they run in the unit suite's interpreted pass, on the same source.
_INTERPOSES = pytest.mark.skipif(
    core_build.BUILD == "compiled", reason="interposes on what compiled code calls natively"
)

IDLE_BUDGET = 8000  # bytes per idle echo connection on the serving side, the aim of docs/performance.md


def _hold_idle_clients(device: SocketPairDevice, count: int, ready: int) -> None:
    """In a child process: a client stack that opens `count` connections, says so on `ready`, and waits."""

    async def main() -> None:
        stack = Stack(device, "10.0.0.1")
        held = [await stack.open_connection("10.0.0.2", 7) for _ in range(count)]
        os.write(ready, bytes([len(held) % 256]))
        await asyncio.sleep(3600)

    try:
        uvloop.run(main())
    finally:
        os._exit(0)


def test_stack_idle_echo_connection_stays_within_budget():
    """Everything the serving stack holds for an accepted, idle echo connection (the core's state, the
    transport, asyncio's StreamReader/StreamWriter/protocol and the service's task), measured with
    tracemalloc in the server's process while the clients live in another one."""
    count = 300
    server_device, client_device = SocketPairDevice.pair()
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:
        _hold_idle_clients(client_device, count, ready_w)

    async def main() -> float:
        server = Stack(server_device, "10.0.0.2")
        try:
            await server.start_server(SERVICES["echo"], port=7)
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.take_snapshot()
                await asyncio.get_running_loop().run_in_executor(None, os.read, ready_r, 1)
                while len(server._transports) < count:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.05)  # every service task has started and waits in read()
                gc.collect()
                after = tracemalloc.take_snapshot()
            finally:
                tracemalloc.stop()
            return sum(stat.size_diff for stat in after.compare_to(before, "filename")) / count
        finally:
            await server.close()

    try:
        per_connection = run(main(), timeout=60)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        os.close(ready_r)
        os.close(ready_w)
    assert per_connection <= IDLE_BUDGET, f"{per_connection:.0f} bytes per idle connection"


async def _short_echo_connections(client: Stack, server: Stack, count: int) -> None:
    """`count` connections one after another (connect, 16 B echo, close), then until the server has none."""
    for _ in range(count):
        reader, writer = await client.open_connection("10.0.0.2", 7)
        writer.write(b"x" * 16)
        assert await reader.readexactly(16) == b"x" * 16
        writer.close()
        await writer.wait_closed()
    for _ in range(200):
        if not server.demux.connections:
            break
        await asyncio.sleep(0.01)


def test_stack_closed_served_stream_connections_leave_no_cycle_for_the_collector():
    """A served stream connection that closed is freed by reference counting alone: its transport, stream
    protocol and connection are in no reference cycle, which only the garbage collector would free."""
    from stack.aio.streams import _ServerStreamProtocol
    from stack.aio.transport import TcpTransport

    async def main() -> list[object]:
        client, server = await _pair()
        try:
            await server.start_server(SERVICES["echo"], port=7)
            gc.collect()
            gc.disable()
            gc.garbage.clear()
            gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds stays in gc.garbage, to be looked at
            try:
                await _short_echo_connections(client, server, 20)
                assert not server.demux.connections
                gc.collect()
                kinds = (TcpTransport, _ServerStreamProtocol, Connection)
                return [found for found in gc.garbage if isinstance(found, kinds)]
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
                gc.enable()
        finally:
            await client.close()
            await server.close()

    assert run(main()) == []


def test_stack_closed_connections_keep_counters_and_rows():
    """Connections that closed leave their counters in `stats` and the last ones their netstat rows
    (LAST_ACK -> CLOSED on the side that closed second, RFC 9293 §3.10.7.4 eighth check)."""

    async def main() -> None:
        client, server = await _pair()
        try:
            await server.start_server(SERVICES["echo"], port=7)
            await _short_echo_connections(client, server, 20)
            assert not server.demux.connections  # every server side went LAST_ACK -> CLOSED
            stats = server.stats()
            assert stats["InSegsConn"] >= 20 * 4 and stats["PassiveOpens"] == 20
            rows = server.snapshot(closed=True)
            closed = [row for row in rows if row["state"] == "CLOSE"]
            assert len(closed) == 16  # CLOSED_KEPT
            assert all(row["history"][-1]["from"] == "LAST_ACK" for row in closed)
            assert all(row["remote"].startswith("10.0.0.1:") and row["timer"] == "off" for row in closed)
        finally:
            await client.close()
            await server.close()

    run(main())


def test_stack_reset_connection_with_unread_data_keeps_its_row_not_its_buffers():
    """A connection reset (RFC 9293 §3.10.7.4 second check) while bytes it received wait unread in the core
    (the service's StreamReader is full and paused the transport): its netstat row keeps the Recv-Q it had,
    and the stack keeps that row, not the connection with its bytes."""

    async def main() -> None:
        client, server = await _pair()

        async def never_reads(reader, writer) -> None:
            await asyncio.sleep(3600)

        try:
            await server.start_server(never_reads, port=5002)
            reader, writer = await client.open_connection("10.0.0.2", 5002)
            writer.write(b"z" * 400_000)  # more than the StreamReader takes before it pauses reading
            held = 0
            for _ in range(300):
                rows = [r for r in server.snapshot() if r["state"] == "ESTABLISHED"]
                if rows and rows[0]["recv_q"] > 0 and rows[0]["recv_q"] == held:
                    break  # steady: the window is closed
                held = rows[0]["recv_q"] if rows else 0
                await asyncio.sleep(0.02)
            assert held > 0
            writer.transport.abort()  # RST
            for _ in range(200):
                if not server.demux.connections:
                    break
                await asyncio.sleep(0.01)
            (row,) = [r for r in server.snapshot(closed=True) if r["state"] == "CLOSE"]
            assert row["local"] == "10.0.0.2:5002" and row["recv_q"] == held
            assert row["history"][-1]["reason"] == "RST"
            assert all(type(kept) is dict for kept in server._closed_conns)
        finally:
            await client.close()
            await server.close()

    run(main())


class _CountingDevice(SocketPairDevice):
    """A socket-pair end that counts its system calls: one read batch or one write batch is one call."""

    reads = 0
    writes = 0

    def read_batch(self):
        self.reads += 1
        return super().read_batch()

    def write_batch(self, batch) -> None:
        self.writes += 1
        super().write_batch(batch)

    def write_encoded(self, out) -> None:
        self.write_batch(out.build())  # one write batch, counted (and observed by tests) as such


async def _steady_echo_costs(count_flushes: bool) -> tuple[int, int, int]:
    """The server's device reads, device writes and (when counted) flushes over 200 echo round trips of
    64 bytes on an established connection, past slow start and the first (quick) ACKs."""
    server_sock, client_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server_device = _CountingDevice(server_sock)
    client, server = Stack(SocketPairDevice(client_sock), "10.0.0.1"), Stack(server_device, "10.0.0.2")
    flushes = 0
    flush = server._flush

    def counting_flush() -> None:
        nonlocal flushes
        flushes += 1
        flush()

    if count_flushes:
        server._flush = counting_flush
    try:
        await server.start_server(SERVICES["echo"], port=7)
        reader, writer = await client.open_connection("10.0.0.2", 7)
        for _ in range(20):
            writer.write(b"y" * 64)
            await reader.readexactly(64)
        await asyncio.sleep(0.05)
        reads, writes, flushes = server_device.reads, server_device.writes, 0
        await _echo_round_trips(reader, writer, 200)
        return server_device.reads - reads, server_device.writes - writes, flushes
    finally:
        await client.close()
        await server.close()


def test_stack_echo_round_trip_costs_one_device_read_and_one_write():
    """A 64-byte request and its echo, on an established connection: the server's reply carries the ACK
    of the request (RFC 9293 §3.8.6.3, delayed ACK piggybacked), so each round trip costs the server one
    device read and one device write, counted over 200 round trips."""
    reads, writes, _ = run(_steady_echo_costs(count_flushes=False))
    assert writes == 200
    assert reads <= 200 + 5


@_INTERPOSES
def test_stack_echo_round_trip_costs_two_flushes_at_most():
    """Each echo round trip costs the server at most two flushes of its connections: after the input, and
    after the service's write."""
    _, _, flushes = run(_steady_echo_costs(count_flushes=True))
    assert flushes <= 2 * 200


async def _loop_iterations_to_reply(service: str, request: bytes, reply_end: bytes, count: int) -> list[int]:
    """For `count` requests on one connection: loop iterations from the server's device read of each request
    to its write of the reply, counted by a callback that runs once in every iteration."""
    loop = asyncio.get_running_loop()
    server_sock, client_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server_device = _CountingDevice(server_sock)
    client, server = Stack(SocketPairDevice(client_sock), "10.0.0.1"), Stack(server_device, "10.0.0.2")
    iterations = 0
    read_at: list[int] = []
    gaps: list[int] = []
    read_batch, write_batch = server_device.read_batch, server_device.write_batch

    def tick() -> None:
        nonlocal iterations
        iterations += 1
        loop.call_soon(tick)

    def reading():
        read_at.append(iterations)
        return read_batch()

    def writing(batch) -> None:
        gaps.append(iterations - read_at[-1])
        write_batch(batch)

    try:
        await server.start_server(SERVICES[service], port=80)
        reader, writer = await client.open_connection("10.0.0.2", 80)
        for i in range(20 + count):
            if i == 20:  # past slow start and the first (quick) ACKs
                server_device.read_batch, server_device.write_batch = reading, writing
                loop.call_soon(tick)
            writer.write(request)
            await reader.readuntil(reply_end)
        return list(gaps)  # before the close below writes its RSTs
    finally:
        await client.close()
        await server.close()


def test_stack_echo_reply_leaves_in_the_loop_iteration_after_the_request():
    """The service's task wakes in the loop iteration after the one that read its request; what it writes
    is flushed in that same iteration, not one later (a flush queued behind the task's wake-up)."""
    gaps = run(_loop_iterations_to_reply("echo", b"y" * 63 + b"\n", b"\n", 100))
    assert len(gaps) == 100 and set(gaps) == {1}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+; before, wait_for adds a task")
def test_stack_http_response_leaves_in_the_loop_iteration_after_the_request():
    """The HTTP service reads each request under a timeout in its own task (asyncio.timeout, no task of
    its own), so its response too leaves in the loop iteration after the request's (it took four)."""
    request = b"GET / HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n"
    gaps = run(_loop_iterations_to_reply("http", request, b"</html>\n", 50))
    assert len(gaps) == 50 and set(gaps) == {1}


def test_stack_echo_connection_answer_carries_the_ack_of_its_request():
    """A short connection (connect, 16 B echo, close, as tools/bench's sequential row): the echo service
    answers its first request at once, so the ACK the request asks for (Linux would send it alone, quick
    ACK) rides on the answer (RFC 9293 §3.8.6.3, an ACK piggybacked on data): the server sends three
    segments per connection (SYN,ACK; the echo with the ACK; FIN), not four."""

    async def main() -> tuple[int, int]:
        client, server = await _pair()
        try:
            await server.start_server(SERVICES["echo"], port=7)
            await _short_echo_connections(client, server, 10)
            stats = server.stats()
            return stats["OutSegs"] - stats["RetransSegs"], stats["PassiveOpens"]  # (a stalled machine may resend)
        finally:
            await client.close()
            await server.close()

    sent, opened = run(main())
    assert opened == 10
    assert sent == 3 * 10


async def _echo_round_trips(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int) -> None:
    """`count` 64-byte requests on one connection, each echoed before the next is written."""
    for _ in range(count):
        writer.write(b"y" * 64)
        assert await reader.readexactly(64) == b"y" * 64


@_INTERPOSES
def test_stack_echo_round_trip_asks_the_core_for_output_once(monkeypatch):
    """A request and its echo on an established connection: the flush after the input hands the request
    to the service and leaves the connection's output to the flush behind the service's task, which sends
    the echo with the ACK; the core's output is computed once per round trip, not twice (the first time
    for nothing: the ACK is delayed, RFC 9293 §3.8.6.3)."""

    async def main() -> tuple[int, int]:
        client, server = await _pair()
        try:
            await server.start_server(SERVICES["echo"], port=7)
            reader, writer = await client.open_connection("10.0.0.2", 7)
            await _echo_round_trips(reader, writer, 20)  # past the first (quick) ACKs
            (conn,) = server.demux.connections.values()
            calls = timers = 0
            segments_to_send, handle_timer = Connection.segments_to_send, Connection.handle_timer

            def counting(self: Connection, now: float):
                nonlocal calls
                calls += self is conn
                return segments_to_send(self, now)

            def timer(self: Connection, now: float):
                nonlocal timers
                timers += self is conn
                return handle_timer(self, now)

            monkeypatch.setattr(Connection, "segments_to_send", counting)
            monkeypatch.setattr(Connection, "handle_timer", timer)
            await _echo_round_trips(reader, writer, 100)
            return calls, timers
        finally:
            await client.close()
            await server.close()

    calls, timers = run(main())
    assert 100 <= calls <= 100 + timers  # a timer (only on a stalled machine) asks once more


class _TimerCountingLoop:
    """The server's loop, counting the timers the stack arms on it (call_later) for a deadline earlier than
    the one armed before; the rest passes through."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = loop
        self._deadline: float | None = None  # of the last call_later seen
        self.armed = 0
        self.earlier = 0

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def call_later(self, delay: float, callback, *args):
        deadline = time.monotonic() + delay
        self.armed += 1
        if self._deadline is not None and deadline < self._deadline - 0.005:  # (delays are rounded to 1 ms)
            self.earlier += 1
        self._deadline = deadline
        return self._inner.call_later(delay, callback, *args)


def test_stack_echo_round_trip_arms_no_delayed_ack_timer():
    """A request that the service answers at once needs no delayed-ACK timer (RFC 9293 §3.8.6.3): the
    answer carries the ACK. The stack's loop timer, armed for the retransmission deadline of the last
    answer, is never pulled earlier for a 40 ms delayed ACK and then pushed back (each round trip did so
    before: a timer armed and cancelled per request)."""

    async def main() -> tuple[int, int]:
        client, server = await _pair()
        counting = _TimerCountingLoop(server._loop)
        try:
            await server.start_server(SERVICES["echo"], port=7)
            reader, writer = await client.open_connection("10.0.0.2", 7)
            await _echo_round_trips(reader, writer, 20)  # past the first (quick) ACKs
            server._loop = counting
            await _echo_round_trips(reader, writer, 200)
            return counting.armed, counting.earlier
        finally:
            await client.close()
            await server.close()

    armed, earlier = run(main())
    assert armed > 0  # the stack does arm its timer through the loop (the retransmission deadline moves)
    assert earlier == 0
