"""stack.sendfile(): loop.sendfile()'s signature, semantics and exceptions for the stack's transports, on
the default loop and on uvloop (which has no sendfile of its own)."""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path

import pytest

from stack.aio import sendfile
from stack.aio.stack import Stack
from tests.library.conftest import SERVER, with_pair

CONTENT = os.urandom(3 * 1024 * 1024 + 17)  # several blocks and a short last one


@pytest.fixture
def content_file(tmp_path: Path) -> Path:
    path = tmp_path / "content.bin"
    path.write_bytes(CONTENT)
    return path


async def _sender(server: Stack, path: Path, results: list, **kwds) -> None:
    """A server that sends the file on each connection and records (returned, file position)."""

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with path.open("rb") as file:
            sent = await server.sendfile(writer.transport, file, **kwds)
            results.append((sent, file.tell()))
        writer.close()

    await server.start_server(send, SERVER, 8000)


async def _received(client: Stack) -> bytes:
    reader, writer = await client.open_connection(SERVER, 8000)
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data


def test_sendfile_sends_the_whole_file_and_leaves_its_position_at_the_end(run, content_file):
    """loop.sendfile(transport, file): every byte, in order, at the pace the peer reads (the transport's
    buffer stays bounded); returns how many; the file's position ends after them."""
    results: list = []

    async def body(client: Stack, server: Stack) -> None:
        await _sender(server, content_file, results)
        assert await _received(client) == CONTENT

    run(with_pair(body))
    assert results == [(len(CONTENT), len(CONTENT))]


def test_sendfile_offset_and_count_send_that_slice(run, content_file):
    results: list = []

    async def body(client: Stack, server: Stack) -> None:
        await _sender(server, content_file, results, offset=1000, count=300_001)
        assert await _received(client) == CONTENT[1000:301_001]

    run(with_pair(body))
    assert results == [(300_001, 301_001)]


def test_sendfile_count_beyond_the_end_stops_at_the_end(run, content_file):
    results: list = []

    async def body(client: Stack, server: Stack) -> None:
        await _sender(server, content_file, results, offset=len(CONTENT) - 10, count=1000)
        assert await _received(client) == CONTENT[-10:]

    run(with_pair(body))
    assert results == [(10, len(CONTENT))]


@pytest.mark.parametrize(
    "kwds, error",
    [
        ({"fallback": False}, asyncio.SendfileNotAvailableError),  # no sendfile system call to fall back from
        ({"offset": -1}, ValueError),
        ({"count": 0}, ValueError),
        ({"count": 1.5}, TypeError),
        ({"mode": "r"}, ValueError),  # a text file
    ],
)
def test_sendfile_refuses_what_asyncio_refuses(run, content_file, kwds, error):
    async def body(client: Stack, server: Stack) -> None:
        await server.start_server(lambda r, w: None, SERVER, 8000)
        reader, writer = await client.open_connection(SERVER, 8000)
        arguments = {name: value for name, value in kwds.items() if name != "mode"}
        with content_file.open(kwds.get("mode", "rb")) as file:
            with pytest.raises(error):
                await client.sendfile(writer.transport, file, **arguments)
        writer.close()

    run(with_pair(body))


def test_sendfile_on_a_closing_transport_is_runtimeerror(run, content_file):
    async def body(client: Stack, server: Stack) -> None:
        await server.start_server(lambda r, w: None, SERVER, 8000)
        reader, writer = await client.open_connection(SERVER, 8000)
        writer.close()
        with content_file.open("rb") as file, pytest.raises(RuntimeError):
            await client.sendfile(writer.transport, file)

    run(with_pair(body))


def test_sendfile_to_a_peer_that_resets_raises_connection_reset(run, content_file):
    """The peer reads a little and aborts: the transfer, waiting for room in the buffer, ends with
    ConnectionResetError, and the file's position tells how much was written."""
    outcome: list = []

    async def body(client: Stack, server: Stack) -> None:
        async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with content_file.open("rb") as file:
                try:
                    await server.sendfile(writer.transport, file)
                except ConnectionResetError:
                    outcome.append(file.tell())

        await server.start_server(send, SERVER, 8000)
        reader, writer = await client.open_connection(SERVER, 8000)
        await reader.readexactly(1000)
        writer.transport.abort()  # a RST, with most of the file not yet read
        while not outcome:
            await asyncio.sleep(0.01)

    run(with_pair(body))
    assert 0 < outcome[0] < len(CONTENT)


def test_sendfile_waits_while_the_peer_does_not_read(run, tmp_path):
    """Back-pressure: with a peer that reads nothing, once the connection's buffers are full the transport
    holds at most the high-water mark and one block, and the transfer waits; it ends once the peer reads."""
    big = bytes(range(256)) * (64 * 1024)  # 16 MB: beyond what both ends' buffers take
    path = tmp_path / "big.bin"
    path.write_bytes(big)
    transports: list = []
    results: list = []

    async def body(client: Stack, server: Stack) -> None:
        async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            transports.append(writer.transport)
            with path.open("rb") as file:
                results.append(await server.sendfile(writer.transport, file))
            writer.close()

        await server.start_server(send, SERVER, 8000)
        reader, writer = await client.open_connection(SERVER, 8000)
        writer.transport.pause_reading()  # the client's window closes once its buffer is full
        while not transports or transports[0].get_write_buffer_size() == 0:
            await asyncio.sleep(0.01)
        _, high = transports[0].get_write_buffer_limits()
        assert transports[0].get_write_buffer_size() <= high + sendfile.BLOCK
        assert not results  # still waiting
        writer.transport.resume_reading()
        assert await reader.read() == big
        writer.close()

    run(with_pair(body))
    assert results == [len(big)]


def test_sendfile_over_tls_goes_to_the_loops_own_sendfile(run, content_file, certificate):
    """A TLS transport is not the stack's: its sendfile is the loop's, asyncio's fallback on the default
    loop (the file arrives whole, decrypted); uvloop has none and raises NotImplementedError."""
    cert, key = certificate
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    results: list = []

    async def body(client: Stack, server: Stack) -> None:
        async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with content_file.open("rb") as file:
                try:
                    results.append(await server.sendfile(writer.transport, file))
                except NotImplementedError:
                    results.append("not implemented")
            writer.close()

        await server.start_server(send, SERVER, 8443, ssl=server_ctx)
        reader, writer = await client.open_connection(SERVER, 8443, ssl=client_ctx)
        data = await reader.read()
        if run.loop_name == "asyncio":
            assert data == CONTENT
        writer.close()

    run(with_pair(body))
    assert results == ([len(CONTENT)] if run.loop_name == "asyncio" else ["not implemented"])
