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


# A kernel TCP server that takes one connection, sends its greeting and then waits, silent, for the
# peer's FIN (or RST): it writes what it received and how the connection ended.
SILENT_SERVER = r"""
import socket, sys
result, greeting = sys.argv[1], sys.argv[2].encode()
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 5000)); srv.listen(1)
open(result + ".ready", "w").close()
conn, _ = srv.accept()
conn.sendall(greeting)
got = b""
try:
    while data := conn.recv(65536):
        got += data
    end = "FIN"
except ConnectionResetError:
    end = "RST"
open(result, "w").write(f"{got!r} {end}")
"""


def _silent_server(netns, tmp_path, greeting: str = "") -> tuple[subprocess.Popen, object]:
    result = tmp_path / "server.result"
    server = netns.popen([sys.executable, "-c", SILENT_SERVER, str(result), greeting])
    wait_for(lambda: (tmp_path / "server.result.ready").exists() or server.poll() is not None, 20, "kernel server")
    return server, result


def test_tcpstack_nc_z_connects_sends_nothing_and_exits_0(netns, tmp_path):
    """OpenBSD nc -z: is the port open? The connection is made and closed with a FIN, nothing sent; -v
    says so as nc does."""
    server, result = _silent_server(netns, tmp_path)
    nc = netns.run(
        [sys.executable, "-m", "stack.cli", "nc", *NC_ARGS, "-v", "-z", "10.8.0.1", "5000"],
        stdin=subprocess.DEVNULL,
        timeout=60,
        text=True,
    )
    assert nc.returncode == 0, nc.stderr
    assert nc.stdout == ""
    assert nc.stderr == f"Connection to 10.8.0.1 5000 port [tcp/{_service(5000)}] succeeded!\n"
    server.wait(timeout=30)
    assert result.read_text() == "b'' FIN"


def _service(port: int) -> str:
    import socket

    try:
        return socket.getservbyport(port, "tcp")
    except OSError:
        return "*"


def test_tcpstack_nc_z_to_a_closed_port_exits_1(netns):
    nc = netns.run(
        [sys.executable, "-m", "stack.cli", "nc", *NC_ARGS, "-z", "10.8.0.1", "5999"],
        stdin=subprocess.DEVNULL,
        timeout=60,
        text=True,
    )
    assert nc.returncode == 1 and "connection refused" in nc.stderr


def test_tcpstack_nc_w_closes_a_connection_idle_both_ways(netns, tmp_path):
    """OpenBSD nc -w: stdin at EOF and a peer that sends nothing more for the timeout: the connection is
    closed (a FIN, what was sent delivered) and nc exits 0, where without -w it would wait for ever."""
    import time

    server, result = _silent_server(netns, tmp_path, "0123456789")
    start = time.monotonic()
    nc = netns.run(
        [sys.executable, "-m", "stack.cli", "nc", *NC_ARGS, "-w", "1", "10.8.0.1", "5000"],
        input=b"hello",
        timeout=60,
    )
    elapsed = time.monotonic() - start
    assert nc.returncode == 0, nc.stderr.decode()
    assert nc.stdout == b"0123456789"
    assert elapsed < 20  # one idle second, one for the close, the start-up; a wide margin for a loaded machine
    server.wait(timeout=30)
    assert result.read_text() == "b'hello' FIN"


def test_tcpstack_nc_w_gives_up_a_connection_not_made(netns):
    """OpenBSD nc -w bounds the connect too: a SYN nobody answers (10.8.0.99 is no host; the namespace's
    kernel does not forward) times out after -w seconds, not after the SYN retries' two minutes."""
    import time

    start = time.monotonic()
    nc = netns.run(
        [sys.executable, "-m", "stack.cli", "nc", *NC_ARGS, "-w", "1", "10.8.0.99", "5000"],
        stdin=subprocess.DEVNULL,
        timeout=60,
        text=True,
    )
    assert nc.returncode == 1 and "connect to 10.8.0.99 port 5000: timed out" in nc.stderr, nc.stderr
    assert time.monotonic() - start < 30


def test_tcpstack_nc_lv_says_where_it_listens_and_who_came(netns, tmp_path):
    log = tmp_path / "nc.log"
    with open(log, "w") as f:
        nc = netns.popen(
            [sys.executable, "-m", "stack.cli", "nc", *NC_ARGS, "-lv", "6000"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=f,
        )
    try:
        wait_for(lambda: "Listening on 0.0.0.0 6000" in log.read_text(), 30, "nc to listen")
        with netns.entered():
            import socket

            client = socket.create_connection(("10.8.0.2", 6000), timeout=10)
        with client:
            client.sendall(b"hi")
            client.shutdown(socket.SHUT_WR)
            assert nc.stdout.read() == b"hi"
            port = client.getsockname()[1]
        assert nc.wait(timeout=30) == 0
        assert f"Connection received on 10.8.0.1 {port}\n" in log.read_text()
    finally:
        if nc.poll() is None:
            nc.kill()
            nc.wait()


def test_tcpstack_nc_hang_up_ends_it_with_status_129_and_its_control_socket_gone(netns, tmp_path):
    """A terminal that closes: nc stops as cleanly as on SIGTERM (stack closed, control socket unlinked)
    and says which signal ended it, as a shell reports one (128 + SIGHUP)."""
    import signal

    control_path = tmp_path / "nc.sock"
    log = tmp_path / "nc.log"
    with open(log, "w") as f:
        nc = netns.popen(
            [sys.executable, "-m", "stack.cli", "nc", *NC_ARGS, "--control", str(control_path), "-lv", "6001"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=f,
        )
    try:
        wait_for(lambda: "Listening on" in log.read_text(), 30, "nc to listen")
        nc.send_signal(signal.SIGHUP)
        assert nc.wait(timeout=30) == 128 + signal.SIGHUP, log.read_text()
        assert not control_path.exists()
    finally:
        if nc.poll() is None:
            nc.kill()
            nc.wait()
