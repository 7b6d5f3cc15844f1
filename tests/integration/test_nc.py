"""`tcpstack nc` (active open on the userspace stack) against a kernel TCP server in the namespace."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from stack.netns import wait_for

NC_ARGS = ["--tun", "tun1", "--addr", "10.8.0.2", "--peer", "10.8.0.1/24"]

# A kernel TCP server: sends the download file, reads everything, writes the sha256 of what it got.
KERNEL_SERVER = r"""
import hashlib, socket, sys, threading
download, result = sys.argv[1], sys.argv[2]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 5000)); srv.listen(1)
open(result + ".ready", "w").close()
conn, _ = srv.accept()
def send():
    with open(download, "rb") as f:
        conn.sendall(f.read())
    conn.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send); t.start()
h = hashlib.sha256()
while data := conn.recv(65536):
    h.update(data)
t.join(); conn.close()
open(result, "w").write(h.hexdigest())
"""


def test_tcpstack_nc_to_kernel_server_both_directions(netns, tmp_path):
    download = os.urandom(3_000_000)
    upload = os.urandom(2_000_000)
    (tmp_path / "down.bin").write_bytes(download)
    (tmp_path / "up.bin").write_bytes(upload)
    result = tmp_path / "server.sha256"
    server = netns.popen([sys.executable, "-c", KERNEL_SERVER, str(tmp_path / "down.bin"), str(result)])
    wait_for(lambda: (tmp_path / "server.sha256.ready").exists() or server.poll() is not None, 20, "kernel server")
    with open(tmp_path / "up.bin", "rb") as stdin:
        nc = netns.run(
            [sys.executable, "-m", "stack.cli", "nc", *NC_ARGS, "10.8.0.1", "5000"], stdin=stdin, timeout=300
        )
    assert nc.returncode == 0, nc.stderr.decode()
    assert hashlib.sha256(nc.stdout).hexdigest() == hashlib.sha256(download).hexdigest()
    server.wait(timeout=60)
    assert result.read_text() == hashlib.sha256(upload).hexdigest()


def test_tcpstack_nc_whose_output_reader_goes_away_stops_quietly(netns, tmp_path):
    """`tcpstack nc HOST PORT | head -c 100`: when head exits, nc ends as SIGPIPE ends OpenBSD nc (status
    141, nothing on stderr) and its connection goes with it."""
    (tmp_path / "down.bin").write_bytes(os.urandom(20_000_000))
    result = tmp_path / "server.sha256"
    server = netns.popen([sys.executable, "-c", KERNEL_SERVER, str(tmp_path / "down.bin"), str(result)])
    wait_for(lambda: (tmp_path / "server.sha256.ready").exists() or server.poll() is not None, 20, "kernel server")
    nc = netns.popen(
        [sys.executable, "-m", "stack.cli", "nc", *NC_ARGS, "10.8.0.1", "5000"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert len(nc.stdout.read(100)) == 100
    nc.stdout.close()  # the reader goes away, as head does once it has its 100 bytes
    stderr = nc.stderr.read()
    assert nc.wait(timeout=60) == 141 and stderr == b""
    server.wait(timeout=60)  # its connection ended too (reset: its peer went away with data unread)


def test_tcpstack_nc_to_closed_port_says_connection_refused(netns):
    nc = netns.run(
        [sys.executable, "-m", "stack.cli", "nc", *NC_ARGS, "10.8.0.1", "5999"],
        stdin=subprocess.DEVNULL,
        timeout=60,
        text=True,
    )
    assert nc.returncode != 0
    assert "connection refused" in nc.stderr
    assert "Traceback" not in nc.stderr


def test_two_tcpstacks_talk_through_the_kernel_router(netns, tmp_path):
    """tcpstack nc (on tun1) to tcpstack serve (on tun0), the namespace's kernel forwarding between them."""
    from tests.integration.conftest import start_serve

    assert netns.run(["sysctl", "-w", "net.ipv4.ip_forward=1"]).returncode == 0
    start_serve(netns, tmp_path)
    data = os.urandom(1_000_000)
    nc = netns.run([sys.executable, "-m", "stack.cli", "nc", *NC_ARGS, "10.7.0.2", "7"], input=data, timeout=300)
    assert nc.returncode == 0, nc.stderr.decode()
    assert nc.stdout == data


def _nc(netns, device_args: list[str], *args: str, log) -> subprocess.Popen:
    """tcpstack nc with its stdin and stdout as pipes; --trace last (after HOST PORT) logs transitions."""
    argv = [sys.executable, "-m", "stack.cli", "nc", *device_args, "--fault", "delay=150ms", *args, "--trace"]
    return netns.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)


def test_two_tcpstacks_close_simultaneously_through_closing(netns, tmp_path):
    """RFC 9293 §3.6, simultaneous close: both FINs are sent before either arrives, so each side goes
    FIN_WAIT_1 -> CLOSING -> TIME_WAIT. Both stdins close together; 150 ms of delay on each stack's
    device (both ways) keeps the two FINs in flight at the same time."""
    assert netns.run(["sysctl", "-w", "net.ipv4.ip_forward=1"]).returncode == 0
    listen_args = ["--tun", "tun0", "--addr", "10.7.0.2", "--peer", "10.7.0.1/24"]
    logs = [tmp_path / "listener.log", tmp_path / "client.log"]
    with open(logs[0], "w") as log:
        listener = _nc(netns, listen_args, "-l", "5000", log=log)
    client = None
    try:
        wait_for(lambda: netns.run(["ping", "-c1", "-W1", "10.7.0.2"]).returncode == 0, 30, "the listener's stack")

        def connected() -> bool:
            nonlocal client
            if client is None or client.poll() is not None:  # refused while the listener was starting
                with open(logs[1], "w") as log:
                    client = _nc(netns, NC_ARGS, "10.7.0.2", "5000", log=log)
            return "ESTABLISHED" in logs[1].read_text() and "ESTABLISHED" in logs[0].read_text()

        wait_for(connected, 60, "the two stacks to connect", interval=0.5)
        client.stdin.write(b"x")
        client.stdin.flush()
        assert listener.stdout.read(1) == b"x"
        client.stdin.close()
        listener.stdin.close()
        assert client.wait(timeout=60) == 0, logs[1].read_text()
        assert listener.wait(timeout=60) == 0, logs[0].read_text()
    finally:
        for proc in (listener, client):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    for log in logs:
        text = log.read_text()
        assert "FIN_WAIT1 -> CLOSING" in text, text
        assert "CLOSING -> TIME_WAIT" in text, text
