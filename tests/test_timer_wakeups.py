"""The stack's one loop timer: deadlines rounded up to the loop's resolution, no wake-up that finds nothing due."""

from __future__ import annotations

import asyncio
import select
import time
from dataclasses import replace

import uvloop

from stack.aio.clock import TimerResolution
from stack.aio.stack import Stack
from stack.aio.tun import SocketPairDevice
from stack.tcp.config import TcpConfig
from stack.tcp.congestion.reno import Reno
from stack.tcp.state import State

PACED_RATE = 4_000_000  # bytes a second: a 1460-byte segment every 0.37 ms, under uvloop's 1 ms tick


class FixedRate(Reno):
    """Reno's window, paced at a fixed rate whatever the RTT: the sender must wait between segments."""

    def __init__(self, mss: int, initial_window_segments: int = 10) -> None:
        super().__init__(mss, initial_window_segments)
        self.pacing_rate = float(PACED_RATE)


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


def test_uvloop_timer_kept_for_a_later_deadline_finds_it_due_when_it_fires():
    """uvloop counts a timer's delay from the start of the millisecond its clock is in, so a timer may fire
    up to a tick before the deadline it was armed for: the stack keeps an armed timer for a deadline that
    moved later (an ACK restarting a timer) only while that deadline is within the tick that counts as due
    when uvloop fires it (its `when()`), at any phase of the millisecond it was armed in."""

    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        res = TimerResolution.of(loop)
        kept = kept_later = 0
        for i in range(200):
            phase_until = time.monotonic() + (i % 9) * 0.00011  # arm at another point of the millisecond
            while time.monotonic() < phase_until:
                pass
            now = time.monotonic()
            armed_for = now + (i % 10 + 0.5) * res.tick / 4
            delay = res.delay(armed_for - now)
            handle = loop.call_later(delay, lambda: None)
            fires, scheduled = res.earliest_fire(now, delay), handle.when()
            handle.cancel()
            for later in (0.0, 0.25, 0.5, 0.75, 1.0):
                deadline = armed_for + later * res.tick
                if res.keeps(armed_for, fires, deadline):
                    kept += 1
                    kept_later += later > 0
                    assert deadline <= scheduled + res.tick + 1e-9, (i, later, deadline - scheduled)
        return kept, kept_later

    kept, kept_later = uvloop.run(main())
    assert kept >= 200 and kept_later > 0  # the same deadline always, and some that moved later


def test_asyncio_loop_resolution_is_the_monotonic_clock():
    async def main() -> TimerResolution:
        return TimerResolution.of(asyncio.get_running_loop())

    res = asyncio.run(main())
    assert res.tick == time.get_clock_info("monotonic").resolution
    assert abs(res.delay(0.0003) - 0.0003) < 1e-8


async def bulk_transfer(congestion: str, size: int) -> tuple[dict, dict, float]:
    """Send `size` bytes from one stack to another over a socketpair: both stacks' counters and the time."""
    da, db = SocketPairDevice.pair()
    config = replace(TcpConfig(), congestion=congestion)
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
        writer.write(b"x" * size)
        writer.write_eof()
        assert await done == size
        elapsed = time.monotonic() - start
        return client.stats(), server.stats(), elapsed
    finally:
        await client.close()
        await server.close()


def test_established_paced_bulk_transfer_never_wakes_for_nothing():
    """A BBR sender paces at the rate its model sets (RFC 9293 leaves timers to the implementation): any
    timer wake-up finds something due, and the paced transfer still runs at full speed. Over a socketpair
    the RTT may be so small that BBR never waits: the fixed-rate test below is the one that must wait."""
    sender, receiver, elapsed = uvloop.run(asyncio.wait_for(bulk_transfer("bbr", 4_000_000), 60))
    assert sender["TimerWakeupsEmpty"] == 0
    assert receiver["TimerWakeupsEmpty"] == 0
    assert elapsed < 20, f"4 MB paced transfer took {elapsed:.1f} s"


def test_established_fixed_rate_pacing_wakes_only_when_a_segment_is_due():
    """A sender paced at a rate it must wait for sleeps on the loop timer between segments: the timer
    fires, every wake-up finds a segment due, and the transfer takes about as long as the rate says."""
    size = 1_000_000
    congestion = f"{__name__}:FixedRate"
    sender, receiver, elapsed = uvloop.run(asyncio.wait_for(bulk_transfer(congestion, size), 60))
    assert sender["TimerWakeups"] > 0
    assert sender["TimerWakeupsEmpty"] == 0
    assert receiver["TimerWakeupsEmpty"] == 0
    # each gap may shrink by up to half for time the flow lost (Linux tcp_wstamp_ns): half the time at least
    assert elapsed > 0.5 * size / PACED_RATE, f"{size} bytes at {PACED_RATE} B/s took only {elapsed:.3f} s"


async def until(condition, poll: float = 0.001) -> None:
    while not condition():
        await asyncio.sleep(poll)


def test_established_timer_firing_with_the_ack_queued_reads_it_first_and_resends_nothing():
    """libuv runs due timers before it polls for I/O, so under load a connection's timer may fire while the
    ACK of all it sent waits in the device's queue: the stack reads that ACK first, and neither probes nor
    retransmits data the peer has (RFC 8985 §7.2 and RFC 6298 (5.2): all acknowledged stops both timers).
    The client's reader is taken off the loop to hold the ACK in its queue until the timer fires."""
    slow = replace(TcpConfig(), min_rto=0.5)  # a lone segment's probe waits min_rto: the ACK comes long before

    async def main() -> tuple[dict, int, int]:
        loop = asyncio.get_running_loop()
        da, db = SocketPairDevice.pair()
        client, server = Stack(da, "10.0.0.1", config=slow), Stack(db, "10.0.0.2")
        try:

            async def echo(reader, writer) -> None:
                while data := await reader.read(100):
                    writer.write(data)

            await server.start_server(echo, port=7)
            reader, writer = await client.open_connection("10.0.0.2", 7)
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
            (conn,) = client.demux.connections.values()
            await until(lambda: conn.next_deadline() is None)  # its delayed ACK gone: no timer before the probe's
            loop.remove_reader(da.fileno())
            wakeups = client.stats()["TimerWakeups"]
            writer.write(b"lone segment")
            await until(lambda: bool(select.select([da.fileno()], [], [], 0)[0]))  # the server's ACK, queued
            assert client.stats()["TimerWakeups"] == wakeups and conn.state is State.ESTABLISHED
            await until(lambda: client.stats()["TimerWakeups"] > wakeups)
            return client.stats(), conn.tcb.snd_una, conn.tcb.snd_nxt
        finally:
            await client.close()
            await server.close()

    stats, snd_una, snd_nxt = uvloop.run(asyncio.wait_for(main(), 30))
    assert stats["TCPLossProbes"] == 0
    assert stats["RetransSegs"] == 0
    assert snd_una == snd_nxt
