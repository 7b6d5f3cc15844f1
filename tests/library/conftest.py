"""The library API on both event loops: every test here runs on asyncio's default loop and on uvloop."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable, Coroutine
from pathlib import Path

import pytest
import uvloop

from stack.aio.stack import Stack
from stack.aio.tun import SocketPairDevice

CLIENT, SERVER = "10.0.0.1", "10.0.0.2"


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
    """A throwaway self-signed certificate for 10.0.0.2, 10.7.0.2 and 10.8.0.1, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (tools/setup installs it)")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=tcpstack test",
            "-addext", "subjectAltName=IP:10.0.0.2,IP:10.7.0.2,IP:10.8.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key
