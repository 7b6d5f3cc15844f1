"""Two dual-stack Stacks joined by a SOCK_SEQPACKET pair: TCP over IPv6 end to end through the driver, no TUN."""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct

import uvloop
from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6

from stack.aio.fault import FaultSpec, FaultyDevice
from stack.aio.stack import Stack
from stack.aio.tun import SocketPairDevice
from stack.pcap import CapturingDevice, PcapWriter
from stack.plot import read_pcap, time_sequence
from stack.services import SERVICES

CLIENT6, SERVER6 = "fd3d:fa7b:d17d::1", "fd3d:fa7b:d17d::2"


def run(coro, timeout: float = 120):
    return uvloop.run(asyncio.wait_for(coro, timeout))


async def _echo6(size: int, pcap: str | None = None, fault: str | None = None) -> tuple[bytes, dict]:
    da, db = SocketPairDevice.pair()
    if pcap is not None:
        da = CapturingDevice(da, PcapWriter(pcap))
    if fault is not None:
        da = FaultyDevice(da, FaultSpec.parse(fault), asyncio.get_running_loop())
    client = Stack(da, ["10.0.0.1", CLIENT6])
    server = Stack(db, ["10.0.0.2", SERVER6])
    try:
        await server.start_server(SERVICES["echo"], port=7)
        reader, writer = await client.open_connection(SERVER6, 7)
        assert writer.get_extra_info("peername") == (SERVER6, 7, 0, 0)
        data = os.urandom(size)
        writer.write(data)
        writer.write_eof()
        got = await reader.read(-1)
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        return got, server.stats()
    finally:
        await client.close()
        await server.close()


def _records(path: str) -> list[bytes]:
    """The packets of a classic pcap file (stack/pcap.py writes little-endian, raw IP)."""
    data = open(path, "rb").read()
    out, pos = [], 24
    while pos + 16 <= len(data):
        length = struct.unpack_from("<I", data, pos + 8)[0]
        out.append(data[pos + 16 : pos + 16 + length])
        pos += 16 + length
    return out


def test_loopback_ipv6_echo_roundtrip_with_loss_recovers():
    """RFC 8200 + RFC 9293: the whole TCP, retransmissions included, runs over IPv6 between two stacks."""
    _, stats = run(_echo6(300_000, fault="loss=3%,seed=7"))
    assert stats["PassiveOpens"] == 1 and stats["RetransSegs"] > 0


def test_loopback_ipv6_flow_label_one_per_direction_and_mss_1440(tmp_path):
    """RFC 6437 §3: every packet of a connection carries the same non-zero flow label; RFC 8200 §8.3:
    the SYN offers MTU - 60."""
    pcap = str(tmp_path / "six.pcap")
    run(_echo6(50_000, pcap=pcap))
    packets = [IPv6(p) for p in _records(pcap)]
    assert packets and all(p.version == 6 for p in packets)
    labels = {(p.src, p.fl) for p in packets}
    by_source = {src for src, _ in labels}
    assert len(labels) == len(by_source) == 2 and all(fl for _, fl in labels)
    syns = [p for p in packets if p[TCP].flags & 0x02]
    assert syns and all(dict(p[TCP].options)["MSS"] == 1440 for p in syns)


async def _refused_families() -> tuple[list, list]:
    """Which families reach a server bound to 0.0.0.0, and one bound to ::."""
    da, db = SocketPairDevice.pair()
    client = Stack(da, ["10.0.0.1", CLIENT6])
    server = Stack(db, ["10.0.0.2", SERVER6])
    outcomes: dict[str, list[str]] = {}
    try:
        for host, port in (("0.0.0.0", 7), ("::", 9)):
            srv = await server.start_server(SERVICES["echo"], host, port)
            assert [s.getsockname()[0] for s in srv.sockets] == [host]
            for target in ("10.0.0.2", SERVER6):
                try:
                    _, writer = await client.open_connection(target, port)
                    writer.close()
                    outcomes.setdefault(host, []).append("connected")
                except ConnectionRefusedError:
                    outcomes.setdefault(host, []).append("refused")
        return outcomes["0.0.0.0"], outcomes["::"]
    finally:
        await client.close()
        await server.close()


def test_loopback_listener_bound_to_one_family_refuses_the_other():
    """asyncio's listeners: host "0.0.0.0" is IPv4 only, "::" IPv6 only (IPV6_V6ONLY); the other family
    meets a closed port (RST)."""
    v4_only, v6_only = run(_refused_families())
    assert v4_only == ["connected", "refused"]
    assert v6_only == ["refused", "connected"]


def test_loopback_ipv6_capture_plots_as_a_time_sequence(tmp_path):
    """`tcpstack plot` reads IPv6 captures: the echo's data direction is found with bracketed endpoints."""
    pcap = str(tmp_path / "six.pcap")
    run(_echo6(100_000, pcap=pcap))
    ts = time_sequence(read_pcap(pcap))
    assert ts.sender.startswith("[fd3d:fa7b:d17d::") and ts.receiver.startswith("[fd3d:fa7b:d17d::")
    assert ts.data and max(d.end for d in ts.data) == 100_000
