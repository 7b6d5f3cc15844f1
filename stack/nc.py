"""`tcpstack nc`: netcat on the userspace stack. stdin -> connection -> stdout; half-close on stdin EOF.

`tcpstack nc HOST PORT` connects; `tcpstack nc -l PORT` waits for one connection, like nc -l; -v, -z, -w
and -q as OpenBSD nc's. Like serve, it answers `tcpstack netstat` on a control socket, so the client
side's states can be watched.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import threading


def _read_stdin(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
    """A thread: stdin may be a file, a pipe or a terminal, none of which a loop can watch uniformly."""
    fd = sys.stdin.fileno()
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        loop.call_soon_threadsafe(queue.put_nowait, data)
        if not data:
            return


async def _accept_one(stack, port: int, verbose: bool):
    """Listen on port until the first connection arrives (nc -l), then stop listening."""
    accepted: asyncio.Future = asyncio.get_running_loop().create_future()

    async def on_client(reader, writer) -> None:
        if accepted.done():
            writer.close()  # nc serves one peer
        else:
            accepted.set_result((reader, writer))

    server = await stack.start_server(on_client, port=port)
    if verbose:  # as OpenBSD nc -lv says it
        _say(f"Listening on {server.sockets[0].getsockname()[0]} {port}")
    try:
        reader, writer = await accepted
    finally:
        server.close()
    if verbose:
        host, peer_port = writer.get_extra_info("peername")[:2]
        _say(f"Connection received on {host} {peer_port}")
    return reader, writer


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _service_name(port: int) -> str:
    try:
        return socket.getservbyport(port, "tcp")
    except OSError:
        return "*"


class _Activity:
    """When data last moved, either way: nc -w closes a connection idle that long."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.last = loop.time()

    def touch(self) -> None:
        self.last = self._loop.time()

    async def idle_for(self, seconds: float) -> None:
        """Returns once nothing has moved for `seconds`."""
        while (left := self.last + seconds - self._loop.time()) > 0:
            await asyncio.sleep(left)


async def nc(args) -> int:
    from stack.control import claim, default_path, serve_control, stop_control
    from stack.serve import open_stack_from_args, stop_signals

    control_path = args.control or default_path()
    claim(control_path)  # before the TUN exists: a refused nc leaves nothing behind
    stack = await open_stack_from_args(args)
    control = None
    me = asyncio.current_task()
    loop = asyncio.get_running_loop()
    caught: list[int] = []

    def stop(sig: int) -> None:  # as cleanly as on Ctrl-C
        caught.append(sig)
        me.cancel()

    signals = [sig for sig in stop_signals() if sig != signal.SIGINT]  # (Ctrl-C: KeyboardInterrupt)
    for sig in signals:
        loop.add_signal_handler(sig, stop, sig)
    try:
        control = await serve_control(control_path, stack)
        code = await _session(stack, args)
        while args.keep_listening:  # nc -l -k: listen again once a connection is done
            code = await _session(stack, args)
        return code
    except asyncio.CancelledError:
        return 128 + (caught[0] if caught else signal.SIGTERM)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        stop_control(control, control_path)
        await stack.close()


async def _session(stack, args) -> int:
    if args.listen:
        reader, writer = await _accept_one(stack, args.port, args.verbose)
    else:
        where = f"connect to {args.host} port {args.port}"
        try:
            reader, writer = await asyncio.wait_for(stack.open_connection(args.host, args.port), args.timeout)
        except ConnectionRefusedError:
            _say(f"tcpstack nc: {where}: connection refused")
            return 1
        except (TimeoutError, asyncio.TimeoutError):  # the SYN's retries, or -w
            _say(f"tcpstack nc: {where}: timed out")
            return 1
        if args.verbose:  # OpenBSD nc's words
            _say(f"Connection to {args.host} {args.port} port [tcp/{_service_name(args.port)}] succeeded!")
        if args.zero_io:  # nc -z: the port is open; nothing is sent
            writer.close()
            return await _closed(stack, writer, args)
    loop = asyncio.get_running_loop()
    activity = _Activity(loop)
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=0)
    threading.Thread(target=_read_stdin, args=(loop, queue), daemon=True).start()

    async def upload() -> None:
        while data := await queue.get():
            activity.touch()
            writer.write(data)
            await writer.drain()
        writer.write_eof()

    async def download() -> None:
        out = sys.stdout.buffer
        while data := await reader.read(1 << 20):
            activity.touch()
            out.write(data)
            out.flush()

    async def transfer() -> None:
        if args.quit_after is None:
            await down
            # the peer finished sending; it may still be reading: send the rest of stdin (half-close)
            await up
        else:  # nc -q: after EOF on stdin, wait this long for the peer, then let go of the connection
            await up
            try:
                await asyncio.wait_for(down, args.quit_after)
            except asyncio.TimeoutError:
                pass

    up = asyncio.create_task(upload())
    down = asyncio.create_task(download())
    both = asyncio.create_task(transfer())
    try:
        if args.timeout is None:
            await both
        else:  # nc -w: a connection idle both ways for the timeout is closed, quietly
            idle = asyncio.create_task(activity.idle_for(args.timeout))
            try:
                await asyncio.wait((both, idle), return_when=asyncio.FIRST_COMPLETED)
            finally:
                idle.cancel()
            if not both.done():
                for task in (both, up, down):
                    task.cancel()
            else:
                both.result()
    except (ConnectionError, TimeoutError) as exc:
        up.cancel()
        down.cancel()
        if isinstance(exc, BrokenPipeError):  # whoever read our output went away (`| head`): main() ends
            raise  # as SIGPIPE would
        _say(f"tcpstack nc: {exc}")
        return 1
    writer.close()
    return await _closed(stack, writer, args)


async def _closed(stack, writer, args) -> int:
    """After close(): the FIN exchange finished (or --linger-time-wait's whole life of the connection)."""
    if args.linger_time_wait:  # stay, so netstat shows TIME_WAIT (2*MSL) or an orphan's FIN_WAIT_2 to its end
        await stack.wait_idle()
        return 0
    try:  # let the FIN exchange finish, so the peer is not left with a RST (for at most -w's time, if given)
        await asyncio.wait_for(writer.wait_closed(), min(10, args.timeout or 10))
    except (ConnectionError, TimeoutError, asyncio.TimeoutError):
        pass
    return 0
