"""A kernel peer that shrinks its receive window below what we already sent (RFC 9293 §3.8.6).

Linux shrinks its window only with net.ipv4.tcp_shrink_window=1 (a per-namespace sysctl); with it, a
socket whose SO_RCVBUF is cut mid-transfer moves its right window edge left, below our SND.NXT. Our ACKs
must then carry a sequence number inside its window (Linux tcp_acceptable_seq), or it discards them.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import time

import pytest

from stack.plot import read_pcap
from stack.wire.codec import TcpPacket, decode
from stack.wire.segment import Flags
from stack.wire.seq import seq_add, seq_sub
from tests.integration.conftest import ADDR, PEER, start_serve

KERNEL = int(ipaddress.IPv4Interface(PEER).ip)

# Echo both ways at once: a sender thread, and a reader that cuts its receive buffer after the first
# 300 KB and then reads slowly, so the echoed stream meets a shrunk window while the client's data must
# still be acknowledged. Prints OK when the echo is byte for byte what was sent.
SHRINKING_ECHO_CLIENT = r"""
import hashlib, os, socket, sys, threading, time
data = os.urandom(int(sys.argv[2]))
s = socket.create_connection((sys.argv[1], 7), timeout=60)
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=send, daemon=True).start()
got = bytearray()
while len(got) < 300_000:
    got.extend(s.recv(65536))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
while chunk := s.recv(2048):
    got.extend(chunk)
    time.sleep(0.002)
same = hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
print("OK" if same else f"MISMATCH {len(got)} of {len(data)} bytes")
"""


def beyond_right_edge(pcap: str) -> tuple[int, int, int]:
    """(our segments without data, SYN or FIN; those whose SEG.SEQ lies beyond the kernel's last
    advertised right window edge by a unit of its window scale or more; our data segments that end
    beyond that edge, other than one at the kernel's last ACK, which may probe a window too small for it)
    in the capture."""
    scale = 0
    edge = acked = None
    pure = beyond = data_beyond = 0
    for _, raw in read_pcap(pcap):
        pkt = decode(raw)
        if type(pkt) is not TcpPacket:
            continue
        seg = pkt.segment
        if pkt.src == KERNEL:
            if seg.flags & Flags.SYN:
                scale = seg.options.wscale or 0
            elif seg.flags & Flags.ACK:
                acked, edge = seg.ack, seq_add(seg.ack, seg.window << scale)
        elif edge is None or seg.flags & (Flags.SYN | Flags.RST):
            continue
        elif seg.payload:
            if seg.seq != acked and seq_sub(seq_add(seg.seq, len(seg.payload)), edge) > 0:
                data_beyond += 1
        elif not seg.flags & Flags.FIN:
            pure += 1
            if seq_sub(seg.seq, edge) >= 1 << scale:
                beyond += 1
    return pure, beyond, data_beyond


def test_established_peer_shrinks_window_acks_stay_acceptable_and_echo_completes(netns, tmp_path):
    """RFC 9293 §3.8.6: a sender copes with a window that shrinks, resending only what lies inside it;
    Linux tcp_acceptable_seq: a segment without data carries SND.NXT only while it is inside the peer's
    window, else its right edge."""
    if not os.path.exists("/proc/sys/net/ipv4/tcp_shrink_window"):
        pytest.skip("this kernel never shrinks its window (net.ipv4.tcp_shrink_window came with Linux 6.5)")
    netns.run(["sysctl", "-qw", "net.ipv4.tcp_shrink_window=1"], check=True)
    pcap = str(tmp_path / "shrink.pcap")
    served = start_serve(netns, tmp_path, "--pcap", pcap)
    started = time.monotonic()
    client = netns.run([sys.executable, "-c", SHRINKING_ECHO_CLIENT, ADDR, "2000000"], text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert client.stdout.strip() == "OK", (client.stdout, client.stderr)
    # it takes 2 to 3 s: resends paced by timeouts rather than by the kernel's ACKs would take 10 s or more
    assert elapsed < 30, f"the echo took {elapsed:.1f} s"
    assert served.stop() == 0  # the pcap is flushed
    pure, beyond, data_beyond = beyond_right_edge(pcap)
    assert pure > 0, "the kernel's data was never acknowledged by a pure ACK: the window did not shrink"
    assert beyond == 0, f"{beyond} of {pure} pure ACKs carried a sequence number beyond the kernel's window"
    assert data_beyond == 0, f"{data_beyond} data segments went beyond the kernel's window"
