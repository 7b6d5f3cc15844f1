"""IP against the kernel as a router: fragments reach the stack whole, and frag-needed shrinks its segments.

The stack's namespace forwards between its TUN device and a veth pair to a second namespace, where the
kernel's own TCP (curl) is the client. Both namespaces belong to the test and are removed afterwards.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from stack.netns import NetNs
from stack.services.http import pattern_sha256
from tests.integration.conftest import ADDR, start_serve

ROUTER_SIDE = "10.9.0.1/24"
CLIENT_SIDE = "10.9.0.2/24"


@pytest.fixture
def client(netns):
    """A second namespace reaching the stack through `netns`, which forwards between veth and TUN."""
    ns = NetNs("tcpstack-test")
    try:
        netns.run(["ip", "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", ns.name], check=True)
        netns.run(["ip", "addr", "add", ROUTER_SIDE, "dev", "va"], check=True)
        netns.run(["ip", "link", "set", "va", "up"], check=True)
        netns.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
        ns.run(["ip", "addr", "add", CLIENT_SIDE, "dev", "vb"], check=True)
        ns.run(["ip", "link", "set", "vb", "up"], check=True)
        ns.run(["ip", "route", "add", "10.7.0.0/24", "via", ROUTER_SIDE.split("/")[0]], check=True)
        yield ns
    finally:
        ns.close()


def test_segments_fragmented_by_router_arrive_whole(netns, client, tmp_path):
    """RFC 791 §3.2: the client's segments leave without DF, the router fragments them for the TUN's small
    MTU, and the stack reassembles every one: the uploaded bytes hash the same on both sides."""
    served = start_serve(netns, tmp_path)
    netns.run(["ip", "link", "set", "tun0", "mtu", "576"], check=True)  # after the stack offered MSS 1460
    client.run(["sysctl", "-qw", "net.ipv4.ip_no_pmtu_disc=1"], check=True)  # no DF: routers may fragment
    data = os.urandom(300_000)
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    result = client.run(["curl", "-sS", "-m", "60", "--data-binary", f"@{path}", f"http://{ADDR}/sha256"], text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == hashlib.sha256(data).hexdigest()
    stats = served.stats()
    assert stats["ReasmOKs"] >= 100, stats  # 300 kB in segments of up to 1460 bytes, fragmented
    assert stats["ReasmReqds"] >= 2 * stats["ReasmOKs"]
    assert stats.get("ReasmOverlaps", 0) == 0


def test_frag_needed_from_router_shrinks_segments_and_download_completes(netns, client, tmp_path):
    """RFC 1191: the stack sends 1500-byte segments with DF, the router's 1000-byte link answers with
    ICMP fragmentation needed, the stack lowers its MSS to 960 and the download completes intact."""
    served = start_serve(netns, tmp_path)
    netns.run(["ip", "link", "set", "va", "mtu", "1000"], check=True)  # the client's end stays at 1500
    size = 2_000_000
    body = client.run(["curl", "-sS", "-m", "60", f"http://{ADDR}/bytes/{size}"])
    assert body.returncode == 0, body.stderr
    assert len(body.stdout) == size
    assert hashlib.sha256(body.stdout).hexdigest() == pattern_sha256(size)
    stats = served.stats()
    assert stats["TCPPmtuReductions"] >= 1, stats
    assert stats.get("OutOfWindowIcmps", 0) == 0
