"""Operator mistakes: each is refused with one line that names what is wrong, and takes nothing over."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from stack import control
from tests.integration.conftest import ADDR, PEER, Served, start_serve


def serve_once(served_or_ns, *args: str) -> subprocess.CompletedProcess:
    """`tcpstack serve` in the namespace with these arguments, expected to exit at once."""
    ns = served_or_ns.ns if isinstance(served_or_ns, Served) else served_or_ns
    argv = [sys.executable, "-m", "stack.cli", "serve", "--addr", ADDR, "--peer", PEER, *args]
    return ns.run(argv, text=True, timeout=30)


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_serve_second_serve_on_a_live_control_socket_is_refused(served: Served):
    """A running stack's control socket is never taken over (nor deleted when the second one exits)."""
    result = serve_once(served, "--tun", "tun1", "--control", served.control)
    assert result.returncode == 1
    line = one_line(result)
    assert served.control in line and "in use" in line, line
    assert os.path.exists(served.control)
    assert served.netstat() is not None  # the first one still answers
    assert served.ns.run(["ip", "link", "show", "tun1"]).returncode != 0  # refused before creating its TUN


def test_serve_stale_control_socket_is_replaced(netns, tmp_path):
    stale = tmp_path / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(stale))  # closed without unlink: what a killed stack leaves behind
    served = start_serve(netns, tmp_path)
    assert served.control == str(stale)
    assert control.request(served.control, "stats")["CurrConnections"] == 0


def test_serve_control_path_that_is_not_a_socket_is_refused_and_kept(netns, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    result = serve_once(netns, "--tun", "tun0", "--control", str(path))
    assert result.returncode == 1
    assert str(path) in one_line(result) and "not a socket" in result.stderr
    assert path.read_text() == "mine"


def test_serve_control_socket_in_a_missing_directory_is_refused(netns, tmp_path):
    missing = tmp_path / "no" / "such" / "dir"
    result = serve_once(netns, "--tun", "tun0", "--control", str(missing / "c.sock"))
    assert result.returncode == 1
    assert f"directory {missing} does not exist" in one_line(result)
    assert not (tmp_path / "no").exists()  # nothing created on the way


def test_serve_unusable_device_error_names_the_device(netns, tmp_path):
    result = serve_once(netns, "--tun", "lo", "--control", str(tmp_path / "c.sock"))
    assert result.returncode == 1
    assert "TUN device lo" in one_line(result)


def test_serve_pcap_in_a_missing_directory_error_names_the_path(netns, tmp_path):
    pcap = str(tmp_path / "missing" / "x.pcap")
    result = serve_once(netns, "--tun", "tun0", "--control", str(tmp_path / "c.sock"), "--pcap", pcap)
    assert result.returncode == 1
    assert pcap in one_line(result)
    assert netns.run(["ip", "link", "show", "tun0"]).returncode != 0  # the device went away again


def test_serve_addresses_the_kernel_reaches_through_another_device_are_noted(served: Served, tmp_path):
    """A second stack given the first one's --addr and --peer on another device starts (the kernel takes
    the same address twice) but says that the kernel already reaches its address through the first
    one's device: what the kernel sends there may never reach it."""
    second = tmp_path / "second"
    second.mkdir()
    other = start_serve(served.ns, second, "--tun", "tun1")
    try:
        assert f"tcpstack: {ADDR} is already reached through tun0:" in other.log()
        assert "is already reached through" not in served.log()  # the first one was alone
    finally:
        other.stop()


def test_serve_on_a_device_another_stack_holds_is_refused_with_one_line(served: Served, tmp_path):
    """A second stack told to create the first one's device fails with one line that names the device and
    why (EBUSY: it is open elsewhere), and no note that the kernel reaches its address through that very
    device; the first stack serves on."""
    result = serve_once(served, "--tun", "tun0", "--control", str(tmp_path / "second.sock"))
    assert result.returncode == 1
    line = one_line(result)
    assert "TUN device tun0" in line and "has it open" in line, line
    assert served.netstat() is not None
