"""tools/tun_relay.c, the benchmark's ceiling: two kernels talk through it as through a wire."""

from __future__ import annotations

import subprocess
from pathlib import Path

from stack.netns import NetNs, wait_for

RELAY_SOURCE = Path(__file__).resolve().parents[2] / "tools" / "tun_relay.c"


def test_tun_relay_carries_ping_and_tcp_between_two_namespaces(tmp_path):
    """Every packet read from one TUN device is written to the other: ping and a TCP echo get through,
    and the relay counts what it moved in each direction."""
    binary = tmp_path / "tun_relay"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", str(binary), str(RELAY_SOURCE)], check=True)
    with NetNs("tcpstack-test-relay-a") as a, NetNs("tcpstack-test-relay-b") as b:
        ready = tmp_path / "ready"
        relay = subprocess.Popen(
            [str(binary), a.name, "rt0", b.name, "rt1", str(ready)], stdout=subprocess.PIPE, text=True
        )
        try:
            wait_for(lambda: ready.exists() or relay.poll() is not None, 30, "tun_relay")
            assert relay.poll() is None
            for ns, dev, addr in ((a, "rt0", "10.11.0.1/24"), (b, "rt1", "10.11.0.2/24")):
                ns.run(["ip", "addr", "add", addr, "dev", dev], check=True)
                ns.run(["ip", "link", "set", dev, "up"], check=True)
            assert a.run(["ping", "-c", "2", "-W", "5", "10.11.0.2"]).returncode == 0
            server = b.popen(["nc", "-l", "10.11.0.2", "7007"], stdout=subprocess.PIPE)
            wait_for(lambda: "7007" in b.run(["ss", "-ltn"], text=True).stdout, 10, "nc -l")
            a.run(["nc", "-N", "10.11.0.2", "7007"], input=b"through the relay\n", check=True, timeout=30)
            assert server.communicate(timeout=30)[0] == b"through the relay\n"
        finally:
            relay.terminate()
            out, _ = relay.communicate(timeout=10)
    a_to_b, b_to_a = map(int, out.split()[1::3][:2])
    assert a_to_b >= 2 and b_to_a >= 2, out
