"""The stack's one loop timer: deadlines rounded up to the loop's resolution, no wake-up that finds nothing due."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import uvloop

from stack.aio.clock import TimerResolution
from stack.aio.stack import Stack
from stack.aio.tun import SocketPairDevice
from stack.tcp.config import TcpConfig


def test_uvloop_sub_millisecond_delay_rounds_up_to_one_tick():
    """uvloop runs a call_later under 0.5 ms as call_soon: such a deadline must wait a whole millisecond."""

    async def main() -> TimerResolution:
        return TimerResolution.of(asyncio.get_running_loop())

    res = uvloop.run(main())
    assert res.tick == 0.001
    assert res.delay(0.0003) == 0.001
    assert res.delay(0.0021) == 0.003
    assert res.delay(0.002) == 0.002
    assert res.delay(0.0) == 0.0 and res.delay(-1.0) == 0.0


def test_asyncio_loop_resolution_is_the_monotonic_clock():
    async def main() -> TimerResolution:
        return TimerResolution.of(asyncio.get_running_loop())

    res = asyncio.run(main())
    assert res.tick == time.get_clock_info("monotonic").resolution
    assert abs(res.delay(0.0003) - 0.0003) < 1e-8


def test_established_paced_bulk_transfer_never_wakes_for_nothing():
    """A BBR sender paces at sub-millisecond gaps (RFC 9293 leaves timers to the implementation): every
    timer wake-up must find something due, and the paced transfer still runs at full speed."""

    async def main() -> tuple[dict, dict, float]:
        da, db = SocketPairDevice.pair()
        config = replace(TcpConfig(), congestion="bbr")
        client, server = Stack(da, "10.0.0.1", config=config), Stack(db, "10.0.0.2", config=config)
        try:
            done = asyncio.get_running_loop().create_future()

            async def sink(reader, writer) -> None:
                n = 0
                while chunk := await reader.read(65536):
                    n += len(chunk)
                done.set_result(n)
                writer.close()

            await server.start_server(sink, port=9)
            reader, writer = await client.open_connection("10.0.0.2", 9)
            start = time.monotonic()
            writer.write(b"x" * 4_000_000)
            writer.write_eof()
            assert await done == 4_000_000
            elapsed = time.monotonic() - start
            return client.stats(), server.stats(), elapsed
        finally:
            await client.close()
            await server.close()

    for _ in range(5):  # a loaded machine's slow loop may find each pacing deadline past at the next flush
        sender, receiver, elapsed = uvloop.run(asyncio.wait_for(main(), 60))
        assert sender["TimerWakeupsEmpty"] == 0
        assert receiver["TimerWakeupsEmpty"] == 0
        assert elapsed < 20, f"4 MB paced transfer took {elapsed:.1f} s"
        if sender["TimerWakeups"] > 0:
            break
    assert sender["TimerWakeups"] > 0  # the pacing timer did fire: the assertions above were not vacuous
