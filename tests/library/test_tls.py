"""TLS over the stack on both loops: ssl= keywords, StreamWriter.start_tls, Stack.start_tls, and
loop.start_tls where the loop allows it (asyncio's does; uvloop's takes only its own transports)."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from stack.aio.stack import Stack
from tests.library.conftest import SERVER, SERVER6, with_dual_stack_pair, with_pair


def _contexts(certificate) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = certificate
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))  # verifies the chain and the IP in the SAN
    return server_ctx, client_ctx


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


def test_tls_server_and_client_by_ssl_keyword_echo_a_megabyte(run, certificate):
    server_ctx, client_ctx = _contexts(certificate)

    async def body(client: Stack, server: Stack) -> None:
        await server.start_server(_echo, SERVER, 443, ssl=server_ctx)
        reader, writer = await client.open_connection(SERVER, 443, ssl=client_ctx)
        assert writer.get_extra_info("ssl_object").version().startswith("TLS")
        assert writer.get_extra_info("peername") == (SERVER, 443)  # the TCP transport's, through TLS
        data = bytes(range(256)) * 4096
        writer.write(data)
        _, echoed = await asyncio.gather(writer.drain(), reader.readexactly(len(data)))
        assert echoed == data
        writer.close()
        await writer.wait_closed()

    run(with_pair(body))


def test_tls_client_with_wrong_ca_fails_the_handshake(run, certificate):
    server_ctx, _ = _contexts(certificate)

    async def body(client: Stack, server: Stack) -> None:
        await server.start_server(_echo, SERVER, 443, ssl=server_ctx)
        with pytest.raises(ssl.SSLCertVerificationError):
            await client.open_connection(SERVER, 443, ssl=ssl.create_default_context())

    run(with_pair(body))


def test_writer_start_tls_upgrades_both_sides_of_a_plain_connection(run, certificate):
    """STARTTLS: plain text first, then both StreamWriters upgrade, on either loop."""
    server_ctx, client_ctx = _contexts(certificate)

    async def starttls_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readline() == b"STARTTLS\r\n"
        writer.write(b"GO\r\n")
        await writer.start_tls(server_ctx)
        line = await reader.readline()
        writer.write(b"secret " + line)
        await writer.drain()
        writer.close()

    async def body(client: Stack, server: Stack) -> None:
        await server.start_server(starttls_server, SERVER, 25)
        reader, writer = await client.open_connection(SERVER, 25)
        writer.write(b"STARTTLS\r\n")
        assert await reader.readline() == b"GO\r\n"
        await writer.start_tls(client_ctx, server_hostname=SERVER)
        assert writer.get_extra_info("ssl_object") is not None
        writer.write(b"hello\r\n")
        assert await reader.readline() == b"secret hello\r\n"
        writer.close()
        await writer.wait_closed()

    run(with_pair(body))


class _Collect(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.lost = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(exc)


async def _start_tls_exchange(client: Stack, server: Stack, certificate, start_tls) -> None:
    """A plain server that upgrades at once; the client upgrades with `start_tls` and gets a reply."""
    server_ctx, client_ctx = _contexts(certificate)

    async def upgrade_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await writer.start_tls(server_ctx)
        writer.write(await reader.readexactly(5))
        await writer.drain()
        writer.close()

    await server.start_server(upgrade_at_once, SERVER, 990)
    transport, protocol = await client.create_connection(_Collect, SERVER, 990)
    tls_transport = await start_tls(transport, protocol, client_ctx, server_hostname=SERVER)
    tls_transport.write(b"hello")
    assert await protocol.lost is None
    assert bytes(protocol.data) == b"hello"


def test_stack_start_tls_works_on_either_loop(run, certificate):
    async def body(client: Stack, server: Stack) -> None:
        await _start_tls_exchange(client, server, certificate, client.start_tls)

    run(with_pair(body))


def test_stack_start_tls_takes_server_side_as_a_truth_value(run, certificate):
    """loop.start_tls tests server_side for truth: 0 is the client side."""

    async def body(client: Stack, server: Stack) -> None:
        await _start_tls_exchange(
            client, server, certificate, lambda *args, **kwds: client.start_tls(*args, server_side=0, **kwds)
        )

    run(with_pair(body))


@pytest.mark.parametrize("finish", ["close", "write_eof", "abort"])
def test_stack_start_tls_on_a_transport_that_can_send_no_more_raises_at_once(run, certificate, finish):
    """After close(), write_eof() or abort() the handshake could send nothing: start_tls raises
    RuntimeError at once, as loop.sendfile does for a closing transport, instead of waiting for the
    handshake timeout; the stack serves the next connection."""
    _, client_ctx = _contexts(certificate)

    async def body(client: Stack, server: Stack) -> None:
        await server.start_server(_echo, SERVER, 7)
        transport, protocol = await client.create_connection(_Collect, SERVER, 7)
        getattr(transport, finish)()
        with pytest.raises(RuntimeError, match="closing|after write_eof"):
            await asyncio.wait_for(client.start_tls(transport, protocol, client_ctx, server_hostname=SERVER), 10)
        reader, writer = await client.open_connection(SERVER, 7)
        writer.write(b"next")
        assert await reader.readexactly(4) == b"next"
        writer.close()

    run(with_pair(body))


def test_loop_start_tls_works_on_asyncio_and_is_refused_by_uvloop(run, certificate):
    """asyncio's loop.start_tls takes our transport; uvloop's checks for its own classes (documented: use
    stack.start_tls or StreamWriter.start_tls there)."""

    async def body(client: Stack, server: Stack) -> None:
        loop = asyncio.get_running_loop()
        if run.loop_name == "asyncio":
            await _start_tls_exchange(client, server, certificate, loop.start_tls)
        else:
            with pytest.raises(TypeError, match="not supported by start_tls"):
                await _start_tls_exchange(client, server, certificate, loop.start_tls)

    run(with_pair(body))


def test_tls_over_ipv6_checks_the_certificate_against_the_ipv6_address(run, certificate):
    server_ctx, client_ctx = _contexts(certificate)

    async def body(client: Stack, server: Stack) -> None:
        await server.start_server(_echo, SERVER6, 443, ssl=server_ctx)
        reader, writer = await client.open_connection(SERVER6, 443, ssl=client_ctx)
        writer.write(b"over IPv6 and TLS")  # TLS has no half-close (write_eof): read what comes back
        assert await reader.readexactly(17) == b"over IPv6 and TLS"
        writer.close()
        await writer.wait_closed()

    run(with_dual_stack_pair(body))


def test_tls_server_given_plain_text_drops_that_client_and_serves_the_next(run, certificate):
    """A peer that does not speak TLS fails its handshake alone: the server goes on."""
    server_ctx, client_ctx = _contexts(certificate)

    async def body(client: Stack, server: Stack) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: None)  # the failed handshake is reported there
        await server.start_server(_echo, SERVER, 443, ssl=server_ctx)
        reader, writer = await client.open_connection(SERVER, 443)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")  # not a ClientHello
        await reader.read()  # closed with a FIN, not reset (after a TLS alert, if the version sends one)
        reader, writer = await client.open_connection(SERVER, 443, ssl=client_ctx)
        writer.write(b"after the bad one\n")
        assert await reader.readline() == b"after the bad one\n"
        writer.close()

    run(with_pair(body))
