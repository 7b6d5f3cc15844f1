"""A bug that raises inside the stack, while it handles one connection's segment, output or timer, resets that
connection (a RST to its peer, ECONNRESET to its application), is logged with its traceback and counted
(InternalErrors); the stack's other connections go on, and nothing waits forever on a timer left unarmed.
The bug is simulated by making one step raise for one connection."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

import pytest
from scapy.layers.inet import ICMP, IP, TCP

from stack import core_build
from stack.aio.stack import Stack
from stack.aio.transport import TcpTransport
from stack.demux import Demux
from stack.ip import IpLayer
from stack.services import SERVICES
from stack.tcp.connection import Connection
from stack.tcp.state import State
from tests.test_loopback import _pair, run

# The simulated bugs interpose on the core's and the demux's methods, which the compiled glue calls natively
# (stack/core_build.py, GLUE): these run in the unit suite's interpreted pass, on the same glue source.
_INTERPOSES = pytest.mark.skipif(
    core_build.BUILD == "compiled", reason="interposes on what compiled code calls natively"
)


def _run_with_clients(service: str | Callable, body, caplog, clients: int = 2) -> None:
    """`body(server, (reader, writer), ...)` with `clients` clients of `service` (a name or a handler) on
    the server; the simulated bug must be counted once and be in the server's log with its traceback."""

    async def main() -> None:
        client, server = await _pair()
        try:
            await server.start_server(SERVICES[service] if isinstance(service, str) else service, port=7)
            streams = [await client.open_connection("10.0.0.2", 7) for _ in range(clients)]
            await body(server, *streams)
            assert server.stats()["InternalErrors"] == 1
        finally:
            await client.close()
            await server.close()

    with caplog.at_level(logging.ERROR, logger="stack.aio.stack"):
        run(main(), timeout=30)
    assert "RuntimeError: a bug in the stack" in caplog.text


def _first_paced() -> Callable:
    """A handler that sends on the first connection at 10 kB/s at most (SO_MAX_PACING_RATE), so that its
    pacing timer is sure to fire, and waits for it to end; it discards on the others."""
    accepted = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        if len(accepted) > 1:
            await SERVICES["discard"](reader, writer)
            return
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_MAX_PACING_RATE", 47), 10_000)
        writer.write(b"paced" * 10_000)
        await writer.wait_closed()

    return handler


def _port(writer: asyncio.StreamWriter) -> int:
    return writer.get_extra_info("sockname")[1]


async def _echoes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    assert await reader.readexactly(len(data)) == data


async def _is_reset(reader: asyncio.StreamReader) -> None:
    with pytest.raises(ConnectionResetError):
        await reader.read(100)


def _failing_once_for(port: int, method):
    """`method` of Connection, Demux or TcpTransport, raising once for the server's connection with the client
    at `port`."""
    failed = []

    def failing(self, *args):
        if isinstance(self, Demux):
            remote_port = args[2].src_port
        else:
            remote_port = (self._conn if isinstance(self, TcpTransport) else self).remote[1]
        if remote_port == port and not failed:
            failed.append(True)
            raise RuntimeError("a bug in the stack")
        return method(self, *args)

    return failing


def _request_raising_in(monkeypatch, owner: type, name: str):
    """A body for _run_with_clients: the first client's request makes `owner.name` raise once for its
    connection, which must be reset (RST, ECONNRESET) while the second client's echoes on."""

    async def body(server: Stack, first, second) -> None:
        (r1, w1), (r2, w2) = first, second
        await _echoes(r1, w1, b"before")
        monkeypatch.setattr(owner, name, _failing_once_for(_port(w1), getattr(owner, name)))
        w1.write(b"request")
        await _is_reset(r1)
        await _echoes(r2, w2, b"the other connection still echoes")
        assert len(server.demux.connections) == 1

    return body


@_INTERPOSES
def test_stack_output_raising_resets_that_connection_and_the_others_go_on(monkeypatch, caplog):
    """The output step (segments_to_send) raises for one connection: RST, ECONNRESET, logged, counted."""
    _run_with_clients("echo", _request_raising_in(monkeypatch, Connection, "segments_to_send"), caplog)
    assert "internal error on the connection with 10.0.0.1:" in caplog.text


def test_stack_event_delivery_raising_resets_that_connection_and_the_others_go_on(monkeypatch, caplog):
    """Handing one connection's events to its transport raises (the transport is interpreted: this runs
    against the compiled glue too): RST, ECONNRESET, logged, counted; the other connection echoes on."""
    _run_with_clients("echo", _request_raising_in(monkeypatch, TcpTransport, "handle_event"), caplog)
    assert "internal error on the connection with 10.0.0.1:" in caplog.text


@_INTERPOSES
def test_stack_input_raising_resets_that_connection_and_the_others_go_on(monkeypatch, caplog):
    """Taking in an arriving segment raises for one connection: it is reset, the others go on."""

    async def body(server: Stack, first, second) -> None:
        (r1, w1), (r2, w2) = first, second
        monkeypatch.setattr(Demux, "segment_arrives", _failing_once_for(_port(w1), Demux.segment_arrives))
        w1.write(b"request")
        await _is_reset(r1)
        await _echoes(r2, w2, b"the other connection still echoes")

    _run_with_clients("echo", body, caplog)


@_INTERPOSES
def test_stack_timer_raising_resets_that_connection_and_the_others_go_on(monkeypatch, caplog):
    """A timer of one connection raises when it fires (here its pacing timer): it is reset; the others go
    on."""

    async def body(server: Stack, first, second) -> None:
        (r1, w1), (r2, w2) = first, second
        monkeypatch.setattr(Connection, "handle_timer", _failing_once_for(_port(w1), Connection.handle_timer))
        with pytest.raises(ConnectionResetError):
            while await r1.read(65536):  # what was paced out before the timer fired
                pass
        w2.write(b"x" * 100_000)
        await w2.drain()
        w2.write_eof()
        assert await r2.read() == b""  # discard closes after the end of what it was sent

    _run_with_clients(_first_paced(), body, caplog)


def test_stack_icmp_input_raising_drops_that_packet_and_the_batch_goes_on(monkeypatch, caplog):
    """Taking in an ICMP packet raises: that packet is dropped, logged and counted, and the segment after it
    in the same read batch is taken in (a SYN: a connection in SYN_RECEIVED)."""

    def raising(self, pkt, now):
        raise RuntimeError("a bug in the stack")

    async def body(server: Stack) -> None:
        monkeypatch.setattr(IpLayer, "receive", raising)
        ping = IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8, id=1, seq=1) / b"ping"
        syn = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=7, flags="S", seq=1000)
        server._input([bytes(ping), bytes(syn)])
        assert [conn.state for conn in server.demux.connections.values()] == [State.SYN_RECEIVED]

    _run_with_clients("echo", body, caplog, clients=0)
    assert "internal error on an arriving packet: dropped" in caplog.text
