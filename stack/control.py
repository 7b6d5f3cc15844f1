"""The control socket: a running `tcpstack serve` answers `netstat` and `stats` over AF_UNIX with JSON.

The client half imports only socket/json/os/glob/errno/stat, so `tcpstack netstat` starts fast.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import socket
import stat

CONTROL_DIR = "/run/tcpstack"
MAX_REQUEST = 4096  # bytes of one request line; a longer one is refused
MAX_CLIENTS = 16  # control clients served at once (`--max-control-clients`); more are refused and counted
REQUEST_TIMEOUT = 2.0  # seconds a client may take to send its request


def default_path() -> str:
    return os.path.join(CONTROL_DIR, f"{os.getpid()}.sock")


def claim(path: str) -> None:
    """Make `path` ready for a new control socket, or refuse with an error naming what is wrong: a socket
    a running stack answers on is never taken over, a file that is not a socket is never removed, and a
    missing directory is created only for the default path (CONTROL_DIR). A stale socket (nobody
    listening) is removed."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        if os.path.abspath(directory) != CONTROL_DIR:
            raise OSError(errno.ENOENT, f"control socket {path}: directory {directory} does not exist")
        os.makedirs(directory, mode=0o755, exist_ok=True)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EEXIST, f"control socket {path}: exists and is not a socket; not replacing it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)  # stale: left behind by a stack that did not exit cleanly
            return
        except OSError:
            pass  # cannot tell (timeout, permission): treat it as in use
    raise OSError(errno.EADDRINUSE, f"control socket {path} is in use by a running tcpstack; pass another --control")


def find_control_socket() -> str:
    """The one running stack's socket; an error naming the choices if there are none or several."""
    live = find_control_sockets()
    if not live:
        raise OSError(f"no running tcpstack found (no control socket in {CONTROL_DIR}); pass --control PATH")
    if len(live) > 1:
        raise OSError(f"several tcpstacks are running ({', '.join(live)}); pass --control PATH")
    return live[0]


def _alive(path: str) -> bool:
    pid = os.path.basename(path).removesuffix(".sock")
    if not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_control_sockets() -> list[str]:
    """Every running stack's socket (serve and nc each have one), for `top`."""
    return [p for p in sorted(glob.glob(os.path.join(CONTROL_DIR, "*.sock"))) if _alive(p)]


def request_all(cmd: str, **options: object) -> list:
    """`cmd`'s answer from every running stack that answers (one that is just stopping is skipped)."""
    answers = []
    for path in find_control_sockets():
        try:
            answers.append(request(path, cmd, **options))
        except (OSError, ValueError):
            continue
    return answers


def request(path: str, cmd: str, timeout: float = 2.0, **options: object):
    """Ask the stack at `path`; `closed=True` with netstat also lists the connections that closed last."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps({"cmd": cmd, **options}).encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    reply = json.loads(b"".join(chunks))
    if "error" in reply:
        raise OSError(reply["error"])
    return reply["result"]


async def serve_control(path: str, stack, max_clients: int = MAX_CLIENTS) -> object:
    """Start answering on `path`; returns the asyncio server (close it to stop).

    `path` must be free (see `claim`). Bounded: at most `max_clients` at once (the others get an error
    and count as ControlClientsRefused), requests of at most MAX_REQUEST bytes, REQUEST_TIMEOUT seconds each.
    """
    import asyncio

    clients = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal clients
        clients += 1
        try:
            if clients > max_clients:
                stack.counters["ControlClientsRefused"] += 1
                reply = {"error": "too many control clients"}
            else:
                try:
                    line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
                    reply = _answer(line, stack)
                except ValueError:  # the line outgrew the reader's limit
                    reply = {"error": f"bad request: longer than {MAX_REQUEST} bytes"}
            writer.write(json.dumps(reply).encode())
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            clients -= 1
            writer.close()

    server = await asyncio.start_unix_server(handle, path, limit=MAX_REQUEST)
    os.chmod(path, 0o600)
    return server


def stop_control(server, path: str) -> None:
    """Stop answering; the socket file is ours to remove only if we bound it (`server` is None if not)."""
    if server is not None:
        server.close()
        if os.path.exists(path):
            os.unlink(path)


def _answer(line: bytes, stack) -> dict:
    try:
        req = json.loads(line)
        cmd = req.get("cmd")
    except (ValueError, AttributeError, RecursionError):  # (JSON nested deeper than the decoder recurses)
        return {"error": "bad request: expected a JSON object with 'cmd'"}
    if cmd == "netstat":
        return {"result": stack.snapshot(closed=req.get("closed") is True)}
    if cmd == "stats":
        return {"result": stack.stats()}
    return {"error": f"unknown command {cmd!r}"}
