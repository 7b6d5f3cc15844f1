"""What asyncio code asks of a transport: extra info (tcp_info included), write buffer limits and
pause_writing, set_protocol, pause/resume_reading, BufferedProtocol, write_eof, abort; on both loops."""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import socket
import struct
import weakref

import pytest

from stack.aio.stack import Stack
from stack.aio.tun import SocketPairDevice
from stack.tcp.config import TcpConfig
from stack.tcp.connection import Connection
from stack.tcp.tcp_info import TCPI_OPT_ECN, TCPI_OPT_SACK, TCPI_OPT_TIMESTAMPS, TCPI_OPT_WSCALE
from tests.library.conftest import CLIENT, SERVER, SERVER6, with_dual_stack_pair, with_pair

TCP_TIME_WAIT = 6  # tcpi_state, Linux's numbering


class Recorder(asyncio.Protocol):
    """Records every callback in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.data = bytearray()
        self.eof = asyncio.get_running_loop().create_future()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.calls.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        self.eof.set_result(None)
        return True  # keep our side open

    def pause_writing(self) -> None:
        self.calls.append("pause_writing")

    def resume_writing(self) -> None:
        self.calls.append("resume_writing")

    def connection_lost(self, exc) -> None:
        self.calls.append("lost")
        self.lost.set_result(exc)


async def _accepted(server: Stack, port: int, factory=Recorder):
    """A server whose first accepted (transport, protocol) comes back through a future."""
    got: asyncio.Future = asyncio.get_running_loop().create_future()

    def make():
        protocol = factory()
        original = protocol.connection_made

        def made(transport):
            original(transport)
            got.set_result((transport, protocol))

        protocol.connection_made = made
        return protocol

    await server.create_server(make, port=port)
    return got


def test_established_extra_info_names_both_ends_and_a_socket_like_object(run):
    async def body(client: Stack, server: Stack) -> None:
        accepted = await _accepted(server, 7)
        transport, _ = await client.create_connection(Recorder, SERVER, 7)
        server_transport, _ = await accepted
        port = transport.get_extra_info("sockname")[1]
        assert transport.get_extra_info("peername") == (SERVER, 7)
        assert server_transport.get_extra_info("peername") == (CLIENT, port)
        sock = transport.get_extra_info("socket")
        assert sock.family == socket.AF_INET and sock.type == socket.SOCK_STREAM
        assert sock.getsockname() == (CLIENT, port) and sock.getpeername() == (SERVER, 7)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # what aiohttp does
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        with pytest.raises(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        assert transport.get_extra_info("no such thing", "default") == "default"
        transport.abort()

    run(with_pair(body))


def test_listening_socket_options_are_taken_by_the_connections_it_accepts(run):
    """As Linux's accepted sockets inherit their listener's options: TCP_NODELAY and TCP_USER_TIMEOUT set on
    server.sockets[0] hold for each connection it accepts, and read back on the listener. They were refused
    there (ENOPROTOOPT)."""

    async def body(client: Stack, server: Stack) -> None:
        accepted: asyncio.Future = asyncio.get_running_loop().create_future()
        srv = await server.start_server(lambda reader, writer: accepted.set_result(writer), SERVER, 7)
        listening = srv.sockets[0]
        assert listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 5000)
        assert listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        with pytest.raises(OSError):
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        _, writer = await client.open_connection(SERVER, 7)
        sock = (await accepted).get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 5000
        own = writer.get_extra_info("socket")  # the client's connection took nothing of it
        assert own.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        writer.transport.abort()

    run(with_pair(body))


def test_listening_socket_reports_the_stacks_config_for_options_not_set_on_it(run):
    """A listening socket reads back what its connections will have: the config the stack was made with
    (TCP_NODELAY and TCP_USER_TIMEOUT here), not the library's defaults."""

    async def body() -> None:
        a, b = SocketPairDevice.pair()
        client, server = Stack(a, CLIENT), Stack(b, SERVER, config=TcpConfig(nodelay=True, user_timeout=5))
        try:
            accepted: asyncio.Future = asyncio.get_running_loop().create_future()
            srv = await server.start_server(lambda reader, writer: accepted.set_result(writer), SERVER, 7)
            listening = srv.sockets[0]
            assert listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 5000
            _, writer = await client.open_connection(SERVER, 7)
            sock = (await accepted).get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 5000
            writer.transport.abort()
        finally:
            await client.close()
            await server.close()

    run(body())


def test_established_buffer_sizes_read_back_doubled_and_bounded_as_linux(run):
    """socket(7) SO_RCVBUF, SO_SNDBUF: the kernel doubles the value set, bounded by net.core.rmem_max and
    wmem_max (212992 by default) and at least its least buffer (2304 and 4608); a negative value is a large
    unsigned one. Unset, they read the buffers in use; set, the receive memory holds what they say at once."""

    async def body(client: Stack, server: Stack) -> None:
        await _accepted(server, 7)
        transport, _ = await client.create_connection(Recorder, SERVER, 7)
        sock = transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * TcpConfig().receive_buffer
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == TcpConfig().send_buffer
        cases = ((4000, 8000, 8000), (1, 2304, 4608), (10**9, 425984, 425984), (-1, 425984, 425984))
        for value, rcvbuf, sndbuf in cases:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, value)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, value)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == rcvbuf
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == sndbuf
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4000)
        assert transport.get_extra_info("tcp_info")["SK_MEMINFO_RCVBUF"] == 8000
        transport.abort()

    run(with_pair(body))


def test_listening_socket_buffer_size_holds_for_the_connections_it_accepts(run):
    """As Linux's accepted sockets inherit their listener's sk_rcvbuf and its lock: SO_RCVBUF set on
    server.sockets[0] sizes the receive memory of each connection it accepts, which does not grow."""

    async def body(client: Stack, server: Stack) -> None:
        accepted: asyncio.Future = asyncio.get_running_loop().create_future()
        srv = await server.start_server(lambda reader, writer: accepted.set_result(writer), SERVER, 7)
        srv.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 3000)
        assert srv.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 6000
        _, writer = await client.open_connection(SERVER, 7)
        writer.write(b"x" * 100_000)
        sock = (await accepted).get_extra_info("socket")
        await writer.drain()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 6000
        writer.transport.abort()

    run(with_pair(body))


def test_established_ip_tos_of_one_byte_is_unsigned_and_an_int_keeps_its_low_byte(run):
    """Linux do_ip_setsockopt: IP_TOS given as one byte is an unsigned char (0xB8, EF's DSCP, not -72),
    an int keeps its low byte; the ECN field stays TCP's (RFC 3168 §5)."""

    async def body(client: Stack, server: Stack) -> None:
        await _accepted(server, 7)
        transport, _ = await client.create_connection(Recorder, SERVER, 7)
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, b"\xb8")
        assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0xB8
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x129)
        assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0x28
        transport.abort()

    run(with_pair(body))


def test_established_socket_options_take_and_give_bytes_as_a_kernel_socket_does(run):
    """socket.setsockopt takes an int or a buffer and nothing else; getsockopt with buflen returns the
    bytes the kernel copies (at most a C int), which struct.unpack reads."""

    async def body(client: Stack, server: Stack) -> None:
        await _accepted(server, 7)
        transport, _ = await client.create_connection(Recorder, SERVER, 7)
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, struct.pack("i", 1))
        assert struct.unpack("i", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 4)) == (1,)
        mss = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 64) == struct.pack("i", mss)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 2) == struct.pack("i", mss)[:2]
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 0) == mss
        with pytest.raises(OSError, match="buflen out of range"):
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, -1)
        for wrong in ("1", 1.0):
            with pytest.raises(TypeError, match="bytes-like object is required"):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, wrong)
        transport.abort()

    run(with_pair(body))


def test_established_tcp_cork_on_socket_holds_small_write_until_cleared(run):
    """Linux tcp(7) TCP_CORK through get_extra_info('socket'): a partial segment waits while corked and
    leaves when the option is cleared; TCP_USER_TIMEOUT and TCP_MAXSEG read back as Linux reports them."""

    async def body(client: Stack, server: Stack) -> None:
        accepted = await _accepted(server, 7)
        transport, _ = await client.create_connection(Recorder, SERVER, 7)
        _, server_protocol = await accepted
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 1
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 5000)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 5000
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG) == 1460 - 12
        transport.write(b"x" * 100)
        for _ in range(5):  # loop iterations, not time: enough for a segment to be flushed, read and
            await asyncio.sleep(0)  # delivered, and far less than the 200 ms after which Linux uncorks
        assert server_protocol.data == b""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        for _ in range(1000):
            if server_protocol.data:
                break
            await asyncio.sleep(0.001)
        assert server_protocol.data == b"x" * 100
        transport.abort()

    run(with_pair(body))


def test_established_so_max_pacing_rate_on_socket_reads_back_and_minus_one_lifts_it(run):
    """Linux socket(7) SO_MAX_PACING_RATE through get_extra_info('socket'): bytes per second, read back as
    set (the pacing itself: tests/scripts/api/so_max_pacing_rate_paces_at_most_at_the_rate.pkt); ~0U (-1
    as Python's socket module reads and writes a C int) lifts the limit and is what a socket without one
    reports, as a kernel socket does."""
    so_max_pacing_rate = getattr(socket, "SO_MAX_PACING_RATE", 47)

    async def body(client: Stack, server: Stack) -> None:
        accepted = await _accepted(server, 7)
        transport, _ = await client.create_connection(Recorder, SERVER, 7)
        await accepted
        sock = transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, so_max_pacing_rate) == -1
        sock.setsockopt(socket.SOL_SOCKET, so_max_pacing_rate, 125_000)
        assert sock.getsockopt(socket.SOL_SOCKET, so_max_pacing_rate) == 125_000
        sock.setsockopt(socket.SOL_SOCKET, so_max_pacing_rate, -1)
        assert sock.getsockopt(socket.SOL_SOCKET, so_max_pacing_rate) == -1
        transport.abort()

    run(with_pair(body))


def test_established_tcp_info_reports_state_rtt_and_options_with_linux_names(run):
    """getsockopt(TCP_INFO) as Linux fills it: tcpi_state 1 (TCP_ESTABLISHED), microseconds, segments."""

    async def body(client: Stack, server: Stack) -> None:
        accepted = await _accepted(server, 7)
        transport, _ = await client.create_connection(Recorder, SERVER, 7)
        server_transport, server_protocol = await accepted
        transport.write(b"x" * 10000)
        while len(server_protocol.data) < 10000:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)  # the ACKs come back: an RTT sample
        info = transport.get_extra_info("tcp_info")
        assert info["tcpi_state"] == 1
        assert info["tcpi_snd_mss"] == 1460 - 12  # timestamps take 12 bytes of every segment
        assert info["tcpi_options"] & (TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE) == 7
        assert 0 < info["tcpi_rtt"] < 1_000_000
        assert info["tcpi_rto"] >= 200_000  # min RTO 200 ms, as Linux
        assert info["tcpi_snd_cwnd"] >= 10 and info["tcpi_snd_ssthresh"] == 0x7FFFFFFF
        assert info["tcpi_segs_out"] >= 8
        assert info["tcpi_total_retrans"] == client.stats()["RetransSegs"]  # a loss probe may have gone out
        transport.close()
        await server_protocol.eof
        assert transport.get_extra_info("tcp_info")["tcpi_state"] in (4, 5)  # FIN_WAIT1/FIN_WAIT2
        server_transport.close()

    run(with_pair(body))


@pytest.mark.parametrize(("host", "advmss"), [(SERVER, 1448), (SERVER6, 1428)])
def test_established_tcp_info_pmtu_and_advmss_are_linuxs_in_either_family(run, host, advmss):
    """As Linux 6.18 reports them over a 1500-byte link: tcpi_pmtu is the MTU the segments are fitted to
    (icsk_pmtu_cookie; it was the MSS plus IPv4's 40 bytes, 1480 over IPv6), tcpi_advmss the MSS offered
    less the 12 bytes of timestamps (tp->advmss; it was 1460)."""

    async def body(client: Stack, server: Stack) -> None:
        await server.start_server(lambda reader, writer: None, port=7)
        _, writer = await client.open_connection(host, 7)
        info = writer.get_extra_info("tcp_info")
        assert (info["tcpi_pmtu"], info["tcpi_advmss"]) == (1500, advmss)
        writer.transport.abort()

    run(with_dual_stack_pair(body))


def test_established_write_buffer_limits_drive_pause_and_resume_writing(run):
    """asyncio's flow-control contract: pause_writing above high, resume_writing at or below low."""

    async def body(client: Stack, server: Stack) -> None:
        accepted = await _accepted(server, 7)
        transport, protocol = await client.create_connection(Recorder, SERVER, 7)
        server_transport, server_protocol = await accepted
        server_transport.pause_reading()  # the receiver stops: its window closes, our buffer grows
        assert not server_transport.is_reading()
        transport.set_write_buffer_limits(high=4096)
        assert transport.get_write_buffer_limits() == (1024, 4096)
        transport.write(b"y" * 3_000_000)
        assert transport.get_write_buffer_size() > 4096
        assert protocol.calls == ["made", "pause_writing"]
        server_transport.resume_reading()
        while "resume_writing" not in protocol.calls:
            await asyncio.sleep(0.005)
        assert transport.get_write_buffer_size() <= 1024
        with pytest.raises(ValueError):
            transport.set_write_buffer_limits(high=10, low=20)
        transport.abort()

    run(with_pair(body))


def test_established_set_protocol_routes_data_to_the_new_protocol(run):
    async def body(client: Stack, server: Stack) -> None:
        accepted = await _accepted(server, 7)
        transport, first = await client.create_connection(Recorder, SERVER, 7)
        server_transport, _ = await accepted
        second = Recorder()
        transport.set_protocol(second)
        assert transport.get_protocol() is second
        server_transport.write(b"to the second")
        server_transport.write_eof()
        await second.eof
        assert bytes(second.data) == b"to the second" and not first.data
        transport.abort()

    run(with_pair(body))


def test_established_set_protocol_none_raises_type_error_and_keeps_the_protocol(run):
    """uvloop refuses a missing protocol at once; taken, it failed the connection at its next event."""

    async def body(client: Stack, server: Stack) -> None:
        await _accepted(server, 7)
        transport, protocol = await client.create_connection(Recorder, SERVER, 7)
        with pytest.raises(TypeError, match="protocol is required"):
            transport.set_protocol(None)
        assert transport.get_protocol() is protocol
        transport.abort()
        assert await protocol.lost is None
        assert client.stats()["InternalErrors"] == 0

    run(with_pair(body))


class Buffered(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.buf = bytearray(1000)  # smaller than what arrives: several get_buffer rounds
        self.data = bytearray()
        self.done = asyncio.get_running_loop().create_future()

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.data += self.buf[:nbytes]

    def eof_received(self) -> None:
        self.done.set_result(None)


def test_established_buffered_protocol_receives_through_get_buffer(run):
    async def body(client: Stack, server: Stack) -> None:
        accepted = await _accepted(server, 7)
        transport, protocol = await client.create_connection(Buffered, SERVER, 7)
        server_transport, _ = await accepted
        data = bytes(range(256)) * 100
        server_transport.write(data)
        server_transport.write_eof()
        await protocol.done
        assert bytes(protocol.data) == data

    run(with_pair(body))


class BadBuffer(Buffered):
    """get_buffer offers what cannot be filled: nothing, read-only bytes, or not a buffer at all."""

    def __init__(self, offer: object) -> None:
        super().__init__()
        self.offer = offer
        self.lost = asyncio.get_running_loop().create_future()

    def get_buffer(self, sizehint: int):
        return self.offer

    def connection_lost(self, exc) -> None:
        self.lost.set_result(exc)


@pytest.mark.timeout(60)  # the failure this guards against blocks the loop, so the test's own deadline cannot fire
@pytest.mark.parametrize("offer", [bytearray(0), b"read-only", None], ids=["empty", "read-only", "none"])
def test_established_buffered_protocol_unusable_buffer_aborts_the_connection(run, offer):
    """asyncio's transports: an empty or read-only get_buffer() is the protocol's fatal error, which ends the
    connection; delivery went round without end, blocking the loop, or counted an internal error."""

    async def body(client: Stack, server: Stack) -> None:
        accepted = await _accepted(server, 7)
        transport, protocol = await client.create_connection(lambda: BadBuffer(offer), SERVER, 7)
        server_transport, server_protocol = await accepted
        server_transport.write(b"data")
        await protocol.lost
        assert transport.is_closing() and not protocol.data and not protocol.done.done()
        assert isinstance(await server_protocol.lost, ConnectionResetError)  # aborted: the peer gets a RST
        assert client.stats()["InternalErrors"] == 0

    run(with_pair(body))


def test_established_write_eof_half_closes_and_abort_resets(run):
    """RFC 9293 §3.10.4 CLOSE as shutdown(SHUT_WR): the peer sees EOF and may still send; ABORT: RST."""

    async def body(client: Stack, server: Stack) -> None:
        accepted = await _accepted(server, 7)
        transport, protocol = await client.create_connection(Recorder, SERVER, 7)
        server_transport, server_protocol = await accepted
        assert transport.can_write_eof()
        transport.write_eof()
        await server_protocol.eof
        server_transport.write(b"after your FIN")
        while bytes(protocol.data) != b"after your FIN":
            await asyncio.sleep(0.001)
        server_transport.abort()
        assert server_transport.is_closing()
        assert isinstance(await protocol.lost, ConnectionResetError)

    run(with_pair(body))


def test_established_write_after_write_eof_or_close_raises_naming_the_call(run):
    """Nothing may follow our FIN: write() then raises RuntimeError, as uvloop's transports do, and names
    which call sent the FIN."""

    async def body(client: Stack, server: Stack) -> None:
        await _accepted(server, 7)
        half, _ = await client.create_connection(Recorder, SERVER, 7)
        half.write_eof()
        with pytest.raises(RuntimeError, match=r"after write_eof\(\)"):
            half.write(b"x")
        closed, _ = await client.create_connection(Recorder, SERVER, 7)
        closed.close()
        with pytest.raises(RuntimeError, match=r"after close\(\)"):
            closed.write(b"x")

    run(with_pair(body))


class Keeper(Recorder):
    """Keeps its transport, as most protocols do."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.transport = transport

    def eof_received(self) -> bool:
        super().eof_received()
        return False  # close our side too


def test_closed_transport_set_congestion_control_raises_ebadf_as_a_closed_socket(run):
    """setsockopt(TCP_CONGESTION) on a kernel socket that asyncio closed after connection_lost fails with
    EBADF; so does the transport's call once its connection is lost (here in TIME_WAIT, the side that
    closed first), where the connection keeps no controller."""

    async def body(client: Stack, server: Stack) -> None:
        await _accepted(server, 7, factory=Keeper)
        transport, protocol = await client.create_connection(Recorder, SERVER, 7)
        transport.set_congestion_control("reno")  # open: it works
        transport.close()
        await protocol.lost
        with pytest.raises(OSError) as raised:
            transport.set_congestion_control("cubic")
        assert raised.value.errno == errno.EBADF

    run(with_pair(body))


def test_time_wait_transport_closed_set_congestion_control_raises_ebadf_at_once(run):
    """close() in TIME_WAIT (we sent our FIN by write_eof, the peer closed too) lets the connection's
    controller go at once, before connection_lost comes: TCP_CONGESTION then fails with EBADF too."""

    async def body(client: Stack, server: Stack) -> None:
        await _accepted(server, 7, factory=Keeper)
        transport, protocol = await client.create_connection(Recorder, SERVER, 7)
        transport.write_eof()
        await protocol.eof  # the server's FIN: TIME_WAIT once our FIN is acknowledged
        while transport.get_extra_info("tcp_info")["tcpi_state"] != TCP_TIME_WAIT:
            await asyncio.sleep(0.001)
        transport.close()
        with pytest.raises(OSError) as raised:
            transport.set_congestion_control("cubic")
        assert raised.value.errno == errno.EBADF

    run(with_pair(body))


def test_closed_transport_lets_go_of_its_protocol_and_leaves_no_cycle(run):
    """After connection_lost the transport lets go of its protocol, as asyncio's own transports do: a
    protocol that keeps its transport is freed by reference counting alone, with the collector off, once
    its connection closed (the server's side here: it closes second, LAST_ACK -> CLOSED), and a late call
    on the transport reaches no protocol."""

    async def body(client: Stack, server: Stack) -> None:
        served: list[weakref.ref] = []
        lost: list[asyncio.Future] = []

        def factory() -> Keeper:
            protocol = Keeper()
            served.append(weakref.ref(protocol))
            lost.append(protocol.lost)
            return protocol

        await server.create_server(factory, port=7)
        transport, protocol = await client.create_connection(Keeper, SERVER, 7)
        transport.write_eof()
        await protocol.lost
        await lost[0]
        assert transport.get_protocol() is not protocol
        transport.set_write_buffer_limits(high=0)  # nobody to pause: nothing happens
        assert protocol.calls == ["made", "lost"]
        for _ in range(100):  # the stack's own references go within a few loop iterations
            if served[0]() is None:
                break
            await asyncio.sleep(0.001)
        assert served[0]() is None

    gc.collect()
    gc.disable()
    try:
        run(with_pair(body))
    finally:
        gc.enable()


def test_established_write_hands_the_core_the_applications_bytes_without_a_copy(run, monkeypatch):
    """write() -> device copies each payload byte twice, into the core's send buffer and into the packet:
    the transport hands SEND the bytes the application wrote, or views of them for what the send buffer
    had no room for yet, never a copy of its own; a mutable buffer is still copied when it has to wait
    (its owner may reuse it once write() returns), as asyncio's transports do."""
    handed: list[object] = []
    send = Connection.send

    def spying(self: Connection, data, now: float, *args, **kwargs) -> int:
        handed.append(data)
        return send(self, data, now, *args, **kwargs)

    monkeypatch.setattr(Connection, "send", spying)

    async def body(client: Stack, server: Stack) -> None:
        accepted = await _accepted(server, 7)
        transport, _ = await client.create_connection(Recorder, SERVER, 7)
        _, server_protocol = await accepted
        small, large = os.urandom(1000), os.urandom(3_000_000)  # more than the send buffer takes at once
        mutable = bytearray(os.urandom(500_000))
        expected = small + large + bytes(mutable)
        transport.write(small)
        transport.write(large)
        transport.write(mutable)
        mutable[:] = bytes(len(mutable))  # reused by its owner: what was written stays as it was
        while len(server_protocol.data) < len(expected):
            await asyncio.sleep(0.005)
        assert server_protocol.data == expected
        assert handed[0] is small and handed[1] is large
        of_large = [d for d in handed if type(d) is memoryview and d.obj is large]
        copies = [d for d in handed[2 + len(of_large) :]]
        assert of_large and handed[2 : 2 + len(of_large)] == of_large  # the rest of `large`: views of it
        kept = copies[0]
        assert type(kept) is bytes and kept == expected[-len(kept) :]  # `mutable` had to wait: one copy
        assert all(type(d) is memoryview and d.obj is kept for d in copies[1:])
        transport.abort()

    run(with_pair(body))


def test_established_ecn_connection_reads_ip_tos_back_without_the_ecn_field(run):
    """Linux 6.18 reads IP_TOS back as set: ECT(0), which TCP puts on its segments once ECN is on, is
    not in it."""

    async def body() -> None:
        a, b = SocketPairDevice.pair()
        client = Stack(a, CLIENT, config=TcpConfig(ecn=True))
        server = Stack(b, SERVER, config=TcpConfig(ecn=True))
        try:
            await _accepted(server, 7)
            transport, _ = await client.create_connection(Recorder, SERVER, 7)
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x28)
            assert transport.get_extra_info("tcp_info")["tcpi_options"] & TCPI_OPT_ECN
            assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0x28
            transport.abort()
        finally:
            await client.close()
            await server.close()

    run(body())


def test_listening_socket_fast_open_queue_reaches_its_listener_and_not_a_connection(run):
    """TCP_FASTOPEN on server.sockets[0] gives the listener its fast open queue (read back, at most
    somaxconn), before or after it listens; on a connection, or negative, it is EINVAL, as Linux's
    do_tcp_setsockopt; TCP_FASTOPEN_NO_COOKIE takes 0 or 1."""
    fast_open, no_cookie = socket.TCP_FASTOPEN, getattr(socket, "TCP_FASTOPEN_NO_COOKIE", 34)

    async def body(client: Stack, server: Stack) -> None:
        accepted: asyncio.Future = asyncio.get_running_loop().create_future()
        srv = await server.start_server(lambda reader, writer: accepted.set_result(writer), SERVER, 7)
        listening = srv.sockets[0]
        assert listening.getsockopt(socket.IPPROTO_TCP, fast_open) == 0
        listening.setsockopt(socket.IPPROTO_TCP, fast_open, 100_000)
        assert listening.getsockopt(socket.IPPROTO_TCP, fast_open) == srv.listener.fast_open_queue == 4096
        listening.setsockopt(socket.IPPROTO_TCP, fast_open, 0)  # while listening, 0 turns it off (Linux)
        assert listening.getsockopt(socket.IPPROTO_TCP, fast_open) == srv.listener.fast_open_queue == 0
        listening.setsockopt(socket.IPPROTO_TCP, fast_open, 100_000)
        listening.setsockopt(socket.IPPROTO_TCP, no_cookie, 1)
        assert srv.listener.fast_open_no_cookie and listening.getsockopt(socket.IPPROTO_TCP, no_cookie) == 1
        for option, value in ((fast_open, -1), (no_cookie, 2)):
            with pytest.raises(OSError) as refused:
                listening.setsockopt(socket.IPPROTO_TCP, option, value)
            assert refused.value.errno == errno.EINVAL
        _, writer = await client.open_connection(SERVER, 7)
        sock = (await accepted).get_extra_info("socket")
        with pytest.raises(OSError) as refused:
            sock.setsockopt(socket.IPPROTO_TCP, fast_open, 5)
        assert refused.value.errno == errno.EINVAL
        writer.transport.abort()

    run(with_pair(body))
