"""Two Stacks joined by a SOCK_SEQPACKET pair on one uvloop loop: the asyncio API end to end, no TUN."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket

import pytest
import uvloop

from stack.aio.fault import FaultSpec, FaultyDevice
from stack.aio.stack import Stack
from stack.aio.tun import SocketPairDevice
from stack.services import SERVICES


def run(coro, timeout: float = 120):
    return uvloop.run(asyncio.wait_for(coro, timeout))


async def _pair(fault: str | None = None, offload: bool = False) -> tuple[Stack, Stack]:
    da, db = SocketPairDevice.pair(offload=offload)
    if fault:
        da = FaultyDevice(da, FaultSpec.parse(fault), asyncio.get_running_loop())
    return Stack(da, "10.0.0.1"), Stack(db, "10.0.0.2")


async def _echo_roundtrip(size: int, fault: str | None = None, offload: bool = False) -> tuple[dict, dict]:
    client, server = await _pair(fault, offload)
    try:
        await server.start_server(SERVICES["echo"], port=7)
        reader, writer = await client.open_connection("10.0.0.2", 7)
        data = os.urandom(size)

        async def upload() -> None:
            writer.write(data)
            await writer.drain()
            writer.write_eof()

        up = asyncio.create_task(upload())
        got = await reader.read(-1)  # until the server's FIN
        await up
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        writer.close()
        # both directions are closed: connection_lost comes now, not after TIME_WAIT's 2*MSL
        await asyncio.wait_for(writer.wait_closed(), 5)
        return client.stats(), server.stats()
    finally:
        await client.close()
        await server.close()


def test_loopback_echo_1mb_roundtrip():
    run(_echo_roundtrip(1_000_000))


def test_loopback_echo_1mb_with_offloads_moves_super_segments_both_ways():
    """With TUN offloads each side sends runs of full segments as one super-segment and takes the
    other's as the run of segments it holds (delayed ACKs count them all, RFC 9293 §3.8.6.3)."""
    client, server = run(_echo_roundtrip(1_000_000, offload=True))
    for stats in (client, server):
        assert stats["OutMergedSegs"] > 300
        assert stats["InSuperSegs"] > 10
    assert server["InSegsConn"] < 200  # far fewer than the ~700 segments the data takes at MSS


def test_loopback_echo_under_5_percent_loss():
    run(_echo_roundtrip(300_000, "loss=5%,seed=11"), timeout=240)


def test_loopback_echo_under_reorder_duplication_and_delay():
    run(_echo_roundtrip(300_000, "reorder=10%,dup=2%,delay=2ms,seed=5"), timeout=240)


def test_loopback_connect_to_closed_port_is_refused():
    async def main() -> None:
        client, server = await _pair()
        try:
            with pytest.raises(ConnectionRefusedError):
                await client.open_connection("10.0.0.2", 4444)
        finally:
            await client.close()
            await server.close()

    run(main())


def test_loopback_peer_abort_raises_connection_reset():
    async def main() -> None:
        client, server = await _pair()
        accepted: asyncio.Future = asyncio.get_running_loop().create_future()

        async def handler(reader, writer) -> None:
            accepted.set_result(writer)

        try:
            await server.start_server(handler, port=5000)
            reader, writer = await client.open_connection("10.0.0.2", 5000)
            (await accepted).transport.abort()
            with pytest.raises(ConnectionResetError):
                await reader.read(100)
        finally:
            await client.close()
            await server.close()

    run(main())


def test_loopback_reader_that_never_reads_pauses_the_writer():
    """Read back-pressure closes the window; write flow control then pauses the sender's protocol."""

    async def main() -> None:
        client, server = await _pair()
        accepted: asyncio.Future = asyncio.get_running_loop().create_future()

        async def handler(reader, writer) -> None:
            writer.transport.pause_reading()
            accepted.set_result((reader, writer))
            await asyncio.sleep(3600)

        try:
            await server.start_server(handler, port=5001)
            _, writer = await client.open_connection("10.0.0.2", 5001)
            await accepted
            chunk = b"z" * 65536
            for _ in range(100):  # 6.5 MB: more than the peer's window and our send buffer together
                writer.write(chunk)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(writer.drain(), 1.0)  # stays paused: nobody reads
            (row,) = [r for r in server.snapshot() if r["local"].endswith(":5001") and r["state"] == "ESTABLISHED"]
            assert row["recv_q"] >= server.config.receive_buffer - 2 * server.config.mss
        finally:
            await client.close()
            await server.close()

    run(main())


def test_loopback_half_close_keeps_the_other_direction_open():
    async def main() -> None:
        client, server = await _pair()

        async def handler(reader, writer) -> None:
            data = await reader.read(-1)  # until the client's FIN
            writer.write(b"got " + str(len(data)).encode())
            await writer.drain()
            writer.close()

        try:
            await server.start_server(handler, port=5002)
            reader, writer = await client.open_connection("10.0.0.2", 5002)
            writer.write(b"x" * 10_000)
            writer.write_eof()
            assert await reader.read(-1) == b"got 10000"
        finally:
            await client.close()
            await server.close()

    run(main())


def test_loopback_writer_whose_whole_buffer_one_ack_frees_goes_on():
    """A writer waiting for room whose whole send buffer (SO_SNDBUF 6000: 12000 bytes) leaves as one
    super-segment, which one ACK acknowledges: the writer's wake-up comes from the send attempt that ACK
    makes (Linux tcp_data_snd_check), with nothing in flight to bring another segment, and reaches it at
    once."""

    async def main() -> int:
        client, server = await _pair(offload=True)
        try:

            async def count(reader, writer) -> None:
                writer.write(str(len(await reader.read())).encode())
                writer.close()

            await server.start_server(count, port=9)
            reader, writer = await client.open_connection("10.0.0.2", 9)
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 6000)
            writer.write(bytes(300_000))
            writer.write_eof()
            return int(await asyncio.wait_for(reader.read(), 10))
        finally:
            await client.close()
            await server.close()

    assert run(main()) == 300_000
