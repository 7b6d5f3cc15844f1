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
