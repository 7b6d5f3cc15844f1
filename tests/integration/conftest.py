"""Integration fixtures: each test gets its own network namespace with `tcpstack serve` in it.

The kernel's own TCP (curl, nc, ping, Python sockets) is the peer. Everything stays inside the
namespace, which is removed afterwards, also on failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from stack import control
from stack.netns import NetNs
from stack.netns import start_serve as netns_start_serve

ADDR = "10.7.0.2"
PEER = "10.7.0.1/24"


def _can_run() -> str | None:
    if os.geteuid() != 0:
        return "integration tests need root"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    for tool in ("ip", "curl", "nc", "ping"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (tools/setup installs it)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _can_run()
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def netns():
    ns = NetNs("tcpstack-test")
    try:
        yield ns
    finally:
        ns.close()


class Served:
    """A running `tcpstack serve` in a namespace."""

    def __init__(self, ns: NetNs, proc: subprocess.Popen, control_path: str, log_path: str) -> None:
        self.ns = ns
        self.proc = proc
        self.control = control_path
        self.log_path = log_path
        self.url = f"http://{ADDR}"

    def netstat(self) -> list[dict]:
        return control.request(self.control, "netstat")

    def stats(self) -> dict:
        return control.request(self.control, "stats")

    def log(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(timeout=15)


def start_serve(ns: NetNs, tmp_path, *extra: str, stdout: int | None = None) -> Served:
    control_path = str(tmp_path / "control.sock")
    log_path = str(tmp_path / "serve.log")
    proc = netns_start_serve(ns, control_path, log_path, *extra, addr=ADDR, peer=PEER, stdout=stdout)
    return Served(ns, proc, control_path, log_path)


@pytest.fixture
def served(netns, tmp_path):
    return start_serve(netns, tmp_path)
