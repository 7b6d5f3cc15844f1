"""`tcpstack nc`: netcat on the userspace stack. stdin -> connection -> stdout; half-close on stdin EOF.

`tcpstack nc HOST PORT` connects; `tcpstack nc -l PORT` waits for one connection, like nc -l.
"""

from __future__ import annotations

import asyncio
import os
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
    from stack.serve import open_stack_from_args

    stack = await open_stack_from_args(args)
    try:
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
        try:
            await download()
            # the peer finished sending; it may still be reading: send the rest of stdin (half-close)
            await up
        except (ConnectionError, TimeoutError) as exc:
            up.cancel()
            print(f"tcpstack nc: {exc}", file=sys.stderr)
            return 1
        writer.close()
        try:  # let the FIN exchange finish, so the peer is not left with a RST
            await asyncio.wait_for(writer.wait_closed(), 10)
        except (ConnectionError, TimeoutError, asyncio.TimeoutError):
            pass
        return 0
    finally:
        await stack.close()
