"""create_server/create_connection/start_server/open_connection and Server: asyncio's signatures, semantics
and exceptions, over two stacks joined by a socketpair, on the default loop and on uvloop."""

from __future__ import annotations

import asyncio
import errno
import io
import json
import socket
from collections.abc import Callable, Coroutine

import pytest

from stack.aio.stack import Stack
from stack.aio.tun import SocketPairDevice
from stack.tcp.config import TcpConfig
from stack.trace import EventLog
from tests.library.conftest import CLIENT, SERVER, SERVER6, with_dual_stack_pair, with_pair


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _roundtrip(client: Stack, port: int, payload: bytes = b"ping") -> bytes:
    reader, writer = await client.open_connection(SERVER, port)
    writer.write(payload)
    writer.write_eof()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data


def test_create_server_port_zero_picks_a_free_port_reported_by_sockets(run):
    """asyncio: port 0 or None binds a free port; server.sockets[i].getsockname() tells which."""

    async def body(client: Stack, server: Stack) -> None:
        srv = await server.start_server(_echo)  # host and port default to None, as asyncio's
        (sock,) = srv.sockets
        host, port = sock.getsockname()
        assert host == "0.0.0.0" and 32768 <= port < 61000
        assert sock.family == socket.AF_INET and sock.type == socket.SOCK_STREAM
        assert srv.get_loop() is asyncio.get_running_loop()
        assert await _roundtrip(client, port) == b"ping"

    run(with_pair(body))


def test_create_server_on_taken_port_raises_eaddrinuse(run):
    async def body(client: Stack, server: Stack) -> None:
        await server.start_server(_echo, SERVER, 7)
        with pytest.raises(OSError) as info:
            await server.start_server(_echo, None, 7)
        assert info.value.errno == errno.EADDRINUSE

    run(with_pair(body))


def test_create_server_on_an_address_not_the_stacks_raises_eaddrnotavail(run):
    async def body(client: Stack, server: Stack) -> None:
        with pytest.raises(OSError) as info:
            await server.start_server(_echo, "10.0.0.9", 7)
        assert info.value.errno == errno.EADDRNOTAVAIL

    run(with_pair(body))


def test_create_connection_to_a_name_raises_gaierror(run):
    """The stack resolves no names: getaddrinfo's error, as asyncio gives for an unknown host."""

    async def body(client: Stack, server: Stack) -> None:
        with pytest.raises(socket.gaierror):
            await client.open_connection("no-such-host.invalid", 80)

    run(with_pair(body))


def test_ports_as_digits_or_service_names_are_taken_as_getaddrinfo_takes_them(run):
    """asyncio hands the port to getaddrinfo, which takes "7", b"7" and a name from /etc/services."""

    async def body(client: Stack, server: Stack) -> None:
        srv = await server.start_server(_echo, SERVER, "echo")
        assert srv.sockets[0].getsockname() == (SERVER, 7)
        assert await _roundtrip(client, "7") == b"ping"  # type: ignore[arg-type]
        transport, _ = await client.create_connection(asyncio.Protocol, SERVER, b"7", local_addr=(CLIENT, "40124"))
        assert transport.get_extra_info("sockname") == (CLIENT, 40124)
        transport.close()
        with pytest.raises(socket.gaierror) as info:
            await client.open_connection(SERVER, "no-such-service")
        assert info.value.errno == socket.EAI_SERVICE

    run(with_pair(body))


def test_flags_given_as_truth_values_are_taken_as_asyncio_takes_them(run):
    """asyncio tests reuse_port, start_serving, all_errors and sendfile's fallback for truth: 1 and 0 do."""

    async def body(client: Stack, server: Stack) -> None:
        first = await server.create_server(asyncio.Protocol, SERVER, 7, reuse_port=1, reuse_address=1, start_serving=0)
        assert not first.is_serving()
        await server.create_server(asyncio.Protocol, SERVER, 7, reuse_port=1)  # shares the port
        transport, _ = await client.create_connection(asyncio.Protocol, SERVER, 7, all_errors=1)
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await client.sendfile(transport, io.BytesIO(b"x"), fallback=0)
        transport.close()

    run(with_pair(body))


def test_create_connection_to_ipv6_without_an_ipv6_address_raises_enetunreach(run):
    async def body(client: Stack, server: Stack) -> None:
        with pytest.raises(OSError) as info:
            await client.open_connection("fd00::2", 80)
        assert info.value.errno == errno.ENETUNREACH

    run(with_pair(body))


def test_create_connection_to_closed_port_raises_connection_refused_with_errno(run):
    """RFC 9293 §3.10.7.3: a RST in SYN-SENT; asyncio: ConnectionRefusedError, errno ECONNREFUSED."""

    async def body(client: Stack, server: Stack) -> None:
        with pytest.raises(ConnectionRefusedError) as info:
            await client.create_connection(asyncio.Protocol, SERVER, 4444)
        assert info.value.errno == errno.ECONNREFUSED

    run(with_pair(body))


def test_create_connection_local_addr_binds_the_source_port(run):
    async def body(client: Stack, server: Stack) -> None:
        seen: asyncio.Future = asyncio.get_running_loop().create_future()

        async def note_peer(reader, writer) -> None:
            seen.set_result(writer.get_extra_info("peername"))
            writer.close()

        await server.start_server(note_peer, port=7)
        transport, _ = await client.create_connection(asyncio.Protocol, SERVER, 7, local_addr=(CLIENT, 40123))
        assert transport.get_extra_info("sockname") == (CLIENT, 40123)
        assert await seen == (CLIENT, 40123)
        transport.close()
        with pytest.raises(OSError) as info:
            await client.create_connection(asyncio.Protocol, SERVER, 7, local_addr=("10.0.0.9", 0))
        assert info.value.errno == errno.EADDRNOTAVAIL

    run(with_pair(body))


def test_server_close_refuses_new_connections_and_wait_closed_waits_for_open_ones(run):
    """asyncio 3.12+: close() stops listening, keeps accepted connections; wait_closed() waits for them."""

    async def body(client: Stack, server: Stack) -> None:
        srv = await server.start_server(_echo, port=7)
        reader, writer = await client.open_connection(SERVER, 7)
        writer.write(b"accepted")  # the echo proves the server accepted it: close() resets unaccepted ones
        assert await reader.readexactly(8) == b"accepted"
        srv.close()
        assert not srv.is_serving() and srv.sockets == ()
        with pytest.raises(ConnectionRefusedError):
            await client.open_connection(SERVER, 7)
        closed = asyncio.create_task(srv.wait_closed())
        writer.write(b"still here")
        assert await reader.readexactly(10) == b"still here"
        assert not closed.done()
        writer.close()  # the echo handler closes its side on EOF: the server's last connection ends
        await asyncio.wait_for(closed, 10)

    run(with_pair(body))


def test_server_start_serving_false_refuses_until_start_serving(run):
    async def body(client: Stack, server: Stack) -> None:
        srv = await server.create_server(asyncio.Protocol, port=7, start_serving=False)
        assert not srv.is_serving()
        with pytest.raises(OSError) as info:  # the port is bound
            await server.create_server(asyncio.Protocol, port=7)
        assert info.value.errno == errno.EADDRINUSE
        with pytest.raises(ConnectionRefusedError):
            await client.open_connection(SERVER, 7)
        await srv.start_serving()
        assert srv.is_serving()
        transport, _ = await client.create_connection(asyncio.Protocol, SERVER, 7)
        transport.close()

    run(with_pair(body))


def test_server_serve_forever_cancelled_closes_the_server(run):
    async def body(client: Stack, server: Stack) -> None:
        srv = await server.start_server(_echo, port=7, start_serving=False)
        forever = asyncio.create_task(srv.serve_forever())
        await asyncio.sleep(0.01)
        assert srv.is_serving()
        assert await _roundtrip(client, 7) == b"ping"
        with pytest.raises(RuntimeError):
            await srv.serve_forever()  # only one serve_forever at a time
        forever.cancel()
        with pytest.raises(asyncio.CancelledError):
            await forever
        assert not srv.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await client.open_connection(SERVER, 7)

    run(with_pair(body))


def test_server_async_with_closes_on_exit(run):
    async def body(client: Stack, server: Stack) -> None:
        async with await server.start_server(_echo, port=7) as srv:
            assert srv.is_serving()
            assert await _roundtrip(client, 7) == b"ping"
        assert not srv.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await client.open_connection(SERVER, 7)

    run(with_pair(body))


def test_open_connection_limit_bounds_readline(run):
    """asyncio: a line longer than `limit` raises ValueError from readline (LimitOverrunError inside)."""

    async def body(client: Stack, server: Stack) -> None:
        await server.start_server(_echo, port=7)
        reader, writer = await client.open_connection(SERVER, 7, limit=100)
        writer.write(b"x" * 300 + b"\n")
        with pytest.raises(ValueError):
            await reader.readline()
        writer.close()

    run(with_pair(body))


def test_server_abort_clients_resets_accepted_connections(run):
    async def body(client: Stack, server: Stack) -> None:
        srv = await server.start_server(_echo, port=7)
        reader, writer = await client.open_connection(SERVER, 7)
        writer.write(b"a")
        assert await reader.readexactly(1) == b"a"
        srv.close()
        srv.abort_clients()
        with pytest.raises(ConnectionResetError):
            await reader.read()
        await asyncio.wait_for(srv.wait_closed(), 10)

    run(with_pair(body))


def test_established_simultaneous_close_reports_connection_lost_on_both_sides(run):
    """RFC 9293 §3.6 case 2: both FINs cross (FIN-WAIT-1 -> CLOSING -> TIME-WAIT, no event on the last
    step); connection_lost comes on both sides, not after 2*MSL."""

    async def body(client: Stack, server: Stack) -> None:
        accepted: asyncio.Future = asyncio.get_running_loop().create_future()

        async def keep(reader, writer) -> None:
            accepted.set_result(writer)

        await server.start_server(keep, port=7)
        _, writer = await client.open_connection(SERVER, 7)
        server_writer = await accepted
        writer.close()
        server_writer.close()  # in the same loop turn: the FINs cross
        await asyncio.wait_for(asyncio.gather(writer.wait_closed(), server_writer.wait_closed()), 10)

    run(with_pair(body))


def test_syn_sent_retries_exhausted_raises_timeout_error_with_etimedout(run):
    """RFC 9293 §3.8.3 / Linux tcp_syn_retries: nobody answers the SYN; asyncio: TimeoutError, ETIMEDOUT."""

    async def main() -> None:
        a, b = SocketPairDevice.pair()
        client = Stack(a, CLIENT, config=TcpConfig(syn_retries=1, initial_rto=0.05))
        silent = Stack(b, SERVER)  # drops what is not addressed to it
        try:
            with pytest.raises(TimeoutError) as info:
                await client.open_connection("10.0.0.3", 80)
            assert info.value.errno == errno.ETIMEDOUT
        finally:
            await client.close()
            await silent.close()

    run(main())


def test_syn_sent_host_unreachable_raises_its_oserror_at_once(run):
    """Linux tcp_v4_err: an ICMP host unreachable about our SYN ends the connect with EHOSTUNREACH at once
    (asyncio: OSError "No route to host"), without waiting for the SYN's retries."""

    async def main() -> None:
        from scapy.layers.inet import ICMP, IP

        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        b.setblocking(False)  # (the loop's sock_recv)
        client = Stack(SocketPairDevice(a), CLIENT, config=TcpConfig(initial_rto=30))
        try:
            connecting = asyncio.ensure_future(client.open_connection("10.0.0.3", 80))
            syn = await asyncio.get_running_loop().sock_recv(b, 2048)
            router = IP(src="10.0.0.254", dst=CLIENT) / ICMP(type=3, code=1) / syn[:28]  # RFC 792's quote
            b.send(bytes(router))
            with pytest.raises(OSError) as info:
                await asyncio.wait_for(connecting, 5)
            assert info.value.errno == errno.EHOSTUNREACH
        finally:
            await client.close()
            b.close()

    run(main())


def test_stack_close_closes_servers_and_their_connections(run):
    async def body(client: Stack, server: Stack) -> None:
        srv = await server.start_server(_echo, port=7)
        reader, writer = await client.open_connection(SERVER, 7)
        writer.write(b"a")
        assert await reader.readexactly(1) == b"a"
        await server.close()
        assert not srv.is_serving()
        await asyncio.wait_for(srv.wait_closed(), 5)  # its connection was aborted with the stack
        writer.close()

    run(with_pair(body))


def test_stack_closed_refuses_new_connections_and_servers_with_runtime_error(run):
    """After close() the device is gone: a new connection or server is refused at once, as a closed event
    loop refuses new work, rather than waiting for packets that can never come."""

    async def body(client: Stack, server: Stack) -> None:
        await client.close()
        with pytest.raises(RuntimeError, match="the stack is closed"):
            await client.open_connection(SERVER, 7)
        with pytest.raises(RuntimeError, match="the stack is closed"):
            await client.start_server(_echo, port=7)

    run(with_pair(body))


def test_syn_sent_stack_closed_meanwhile_fails_the_connect(run):
    """close() aborts every connection, one still connecting too: its create_connection fails at once
    (ECONNABORTED)."""

    async def body(client: Stack, server: Stack) -> None:
        connecting = asyncio.ensure_future(client.open_connection("10.0.0.3", 7))  # no one answers there
        await asyncio.sleep(0)
        await client.close()
        with pytest.raises(ConnectionAbortedError):
            await asyncio.wait_for(connecting, 5)

    run(with_pair(body))


def test_dual_stack_server_on_no_host_has_a_socket_per_family_and_takes_both(run):
    """asyncio: host=None makes one socket per family; peername/sockname are IPv6's 4-tuples there."""

    async def body(client: Stack, server: Stack) -> None:
        srv = await server.start_server(_echo, port=7)
        assert sorted(s.getsockname() for s in srv.sockets) == sorted([("0.0.0.0", 7), ("::", 7, 0, 0)])
        assert {s.family for s in srv.sockets} == {socket.AF_INET, socket.AF_INET6}
        assert await _roundtrip(client, 7) == b"ping"
        reader, writer = await client.open_connection(SERVER6, 7)
        assert writer.get_extra_info("peername") == (SERVER6, 7, 0, 0)
        assert writer.get_extra_info("socket").family == socket.AF_INET6
        writer.write(b"over IPv6")
        writer.write_eof()
        assert await reader.read() == b"over IPv6"
        writer.close()

    run(with_dual_stack_pair(body))


def test_dual_stack_family_keyword_selects_the_family(run):
    """asyncio passes family to getaddrinfo: a literal of the other family is gaierror (EAI_ADDRFAMILY)."""

    async def body(client: Stack, server: Stack) -> None:
        srv = await server.start_server(_echo, port=7, family=socket.AF_INET6)
        assert [s.getsockname() for s in srv.sockets] == [("::", 7, 0, 0)]
        with pytest.raises(ConnectionRefusedError):  # an IPv6-only listener: IPv4 SYNs get a RST
            await client.open_connection(SERVER, 7)
        with pytest.raises(socket.gaierror):
            await client.open_connection(SERVER, 7, family=socket.AF_INET6)
        reader, writer = await client.open_connection(f"[{SERVER6}]", 7, family=socket.AF_INET6)
        writer.close()

    run(with_dual_stack_pair(body))


def test_established_callback_exception_is_reported_and_closes_only_that_connection(run):
    """asyncio.start_server: an exception in client_connected_cb goes to the loop's exception handler and
    closes that connection; the server goes on."""

    async def body(client: Stack, server: Stack) -> None:
        loop = asyncio.get_running_loop()
        reported: list[dict] = []
        loop.set_exception_handler(lambda loop, context: reported.append(context))

        async def fails_on_boom(reader, writer) -> None:
            if await reader.readline() == b"boom\n":
                raise RuntimeError("boom")
            await _echo(reader, writer)

        await server.start_server(fails_on_boom, port=7)
        reader, writer = await client.open_connection(SERVER, 7)
        writer.write(b"boom\n")
        assert await reader.read() == b""
        assert [str(c["exception"]) for c in reported] == ["boom"]
        assert await _roundtrip(client, 7, b"fine\nthanks") == b"thanks"

    run(with_pair(body))


class _FailsOnMade(asyncio.Protocol):
    def __init__(self) -> None:
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        raise RuntimeError("made")

    def connection_lost(self, exc) -> None:
        self.lost.set_result(exc)


def _raises() -> asyncio.Protocol:
    raise RuntimeError("factory")


@pytest.mark.parametrize(("factory", "error"), [(_raises, RuntimeError), (lambda: None, TypeError)])
def test_create_connection_protocol_factory_failure_raises_to_the_caller(run, factory, error):
    """asyncio's create_connection raises what its protocol factory raised (a None protocol fails too); the
    connection is aborted. It hung: the factory ran in the stack's input and the caller's future waited."""

    async def body(client: Stack, server: Stack) -> None:
        await server.start_server(_echo, port=7)
        with pytest.raises(error):
            await client.create_connection(factory, SERVER, 7)
        assert client.snapshot() == [] and client.stats()["InternalErrors"] == 0

    run(with_pair(body))


@pytest.mark.parametrize("factory", [_raises, lambda: None, _FailsOnMade])
def test_server_protocol_factory_or_connection_made_failure_aborts_only_that_connection(run, factory):
    """A server's protocol that cannot be made, or fails in connection_made, ends its connection (the peer
    sees a reset) and is no error of the stack's; the server goes on serving."""

    async def body(client: Stack, server: Stack) -> None:
        await server.create_server(factory, SERVER, 7)
        reader, writer = await client.open_connection(SERVER, 7)
        with pytest.raises(ConnectionResetError):
            await reader.read()
        assert server.stats()["InternalErrors"] == 0
        await server.start_server(_echo, SERVER, 8)
        assert await _roundtrip(client, 8) == b"ping"

    run(with_pair(body))


def test_create_connection_connection_made_failure_aborts_the_connection(run):
    """As any protocol callback that raises: logged, the connection aborted (the peer sees a reset), and
    connection_lost follows; the stack counts no internal error."""

    async def body(client: Stack, server: Stack) -> None:
        await server.start_server(_echo, port=7)
        transport, protocol = await client.create_connection(_FailsOnMade, SERVER, 7)
        assert transport.is_closing()
        assert await protocol.lost is None
        assert client.stats()["InternalErrors"] == 0

    run(with_pair(body))


async def _with_a_peer_that_never_closes(body: Callable[[Stack, asyncio.StreamWriter], Coroutine]) -> None:
    """Runs body(client, writer) on a connection to a server that never closes it, the client's FIN_WAIT_2
    bounded by a fin_timeout of 0.3 s."""
    a, b = SocketPairDevice.pair()
    client, server = Stack(a, CLIENT, config=TcpConfig(fin_timeout=0.3)), Stack(b, SERVER)
    try:
        accepted: asyncio.Future = asyncio.get_running_loop().create_future()
        await server.start_server(lambda r, w: accepted.set_result(w), port=7)  # never closes
        _, writer = await client.open_connection(SERVER, 7)
        await accepted
        await body(client, writer)
    finally:
        await client.close()
        await server.close()


def test_fin_wait_2_peer_never_closes_wait_closed_returns_after_fin_timeout(run):
    """Linux tcp_fin_timeout bounds an orphaned FIN-WAIT-2: wait_closed() returns then, not never."""

    async def body(client: Stack, writer: asyncio.StreamWriter) -> None:
        writer.close()
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(writer.wait_closed(), 10)
        assert asyncio.get_running_loop().time() - started >= 0.25

    run(_with_a_peer_that_never_closes(body))


def test_fin_wait_2_closed_after_our_fin_was_acked_still_times_out(run):
    """Linux tcp_fin_timeout: an application that half-closes, sees its FIN ACKed and only then closes
    leaves an orphan in FIN-WAIT-2 whose timer must still run out (the close changes only a deadline)."""

    async def body(client: Stack, writer: asyncio.StreamWriter) -> None:
        writer.write_eof()
        while [row["state"] for row in client.snapshot()] != ["FIN_WAIT2"]:
            await asyncio.sleep(0.005)
        writer.close()
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(client.wait_idle(), 10)
        assert asyncio.get_running_loop().time() - started >= 0.25

    run(_with_a_peer_that_never_closes(body))


def test_listen_reuse_port_spreads_connections_over_the_servers_sharing_the_port(run):
    """SO_REUSEPORT (Linux): servers that all ask for it share a port, connections spread by the peer's
    address; the port listens until the last of them closes. Without it on every server: EADDRINUSE."""

    async def body(client: Stack, server: Stack) -> None:
        served = {"a": 0, "b": 0}

        def counting(name: str):
            async def handler(reader, writer) -> None:
                served[name] += 1
                await _echo(reader, writer)

            return handler

        first = await server.start_server(counting("a"), port=7, reuse_port=True)
        second = await server.start_server(counting("b"), port=7, reuse_port=True)
        with pytest.raises(OSError) as info:
            await server.start_server(_echo, port=7)  # did not ask to share
        assert info.value.errno == errno.EADDRINUSE
        for _ in range(20):
            assert await _roundtrip(client, 7) == b"ping"
        assert served["a"] > 0 and served["b"] > 0 and sum(served.values()) == 20
        first.close()
        assert second.is_serving()
        assert await _roundtrip(client, 7) == b"ping"
        second.close()
        with pytest.raises(ConnectionRefusedError):
            await client.open_connection(SERVER, 7)

    run(with_pair(body))


def test_listen_reuse_port_requested_late_is_eaddrinuse(run):
    async def body(client: Stack, server: Stack) -> None:
        await server.start_server(_echo, port=7)
        with pytest.raises(OSError) as info:
            await server.start_server(_echo, port=7, reuse_port=True)
        assert info.value.errno == errno.EADDRINUSE

    run(with_pair(body))


@pytest.mark.parametrize("host, peer", [(SERVER, SERVER), ("0.0.0.0", "127.0.0.1"), (SERVER6, SERVER6), ("::", "::1")])
def test_create_connection_to_the_stacks_own_address_loops_back_without_the_device(run, host, peer):
    """A host's connections to itself go through its loopback device, not out of its network interface
    (Linux: lo; 0.0.0.0 and :: as a destination mean the host itself, its loopback address): a client and
    a server on one stack talk, and nothing is written to the device, so the peer stack sees nothing."""

    async def body(client: Stack, server: Stack) -> None:
        srv = await server.start_server(_echo, port=7)
        data = bytes(range(256)) * 1000
        reader, writer = await server.open_connection(host, 7)
        writer.write(data)
        writer.write_eof()
        assert await reader.read() == data
        writer.close()
        await writer.wait_closed()
        assert writer.get_extra_info("peername")[:2] == (peer, 7)
        assert server.stats().get("OutPackets", 0) == 0 and client.stats().get("InSegs", 0) == 0
        srv.close()

    run(with_dual_stack_pair(body))


def test_create_connection_to_the_stacks_own_closed_port_is_refused_at_once(run):
    """The SYN to ourselves meets no listener: the RST comes back through the loopback path, so connect()
    fails at once with ECONNREFUSED, not after the SYN's retries; the event log has both, as for a peer."""

    async def body() -> None:
        a, b = SocketPairDevice.pair()
        log = io.StringIO()
        stack = Stack(a, SERVER, event_log=EventLog(log))
        try:
            with pytest.raises(ConnectionRefusedError):
                await asyncio.wait_for(stack.create_connection(asyncio.Protocol, SERVER, 4444), 10)
            events = [json.loads(line) for line in log.getvalue().splitlines()]
        finally:
            await stack.close()  # (closes the log)
            b.close()
        segments = [e for e in events if e["ev"] == "seg"]
        assert [(e["dir"], e["flags"]) for e in segments] == [("out", "S"), ("in", "S"), ("out", "R."), ("in", "R.")]

    run(body())


@pytest.mark.parametrize("host", ["255.255.255.255", "10.0.0.255", "224.0.0.1", "ff02::1"])
def test_create_connection_to_a_broadcast_or_multicast_address_raises_enetunreach(run, host):
    """Linux's tcp_v4_connect and tcp_v6_connect refuse a broadcast or multicast destination at once
    (ENETUNREACH): TCP is between two hosts, and no SYN is sent."""

    async def body() -> None:
        a, b = SocketPairDevice.pair()
        stack = Stack(a, [CLIENT, "fd00::1"], network="10.0.0.2/24")  # (10.0.0.255: the subnet's broadcast)
        try:
            with pytest.raises(OSError) as info:
                await stack.open_connection(host, 80)
            assert info.value.errno == errno.ENETUNREACH
            assert stack.stats().get("OutPackets", 0) == 0
        finally:
            await stack.close()
            b.close()

    run(body())


@pytest.mark.parametrize("stacks", [with_pair, with_dual_stack_pair])
def test_create_connection_to_an_ipv4_mapped_address_goes_over_ipv4(run, stacks):
    """An IPv6 socket's connection to ::ffff:a.b.c.d is an IPv4 connection (RFC 4291 §2.5.5.2; Linux's
    tcp_v6_connect hands it to tcp_v4_connect), also on a stack without IPv6 addresses; its ends are
    reported as an IPv6 socket reports them: IPv4-mapped 4-tuples. The server sees an IPv4 peer."""

    async def body(client: Stack, server: Stack) -> None:
        peers = []

        async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peers.append(writer.get_extra_info("peername"))
            writer.write(b"hello")
            writer.close()

        await server.start_server(hello, SERVER, 7)
        reader, writer = await client.open_connection(f"::ffff:{SERVER}", 7)
        assert await reader.read() == b"hello"
        assert writer.get_extra_info("peername") == (f"::ffff:{SERVER}", 7, 0, 0)
        sockname = writer.get_extra_info("sockname")
        assert sockname[0] == f"::ffff:{CLIENT}" and len(sockname) == 4
        assert writer.get_extra_info("socket").family == socket.AF_INET6
        assert peers == [(CLIENT, sockname[1])]
        writer.close()
        await writer.wait_closed()

    run(stacks(body))


@pytest.mark.parametrize("local_addr", [(CLIENT,), CLIENT, (CLIENT, 0, 0)])
def test_create_connection_local_addr_not_a_host_port_pair_raises_valueerror(run, local_addr):
    """asyncio unpacks local_addr as (host, port): anything else is a ValueError, before any SYN."""

    async def body(client: Stack, server: Stack) -> None:
        with pytest.raises(ValueError):
            await client.open_connection(SERVER, 7, local_addr=local_addr)
        assert client.stats().get("OutPackets", 0) == 0

    run(with_pair(body))
