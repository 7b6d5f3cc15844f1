"""`tcpstack nc`: netcat on the userspace stack. stdin -> connection -> stdout; half-close on stdin EOF.

`tcpstack nc HOST PORT` connects; `tcpstack nc -l PORT` waits for one connection, like nc -l. Like
serve, it answers `tcpstack netstat` on a control socket, so the client side's states can be watched.
"""

from __future__ import annotations

import asyncio
import os
import signal
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


async def _accept_one(stack, port: int):
    """Listen on port until the first connection arrives (nc -l), then stop listening."""
    accepted: asyncio.Future = asyncio.get_running_loop().create_future()

    async def on_client(reader, writer) -> None:
        if accepted.done():
            writer.close()  # nc serves one peer
        else:
            accepted.set_result((reader, writer))

    server = await stack.start_server(on_client, port=port)
    try:
        return await accepted
    finally:
        server.close()


async def nc(args) -> int:
    from stack.control import claim, default_path, serve_control, stop_control
    from stack.serve import open_stack_from_args

    control_path = args.control or default_path()
    claim(control_path)  # before the TUN exists: a refused nc leaves nothing behind
    stack = await open_stack_from_args(args)
    control = None
    me = asyncio.current_task()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, me.cancel)  # stop as cleanly as on Ctrl-C
    try:
        control = await serve_control(control_path, stack)
        code = await _session(stack, args)
        while args.keep_listening:  # nc -l -k: listen again once a connection is done
            code = await _session(stack, args)
        return code
    except asyncio.CancelledError:
        return 128 + signal.SIGTERM
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        stop_control(control, control_path)
        await stack.close()


async def _session(stack, args) -> int:
    if args.listen:
        reader, writer = await _accept_one(stack, args.port)
    else:
        try:
            reader, writer = await stack.open_connection(args.host, args.port)
        except ConnectionRefusedError:
            print(f"tcpstack nc: connect to {args.host} port {args.port}: connection refused", file=sys.stderr)
            return 1
        except TimeoutError:
            print(f"tcpstack nc: connect to {args.host} port {args.port}: timed out", file=sys.stderr)
            return 1
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=0)
    threading.Thread(target=_read_stdin, args=(loop, queue), daemon=True).start()

    async def upload() -> None:
        while data := await queue.get():
            writer.write(data)
            await writer.drain()
        writer.write_eof()

    async def download() -> None:
        out = sys.stdout.buffer
        while data := await reader.read(1 << 20):
            out.write(data)
            out.flush()

    up = asyncio.create_task(upload())
    down = asyncio.create_task(download())
    try:
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
    except (ConnectionError, TimeoutError) as exc:
        up.cancel()
        down.cancel()
        if isinstance(exc, BrokenPipeError):  # whoever read our output went away (`| head`): main() ends
            raise  # as SIGPIPE would
        print(f"tcpstack nc: {exc}", file=sys.stderr)
        return 1
    writer.close()
    if args.linger_time_wait:  # stay, so netstat shows TIME_WAIT (2*MSL) or an orphan's FIN_WAIT_2 to its end
        await stack.wait_idle()
        return 0
    try:  # let the FIN exchange finish, so the peer is not left with a RST
        await asyncio.wait_for(writer.wait_closed(), 10)
    except (ConnectionError, TimeoutError, asyncio.TimeoutError):
        pass
    return 0
