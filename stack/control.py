"""The control socket: a running `tcpstack serve` answers `netstat` and `stats` over AF_UNIX with JSON.

The client half imports only socket/json/os/glob, so `tcpstack netstat` starts fast.
"""

from __future__ import annotations

import glob
import json
import os
import socket

CONTROL_DIR = "/run/tcpstack"
MAX_REQUEST = 4096  # bytes of one request line; a longer one is refused
MAX_CLIENTS = 16  # control clients served at once (`--max-control-clients`); more are refused and counted
REQUEST_TIMEOUT = 2.0  # seconds a client may take to send its request


def default_path() -> str:
    return os.path.join(CONTROL_DIR, f"{os.getpid()}.sock")


def find_control_socket() -> str:
    """The one running stack's socket; an error naming the choices if there are none or several."""
    paths = sorted(glob.glob(os.path.join(CONTROL_DIR, "*.sock")))
    live = [p for p in paths if _alive(p)]
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


def request(path: str, cmd: str, timeout: float = 2.0):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
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

    Bounded: at most `max_clients` at once (the others get an error and count as ControlClientsRefused),
    requests of at most MAX_REQUEST bytes, REQUEST_TIMEOUT seconds each.
    """
    import asyncio

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
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


def _answer(line: bytes, stack) -> dict:
    try:
        cmd = json.loads(line).get("cmd")
    except (ValueError, AttributeError):
        return {"error": "bad request: expected a JSON object with 'cmd'"}
    if cmd == "netstat":
        return {"result": stack.snapshot()}
    if cmd == "stats":
        return {"result": stack.stats()}
    return {"error": f"unknown command {cmd!r}"}
