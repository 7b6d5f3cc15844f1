"""`tcpstack demo`: the stack in a private network namespace, reached by the kernel's ping, curl and nc."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile

ADDR = "10.7.0.2"
PEER = "10.7.0.1/24"


def _say(text: str = "") -> None:
    print(text, flush=True)


def run_demo() -> int:
    from stack import control
    from stack.netns import NetNs, start_serve, wait_for

    if os.geteuid() != 0:
        print("tcpstack demo: needs root to create a network namespace and a TUN device", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="tcpstack-demo-") as tmp, NetNs("tcpstack-demo") as ns:
        sock = os.path.join(tmp, "control.sock")
        log_path = os.path.join(tmp, "serve.log")
        serve = start_serve(ns, sock, log_path, "--msl", "1", "--trace", addr=ADDR, peer=PEER)
        _say(f"tcpstack is serving at {ADDR} in network namespace {ns.name} (kernel side {PEER})\n")
        ok = True

        _say(f"$ ping -c 3 {ADDR}")
        ping = ns.run(["ping", "-c", "3", "-W", "2", ADDR], text=True)
        _say(ping.stdout.strip())
        ok &= ping.returncode == 0

        _say(f"\n$ curl -s http://{ADDR}/")
        page = ns.run(["curl", "-s", "-m", "10", f"http://{ADDR}/"], text=True)
        _say(page.stdout.strip())
        ok &= page.returncode == 0 and "tcpstack" in page.stdout

        _say(f"\n$ curl -s http://{ADDR}/bytes/100000 | sha256sum    (and /bytes/100000.sha256)")
        body = ns.run(["curl", "-s", "-m", "20", f"http://{ADDR}/bytes/100000"])
        expected = ns.run(["curl", "-s", "-m", "10", f"http://{ADDR}/bytes/100000.sha256"], text=True).stdout.strip()
        got = hashlib.sha256(body.stdout).hexdigest()
        match = got == expected and len(body.stdout) == 100000
        _say(f"{len(body.stdout)} bytes, sha256 {got} {'matches' if match else 'DOES NOT MATCH ' + expected}")
        ok &= match

        message = b"hello over a userspace TCP stack\n"
        _say(f"\n$ echo 'hello over a userspace TCP stack' | nc -N {ADDR} 7")
        nc = ns.run(["nc", "-N", "-w", "5", ADDR, "7"], input=message)
        _say(nc.stdout.decode(errors="replace").strip())
        ok &= nc.stdout == message

        wait_for(
            lambda: all(r["state"] == "LISTEN" for r in control.request(sock, "netstat")), 15, "connections to finish"
        )
        serve.terminate()
        serve.wait(timeout=10)
        _say("\nState transitions the stack's connections went through (from --trace):")
        with open(log_path) as f:
            for line in f:
                if line.startswith("trace: "):
                    _say("  " + line[len("trace: ") :].rstrip())
        _say("\n" + ("demo OK" if ok else "demo FAILED"))
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run_demo())
