"""IPv6 beside IPv4 on one TUN (RFC 8200): the kernel's ping -6, curl -6 and nc -6 against a dual-stack
`tcpstack serve`, and `tcpstack nc` to a kernel server over IPv6."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from stack.netns import NetNs, wait_for
from stack.netns import start_serve as netns_start_serve
from stack.services.http import pattern_sha256
from tests.integration.conftest import ADDR, start_serve

ADDR6 = "fd3d:fa7b:d17d::2"
PEER6 = "fd3d:fa7b:d17d::1/64"


@pytest.fixture
def dual(netns, tmp_path):
    return start_serve(netns, tmp_path, "--addr", ADDR6, "--peer", PEER6)


def test_dual_stack_ping6_gets_echo_replies(dual):
    """RFC 4443 §4.2: each echo request gets a reply with its identifier, sequence number and data."""
    result = dual.ns.run(["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", ADDR6], text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 received" in result.stdout
    assert dual.stats()["Icmp6InEchos"] >= 3


def test_dual_stack_curl6_and_curl4_served_by_one_listener(dual):
    """A listener bound to no address takes both families (RFC 8200 beside RFC 791)."""
    body = dual.ns.run(["curl", "-6", "-sS", "-m", "60", f"http://[{ADDR6}]/bytes/2000000"])
    assert body.returncode == 0, body.stderr
    assert hashlib.sha256(body.stdout).hexdigest() == pattern_sha256(2_000_000)
    v4 = dual.ns.run(["curl", "-4", "-sS", "-m", "20", f"http://{ADDR}/"], text=True)
    assert v4.returncode == 0 and "Hello from tcpstack" in v4.stdout, v4.stderr
    listeners = [r for r in dual.netstat() if r["state"] == "LISTEN" and r["local"] == "*:80"]
    assert len(listeners) == 1


def test_dual_stack_nc6_echo_comes_back_identical(dual):
    data = os.urandom(300_000)
    result = dual.ns.run(["nc", "-6", "-N", "-w", "30", ADDR6, "7"], input=data, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data


def test_dual_stack_syn_mss_is_mtu_minus_60(dual):
    """RFC 8200 §8.3: over IPv6 the MSS leaves room for the 40-byte header (1500 - 60 = 1440)."""
    script = (
        f"import socket; s = socket.create_connection(('{ADDR6}', 7), timeout=10);"
        "print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))"
    )
    result = dual.ns.run([sys.executable, "-c", script], text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) <= 1440 - 12  # the kernel's MSS: ours less the timestamp option


def test_dual_stack_link_chatter_counted_not_errors(dual):
    """The kernel's router solicitations and MLD reports on the new link are counted as what they are."""

    def chatter() -> int:
        stats = dual.stats()
        return stats.get("Icmp6InRouterSolicits", 0) + stats.get("Icmp6InMLDv2Reports", 0)

    wait_for(chatter, 15, "router solicitations or MLD reports from the kernel")
    stats = dual.stats()
    assert stats.get("InAddrErrors", 0) == 0 and stats.get("Icmp6InErrors", 0) == 0


KERNEL_SERVER6 = r"""
import socket, sys
srv = socket.socket(socket.AF_INET6); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("::", 5000)); srv.listen(1)
open(sys.argv[1], "w").close()
conn, peer = srv.accept()
data = b""
while chunk := conn.recv(65536):
    data += chunk
conn.sendall(peer[0].encode() + b" " + data[::-1])
conn.close()
"""


def test_tcpstack_nc6_to_kernel_server(netns, tmp_path):
    """`tcpstack nc` opens an IPv6 connection (active open, our flow label and MSS) to the kernel."""
    ready = tmp_path / "ready"
    server = netns.popen([sys.executable, "-c", KERNEL_SERVER6, str(ready)])
    nc_args = ["--tun", "tun1", "--addr", "fd3e::2", "--peer", "fd3e::1/64", "--addr", "10.9.0.2"]
    nc_args += ["--peer", "10.9.0.1/24"]
    try:
        wait_for(lambda: ready.exists() or server.poll() is not None, 20, "kernel server")
        assert server.poll() is None
    except Exception:
        server.kill()
        raise
    nc = netns.run(
        [sys.executable, "-m", "stack.cli", "nc", *nc_args, "fd3e::1", "5000"], input=b"hello over six", timeout=60
    )
    assert nc.returncode == 0, nc.stderr.decode()
    assert nc.stdout == b"fd3e::2 " + b"hello over six"[::-1]
    server.wait(timeout=30)


def test_tcpstack_nc6_to_closed_port_is_refused(netns):
    nc = netns.run(
        [sys.executable, "-m", "stack.cli", "nc", "--tun", "tun1", "--addr", "fd3e::2", "--peer", "fd3e::1/64"]
        + ["fd3e::1", "5999"],
        stdin=subprocess.DEVNULL,
        timeout=60,
        text=True,
    )
    assert nc.returncode != 0
    assert "connection refused" in nc.stderr


def test_dual_stack_ping6_larger_than_mtu_is_reassembled(dual):
    """RFC 8200 §4.5: the kernel fragments a 3000-byte echo request, the pieces are put back together,
    and the reply, too big for the link, goes back in fragments the kernel reassembles."""
    result = dual.ns.run(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "-s", "3000", ADDR6], text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 received" in result.stdout
    stats = dual.stats()
    assert stats["ReasmOKs"] >= 2 and stats["Ip6FragCreates"] >= 2


ROUTER6 = "fd3e:1::1/64"
CLIENT6 = "fd3e:1::2/64"


@pytest.fixture
def client6(netns):
    """A second namespace reaching the dual stack over IPv6 through `netns`, which routes between a veth
    pair and the TUN (IPv6 routers never fragment: they answer with Packet Too Big)."""
    ns = NetNs("tcpstack-test")
    try:
        netns.run(["ip", "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", ns.name], check=True)
        netns.run(["ip", "-6", "addr", "add", ROUTER6, "dev", "va", "nodad"], check=True)
        netns.run(["ip", "link", "set", "va", "up"], check=True)
        netns.run(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"], check=True)
        ns.run(["ip", "-6", "addr", "add", CLIENT6, "dev", "vb", "nodad"], check=True)
        ns.run(["ip", "link", "set", "vb", "up"], check=True)
        ns.run(["ip", "-6", "route", "add", "fd3d:fa7b:d17d::/64", "via", ROUTER6.split("/")[0]], check=True)
        yield ns
    finally:
        ns.close()


def test_packet_too_big_from_router_shrinks_segments_and_download_completes(netns, client6, tmp_path):
    """RFC 8201 §4: the stack sends 1500-byte packets, the router's 1280-byte link answers with ICMPv6
    Packet Too Big, the stack lowers its MSS to 1280 - 60 (less options) and the download completes."""
    served = start_serve(netns, tmp_path, "--addr", ADDR6, "--peer", PEER6)
    netns.run(["ip", "link", "set", "va", "mtu", "1280"], check=True)  # the client's end stays at 1500
    size = 2_000_000
    body = client6.run(["curl", "-6", "-sS", "-m", "60", f"http://[{ADDR6}]/bytes/{size}"])
    assert body.returncode == 0, body.stderr
    assert hashlib.sha256(body.stdout).hexdigest() == pattern_sha256(size)
    stats = served.stats()
    assert stats["Icmp6InPktTooBigs"] >= 1 and stats["TCPPmtuReductions"] >= 1, stats
    assert stats.get("OutOfWindowIcmps", 0) == 0


def test_ipv6_only_stack_serves_curl6_and_ping6(netns, tmp_path):
    """A stack with only an IPv6 address: its listeners take IPv6, ping -6 and curl -6 reach it."""
    control_path, log_path = str(tmp_path / "control.sock"), str(tmp_path / "serve.log")
    netns_start_serve(netns, control_path, log_path, addr=ADDR6, peer=PEER6)
    ping = netns.run(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", ADDR6], text=True)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    page = netns.run(["curl", "-6", "-sS", "-m", "20", f"http://[{ADDR6}]/"], text=True)
    assert page.returncode == 0 and "Hello from tcpstack" in page.stdout, page.stderr


def test_dual_stack_closed_port_over_ipv6_gets_rst(dual):
    """RFC 9293 §3.10.7.1 over IPv6: a SYN to a closed port gets <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>."""
    before = dual.stats().get("OutRsts", 0)
    result = dual.ns.run(["nc", "-6", "-z", "-w", "5", ADDR6, "5999"], text=True, timeout=30)
    assert result.returncode != 0
    assert dual.stats().get("OutRsts", 0) > before


def test_tcpstack_nc6_listen_takes_kernel_client(netns):
    """`tcpstack nc -l` on a stack with an IPv6 address accepts the kernel's nc -6 and carries its bytes."""
    args = [sys.executable, "-m", "stack.cli", "nc", "--tun", "tun0", "--addr", ADDR6, "--peer", PEER6]
    listener = netns.popen([*args, "-l", "5000"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    wait_for(lambda: netns.run(["ping", "-6", "-c1", "-W1", ADDR6]).returncode == 0, 30, "the listener's stack")

    def connected() -> bool:  # refused while the listener is still starting: try again
        client = netns.run(["nc", "-6", "-N", "-w", "10", ADDR6, "5000"], input=b"over six\n", timeout=60)
        return client.returncode == 0

    wait_for(connected, 30, "the kernel's nc -6 to reach tcpstack nc -l", interval=0.2)
    listener.stdin.close()
    assert listener.stdout.read() == b"over six\n"
    assert listener.wait(timeout=30) == 0
