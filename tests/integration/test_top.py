"""`tcpstack top` shows a real connection of a running stack, live; `q` quits (Textual's pilot, and tmux)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys

import pytest

from stack import control
from stack.netns import wait_for
from stack.top import make_app
from tests.integration.test_visible import NC_ARGS, _kernel_server


def _established_nc(netns, tmp_path) -> tuple[subprocess.Popen, str]:
    sock = str(tmp_path / "nc.sock")
    argv = [sys.executable, "-m", "stack.cli", "nc", *NC_ARGS, "--control", sock, "10.8.0.1", "5000"]
    nc = netns.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def established() -> bool:
        try:
            return any(r["state"] == "ESTABLISHED" for r in control.request(sock, "netstat"))
        except OSError:
            return False

    wait_for(established, 30, "nc to connect")
    nc.stdin.write(b"x" * 20000 + b"\n")
    nc.stdin.flush()
    assert nc.stdout.read(20001) == b"X" * 20000 + b"\n"
    return nc, sock


def test_top_renders_a_connection_with_its_state_and_counters(netns, tmp_path):
    server = _kernel_server(netns, tmp_path)
    nc, sock = _established_nc(netns, tmp_path)
    try:

        async def run() -> list[tuple]:
            app = make_app([sock], interval=0.2)
            async with app.run_test() as pilot:
                while app.refreshes < 2:
                    await pilot.pause(0.05)
                table = app.query_one("DataTable")
                rows = [table.get_row_at(i) for i in range(table.row_count)]
                counters = str(app.query_one("#counters").render())
                await pilot.press("q")
            assert not app.is_running
            return rows, counters

        rows, counters = asyncio.run(asyncio.wait_for(run(), 30))
        assert counters.startswith("nc  InSegs ") and "/s  OutSegs " in counters and "CurrEstab 1" in counters
        (row,) = [r for r in rows if r[3] == "ESTABLISHED"]
        assert row[2] == "10.8.0.1:5000" and row[4] == "off (0.00/0/0)" and row[7] == "cubic"
        assert int(row[8]) > 0 and float(row[10]) >= 0 and int(row[14]) > 10  # cwnd, srtt, segments out
    finally:
        for proc in (nc, server):
            proc.kill()
            proc.wait()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_top_runs_in_tmux_and_quits_on_q(netns, tmp_path):
    server = _kernel_server(netns, tmp_path)
    nc, sock = _established_nc(netns, tmp_path)
    tmux = ["tmux", "-L", f"tcpstack-test-{os.getpid()}"]  # a private tmux server, sized as asked
    # COLUMNS/LINES from the test run would override the pane's size
    top = f"env -u COLUMNS -u LINES {sys.executable} -m stack.cli top --control {sock} --interval 0.2"
    try:
        subprocess.run([*tmux, "new-session", "-d", "-x", "260", "-y", "30", top], check=True)

        def screen() -> str:
            return subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout

        try:
            wait_for(lambda: all(w in screen() for w in ("ESTABLISHED", "10.8.0.1:5000", "cubic")), 30, "the row")
        except TimeoutError:
            raise AssertionError(f"top does not show the connection:\n{screen()}") from None
        subprocess.run([*tmux, "send-keys", "q"], check=True)
        wait_for(
            lambda: subprocess.run([*tmux, "has-session"], capture_output=True).returncode != 0,
            10,
            "top to quit on q",
        )
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        for proc in (nc, server):
            proc.kill()
            proc.wait()
