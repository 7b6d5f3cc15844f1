"""127.0.0.0/8 and ::1 are the stack itself, as they are a host's through its loopback device: a client and a
server of one program meet there, never through the device (RFC 1122 §3.2.1.3 (g), RFC 4291 §2.5.3), and
"localhost" names them (RFC 6761 §6.3). On both event loops."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from stack.aio.stack import Stack
from stack.wire import addr
from stack.wire.codec import encode_tcp
from stack.wire.segment import Flags, Segment
from tests.library.conftest import CLIENT, SERVER, with_dual_stack_pair, with_pair


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _echoed(stack: Stack, host: str, port: int, **kwds) -> tuple[bytes, tuple, tuple]:
    """One echo over a connection of `stack` to host:port: what came back, the peername and sockname."""
    reader, writer = await stack.open_connection(host, port, **kwds)
    data = bytes(range(256)) * 400
    writer.write(data)
    writer.write_eof()
    echoed = await reader.read()
    peer, sock = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
    writer.close()
    await writer.wait_closed()
    assert echoed == data
    return echoed, peer[:2], sock[:2]


@pytest.mark.parametrize(
    "host, family, peer, sock",
    [
        ("127.0.0.1", socket.AF_UNSPEC, "127.0.0.1", "127.0.0.1"),
        ("127.1.2.3", socket.AF_UNSPEC, "127.1.2.3", "127.0.0.1"),  # all of 127/8; Linux's source is 127.0.0.1
        ("::1", socket.AF_UNSPEC, "::1", "::1"),
        ("localhost", socket.AF_UNSPEC, "127.0.0.1", "127.0.0.1"),
        ("LocalHost.", socket.AF_INET6, "::1", "::1"),
        ("db.localhost", socket.AF_INET, "127.0.0.1", "127.0.0.1"),
    ],
)
def test_connect_to_loopback_reaches_the_stacks_own_server_without_the_device(run, host, family, peer, sock):
    """A connection to the loopback goes from 127.0.0.1 (or ::1) to it inside the stack: the server
    listening on every address answers, and the device carries nothing, so the peer stack sees nothing."""

    async def body(client: Stack, server: Stack) -> None:
        srv = await server.start_server(_echo, port=7)
        _, peername, sockname = await _echoed(server, host, 7, family=family)
        assert peername == (peer, 7) and sockname[0] == sock
        assert server.stats().get("OutPackets", 0) == 0 and client.stats().get("InSegs", 0) == 0
        srv.close()

    run(with_dual_stack_pair(body))


@pytest.mark.parametrize(
    "host, local_addr, mss, pmtu",
    [
        ("127.0.0.1", None, 65483, 65535),
        ("::1", None, 65464, 65536),
        (SERVER, None, 65483, 65535),  # its own address: Linux routes that over lo too
        ("127.0.0.1", (SERVER, 0), 65483, 65535),  # from its own address to the loopback
    ],
)
def test_connection_with_itself_takes_the_loopbacks_mss_at_both_ends(run, host, local_addr, mss, pmtu):
    """Linux's lo has an MTU of 65536: the MSS offered is 65495 over IPv4 (ipv4_default_advmss caps it at
    65535 - 40) and 65476 over IPv6, 12 less with timestamps in every segment; advmss and pmtu as Linux
    6.18's on lo. Segments are cut to half the largest window offered (tcp_bound_to_half_wnd): the
    SYN,ACK's 65535 bytes give the client 32767, the larger window of the final ACK leaves the server the
    whole MSS (Linux's first windows there, 65483 and 65536, give 32741 and 32768). A stack's connection
    with itself took its device's 1460."""

    async def body(client: Stack, server: Stack) -> None:
        accepted: asyncio.Future = asyncio.get_running_loop().create_future()

        async def keep(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(writer)
            await reader.read()
            writer.close()

        await server.start_server(keep, port=7)
        _, writer = await server.open_connection(host, 7, local_addr=local_addr)
        for end, snd_mss in ((writer, 65535 // 2), (await accepted, mss)):
            info = end.get_extra_info("tcp_info")
            assert (info["tcpi_advmss"], info["tcpi_snd_mss"], info["tcpi_pmtu"]) == (mss, snd_mss, pmtu)
        writer.close()

    run(with_dual_stack_pair(body))


def test_server_bound_to_127_0_0_1_is_refused_to_other_hosts(run):
    """bind(127.0.0.1): only the host itself reaches the server; a SYN from another host finds no
    listener for its destination and is answered by a RST (RFC 9293 §3.10.7.1)."""

    async def body(client: Stack, server: Stack) -> None:
        srv = await server.start_server(_echo, "127.0.0.1", 7)
        assert srv.sockets[0].getsockname() == ("127.0.0.1", 7)
        with pytest.raises(ConnectionRefusedError):
            await client.open_connection(SERVER, 7)
        _, peername, _ = await _echoed(server, "127.0.0.1", 7)
        assert peername == ("127.0.0.1", 7)
        srv.close()

    run(with_pair(body))


def test_server_bound_to_ipv6_loopback_on_an_ipv4_only_stack_is_reached(run):
    """::1 is there without an IPv6 address, as on a host whose only interface has IPv4."""

    async def body(client: Stack, server: Stack) -> None:
        srv = await server.start_server(_echo, "::1", 7)
        _, peername, sockname = await _echoed(server, "::1", 7)
        assert peername == ("::1", 7) and sockname[0] == "::1"
        srv.close()

    run(with_pair(body))


def test_connect_to_loopback_without_a_listener_is_refused_at_once(run):
    """The SYN to 127.0.0.1 meets no listener: its RST comes back on the loopback, ECONNREFUSED."""

    async def body(client: Stack, server: Stack) -> None:
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(server.open_connection("127.0.0.1", 4444), 10)

    run(with_pair(body))


def test_connect_from_the_stacks_address_to_loopback_keeps_the_bound_source(run):
    """bind() to the stack's own address, then connect() to 127.0.0.1: Linux sends it through lo from
    the bound address."""

    async def body(client: Stack, server: Stack) -> None:
        srv = await server.start_server(_echo, port=7)
        _, peername, sockname = await _echoed(server, "127.0.0.1", 7, local_addr=(SERVER, 0))
        assert peername == ("127.0.0.1", 7) and sockname[0] == SERVER
        srv.close()

    run(with_pair(body))


def test_connect_from_loopback_to_another_host_is_einval(run):
    """A loopback source cannot leave the host: Linux's route lookup refuses it with EINVAL."""

    async def body(client: Stack, server: Stack) -> None:
        with pytest.raises(OSError) as info:
            await server.open_connection(CLIENT, 7, local_addr=("127.0.0.1", 0))
        assert info.value.errno == errno.EINVAL
        assert server.stats().get("OutPackets", 0) == 0

    run(with_pair(body))


def test_create_server_on_loopback_and_another_address_is_eaddrnotavail(run):
    """A listener takes one address or all of them, so a loopback address is bound alone."""

    async def body(client: Stack, server: Stack) -> None:
        with pytest.raises(OSError) as info:
            await server.start_server(_echo, ["127.0.0.1", SERVER], 7)
        assert info.value.errno == errno.EADDRNOTAVAIL

    run(with_pair(body))


def test_segment_from_the_device_to_127_0_0_1_is_dropped_and_counted(run):
    """127/8 must not appear on a network (RFC 1122 §3.2.1.3 (g)): a SYN from the device addressed to
    127.0.0.1 finds no listener, even one bound there, and is dropped (InAddrErrors), unanswered."""

    async def body(client: Stack, server: Stack) -> None:
        srv = await server.start_server(_echo, "127.0.0.1", 7)
        syn = Segment(40000, 7, 1000, 0, Flags.SYN, 65535)
        client.device.write_batch([encode_tcp(addr.parse(CLIENT), addr.LOOPBACK4, syn)])
        deadline = asyncio.get_running_loop().time() + 10
        while server.stats().get("InAddrErrors", 0) == 0:
            assert asyncio.get_running_loop().time() < deadline, "the SYN never arrived"
            await asyncio.sleep(0.01)
        assert server.stats().get("OutPackets", 0) == 0 and not server.demux.connections
        srv.close()

    run(with_pair(body))


def test_connect_to_its_own_port_is_a_simultaneous_open_with_itself(run):
    """bind(127.0.0.1:5000) then connect(127.0.0.1:5000) with nothing listening: the SYN comes back to the
    connection that sent it, which takes it as a simultaneous open (RFC 9293 §3.5, figure 7) and ends up
    ESTABLISHED with itself, as on Linux: what it writes, it reads."""

    async def body(client: Stack, server: Stack) -> None:
        reader, writer = await server.open_connection("127.0.0.1", 5000, local_addr=("127.0.0.1", 5000))
        assert writer.get_extra_info("peername") == writer.get_extra_info("sockname") == ("127.0.0.1", 5000)
        writer.write(b"hello myself")
        assert await reader.readexactly(12) == b"hello myself"
        (row,) = server.snapshot()
        assert row["state"] == "ESTABLISHED"
        assert [step["to"] for step in row["history"]] == ["SYN_SENT", "SYN_RECV", "ESTABLISHED"]
        writer.close()

    run(with_pair(body))


def test_server_on_localhost_listens_on_both_loopback_addresses(run):
    """start_server("localhost") binds 127.0.0.1 and ::1, a socket each, as asyncio's does from getaddrinfo:
    a client of either family reaches it, another host does not, and netstat shows the two listeners."""

    async def body(client: Stack, server: Stack) -> None:
        srv = await server.start_server(_echo, "localhost", 7)
        assert [sock.getsockname() for sock in srv.sockets] == [("127.0.0.1", 7), ("::1", 7, 0, 0)]
        for family, peer in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            _, peername, _ = await _echoed(server, "localhost", 7, family=family)
            assert peername == (peer, 7)
        with pytest.raises(ConnectionRefusedError):
            await client.open_connection(SERVER, 7)
        listening = [(row["local"], row["remote"]) for row in server.snapshot() if row["state"] == "LISTEN"]
        assert listening == [("127.0.0.1:7", "0.0.0.0:*"), ("[::1]:7", "[::]:*")]
        srv.close()

    run(with_pair(body))
