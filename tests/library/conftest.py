"""The library API on both event loops: every test here runs on asyncio's default loop and on uvloop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path

import pytest
import uvloop

from stack.aio.stack import Stack
from stack.aio.tun import SocketPairDevice
from tests.tlscert import make_certificate

CLIENT, SERVER = "10.0.0.1", "10.0.0.2"
CLIENT6, SERVER6 = "fd00::1", "fd00::2"


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request) -> Callable[[Coroutine], object]:
    """Runs a coroutine to completion on the loop the test is parametrized with, with a deadline."""
    runner = asyncio.run if request.param == "asyncio" else uvloop.run

    def _run(coro: Coroutine, timeout: float = 60):
        return runner(asyncio.wait_for(coro, timeout))

    _run.loop_name = request.param  # type: ignore[attr-defined]
    return _run


async def stack_pair() -> tuple[Stack, Stack]:
    """Two stacks joined by a SOCK_SEQPACKET pair: the client at 10.0.0.1, the server at 10.0.0.2."""
    a, b = SocketPairDevice.pair()
    return Stack(a, CLIENT), Stack(b, SERVER)


async def with_pair(body: Callable[[Stack, Stack], Coroutine]) -> None:
    """Runs body(client, server) on a fresh pair of stacks and closes them, also on failure."""
    client, server = await stack_pair()
    try:
        await body(client, server)
    finally:
        await client.close()
        await server.close()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for the server stack's addresses."""
    return make_certificate(tmp_path_factory.mktemp("tls"), [SERVER, SERVER6])


async def with_dual_stack_pair(body: Callable[[Stack, Stack], Coroutine]) -> None:
    """As with_pair, the stacks holding an IPv6 address beside the IPv4 one."""
    a, b = SocketPairDevice.pair()
    client, server = Stack(a, [CLIENT, CLIENT6]), Stack(b, [SERVER, SERVER6])
    try:
        await body(client, server)
    finally:
        await client.close()
        await server.close()
