"""Socket options of the library's connections as the kernel peer sees them on the wire: a server written
with the library sets IP_TOS on an accepted connection, and tcpdump on the kernel's side of the TUN
device records what reaches the kernel."""

from __future__ import annotations

import subprocess
import sys

from scapy.all import IP, TCP, rdpcap

from stack.netns import wait_for
from tests.integration.conftest import ADDR, PEER

# upper-cases one line; IP_TOS and IP_MTU_DISCOVER are set on the accepted connection, after its SYN,ACK left
TOS_SERVER = rf"""
import asyncio, socket
from stack import Stack

async def handle(reader, writer):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x2B)
    sock.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER, IP_PMTUDISC_DONT (Python lacks the names)
    print("tos", sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS), flush=True)
    writer.write((await reader.readline()).upper())
    await writer.drain()
    writer.close()

async def main():
    stack = await Stack.open_tun("tun0", "{ADDR}", "{PEER}")
    server = await stack.start_server(handle, "{ADDR}", 7)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


def _started(proc: subprocess.Popen, out, text: str) -> bool:
    if proc.poll() is not None:
        raise RuntimeError(f"exited with {proc.returncode}: {out.read_text()}")
    return text in out.read_text()


def test_established_ip_tos_and_mtu_discover_set_mark_segments_the_kernel_receives(netns, tmp_path):
    """ip(7) IP_TOS: the DSCP bits of the TOS byte (RFC 2474) on every segment sent after it is set; the
    ECN field (RFC 3168 §5) stays TCP's, so 0x2b is sent as 0x28. IP_MTU_DISCOVER IP_PMTUDISC_DONT: those
    segments leave without DF (RFC 791 §3.1), where the default (IP_PMTUDISC_WANT) sets it (RFC 1191 §3)."""
    out = tmp_path / "server.out"
    with open(out, "w") as f:
        server = netns.popen([sys.executable, "-c", TOS_SERVER], stdout=f, stderr=subprocess.STDOUT)
    wait_for(lambda: _started(server, out, "listening"), 30, "the library server")
    pcap, dump_log = tmp_path / "kernel.pcap", tmp_path / "tcpdump.log"
    with open(dump_log, "w") as f:
        dump = netns.popen(["tcpdump", "-i", "tun0", "--immediate-mode", "-U", "-n", "-w", str(pcap), "tcp"], stderr=f)
    wait_for(lambda: _started(dump, dump_log, "listening on"), 30, "tcpdump")
    nc = netns.run(["nc", "-N", ADDR, "7"], input=b"mark me\n", timeout=30)
    assert nc.stdout == b"MARK ME\n"
    wait_for(lambda: "tos 40" in out.read_text(), 10, "the server's getsockopt")

    def ours() -> list:
        return [p for p in rdpcap(str(pcap)) if TCP in p and p[IP].src == ADDR]

    wait_for(lambda: any(p[TCP].flags.F for p in ours()), 10, "our FIN in the capture")
    ours = ours()
    synack = next(p for p in ours if p[TCP].flags.S)
    data = [p for p in ours if len(p[TCP].payload) > 0]
    assert synack[IP].tos == 0 and synack[IP].flags.DF
    assert data and all(p[IP].tos == 0x28 and not p[IP].flags.DF for p in data)


# sends a line in three writes, the middle byte as urgent data (MSG_OOB), each after the echo of the one
# before (so each is a segment of its own), and prints what comes back
OOB_CLIENT = rf"""
import socket
s = socket.create_connection(("{ADDR}", 7))
got = b""
for part, oob in ((b"before ", False), (b"!", True), (b" after\n", False)):
    s.send(part, socket.MSG_OOB) if oob else s.sendall(part)
    want = len(got) + len(part)
    while len(got) < want and (chunk := s.recv(100)):
        got += chunk
s.shutdown(socket.SHUT_WR)
while chunk := s.recv(100):
    got += chunk
print(got.decode(), end="")
"""


def test_established_urgent_byte_from_the_kernel_is_read_in_line(netns, tmp_path, served):
    """RFC 6093 §6: the library reads urgent data in-line, so the echo service returns the kernel's
    MSG_OOB byte in its place in the stream (a read only ends at the urgent mark)."""
    result = netns.run([sys.executable, "-c", OOB_CLIENT], text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "before ! after\n"
