"""A server that closes first keeps a TIME_WAIT connection per client for 2*MSL: once its application has let
go, that connection keeps only what answering needs, and netstat still shows it whole."""

from __future__ import annotations

import asyncio

import uvloop

from stack.aio.stack import Stack
from stack.aio.tun import SocketPairDevice
from stack.tcp.state import State


def test_server_closing_first_keeps_a_released_time_wait_connection_netstat_still_shows():
    async def main() -> tuple[list, list[dict]]:
        da, db = SocketPairDevice.pair()
        in_time_wait = asyncio.Event()

        def watch(line: str) -> None:  # one line per transition of the server's connections
            if "-> TIME_WAIT (" in line:
                in_time_wait.set()

        client, server = Stack(da, "10.0.0.1"), Stack(db, "10.0.0.2", trace=watch)
        try:

            async def answer_and_close(reader, writer) -> None:
                await reader.readexactly(5)
                writer.write(b"world")
                writer.close()

            await server.start_server(answer_and_close, port=80)
            reader, writer = await client.open_connection("10.0.0.2", 80)
            writer.write(b"hello")
            assert await reader.read() == b"world"
            writer.close()
            await in_time_wait.wait()
            conns = [c for c in server.demux.connections.values() if c.state is State.TIME_WAIT]
            return conns, server.snapshot()
        finally:
            await client.close()
            await server.close()

    conns, rows = uvloop.run(asyncio.wait_for(main(), 30))
    (conn,) = conns
    assert (conn.sender, conn.recovery, conn.cc, conn.chrono) == (None, None, None, None)
    (row,) = [r for r in rows if r["state"] == "TIME_WAIT"]
    assert row["send_q"] == 0 and row["info"]["cc"] == "cubic" and row["info"]["cwnd"] > 0


def test_time_wait_transport_abort_lets_go_and_the_connection_stays_for_2msl():
    """An application that aborts its transport once the connection is in TIME_WAIT (it closed first, then
    the peer did) only lets go: connection_lost follows, and the connection stays in TIME_WAIT to answer a
    retransmitted FIN, as Linux's timewait socket outlives the socket's close() with SO_LINGER 0
    (RFC 9293 §3.10.5 would delete the TCB)."""

    async def main() -> tuple[list[str], dict[str, int]]:
        da, db = SocketPairDevice.pair()
        in_time_wait = asyncio.Event()
        lost = asyncio.Event()

        def watch(line: str) -> None:
            if "-> TIME_WAIT (" in line:
                in_time_wait.set()

        client, server = Stack(da, "10.0.0.1"), Stack(db, "10.0.0.2", trace=watch)
        try:

            async def close_first_then_abort(reader, writer) -> None:
                writer.write_eof()
                assert await reader.read() == b""
                await in_time_wait.wait()
                writer.transport.abort()
                await writer.wait_closed()
                lost.set()

            await server.start_server(close_first_then_abort, port=80)
            reader, writer = await client.open_connection("10.0.0.2", 80)
            assert await reader.read() == b""
            writer.close()
            await lost.wait()
            return [r["state"] for r in server.snapshot() if r["state"] != "LISTEN"], server.stats()
        finally:
            await client.close()
            await server.close()

    states, stats = uvloop.run(asyncio.wait_for(main(), 30))
    assert states == ["TIME_WAIT"]
    assert stats.get("OutRstsConn", 0) == 0 and stats.get("OutRsts", 0) == 0
