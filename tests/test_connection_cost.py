"""What a connection costs the stack, counted rather than timed: the memory an idle one holds, the loop
wake-ups and system calls of a request/response round trip, and what is kept of connections that closed."""

from __future__ import annotations

import asyncio

from stack.services import SERVICES
from tests.test_loopback import _pair, run


def test_stack_closed_connections_keep_counters_and_rows():
    """Connections that closed leave their counters in `stats` and the last ones their netstat rows
    (LAST_ACK -> CLOSED on the side that closed second, RFC 9293 §3.10.7.4 eighth check)."""

    async def main() -> None:
        client, server = await _pair()
        try:
            await server.start_server(SERVICES["echo"], port=7)
            for _ in range(20):
                reader, writer = await client.open_connection("10.0.0.2", 7)
                writer.write(b"x" * 16)
                assert await reader.readexactly(16) == b"x" * 16
                writer.close()
                await writer.wait_closed()
            for _ in range(200):
                if len(server.demux.connections) == 0:
                    break
                await asyncio.sleep(0.01)
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
