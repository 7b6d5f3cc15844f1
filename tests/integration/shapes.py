"""Send crafted TCP segments to a peer and classify its answers, where the peer is either the kernel's
own TCP (behind a TUN device the test holds, in a private namespace) or tcpstack (a Stack on one end of
a socketpair, the test on the other). Both see the same bytes from the same address, so their answers
to every flag combination and option shape can be compared one for one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from stack.aio.stack import Stack
from stack.aio.tun import SocketPairDevice
from stack.netns import NetNs
from stack.script.sysctls import linux_sysctls
from stack.tcp.config import TcpConfig
from stack.wire import addr
from stack.wire.checksum import internet_checksum, tcp_checksum
from stack.wire.codec import IpPacket, TcpPacket, decode, encode_tcp
from stack.wire.segment import Flags, Segment, TcpOptions, flags_str
from stack.wire.seq import seq_add, seq_sub
from tests.integration.hostile import inside

HOST = "10.8.0.1"  # the peer under test (the kernel, or the stack)
US = "10.8.0.2"  # the test, crafting segments
HOST_IP = int(ipaddress.IPv4Address(HOST))
US_IP = int(ipaddress.IPv4Address(US))
HOST6 = "fd00:8::1"  # the same over IPv6
US6 = "fd00:8::2"
HOST6_IP = addr.parse(HOST6)  # (the stack's numbering of IPv6 addresses)
US6_IP = addr.parse(US6)
LISTEN_PORT = 8080
ICMP_PROTOCOLS = (1, 58)  # ICMP, ICMPv6
T = TypeVar("T")


def kind(replies: list[bytes]) -> str:
    """The kind of the first answer: none, RST, SYN-ACK, ACK, ICMP, or the flags of anything else."""
    for raw in replies:
        pkt = decode(raw)
        if type(pkt) is IpPacket and pkt.proto in ICMP_PROTOCOLS:
            return "ICMP"
        if type(pkt) is not TcpPacket:
            continue
        flags = pkt.segment.flags & (Flags.SYN | Flags.RST | Flags.ACK | Flags.FIN)
        if flags == Flags.SYN:
            continue  # the peer's own SYN, retransmitted: not an answer
        if flags == Flags.FIN | Flags.ACK and not pkt.segment.payload:
            continue  # the peer's own FIN, resent by its retransmission timer (no shape draws a FIN)
        if flags & Flags.RST:
            return "RST"
        if flags == Flags.SYN | Flags.ACK:
            return "SYN-ACK"
        if flags == Flags.ACK:
            return "ACK"
        return flags_str(flags)
    return "none"


def answer(replies: list[bytes], shape: Segment) -> str:
    """The kind of the first answer (as kind()) and its numbers as seen from `shape`, the segment it
    answers: its sequence number less the shape's acknowledgment number ("0" for a RST's absolute zero),
    its acknowledgment number less the shape's sequence number, its window, its length and its options
    (_options). A SYN,ACK's sequence number is left out: it is the peer's ISN, which has no relation to
    the shape."""
    what = kind(replies)
    if what in ("none", "ICMP"):
        return what
    for raw in replies:
        pkt = decode(raw)
        if type(pkt) is not TcpPacket or kind([raw]) != what:
            continue
        seg = pkt.segment
        seq = "" if what == "SYN-ACK" else " seq=0" if seg.seq == 0 else f" seq={seq_sub(seg.seq, shape.ack):+d}"
        ack = f" ack={seq_sub(seg.ack, shape.seq):+d}" if seg.flags & Flags.ACK else ""
        return f"{what}{seq}{ack} win={seg.window} len={len(seg.payload)}{_options(seg, shape)}"
    return what


def _options(seg: Segment, shape: Segment) -> str:
    """A SYN,ACK's MSS, window scale and SACK-permitted, an answer's timestamp echo (less the shape's TSval;
    its own TSval is the peer's clock) and its SACK blocks (less the shape's sequence number)."""
    out = ""
    if seg.flags & Flags.SYN:
        syn = seg.options
        out += f" mss={syn.mss} wscale={syn.wscale} sack_permitted={syn.sack_permitted}"
    if seg.options.timestamps is not None:
        sent = shape.options.timestamps
        out += f" ecr={seq_sub(seg.options.timestamps[1], sent[0]):+d}" if sent else f" ecr={seg.options.timestamps[1]}"
    for left, right in seg.options.sack_blocks:
        out += f" sack={seq_sub(left, shape.seq):+d}:{seq_sub(right, shape.seq):+d}"
    return out


def segment(
    sport: int, dport: int, seq: int, ack: int, flags: int, options: TcpOptions | None = None, payload: bytes = b""
) -> Segment:
    return Segment(sport, dport, seq, ack, Flags(flags), 65535, payload, options or TcpOptions(), urgent=0)


def by_port(packets: list[bytes]) -> dict[int, list[bytes]]:
    """Answers keyed by the test's port they are addressed to (ICMP: the port in the quoted header)."""
    out: dict[int, list[bytes]] = {}
    for raw in packets:
        pkt = decode(raw)
        if pkt.dst not in (US_IP, US6_IP):
            continue  # (the kernel's own IPv6 chatter: router solicitations, MLD reports)
        if type(pkt) is TcpPacket:
            out.setdefault(pkt.segment.dst_port, []).append(raw)
        elif type(pkt) is IpPacket and pkt.proto in ICMP_PROTOCOLS and len(pkt.payload) >= 8 + 40 + 4:
            quoted = pkt.payload[8:]
            header = (quoted[0] & 15) * 4 if quoted[0] >> 4 == 4 else 40
            out.setdefault(int.from_bytes(quoted[header : header + 2], "big"), []).append(raw)
    return out


def collect(fd: int, wait: float, until: Callable[[list[bytes]], bool] | None = None) -> list[bytes]:
    """Every packet readable from the non-blocking packet fd within `wait` seconds, or until `until` says
    that what came is all that is awaited."""
    out: list[bytes] = []
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        if select.select([fd], [], [], left)[0]:
            try:
                while True:
                    out.append(os.read(fd, 65535))
            except BlockingIOError:
                pass
            if until is not None and until(out):
                break
    return out


def from_ports(ports: Iterable[int], flags: int) -> Callable[[list[bytes]], bool]:
    """A stop condition for collect(): a segment with all of `flags` has come from each of `ports` (the
    test's own ports, which the answers are addressed to)."""
    awaited = set(ports)

    def all_came(packets: list[bytes]) -> bool:
        seen = set()
        for raw in packets:
            pkt = decode(raw)
            if type(pkt) is TcpPacket and pkt.segment.flags & flags == flags:
                seen.add(pkt.segment.dst_port)
        return awaited <= seen

    return all_came


def packets_of(items: list[Segment] | list[bytes], v6: bool, last_sent: dict[int, Segment]) -> list[bytes]:
    """Segments from the test to the peer under test (over IPv6 with `v6`) as packets, and packets as they
    are; the last TCP segment sent from each of the test's ports is noted in `last_sent` (a walk's shape,
    once it is sent)."""
    packets = []
    for item in items:
        if isinstance(item, Segment):
            packets.append(encode_tcp(US6_IP, HOST6_IP, item) if v6 else encode(item))
            last_sent[item.src_port] = item
        else:
            packets.append(item)
            pkt = decode(item)
            if type(pkt) is TcpPacket:
                last_sent[pkt.segment.src_port] = pkt.segment
    return packets


def fates(peer) -> dict[int, str]:
    """Whether each connection the last shapes went to is still there, by the test's port: an ACK far
    beyond its window, carrying the shape's ACK, draws a RST where nothing is left ("gone"), and an ACK,
    or nothing where answers are rate limited, where a connection, half-open or not, stays ("kept")."""
    shapes = dict(peer.last_sent)
    peer.receive(0.0)  # what came since (a SYN,ACK resent): not an answer to a probe
    probes = [
        segment(port, shape.dst_port, seq_add(shape.seq, 1 << 30), shape.ack, Flags.ACK)
        for port, shape in shapes.items()
    ]
    peer.send(probes)
    got = by_port(peer.receive(PROBE_WAIT))
    return {port: "gone" if "RST" in (kind([raw]) for raw in got.get(port, [])) else "kept" for port in shapes}


def side_by_side(run: Callable[[Any], T], kernel: KernelPeer, ours: StackPeer) -> tuple[T, T]:
    """`run` on both peers at once, each in a thread of its own (most of each run waits for answers): the
    kernel's result, then tcpstack's."""
    with concurrent.futures.ThreadPoolExecutor(2) as both:
        theirs, mine = both.submit(run, kernel), both.submit(run, ours)
        return theirs.result(), mine.result()


PROBE_WAIT = 0.25  # seconds for the RSTs that answer probes: both stacks send them at once


class KernelPeer:
    """The kernel's TCP at HOST (HOST6 with `v6`) behind a TUN device in `ns` whose other end this object
    reads and writes."""

    def __init__(self, ns: NetNs, v6: bool = False) -> None:
        import pytun

        self.ns = ns
        self.v6 = v6
        with inside(ns):
            self._tun = pytun.TunTapDevice(name="shape0", flags=pytun.IFF_TUN | pytun.IFF_NO_PI)
            self._tun.addr = HOST
            self._tun.dstaddr = US
            self._tun.netmask = "255.255.255.0"
            self._tun.mtu = 1500
            self._tun.up()
        if v6:  # no router solicitations, no duplicate address detection: the address works at once
            ns.run(["sysctl", "-qw", "net.ipv6.conf.shape0.accept_ra=0"])
            ns.run(["sysctl", "-qw", "net.ipv6.conf.shape0.router_solicitations=0"])
            ns.run(["ip", "-6", "addr", "add", f"{HOST6}/64", "dev", "shape0", "nodad"])
        else:
            ns.run(["sysctl", "-qw", "net.ipv6.conf.shape0.disable_ipv6=1"])
        for name, value in linux_sysctls(TcpConfig()).items():  # buffers and windows as tcpstack's defaults
            ns.run(["sysctl", "-qw", f"net.ipv4.{name}={value}"])
        self._fd = self._tun.fileno()
        os.set_blocking(self._fd, False)
        self._sockets: list[socket.socket] = []
        self._connected: list[socket.socket] = []  # active opens, which close_connected() closes
        self.last_sent: dict[int, Segment] = {}  # by the test's port: the last segment sent from it

    def listen(self, port: int) -> None:
        with inside(self.ns):
            s = socket.socket(socket.AF_INET6 if self.v6 else socket.AF_INET)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((HOST6 if self.v6 else HOST, port))
            s.listen(4096)
        self._sockets.append(s)

    def serve(self, port: int, data: bytes) -> None:
        """Listen on `port`; the application writes `data` to each connection it accepts, and keeps it open."""
        with inside(self.ns):
            listening = socket.create_server((HOST, port))
        self._sockets.append(listening)

        def accept() -> None:
            while True:
                try:
                    conn = listening.accept()[0]
                except OSError:  # closed: the peer is done
                    return
                self._sockets.append(conn)
                conn.sendall(data)

        threading.Thread(target=accept, daemon=True).start()

    def connect(self, port: int) -> None:
        """An active open towards the test: a SYN leaves through the TUN."""
        with inside(self.ns):
            s = socket.socket(socket.AF_INET6 if self.v6 else socket.AF_INET)
            s.setblocking(False)
            try:
                s.connect((US6 if self.v6 else US, port))
            except BlockingIOError:
                pass
        self._sockets.append(s)
        self._connected.append(s)

    def close_connected(self) -> None:
        """close() every active open: each sends its FIN."""
        for s in self._connected:
            s.close()

    def shut_connected(self) -> None:
        """shutdown(SHUT_WR) every active open: each sends its FIN, and its socket stays open."""
        for s in self._connected:
            s.shutdown(socket.SHUT_WR)

    def send(self, items: list[Segment] | list[bytes]) -> None:
        for p in packets_of(items, self.v6, self.last_sent):
            os.write(self._fd, p)

    def receive(self, wait: float, until: Callable[[list[bytes]], bool] | None = None) -> list[bytes]:
        return [p for p in collect(self._fd, wait, until) if p and p[0] >> 4 in (4, 6)]

    def close(self) -> None:
        for s in self._sockets:
            s.close()
        self._tun.close()


class _HalfOpen(asyncio.Protocol):
    """An application that never closes: a FIN is acknowledged, not answered by ours (as a kernel
    socket nobody calls close() on)."""

    def eof_received(self) -> bool:
        return True


class _Sends(asyncio.Protocol):
    """An application that writes its data as the connection opens."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def connection_made(self, transport) -> None:
        transport.write(self.data)


class StackPeer:
    """tcpstack at HOST and HOST6: a Stack on a loop in a thread, on one end of a socketpair; the test holds
    the other (and speaks IPv6 to it with `v6`); `config` for its TCP, else the Stack's default."""

    def __init__(self, v6: bool = False, config: TcpConfig | None = None) -> None:
        import uvloop

        self.v6 = v6
        self._config = config
        self._ours, theirs = SocketPairDevice.pair()
        self._raw = self._ours._sock
        self._raw.setblocking(False)
        self._loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.stack: Stack = self._call(self._make(theirs))
        self._pending: list = []
        self._connected: list[asyncio.Transport] = []  # active opens, which close_connected() closes
        self.last_sent: dict[int, Segment] = {}  # by the test's port: the last segment sent from it

    async def _make(self, device) -> Stack:
        return Stack(device, [HOST, HOST6], config=self._config)

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def listen(self, port: int) -> None:
        self._call(self.stack.create_server(_HalfOpen, port=port, backlog=4096))

    def serve(self, port: int, data: bytes) -> None:
        """Listen on `port`; the application writes `data` to each connection it accepts."""
        self._call(self.stack.create_server(lambda: _Sends(data), port=port))

    def connect(self, port: int) -> None:
        self._pending.append(asyncio.run_coroutine_threadsafe(self._connect(port), self._loop))

    async def _connect(self, port: int) -> None:
        try:
            transport, _ = await self.stack.create_connection(_HalfOpen, US6 if self.v6 else US, port)
        except OSError:
            return
        self._connected.append(transport)

    def close_connected(self) -> None:
        """close() every active open: each sends its FIN."""
        for transport in self._opened():
            self._loop.call_soon_threadsafe(transport.close)

    def shut_connected(self) -> None:
        """write_eof() on every active open: each sends its FIN, and stays open."""
        for transport in self._opened():
            self._loop.call_soon_threadsafe(transport.write_eof)

    def _opened(self) -> list[asyncio.Transport]:
        """The active opens' transports, once every create_connection() has returned: the ACK that completes
        a handshake leaves before the coroutine that waits for it resumes."""
        concurrent.futures.wait(self._pending, timeout=5.0)
        return list(self._connected)

    def send(self, items: list[Segment] | list[bytes]) -> None:
        for p in packets_of(items, self.v6, self.last_sent):
            self._raw.send(p)

    def receive(self, wait: float, until: Callable[[list[bytes]], bool] | None = None) -> list[bytes]:
        return collect(self._raw.fileno(), wait, until)

    def close(self) -> None:
        for f in self._pending:
            f.cancel()
        self._call(self.stack.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def encode(seg: Segment) -> bytes:
    return encode_tcp(US_IP, HOST_IP, seg)


def raw_packet(seg: Segment, tcp_options: bytes = b"", ip_options: bytes = b"") -> bytes:
    """A SYN-like packet from the test with exactly these option bytes (each padded to 4 with EOL), the
    lengths and both checksums right, so only the options are malformed."""
    tcp_options += b"\0" * (-len(tcp_options) % 4)
    ip_options += b"\0" * (-len(ip_options) % 4)
    bare = encode(Segment(seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags, seg.window))
    tcp = bytearray(bare[20:40]) + tcp_options
    tcp[12] = (20 + len(tcp_options)) // 4 << 4
    tcp[16:18] = b"\0\0"
    tcp[16:18] = tcp_checksum(US_IP, HOST_IP, bytes(tcp)).to_bytes(2, "big")
    ip = bytearray(bare[:20]) + ip_options
    ip[0] = 0x40 | len(ip) // 4
    ip[2:4] = (len(ip) + len(tcp)).to_bytes(2, "big")
    ip[10:12] = b"\0\0"
    ip[10:12] = internet_checksum(bytes(ip)).to_bytes(2, "big")
    return bytes(ip + tcp)
