"""A small HTTP/1.1 server on h11: a page, deterministic bytes and their sha256, and a hashing sink.

GET /              a small HTML page
GET /bytes/N       N bytes of `pattern_bytes(N)` (streamed, never built whole); one byte range of them
                   with a Range header (206, as `curl -r` and `curl -C -` ask)
GET /bytes/N.sha256  hex sha256 of exactly those N bytes
POST /sha256       hex sha256 of the request body

HEAD answers every GET with its headers alone, a 405 names the methods allowed, and a client that waits
for "100 Continue" before sending its body (Expect: 100-continue, curl's way for bodies over 1 MB) is
told to go on as soon as the body is wanted.

Nothing here runs unbounded CPU work on the event loop: a body is hashed as it arrives, 64 KB at a time,
and /bytes/N.sha256 (up to MAX_HASH_BYTES, about a second of CPU) is hashed in one worker thread
(hashlib releases the GIL), so other connections go on meanwhile and hash requests queue behind each other.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import TypeVar
from urllib.parse import urlsplit

import h11

MAX_BYTES = 1 << 32  # GET /bytes/N: streamed at the pace the client reads
MAX_HASH_BYTES = 1 << 30  # GET /bytes/N.sha256: beyond it 400; hashing 1 GiB takes about a second
_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-sha256")  # one core at most
_HASH_CHUNK = 1 << 20  # bytes per hashlib call in the worker: few GIL hand-overs
# a request's headers must arrive within this many seconds of the connection (or the previous response)
# being ready for it: a slow-loris client trickling header bytes, or an idle keep-alive connection, is
# closed (as nginx's client_header_timeout / keepalive_timeout do); bodies and responses: PROGRESS_TIMEOUT
REQUEST_TIMEOUT = 20.0
# a request body that stops arriving, or a response the client stops reading, holds its connection (and
# the response's buffered bytes) for at most this many seconds without progress, as nginx's
# client_body_timeout and send_timeout (60 s) bound them: then the connection is closed, or aborted when
# what it still had to send would never leave
PROGRESS_TIMEOUT = 60.0
# GET /bytes/N writes this much per call: per call the server runs h11, the stream writer and the
# transport in Python, so a bulk body goes in few large writes (asyncio's sendfile fallback uses 256 KB
# too; 1 MB writes make the kernel's own download over uvloop slower)
_CHUNK = 256 * 1024
# the data pattern: bytes 0..250 repeating (251 is prime, so chunk boundaries never line up with it); the
# chunks are views of it, written as they are (a transport that keeps immutable bytes copies nothing)
_PERIOD = 251
_PATTERN = memoryview(bytes(range(_PERIOD)) * (_CHUNK // _PERIOD + 2))
_BYTES_PATH = re.compile(r"^/bytes/(\d+)(\.sha256)?$")
_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")  # one range (RFC 9110 §14.1.2); a list is served whole

INDEX = (
    b"<!doctype html><html><head><title>tcpstack</title></head><body>"
    b"<h1>Hello from tcpstack</h1><p>This page came over a TCP stack written in Python, running in userspace.</p>"
    b"</body></html>\n"
)


def pattern_chunks(n: int, start: int = 0):
    """The N-byte body of /bytes/N, in chunks; or N bytes of a longer one from `start` on (a range)."""
    sent = 0
    while sent < n:
        k = min(_CHUNK, n - sent)
        off = (start + sent) % _PERIOD
        yield _PATTERN[off : off + k]
        sent += k


def requested_range(value: bytes | None, size: int) -> tuple[int, int] | None:
    """The byte range a Range header asks of a body of `size` bytes, as (first, last), both included; None
    to send the body whole: no header, or one this server may ignore (RFC 9110 §14.2: several ranges,
    another unit, a malformed or backwards one, an empty body). ValueError if it begins past the end
    (unsatisfiable: 416)."""
    m = _RANGE.match(value.decode("latin-1").strip()) if value is not None else None
    if m is None or size == 0 or m.groups() == ("", ""):
        return None
    first_text, last_text = m.groups()
    if not first_text:  # a suffix: the last N bytes (§14.1.2)
        if int(last_text) == 0:
            raise ValueError("an empty suffix")
        return max(size - int(last_text), 0), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:  # backwards: invalid, so ignored
        return None
    if first >= size:
        raise ValueError("the range begins past the end")
    return first, min(int(last_text), size - 1) if last_text else size - 1


def pattern_sha256(n: int) -> str:
    """The hex sha256 of /bytes/N (CPU-bound: the server calls it in a worker thread)."""
    pattern = memoryview(bytes(range(_PERIOD)) * (_HASH_CHUNK // _PERIOD + 2))
    h = hashlib.sha256()
    done = 0
    while done < n:
        k = min(_HASH_CHUNK, n - done)
        off = done % _PERIOD
        h.update(pattern[off : off + k])
        done += k
    return h.hexdigest()


T = TypeVar("T")


async def _within(seconds: float, awaitable: Awaitable[T]) -> T:
    """`awaitable` or TimeoutError after `seconds`. asyncio.timeout (3.11+) runs it in the calling task:
    wait_for (before 3.12) wraps it in a task of its own, one more task and one more loop iteration before
    the answer to each request."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


class _Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.SERVER)
        self.head = False  # the request being answered is a HEAD: headers only (RFC 9110 §9.3.2)

    async def send(self, event) -> None:
        if type(event) is h11.Data:  # the body as it was given (h11's send would join it into a copy)
            pieces = self.conn.send_with_data_passthrough(event)
        else:
            data = self.conn.send(event)
            pieces = [data] if data else []
        if pieces:
            for data in pieces:
                self.writer.write(data)
            await self._drain()

    async def _drain(self) -> None:
        """drain(), waiting at most PROGRESS_TIMEOUT for the client to read; the transport of a response it
        has stopped reading is aborted (its bytes would never leave; tcpstack's sends a RST). Timed only
        when drain() may wait at all: writing is paused above the high-water mark until the buffer is back
        down to the low one."""
        transport = self.writer.transport
        if transport.get_write_buffer_size() <= transport.get_write_buffer_limits()[0]:
            await self.writer.drain()  # returns at once
            return
        try:
            await _within(PROGRESS_TIMEOUT, self.writer.drain())
        except TimeoutError:
            transport.abort()
            raise ConnectionAbortedError("the client stopped reading the response") from None

    async def next_event(self):
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                if self.conn.they_are_waiting_for_100_continue:
                    # the client holds its body back until told to go on, or for a while (RFC 9110 §10.1.1;
                    # curl waits a second): the body is wanted now, so it is asked for
                    await self.send(h11.InformationalResponse(status_code=100, headers=[], reason=_REASONS[100]))
                read = self.reader.read(65536)
                if self.conn.their_state is h11.SEND_BODY:  # (its headers have their own deadline)
                    data = await _within(PROGRESS_TIMEOUT, read)
                else:
                    data = await read
                self.conn.receive_data(data)
                continue
            return event

    async def respond(
        self, status: int, body: bytes, content_type: str = "text/plain", more: tuple[tuple[str, str], ...] = ()
    ) -> None:
        """A whole response; for a HEAD, its headers alone. `more` are headers beside the body's own."""
        headers = [("content-type", content_type), ("content-length", str(len(body))), *more]
        await self.send(_response(status, headers))
        if not self.head:
            await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())

    async def drain_body(self, sink=None) -> None:
        while True:
            event = await self.next_event()
            if type(event) is h11.Data:
                if sink is not None:
                    sink(event.data)
            elif type(event) is h11.EndOfMessage:
                return
            else:
                raise h11.RemoteProtocolError("unexpected event in request body")

    async def handle(self, request: h11.Request) -> None:
        target = request_path(request.target)
        method = request.method
        if target == "/sha256":
            if method != b"POST":
                await self.drain_body()
                return await self.respond(405, b"use POST\n", more=_ALLOW_POST)
            h = hashlib.sha256()
            await self.drain_body(h.update)
            return await self.respond(200, h.hexdigest().encode() + b"\n")
        await self.drain_body()
        if method not in (b"GET", b"HEAD"):
            return await self.respond(405, b"method not allowed\n", more=_ALLOW_GET)
        if target == "/":
            return await self.respond(200, INDEX, "text/html; charset=utf-8")
        m = _BYTES_PATH.match(target)
        if m is None:
            return await self.respond(404, b"not found\n")
        digits = m.group(1)
        n = int(digits) if len(digits) <= 20 else sys.maxsize  # more digits than 2^64 has: too many bytes
        if m.group(2):
            if n > MAX_HASH_BYTES:
                return await self.respond(400, f"at most {MAX_HASH_BYTES} bytes are hashed\n".encode())
            if self.head:  # its length is known without hashing: 64 hex digits and a newline
                return await self.respond(200, b"0" * 65)
            digest = await asyncio.get_running_loop().run_in_executor(_HASHER, pattern_sha256, n)
            return await self.respond(200, digest.encode() + b"\n")
        if n > MAX_BYTES:
            return await self.respond(400, f"at most {MAX_BYTES} bytes\n".encode())
        # the body never changes and has no validator: an If-Range cannot match, so the whole body is sent
        asked = None if _header(request, b"if-range") is not None else _header(request, b"range")
        try:
            wanted = requested_range(asked, n)
        except ValueError:
            return await self.respond(416, b"range not satisfiable\n", more=(("content-range", f"bytes */{n}"),))
        headers = [("content-type", "application/octet-stream"), ("accept-ranges", "bytes")]
        first, length = 0, n
        if wanted is not None:
            first, length = wanted[0], wanted[1] - wanted[0] + 1
            headers.append(("content-range", f"bytes {wanted[0]}-{wanted[1]}/{n}"))
        headers.append(("content-length", str(length)))
        await self.send(_response(200 if wanted is None else 206, headers))
        if not self.head:
            for chunk in pattern_chunks(length, first):
                await self.send(h11.Data(data=chunk))
        await self.send(h11.EndOfMessage())

    async def serve(self) -> None:
        while True:
            event = await _within(REQUEST_TIMEOUT, self.next_event())
            if type(event) is h11.ConnectionClosed:
                return
            if type(event) is not h11.Request:
                raise h11.RemoteProtocolError("expected a request")
            self.head = event.method == b"HEAD"
            await self.handle(event)
            if self.conn.our_state is h11.MUST_CLOSE:
                return
            self.conn.start_next_cycle()
            self.head = False  # an error answered before the next request is whole has a body


_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
# a 405 must say which methods are allowed (RFC 9110 §15.5.6)
_ALLOW_POST = (("allow", "POST"),)
_ALLOW_GET = (("allow", "GET, HEAD"),)


def request_path(target: bytes) -> str:
    """The path a request names, without its query (RFC 9112 §3.2: nothing here takes parameters, so
    `/bytes/10?nocache=1` is `/bytes/10`); from an absolute-form target (`http://host/path`) too, which a
    server must accept (§3.2.2)."""
    text = target.decode("ascii", "replace")
    if text.startswith("/"):  # origin-form (urlsplit would read a path that starts with // as a host)
        return text.partition("?")[0]
    try:
        absolute = urlsplit(text)
    except ValueError:  # an IPv6 host without its closing bracket: an invalid request-line (§3, 400)
        raise h11.RemoteProtocolError("invalid request target", error_status_hint=400) from None
    return (absolute.path or "/") if absolute.scheme.lower() in ("http", "https") else text


def _header(request: h11.Request, name: bytes) -> bytes | None:
    """The first value of a request header (h11 gives names in lower case)."""
    return next((value for key, value in request.headers if key == name), None)


def _response(status: int, headers: list[tuple[str, str]]) -> h11.Response:
    """A response with its reason phrase ("404 Not Found"), which h11 would leave empty."""
    return h11.Response(status_code=status, headers=headers, reason=_REASONS[status])


async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    client = _Client(reader, writer)
    try:
        await client.serve()
    except h11.RemoteProtocolError as exc:
        if client.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            status = exc.error_status_hint  # 400, or 431 for request headers over h11's limit (RFC 6585 §5)
            try:
                await client.respond(status, _REASONS[status].lower() + b"\n")
            except (ConnectionError, h11.LocalProtocolError):
                pass
    except (ConnectionError, TimeoutError):
        pass
    finally:
        writer.close()
