"""The limits end to end without TUN: serve's flags reach the config, the README documents each one,
`stats` shows every bound's counters, the control socket turns away clients beyond its bound, and a
Stack flooded with spoofed SYNs still completes a real client's handshake through SYN cookies."""

from __future__ import annotations

import asyncio
import json
import random
import re
from dataclasses import replace
from pathlib import Path

import pytest
import uvloop

from stack import limits
from stack.aio.stack import Stack
from stack.aio.tun import SocketPairDevice
from stack.cli import build_parser
from stack.control import MAX_REQUEST, serve_control
from stack.services import SERVICES
from stack.tcp.config import TcpConfig
from stack.wire.codec import encode_tcp
from stack.wire.segment import Flags, Segment, TcpOptions

ROOT = Path(__file__).resolve().parents[1]
SERVE = ["serve", "--tun", "tun9", "--addr", "10.9.0.2", "--peer", "10.9.0.1/24"]


def run(coro, timeout: float = 60):
    return uvloop.run(asyncio.wait_for(coro, timeout))


# ---------------------------------------------------------------- flags and documentation


def test_serve_limit_flags_set_the_config():
    args = build_parser().parse_args([*SERVE, "--syncookies", "2", "--max-time-wait", "5", "--ofo-max-holes", "8"])
    config = limits.apply(TcpConfig(), args)
    assert (config.syncookies, config.max_time_wait, config.ofo_max_holes) == (2, 5, 8)
    assert config.max_connections == TcpConfig().max_connections  # not given: the default


@pytest.mark.parametrize("flag", ["--syncookies=3", "--max-connections=0", "--ofo-max-bytes=x"])
def test_serve_limit_flag_out_of_range_exits_2_with_one_line(flag, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*SERVE, flag])
    assert info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_readme_limits_table_lists_every_flag_with_its_default():
    """The README's Limits table must not drift from stack/limits.py."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Limits\n", 1)[1].split("\n## ", 1)[0]
    rows = {m[0]: m[1] for m in re.findall(r"^\| `(--[a-z-]+)` \| ([0-9]+) \|", section, re.MULTILINE)}
    assert rows == {limit.flag: str(limits.default(limit)) for limit in limits.LIMITS}


def test_stats_show_every_bounds_counter_even_at_zero():
    async def main() -> dict[str, int]:
        a, b = SocketPairDevice.pair()
        stack = Stack(a, "10.0.0.1")
        try:
            return stack.stats()
        finally:
            await stack.close()
            b.close()

    stats = run(main())
    assert all(stats[name] == 0 for name in limits.COUNTERS)
    assert stats["CurrConnections"] == stats["CurrTimeWait"] == 0


# ---------------------------------------------------------------- the control socket


async def _request(path: str, payload: bytes) -> dict:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(payload)
    await writer.drain()
    writer.write_eof()
    reply = json.loads(await reader.read())
    writer.close()
    return reply


def test_control_clients_beyond_bound_are_refused_and_counted(tmp_path):
    async def main() -> None:
        a, b = SocketPairDevice.pair()
        stack = Stack(a, "10.0.0.1")
        path = str(tmp_path / "c.sock")
        server = await serve_control(path, stack, max_clients=1)
        try:
            _, idle = await asyncio.open_unix_connection(path)  # holds the only slot, sends nothing
            await asyncio.sleep(0)
            refused = await _request(path, b'{"cmd": "stats"}\n')
            assert refused == {"error": "too many control clients"}
            assert stack.counters["ControlClientsRefused"] == 1
            idle.close()
            for _ in range(200):  # the server notices the close
                reply = await _request(path, b'{"cmd": "stats"}\n')
                if "result" in reply:
                    break
                await asyncio.sleep(0.01)
            assert reply["result"]["ControlClientsRefused"] == stack.counters["ControlClientsRefused"] >= 1
        finally:
            server.close()
            await stack.close()
            b.close()

    run(main())


def _reply_to(tmp_path, payload: bytes) -> dict:
    """The control socket's reply to one request, from a stack made for it."""

    async def main() -> dict:
        a, b = SocketPairDevice.pair()
        stack = Stack(a, "10.0.0.1")
        path = str(tmp_path / "c.sock")
        server = await serve_control(path, stack)
        try:
            return await _request(path, payload)
        finally:
            server.close()
            await stack.close()
            b.close()

    return run(main())


def test_control_request_longer_than_bound_gets_an_error(tmp_path):
    assert "longer than" in _reply_to(tmp_path, b"x" * (MAX_REQUEST * 4) + b"\n")["error"]


def test_control_request_nested_deeper_than_json_decodes_gets_an_error(tmp_path):
    """4,000 nested arrays fit in a request line and exhaust the JSON decoder's recursion: an error
    reply, not an exception in the control server."""
    assert _reply_to(tmp_path, b"[" * 4000 + b"\n") == {"error": "bad request: expected a JSON object with 'cmd'"}


# ---------------------------------------------------------------- a SYN flood over a socketpair


def test_stack_flooded_with_spoofed_syns_still_serves_a_client_through_cookies():
    """RFC 4987 §3.6: spoofed SYNs fill the SYN queue; a real client's SYN is then answered with a cookie
    and its ACK builds the connection, which serves echo like any other."""

    async def main() -> dict[str, int]:
        da, db = SocketPairDevice.pair()
        server = Stack(da, "10.0.0.2", config=replace(TcpConfig(), syn_backlog=8))
        client = Stack(db, "10.0.0.1")
        try:
            await server.start_server(SERVICES["echo"], port=7)
            rng = random.Random(7)
            spoofed = [
                encode_tcp(
                    0xC6120000 | rng.getrandbits(17),  # 198.18.0.0/15 (RFC 2544): the SYN,ACKs go nowhere
                    server.addr,
                    Segment(
                        rng.randrange(1024, 65536), 7, rng.getrandbits(32), 0, Flags.SYN, 64240, b"", TcpOptions(1460)
                    ),
                )
                for _ in range(500)
            ]
            for i in range(0, len(spoofed), 50):
                db.write_batch(spoofed[i : i + 50])  # the client's end of the wire carries them to the server
                await asyncio.sleep(0.005)
            listener = server.demux.listeners[7]
            for _ in range(400):
                if server.stats()["SyncookiesSent"] > 0:
                    break
                await asyncio.sleep(0.01)
            assert len(listener.syn_queue) == 8
            reader, writer = await client.open_connection("10.0.0.2", 7)
            writer.write(b"still here\n")
            assert await reader.readline() == b"still here\n"
            writer.close()
            return server.stats()
        finally:
            await client.close()
            await server.close()

    stats = run(main())
    assert stats["SyncookiesSent"] >= 1 and stats["SyncookiesRecv"] == 1 and stats["SyncookiesFailed"] == 0
    assert stats["CurrConnections"] <= 8 + 1
