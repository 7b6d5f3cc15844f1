"""The services over the kernel's own TCP on 127.0.0.1: they use only the asyncio streams API."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import os

import pytest
import uvloop

from stack.services import DEFAULT_PORTS, SERVICES, parse_services
from stack.services.chargen import LINE, chargen_lines
from stack.services.http import INDEX, MAX_HASH_BYTES, pattern_chunks, pattern_sha256


def serve_and(service: str, client) -> object:
    async def main():
        server = await asyncio.start_server(SERVICES[service], "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await asyncio.wait_for(client(port), 60)
        finally:
            server.close()

    return uvloop.run(main())


def test_parse_services_defaults_and_errors():
    assert parse_services("echo,http:8080") == [("echo", 7), ("http", 8080)]
    assert set(DEFAULT_PORTS) == set(SERVICES)
    for bad in ("gopher", "echo:x", "echo:0", "echo:7,discard:7", ""):
        with pytest.raises(ValueError):
            parse_services(bad)


def test_echo_returns_everything_then_closes_after_half_close():
    data = os.urandom(300_000)

    async def client(port):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(data)
        w.write_eof()
        return await r.read(-1)

    assert serve_and("echo", client) == data


def test_echo_stops_reading_while_its_writes_are_not_drained():
    """Back-pressure: a client that does not read cannot make echo buffer without bound."""

    async def client(port):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.transport.pause_reading()
        chunk = b"e" * 65536
        sent = 0
        try:
            for _ in range(2000):  # up to 128 MB
                w.write(chunk)
                await asyncio.wait_for(w.drain(), 2.0)
                sent += len(chunk)
        except asyncio.TimeoutError:
            pass
        w.close()
        return sent

    sent = serve_and("echo", client)
    assert sent < 64 * 1024 * 1024  # the kernel buffers some; echo itself stopped taking more


def test_chargen_lines_follow_rfc864():
    lines = chargen_lines(3).split(b"\r\n")
    assert lines[0] == bytes(range(32, 32 + LINE))
    assert lines[1] == bytes(range(33, 33 + LINE))
    assert chargen_lines(1, start=95) == chargen_lines(1, start=0)


def test_chargen_streams_until_the_client_leaves():
    async def client(port):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        data = await r.readexactly(74 * 200)
        w.close()
        return data

    assert serve_and("chargen", client) == chargen_lines(200)


def test_discard_reads_everything():
    async def client(port):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(os.urandom(1_000_000))
        w.write_eof()
        return await r.read(-1)

    assert serve_and("discard", client) == b""


async def _http(port: int, request: bytes) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(request)
    data = await r.read(-1)
    w.close()
    return data


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()


def _body(response: bytes) -> tuple[bytes, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return head, body


def test_http_bytes_and_their_sha256_agree():
    n = 1_000_003
    head, body = _body(
        serve_and(
            "http", lambda p: _http(p, f"GET /bytes/{n} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        )
    )
    assert head.startswith(b"HTTP/1.1 200") and len(body) == n
    assert hashlib.sha256(body).hexdigest() == pattern_sha256(n)
    assert b"".join(pattern_chunks(n)) == body
    _, digest = _body(
        serve_and(
            "http",
            lambda p: _http(p, f"GET /bytes/{n}.sha256 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()),
        )
    )
    assert digest.strip().decode() == pattern_sha256(n)


def test_http_bytes_body_is_written_as_views_of_its_pattern_not_copies():
    """The body reaches the stream writer as the service has it, views of one immutable pattern (h11's
    send would join each chunk into a copy): a transport that keeps immutable bytes, as tcpstack's send
    buffer does, then copies none of it before the packet."""
    written = []

    class Transport:
        def get_write_buffer_size(self) -> int:
            return 0

        def get_write_buffer_limits(self) -> tuple[int, int]:
            return 16384, 65536

    class Writer:
        transport = Transport()

        def write(self, data) -> None:
            written.append(data)

        async def drain(self) -> None:
            pass

    http_service = importlib.import_module("stack.services.http")  # (the package's `http` is the service)
    client = http_service._Client(None, Writer())
    n = 3_000_001
    client.conn.receive_data(f"GET /bytes/{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    asyncio.run(client.handle(client.conn.next_event()))
    head, body = written[0], written[1:]
    assert head.startswith(b"HTTP/1.1 200") and len(body) > 1
    assert all(type(part) is memoryview and part.obj is http_service._PATTERN.obj for part in body)
    assert b"".join(body) == b"".join(pattern_chunks(n))


def test_http_post_sha256_of_body():
    data = os.urandom(200_000)
    req = b"POST /sha256 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(data) + data
    _, body = _body(serve_and("http", lambda p: _http(p, req)))
    assert body.strip().decode() == hashlib.sha256(data).hexdigest()


def test_http_keepalive_then_close():
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /bytes/5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    data = serve_and("http", lambda p: _http(p, req))
    assert data.count(b"HTTP/1.1 200") == 2 and data.endswith(bytes(range(5)))


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"GET /nope", b"404"),
        (b"DELETE /", b"405"),
        (b"GET /sha256", b"405"),
        (b"GET /bytes/99999999999", b"400"),
        (b"GET /bytes/" + b"9" * 30, b"400"),  # too many bytes, however many digits say so
        (b"GET /bytes/" + b"9" * 5000, b"400"),  # (more digits than int() reads from a string)
        (b"GET /bytes/%d.sha256" % (MAX_HASH_BYTES + 1), b"400"),  # more than the service hashes
        (b"GET http://[::1/bytes/5", b"400"),  # an absolute-form target whose host no URL parser reads
    ],
)
def test_http_errors(request_line, status):
    data = serve_and("http", lambda p: _http(p, request_line + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert data.startswith(b"HTTP/1.1 " + status)


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("/bytes/10?nocache=1", b"".join(pattern_chunks(10))),
        ("/bytes/3.sha256?x", pattern_sha256(3).encode() + b"\n"),
        ("http://10.7.0.2/bytes/5", b"".join(pattern_chunks(5))),  # absolute-form
        ("HTTP://10.7.0.2:80/bytes/4?y=2", b"".join(pattern_chunks(4))),
    ],
)
def test_http_target_query_and_absolute_form_name_the_same_resource(target, body):
    """RFC 9112 §3.2: the query is no part of the path (nothing here takes parameters), and a server must
    accept a target in absolute-form (§3.2.2)."""
    head, got = _body(serve_and("http", lambda p: _http(p, _get(target))))
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and got == body


@pytest.mark.parametrize("target", ["http://10.7.0.2", "http://10.7.0.2?x", "http://10.7.0.2?x=/bytes/5"])
def test_http_absolute_form_without_a_path_is_the_index(target):
    head, body = _body(serve_and("http", lambda p: _http(p, _get(target))))
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and body == INDEX


def test_http_request_headers_over_the_limit_get_431():
    """RFC 6585 §5: request header fields too large; h11 stops reading headers beyond its limit (16 KiB)."""
    request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    data = serve_and("http", lambda p: _http(p, request))
    assert data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), data[:80]


@pytest.mark.parametrize("path", ["/", "/bytes/100000", "/bytes/7.sha256", "/nope", "/sha256"])
def test_http_head_gives_the_get_headers_without_a_body(path):
    """RFC 9110 §9.3.2: HEAD is GET without the content; the headers (Content-Length included) are the same."""
    get_head, get_body = _body(serve_and("http", lambda p: _http(p, _get(path))))
    head_request = _get(path).replace(b"GET ", b"HEAD ", 1)
    head_head, head_body = _body(serve_and("http", lambda p: _http(p, head_request)))
    assert head_head == get_head and head_body == b"" and get_body != b""


@pytest.mark.parametrize(
    ("request_line", "allow"), [(b"DELETE /", b"GET, HEAD"), (b"PUT /bytes/5", b"GET, HEAD"), (b"GET /sha256", b"POST")]
)
def test_http_405_names_the_methods_allowed(request_line, allow):
    """RFC 9110 §15.5.6: a 405 carries an Allow header with the target's methods."""
    head, _ = _body(
        serve_and("http", lambda p: _http(p, request_line + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    )
    assert head.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    assert b"\r\nallow: " + allow in head


def test_http_expect_100_continue_is_answered_before_the_body():
    """RFC 9110 §10.1.1: a client that sent Expect: 100-continue may wait for "100 Continue" before it
    sends the body (curl does, for a second, with bodies over 1 MB); the server asks for the body."""
    data = os.urandom(3_000_000)

    async def client(port: int) -> tuple[bytes, bytes]:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(
            b"POST /sha256 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data)
        )
        interim = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)  # nothing of the body sent yet
        w.write(data)
        final = await r.read(-1)
        w.close()
        return interim, final

    interim, final = serve_and("http", client)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    head, body = _body(final)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and body.strip().decode() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=10-19", 10, 19), ("bytes=995-", 995, 999), ("bytes=990-5000", 990, 999), ("bytes=-5", 995, 999)],
)
def test_http_bytes_range_gives_206_with_that_part_of_the_body(header, first, last):
    """RFC 9110 §14: one byte range of /bytes/N (first-last, from first on, or the last N), with its
    Content-Range; what `curl -r` and `curl -C -` ask."""
    request = f"GET /bytes/1000 HTTP/1.1\r\nHost: x\r\nRange: {header}\r\nConnection: close\r\n\r\n".encode()
    head, body = _body(serve_and("http", lambda p: _http(p, request)))
    assert head.startswith(b"HTTP/1.1 206 Partial Content\r\n")
    assert f"\r\ncontent-range: bytes {first}-{last}/1000\r\n".encode() in head
    assert body == b"".join(pattern_chunks(1000))[first : last + 1]


def test_http_bytes_range_past_the_end_gives_416_with_the_length():
    """RFC 9110 §15.5.17: an unsatisfiable range gets 416 and Content-Range: bytes */length."""
    request = b"GET /bytes/1000 HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-\r\nConnection: close\r\n\r\n"
    head, _ = _body(serve_and("http", lambda p: _http(p, request)))
    assert (
        head.startswith(b"HTTP/1.1 416 Requested Range Not Satisfiable\r\n")
        and b"\r\ncontent-range: bytes */1000" in head
    )


@pytest.mark.parametrize(
    "headers", ["Range: bytes=0-1,5-6", "Range: lines=1-2", "Range: bytes=9-3", 'If-Range: "x"\r\nRange: bytes=1-2']
)
def test_http_bytes_range_it_may_ignore_sends_the_whole_body(headers):
    """RFC 9110 §14.2: several ranges, another unit, a backwards range, or an If-Range (this body has no
    validator to match) are ignored: 200 and the whole body."""
    request = f"GET /bytes/1000 HTTP/1.1\r\nHost: x\r\n{headers}\r\nConnection: close\r\n\r\n".encode()
    head, body = _body(serve_and("http", lambda p: _http(p, request)))
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"accept-ranges: bytes" in head
    assert body == b"".join(pattern_chunks(1000))


def test_http_garbage_gets_400():
    data = serve_and("http", lambda p: _http(p, b"\x00\x01garbage\r\n\r\n"))
    assert data.startswith(b"HTTP/1.1 400")


def test_http_slow_loris_headers_are_cut_off_after_the_request_timeout(monkeypatch):
    """A client trickling header bytes (slow loris) is closed once REQUEST_TIMEOUT has passed since it
    could have sent its request, however many bytes it sends meanwhile."""
    monkeypatch.setattr(importlib.import_module("stack.services.http"), "REQUEST_TIMEOUT", 0.3)

    async def trickle(port: int) -> tuple[bytes, float]:
        loop = asyncio.get_running_loop()
        r, w = await asyncio.open_connection("127.0.0.1", port)
        start = loop.time()
        w.write(b"GET / HTTP/1.1\r\n")

        async def one_header_line_every_50_ms() -> None:  # never ends on its own
            while True:
                await asyncio.sleep(0.05)
                w.write(b"X-a: b\r\n")

        async def until_closed() -> bytes:
            got = b""
            try:
                while chunk := await r.read(65536):
                    got += chunk
            except ConnectionResetError:  # a line that came after the timeout was unread: the kernel resets
                pass
            return got  # what arrived before the close or the reset

        writer = asyncio.create_task(one_header_line_every_50_ms())
        data = await asyncio.wait_for(until_closed(), 10)
        writer.cancel()
        w.close()
        return data, loop.time() - start

    data, elapsed = serve_and("http", trickle)
    assert data == b"" and elapsed < 5  # closed without a response, long before the 10 s wait


def test_http_request_body_that_stops_arriving_is_closed_after_the_progress_timeout(monkeypatch):
    """A body announced and then not sent (a slow loris past its headers) holds the connection only until
    PROGRESS_TIMEOUT passes without a byte of it: then the server closes, without a response."""
    monkeypatch.setattr(importlib.import_module("stack.services.http"), "PROGRESS_TIMEOUT", 0.3)

    async def stalled(port: int) -> bytes:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"POST /sha256 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        data = await asyncio.wait_for(r.read(-1), 10)  # until the server closes
        w.close()
        return data

    assert serve_and("http", stalled) == b""


def test_http_response_the_client_stops_reading_is_aborted_after_the_progress_timeout(monkeypatch):
    """A client that asks for a large body and stops reading it holds the connection, and the bytes queued
    for it, only until PROGRESS_TIMEOUT passes without the response moving: then the server aborts the
    transport (tcpstack's resets the connection; a kernel socket's is closed, and what its send buffer
    holds is the last the client gets) and the handler ends."""
    http_service = importlib.import_module("stack.services.http")
    monkeypatch.setattr(http_service, "PROGRESS_TIMEOUT", 0.3)
    size = 1 << 30

    async def main() -> int:
        given_up = asyncio.Event()

        async def handler(reader, writer) -> None:
            try:
                await http_service.http(reader, writer)
            finally:
                given_up.set()

        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        r, w = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        try:
            w.write(_get(f"/bytes/{size}"))
            await asyncio.wait_for(given_up.wait(), 30)  # nothing read meanwhile
            got = 0
            with contextlib.suppress(ConnectionResetError):
                while chunk := await r.read(1 << 20):
                    got += len(chunk)
            return got
        finally:
            w.close()
            server.close()

    assert uvloop.run(main()) < size
