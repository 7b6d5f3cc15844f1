"""The examples of docs/library.md, extracted from the page and run as they are, on asyncio's default loop
and on uvloop, each in its own namespace with the kernel's tools (nc, curl, Python's http.server and ssl)
as the peer: a server, a client, a TLS server (curl --cacert), a TLS client, and uvicorn's protocol
(dual stack: curl and curl -6)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from stack.netns import wait_for
from tests.tlscert import make_certificate

DOC = Path(__file__).resolve().parents[2] / "docs" / "library.md"
EXAMPLES = dict(re.findall(r"<!-- example: ([\w-]+) -->\n```python\n(.*?)```", DOC.read_text(), re.S))

# runs an example file as __main__, on uvloop when asked (asyncio.run then makes a uvloop loop)
RUNNER = """import asyncio, runpy, sys
if sys.argv[1] == "uvloop":
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
runpy.run_path(sys.argv[2], run_name="__main__")
"""

# a kernel TLS server at port 8443: answers one line with "pong over <TLS version>"
KERNEL_TLS_SERVER = r"""
import socket, ssl, sys
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain("cert.pem", "key.pem")
srv = socket.create_server(("0.0.0.0", 8443))
print("ready", flush=True)
conn, _ = srv.accept()
with ctx.wrap_socket(conn, server_side=True) as tls:
    line = tls.makefile("rb").readline()
    tls.sendall(b"pong over " + tls.version().encode() + b" to " + line)
    tls.unwrap()
"""


@pytest.fixture(params=["asyncio", "uvloop"])
def loop(request) -> str:
    return request.param


def test_docs_have_the_examples_the_suite_runs():
    assert set(EXAMPLES) == {"echo-server", "client", "tls-server", "tls-client", "uvicorn", "loopback"}


def _run_example(netns, tmp_path: Path, name: str, loop: str, wait: str | None = "listening on"):
    """The example as a process in the namespace, cwd tmp_path; with `wait`, returns once it printed that."""
    script = f"example_{name.replace('-', '_')}.py"  # not the name of a module it imports
    (tmp_path / script).write_text(EXAMPLES[name])
    out = tmp_path / f"{name}.out"
    with open(out, "w") as f:
        proc = netns.popen(
            [sys.executable, "-c", RUNNER, loop, script], cwd=tmp_path, stdout=f, stderr=subprocess.STDOUT
        )
    if wait is not None:

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"example {name} exited with {proc.returncode}:\n{out.read_text()}")
            return wait in out.read_text()

        wait_for(ready, 30, f"example {name} to print {wait!r}")
    return proc, out


def test_docs_echo_server_example_echoes_for_nc(netns, tmp_path, loop):
    _run_example(netns, tmp_path, "echo-server", loop)
    nc = netns.run(["nc", "-N", "10.7.0.2", "7"], input=b"hello from the kernel\n", timeout=30)
    assert nc.stdout == b"hello from the kernel\n"


def test_docs_client_example_fetches_from_kernel_http_server(netns, tmp_path, loop):
    netns.popen([sys.executable, "-m", "http.server", "8080"], cwd=tmp_path, stderr=subprocess.DEVNULL)
    wait_for(lambda: netns.run(["curl", "-sf", "http://127.0.0.1:8080/"]).returncode == 0, 30, "http.server")
    proc, out = _run_example(netns, tmp_path, "client", loop, wait=None)
    assert proc.wait(timeout=60) == 0, out.read_text()
    assert "HTTP/1.0 200 OK" in out.read_text()
    assert "connected from ('10.7.0.2'," in out.read_text()


def test_docs_tls_server_example_answers_curl_cacert(netns, tmp_path, loop):
    make_certificate(tmp_path, ["10.7.0.2"])
    _run_example(netns, tmp_path, "tls-server", loop)
    curl = netns.run(["curl", "-sS", "--cacert", str(tmp_path / "cert.pem"), "https://10.7.0.2:8443/"], timeout=30)
    assert curl.returncode == 0, curl.stderr.decode()
    assert curl.stdout == b"hello over TLSv1.3 on tcpstack\n"


def test_docs_tls_client_example_talks_to_kernel_tls_server(netns, tmp_path, loop):
    make_certificate(tmp_path, ["10.7.0.1"])
    server_out = tmp_path / "kernel-server.out"
    with open(server_out, "w") as f:
        server = netns.popen([sys.executable, "-c", KERNEL_TLS_SERVER], cwd=tmp_path, stdout=f, stderr=f)
    wait_for(lambda: "ready" in server_out.read_text() or server.poll() is not None, 30, "kernel TLS server")
    proc, out = _run_example(netns, tmp_path, "tls-client", loop, wait=None)
    assert proc.wait(timeout=60) == 0, out.read_text() + server_out.read_text()
    assert "reply: pong over TLSv1.3 to ping" in out.read_text()
    assert server.wait(timeout=30) == 0, server_out.read_text()


def test_docs_uvicorn_example_serves_curl_over_ipv4_and_ipv6(netns, tmp_path, loop):
    _run_example(netns, tmp_path, "uvicorn", loop)
    curl = netns.run(["curl", "-sS", "http://10.7.0.2:8000/"], timeout=30)
    assert curl.returncode == 0, curl.stderr.decode()
    assert curl.stdout == b"hello 10.7.0.1, from uvicorn over tcpstack\n"
    curl6 = netns.run(["curl", "-6", "-sS", "http://[fd00:7::2]:8000/"], timeout=30)
    assert curl6.returncode == 0, curl6.stderr.decode()
    assert curl6.stdout == b"hello fd00:7::1, from uvicorn over tcpstack\n"


def test_docs_loopback_example_talks_to_itself_without_the_device(netns, tmp_path, loop):
    proc, out = _run_example(netns, tmp_path, "loopback", loop, wait=None)
    assert proc.wait(timeout=60) == 0, out.read_text()
    assert "echoed b'hello over the loopback' from ('127.0.0.1', 7)" in out.read_text()


def test_readme_library_example_is_the_docs_echo_server():
    """The README shows the echo server of docs/library.md, which the tests above run: they must not drift."""
    readme = (DOC.parents[1] / "README.md").read_text()
    section = readme.split("## Using the library\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert block == EXAMPLES["echo-server"]
