"""TCP Fast Open against the kernel's client (RFC 7413): `serve --fast-open` hands out a cookie, and the
kernel's next connection sends its request in the SYN, which the echo service answers at once."""

from __future__ import annotations

import sys

from scapy.all import IP, TCP, rdpcap

from tests.integration.conftest import ADDR, start_serve

# two connections from the kernel's fast open client (sendto with MSG_FASTOPEN): the first asks for a
# cookie, the second carries it with its data in the SYN; each prints what the echo service answered
CLIENT = f"""
import socket
for message in (b"first request", b"second request"):
    s = socket.socket()  # (blocking: with a timeout, sendto would return EINPROGRESS)
    s.sendto(message, socket.MSG_FASTOPEN, ("{ADDR}", 7))
    got = b""
    while len(got) < len(message):
        got += s.recv(100)
    print(got.decode())
    s.close()
"""


def test_fast_open_kernel_client_second_connection_sends_request_in_syn(netns, tmp_path):
    assert netns.run(["sysctl", "-w", "net.ipv4.tcp_fastopen=1"]).returncode == 0  # the client side
    pcap = tmp_path / "fast_open.pcap"
    served = start_serve(netns, tmp_path, "--fast-open", "16", "--pcap", str(pcap))
    result = netns.run([sys.executable, "-c", CLIENT], text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["first request", "second request"]
    stats = served.stats()
    assert served.stop() == 0
    assert stats.get("TCPFastOpenCookieReqd") == 1 and stats.get("TCPFastOpenPassive") == 1, stats
    packets = [p for p in rdpcap(str(pcap)) if TCP in p]
    syns = [p for p in packets if p[TCP].flags == "S"]
    synacks = [p for p in packets if p[TCP].flags == "SA" and p[IP].src == ADDR]
    assert len(syns) == 2 and len(synacks) == 2
    assert len(syns[0][TCP].payload) == 0 and bytes(syns[1][TCP].payload) == b"second request"
    assert synacks[0][TCP].ack == syns[0][TCP].seq + 1
    assert synacks[1][TCP].ack == syns[1][TCP].seq + 1 + len(b"second request")  # the data acknowledged
