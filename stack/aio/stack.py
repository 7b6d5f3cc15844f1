"""The Stack: runs the sans-I/O core on an asyncio (uvloop) loop over a packet device.

Like aioquic's asyncio glue: read a batch -> decode -> IP/demux with `now` -> flush every touched
connection (events to transports, segments to the device) -> re-arm one timer for the earliest deadline.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import heapq
import itertools
import logging
import socket
import ssl as ssl_module
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import IO, TYPE_CHECKING, Any, Final, TypeAlias

from stack import limits, martians
from stack.aio import streams, tls
from stack.aio.addressing import Addressing, listener_address, unmapped
from stack.aio.clock import TimerResolution
from stack.aio.gc_watch import GcSince, settle_for_serving
from stack.aio.hosts import IpAddress, parse_host, sockaddr
from stack.aio.sendfile import send_file
from stack.aio.server import Server, new_protocol
from stack.aio.socketlike import StackSocket
from stack.aio.transport import TcpTransport, timeout_error
from stack.demux import EPHEMERAL_PORTS, SYN_FIN_DROPS, Demux
from stack.introspect import Clock, connection_row
from stack.ip import IpLayer, answering, fragment4, ms_since_midnight
from stack.ip6 import Ip6Layer, flow_label, fragment6, is_multicast
from stack.ip_options import reply_options
from stack.tcp import sockopts
from stack.tcp.config import TcpConfig
from stack.tcp.connection import Connection
from stack.tcp.counters import Counters
from stack.tcp.events import Closed, Connected, DataAvailable, PeerClosed, Reset, TimedOut, Unreachable
from stack.tcp.listener import Listener
from stack.tcp.state import OPEN_FOR_DATA, State, Transition
from stack.wire import addr, reasons
from stack.wire.batch import PacketBatch
from stack.wire.codec import BatchDecoder, BatchEncoder, IpPacket, Rejected, TcpPacket, encode_tcp
from stack.wire.reasons import DropReason
from stack.wire.segment import Segment

if TYPE_CHECKING:
    from stack.trace import EventLog

log: Final = logging.getLogger(__name__)
# payload of one super-segment: an IPv4 packet of at most 64 KB with 60+ header bytes
_TSO_MAX_BYTES: Final = 0xFFFF - 120
CLOSED_KEPT: Final = 16  # closed connections `netstat --closed` still shows
ProtocolFactory: TypeAlias = Callable[[], asyncio.BaseProtocol]
# What asyncio's calls take where the compiled build would check a narrower type: a port as getaddrinfo takes
# it (a number, a string of digits or a service name), a flag as any truth value
Port: TypeAlias = Any
Flag: TypeAlias = Any
_WAKES_APPLICATION: Final = (DataAvailable, PeerClosed)  # events after which an application often answers at once


def _fmt(endpoint: tuple[int, int]) -> str:
    return addr.fmt_endpoint(*endpoint)


class Stack:
    def __init__(
        self,
        device,
        addrs: str | Sequence[str],
        *,
        config: TcpConfig | None = None,
        trace: Callable[[str], None] | None = None,
        event_log: EventLog | None = None,
        network: str | None = None,
    ) -> None:
        self.device = device
        ours = [addr.parse(a) for a in ([addrs] if isinstance(addrs, str) else addrs)]
        self.addressing = Addressing(ours, network)  # `network`: the kernel side's IPv4 prefix (10.7.0.1/24)
        # what every packet is checked against, as attributes of the stack's own
        self.addr, self.addr6, self.addrs = self.addressing.addr, self.addressing.addr6, self.addressing.addrs
        self.sources = self.addressing.sources
        mss = device.mtu - 40
        self._loop = asyncio.get_running_loop()
        self.resolution = TimerResolution.of(self._loop)
        config = config if config is not None else TcpConfig(mss=mss)
        # the pacer may let a sender catch up by what a late timer costs (one tick of the loop's clock)
        # the core sends runs of full segments as one: a device with offloads cuts them (TSO), for one
        # without the batch builder does (software GSO), so faults and captures still see wire-sized packets
        slack = max(config.timer_slack, self.resolution.tick)
        self.config = replace(config, timer_slack=slack, tso_max_bytes=_TSO_MAX_BYTES)
        self.demux = Demux(self.config)
        self.ip = IpLayer(self.demux, self.addr, wall_clock=time.time)
        self.ip6 = Ip6Layer(self.demux, self.addrs, self.ip)
        self._flows: dict[Connection, int] = {}  # IPv6 flow labels (RFC 6437), one per connection
        # the IPv4 header, as it arrived, of the segment that opened a passive connection whose segments
        # send its record route or timestamp option back (_options_arrived); few connections have one
        self._ip_options: dict[Connection, bytes] = {}
        self.trace = trace  # one text line per state transition
        self.event_log = event_log  # the JSON-lines event log (`--trace FILE`); the Stack closes it
        self.counters: Counter[str] = Counter()
        self._gc = GcSince()  # the process's garbage collections since this stack started
        self._transports: dict[Connection, TcpTransport] = {}
        # connect() in progress: its future, its protocol factory, whether it reports IPv4-mapped addresses
        self._connecting: dict[Connection, tuple[asyncio.Future, ProtocolFactory, bool]] = {}
        self._servers: dict[Listener, list[Server]] = {}  # serving; several share a port with reuse_port
        self._bound: dict[int, list[Server]] = {}  # port -> servers, serving or not (start_serving=False)
        self._dirty: set[Connection] = set()
        self._flush_scheduled = False
        self._app_woken = False  # this flush handed an application data, EOF or a new connection
        self._conn_woke_app = False  # the connection being dispatched did
        self._after_app: set[Connection] = set()  # output held until the applications just woken have run
        self._failed: set[Connection] = set()  # reset after an internal error, until the flush that follows
        self._decoder = BatchDecoder(gro=True)  # software GRO where the device hands over wire-sized packets
        self._out = BatchEncoder(getattr(device, "vnet", 0), getattr(device, "gso", False))
        # segments to one of our own addresses: taken in on the loop's next iteration, never written to the
        # device, as Linux delivers a host's connections to itself through its loopback device
        self._looped: list[bytes] = []
        # a device that writes a flush without it being laid out first (TUN: payloads by writev) says so;
        # a capture or fault layer in between needs whole packets, and gets them built
        self._write_encoded = getattr(device, "write_encoded", None)
        self._heap: list[tuple[float, int, Connection]] = []
        self._scheduled: dict[Connection, float] = {}
        self._tiebreak = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None  # the deadline the loop's timer is armed for
        self._timer_fires = 0.0  # and when it may fire at the earliest (TimerResolution.earliest_fire)
        self._reassembly_timer: asyncio.TimerHandle | None = None  # armed while fragments wait
        self._closed = False
        self._held: dict[Connection, int] = {}  # bytes each connection is charged to the memory budget
        self._retired: Counters | None = None  # counters of connections already removed, summed
        # `netstat --closed`: the last ones, each with when it closed, its row made when asked (a closed
        # connection no longer changes), not for every connection that closes; or the row itself, made at
        # once for one that still holds data, so that no closed connection's buffers are kept for a row
        self._closed_conns: deque[tuple[Connection, Clock] | dict] = deque(maxlen=CLOSED_KEPT)
        self._idle = asyncio.Event()  # no connection left (nc --linger-time-wait waits for it)
        if trace is not None or event_log is not None:
            self.demux.on_transition = self._trace_transition
        if hasattr(device, "on_delayed_input"):
            device.on_delayed_input = self._input_released
        self._loop.add_reader(device.fileno(), self._on_readable)

    @classmethod
    async def open_tun(
        cls,
        tun: str,
        addrs: str | Sequence[str],
        peers: str | Sequence[str],
        *,
        mtu: int = 1500,
        config: TcpConfig | None = None,
        fault=None,
        pcap: str | None = None,
        trace: Callable[[str], None] | None = None,
        event_log: EventLog | None = None,
        offload: bool = True,
        note: Callable[[str], None] | None = None,
        queue=None,
    ) -> Stack:
        """The stack on a new TUN device, or on `queue`, one already opened queue of it (`--workers`).
        `offload`: where the kernel allows, TUN offloads (checksums both ways, super-segments both ways);
        off with `fault`, which acts on wire-sized packets. `note` hears one line when offloads were asked
        for and are off."""
        from stack.aio.tun import TunDevice

        addrs = [addrs] if isinstance(addrs, str) else list(addrs)
        peers = [peers] if isinstance(peers, str) else list(peers)
        if queue is not None:
            device = queue
        else:
            if offload and fault is not None:
                offload = False
                if note is not None:
                    note("offloads off: --fault acts on wire-sized packets")
            device = TunDevice(tun, addrs, peers, mtu, offload=offload)
            if device.offload_note is not None and note is not None:
                note(device.offload_note)
        try:
            if pcap is not None:
                from stack.pcap import CapturingDevice, PcapWriter

                device = CapturingDevice(device, PcapWriter(pcap))
            if fault is not None:
                from stack.aio.fault import FaultyDevice

                device = FaultyDevice(device, fault, asyncio.get_running_loop())
            if config is None:
                config = TcpConfig(mss=mtu - 40)
            elif config.mss > mtu - 40:
                config = replace(config, mss=mtu - 40)
            network = next((p for p in peers if ":" not in p), None)
            return cls(device, addrs, config=config, trace=trace, event_log=event_log, network=network)
        except BaseException:
            if queue is None:  # the device made here goes with the failure: its name stays free for a retry
                device.close()
            raise

    @staticmethod
    def now() -> float:
        # uvloop's clock has millisecond resolution: RTT samples on a local TUN need better
        return time.monotonic()

    # ------------------------------------------------------------ application API: asyncio's signatures

    async def create_server(
        self,
        protocol_factory: ProtocolFactory,
        host: str | Sequence[str] | None = None,
        port: Port = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: ssl_module.SSLContext | None = None,
        reuse_address: Flag = None,
        reuse_port: Flag = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: Flag = True,
    ) -> Server:
        """loop.create_server() on the stack. host None or "" listens on every address of the stack (of
        `family`, if given); a port of None or 0 picks a free one (server.sockets tells which). `flags` are
        getaddrinfo's, which literals do not need; reuse_address has nothing to change: listening never
        conflicts with connections in TIME_WAIT here."""
        self._check_open()
        if sock is not None:
            raise ValueError("sock= is a kernel socket: tcpstack listens on its own addresses, give host and port")
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        options = tls.TlsOptions.from_keywords(
            ssl, ssl_handshake_timeout=ssl_handshake_timeout, ssl_shutdown_timeout=ssl_shutdown_timeout
        )
        sockets = self._bind(host, port, family, bool(reuse_port))
        server = Server(self, protocol_factory, sockets, backlog, options, reuse_port=bool(reuse_port))
        self._bound.setdefault(server.port, []).append(server)
        if start_serving:
            await server.start_serving()
        return server

    async def start_server(
        self, client_connected_cb: streams.ClientConnected, host=None, port=None, *, limit: int = streams.LIMIT, **kwds
    ) -> Server:
        """asyncio.start_server() on the stack; the keywords are create_server's."""
        return await streams.start_server(self, client_connected_cb, host, port, limit=limit, **kwds)

    async def create_connection(
        self,
        protocol_factory: ProtocolFactory,
        host: str | None = None,
        port: Port = None,
        *,
        ssl: ssl_module.SSLContext | bool | None = None,
        family: int = socket.AF_UNSPEC,
        proto: int = 0,
        flags: int = 0,
        sock: socket.socket | None = None,
        local_addr: Any = None,  # (host, port), unpacked as asyncio unpacks it (ValueError otherwise)
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        happy_eyeballs_delay: float | None = None,
        interleave: int | None = None,
        all_errors: Flag = False,
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        """loop.create_connection() on the stack: ConnectionRefusedError on RST, TimeoutError (or the ICMP
        error that explains it) when the SYN retries run out, socket.gaierror for a host that is not an
        IP address (or not of `family`). With ssl, the transport returned is the TLS one, after the
        handshake. A literal host is one address, so happy_eyeballs_delay, interleave and all_errors (which
        order and report several) and getaddrinfo's flags change nothing."""
        self._check_open()
        if sock is not None:
            raise ValueError("sock= is a kernel socket: tcpstack connects from its own addresses")
        if host is None or port is None:
            raise ValueError("host and port was not specified and no sock specified")
        if proto not in (0, socket.IPPROTO_TCP):
            raise OSError(errno.EPROTONOSUPPORT, "Protocol not supported: tcpstack speaks TCP")
        options = tls.TlsOptions.from_keywords(
            ssl,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        if options is not None and options.server_hostname is None:
            options = replace(options, server_hostname=host)  # as asyncio: check the certificate against host
        remote, v4_mapped = unmapped(parse_host(host, family))
        addressing = self.addressing
        bound_ip: int | None = None
        local_port: int | None = None
        if local_addr is not None:
            bound_host, bound_port = local_addr  # ValueError for anything but (host, port), as asyncio's
            bound_ip = addressing.bound_ip(bound_host, remote.version, v4_mapped)
            local_port = self._local_port(bound_port)
        destination = addressing.destination(addr.from_ipaddress(remote), bound_ip)
        local_ip = addressing.source(destination, bound_ip)
        conn = self.demux.connect(local_ip, (destination, _port(port)), self.now(), port=local_port)
        future: asyncio.Future = self._loop.create_future()
        made: list[asyncio.BaseProtocol] = []
        handshake: asyncio.Future | None = None

        def make_protocol() -> asyncio.BaseProtocol:
            made.append(new_protocol(protocol_factory))
            if options is None:
                return made[0]
            return options.protocol(made[0], server_side=False, waiter=handshake)

        if options is not None:
            handshake = self._loop.create_future()
        self._connecting[conn] = (future, make_protocol, v4_mapped)
        self.mark_dirty(conn)
        try:
            transport, protocol = await future
        except asyncio.CancelledError:
            if not conn.finished:
                conn.abort(self.now())
                self.mark_dirty(conn)
            raise
        if handshake is None:
            return transport, protocol
        try:
            await handshake
        except BaseException:
            transport.close()
            raise
        return protocol._app_transport, made[0]

    async def open_connection(
        self, host: str | None = None, port: Port = None, *, limit: int = streams.LIMIT, **kwds: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """asyncio.open_connection() on the stack; the keywords are create_connection's."""
        return await streams.open_connection(self, host, port, limit=limit, **kwds)

    async def start_tls(
        self,
        transport: asyncio.Transport,
        protocol: asyncio.BaseProtocol,
        sslcontext: ssl_module.SSLContext,
        *,
        server_side: Flag = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> asyncio.Transport:
        """loop.start_tls() for the stack's transports on any loop (uvloop's takes only its own transports)."""
        return await tls.start_tls(
            transport,
            protocol,
            sslcontext,
            server_side=server_side,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    async def sendfile(
        self,
        transport: asyncio.BaseTransport,
        file: IO[bytes],
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: Flag = True,
    ) -> int:
        """loop.sendfile() for the stack's transports on any loop (uvloop has none): the file read in blocks
        and written with back-pressure; fallback=False raises SendfileNotAvailableError (stack/aio/sendfile.py)."""
        return await send_file(transport, file, offset, count, fallback=fallback)

    def _bind(self, host: str | Sequence[str] | None, port: Port, family: int, reuse_port: bool) -> list[StackSocket]:
        """What bind() would say for each host, and the sockets create_server reports."""
        hosts = self.addressing.listen_hosts(host, family)
        port = _port(port) if port is not None else 0
        if port == 0:
            port = self._free_listen_port()
        sockets = [StackSocket(_family(ip), sockaddr(ip, port), stack=self) for ip in dict.fromkeys(hosts)]
        if port in self._bound and not (reuse_port and self._can_share(port, sockets)):
            raise OSError(errno.EADDRINUSE, f"error while attempting to bind on port {port}: address already in use")
        return sockets

    def _can_share(self, port: int, sockets: list[StackSocket]) -> bool:
        """SO_REUSEPORT: every server on the port asked for it and is bound to the same addresses (Linux)."""
        names = sorted(sock.getsockname() for sock in sockets)
        return all(
            other.reuse_port and sorted(sock.getsockname() for sock in other.bound_sockets) == names
            for other in self._bound[port]
        )

    def _free_listen_port(self) -> int:
        for port in EPHEMERAL_PORTS:
            if port not in self._bound and port not in self.demux.listeners:
                return port
        raise OSError(errno.EADDRINUSE, "no free port to listen on")

    def _local_port(self, port: Port) -> int | None:
        """The port of a connection's local_addr (None: any free one, as bind() to port 0)."""
        port = _port(port)
        if port in self._bound:
            raise OSError(errno.EADDRINUSE, f"Address already in use: port {port} is listening")
        return port or None

    def _listen(self, server: Server, port: int, backlog: int) -> Listener:
        listener = self.demux.listeners.get(port)
        if listener is None or listener not in self._servers:  # the first of a reuse_port group listens
            names = [sock.getsockname()[0] for sock in server.sockets]
            listener = self.demux.listen((listener_address(names), port), backlog, self.now())
        for sock in server.sockets:
            sock.configure(listener)  # (fast open)
        self._servers.setdefault(listener, []).append(server)
        return listener

    def _unlisten(self, server: Server) -> None:
        listener = server.listener
        if listener is not None:
            serving = self._servers.get(listener, [])
            if server in serving:
                serving.remove(server)
            if not serving:  # the last of its group: the port stops listening
                self.demux.unlisten(listener, self.now())
                self._servers.pop(listener, None)
        bound = self._bound.get(server.port, [])
        if server in bound:
            bound.remove(server)
            if not bound:
                del self._bound[server.port]

    def snapshot(self, now: float | None = None, *, closed: bool = False) -> list[dict]:
        """netstat's rows: listeners, then connections; with `closed`, also the last CLOSED_KEPT closed ones."""
        clock = Clock(self.now() if now is None else now)
        rows = []
        for listener in self.demux.listeners.values():
            bound, port = listener.local
            # a listener on both loopback addresses shows as the two sockets Linux would have
            for local in (
                ((addr.LOOPBACK4, port), (addr.LOOPBACK6, port)) if bound == addr.LOOPBACKS else (listener.local,)
            ):
                rows.append(
                    {
                        "local": _fmt(local),
                        "remote": _listen_peer(local[0]),
                        "state": "LISTEN",
                        "send_q": 0,
                        "recv_q": len(listener.accept_queue),
                        "timer": "off",
                        "timer_left": None,
                        "retransmits": 0,
                        "probes": 0,
                        "history": [],
                    }
                )
        rows.extend(connection_row(conn, clock) for conn in self.demux.connections.values())
        if closed:
            rows.extend(kept if isinstance(kept, dict) else connection_row(*kept) for kept in self._closed_conns)
        return rows

    def settle_heap(self) -> None:
        """Once serving has started: what start-up made leaves the collector's walks (settle_for_serving).
        The full collection that takes is start-up's: the collector counters count from after it."""
        settle_for_serving()
        self._gc = GcSince()

    def stats(self) -> dict[str, int]:
        totals = Counter(self.counters)
        totals.update(self.demux.counters)
        self.ip.fragments.expire(self.now())  # fragment timers run out lazily; count them before reporting
        totals.update(self.ip.counters)
        if self._retired is not None:
            totals.update(self._retired.by_linux_name())
        totals["InSuperSegs"] = self._decoder.super_segments  # coalesced by the kernel (TUN offloads)
        # wire segments, as Linux's segs_in counts gso_segs
        decoder = self._decoder
        totals["InSegs"] += decoder.parts_beyond_first + decoder.gro_segments + decoder.acks_superseded
        totals["InGroSegs"] = decoder.gro_segments  # merged by software GRO into the one before them
        totals["InAcksSuperseded"] = decoder.acks_superseded  # pure ACKs a later one of their batch covered
        totals["OutMergedSegs"] = self._out.merged_segments  # sent inside a super-segment, after its first
        totals["OutGsoSegs"] = self._out.cut_segments  # cut from a super-segment by software GSO, after its first
        for conn in self.demux.connections.values():
            totals.update(conn_counters(conn))
        totals["CurrEstab"] = sum(1 for c in self.demux.connections.values() if c.state in OPEN_FOR_DATA)
        totals["CurrConnections"] = len(self.demux.connections)  # against --max-connections
        totals["CurrTimeWait"] = len(self.demux.time_wait)  # against --max-time-wait
        memory = self.demux.memory
        totals["CurrMemoryBytes"] = memory.used  # against --memory-limit
        totals["MemoryPressure"] = int(memory.pressure)
        totals["TCPMemoryPressures"] = memory.pressures
        # shown at 0 too: what each bound or check drops
        for name in (*limits.COUNTERS, *martians.COUNTERS, *reasons.COUNTERS, SYN_FIN_DROPS):
            totals[name] += 0
        for name in ("TimerWakeups", "TimerWakeupsEmpty"):  # the loop timer: every wake-up, and those for nothing
            totals[name] += 0
        totals["InternalErrors"] += 0  # connections reset because the stack raised on them: 0 unless a bug
        totals.update(self._gc.counters())  # the loop stands still while the collector runs
        totals["GcFrozenObjects"] = gc.get_freeze_count()  # what no collection walks (settle_for_serving)
        return dict(sorted(totals.items()))

    async def wait_idle(self) -> None:
        """Until no connection is left: TIME_WAIT and orphaned FIN_WAIT_2 have run out too."""
        while self.demux.connections:
            self._idle.clear()
            await self._idle.wait()

    def _check_open(self) -> None:
        """As a closed event loop refuses new work: after close() no packet would come in or go out."""
        if self._closed:
            raise RuntimeError("the stack is closed")

    async def close(self) -> None:
        if self._closed:
            return
        for servers in list(self._bound.values()):
            for server in list(servers):
                server.close()
        for conn in list(self.demux.connections.values()):
            if not conn.finished:
                conn.abort(self.now())
                self.mark_dirty(conn)
        self._flush()
        self._closed = True
        self._loop.remove_reader(self.device.fileno())
        if self._timer is not None:
            self._timer.cancel()
        if self._reassembly_timer is not None:
            self._reassembly_timer.cancel()
        self.device.close()
        if self.event_log is not None:
            self.event_log.close()

    # ------------------------------------------------------------ input

    def _on_readable(self) -> None:
        if self._read_device():
            self._flush()

    def _read_device(self) -> bool:
        """One batch from the device taken in (`_input`); False if the read failed."""
        try:
            packets = self.device.read_batch()
        except OSError as exc:
            log.warning("device read failed: %s", exc)
            return False
        self._input(packets)
        return True

    def _input_released(self, packets: list[bytes]) -> None:
        """What the fault layer held back and released late: taken in and answered at once."""
        self._input(packets)
        self._flush()

    def _input_looped(self, packets: list[bytes]) -> None:
        """What the stack sent to its own addresses, taken in as if it had come back through a loopback
        device, and answered at once."""
        self._input(packets, looped=True)
        self._flush()

    def _input(self, packets: PacketBatch | list[bytes], looped: bool = False) -> None:
        """Packets into the connections and the IP layer; what they answer waits for the caller's flush.
        `looped`: the stack's own, whose source is ours (martian for anything from the device)."""
        if self._closed:
            return
        if not isinstance(packets, PacketBatch):  # released late by the fault layer, or looped back
            packets = PacketBatch.of(packets)
        now = self.now()
        counters = self.counters
        log = self.event_log
        checked = -1  # the last source found not martian: a batch mostly comes from one peer
        for pkt in self._decoder.decode(packets):
            if type(pkt) is TcpPacket:
                if pkt.dst != self.addr and pkt.dst not in self.addrs and not (looped and addr.is_loopback(pkt.dst)):
                    counters["InAddrErrors"] += 1  # (127/8 and ::1 from the device too: martian, RFC 1122 §3.2.1.3)
                    continue
                if pkt.src != checked and not looped:
                    if self.sources.martian(pkt.src):
                        self._martian(pkt.src)
                        continue
                    checked = pkt.src
                seg = pkt.segment
                if log is not None or pkt.ip_header:
                    known = self.demux.connections.get((pkt.dst, seg.dst_port, pkt.src, seg.src_port))
                    if log is not None:
                        log.segment_in(pkt.src, pkt.dst, seg, known)
                try:
                    conn, rst = self.demux.segment_arrives(pkt.src, pkt.dst, seg, now)
                except Exception:
                    self._internal_error(self.demux.connections.get((pkt.dst, seg.dst_port, pkt.src, seg.src_port)))
                    continue
                if pkt.ip_header:  # IPv4 options: sent back in the answer, and by a connection the segment opened
                    options = self._options_arrived(pkt, conn if conn is not known else None)
                    if rst is not None and options:
                        self._out.tcp_with_options(pkt.dst, pkt.src, rst, options)
                        if log is not None:
                            log.segment_out_unattached(pkt.dst, pkt.src, rst)
                        rst = None
                if conn is not None:
                    self._dirty.add(conn)
                    if log is not None:
                        log.after(conn, "segment")
                    if self.demux.replaced:  # a TIME_WAIT connection gave way to a new SYN: retire it
                        self._dirty.update(self.demux.replaced)
                        self.demux.replaced.clear()
                elif rst is not None:
                    if looped:  # to ourselves
                        self._looped.append(encode_tcp(pkt.dst, pkt.src, rst))
                    else:
                        flow = (
                            flow_label((pkt.dst, rst.src_port), (pkt.src, rst.dst_port)) if pkt.src > addr.MAX4 else 0
                        )
                        self._out.tcp(pkt.dst, pkt.src, rst, flow=flow)
                    if log is not None:
                        log.segment_out_unattached(pkt.dst, pkt.src, rst)
            elif type(pkt) is Rejected:
                counters["InErrors" if pkt.reason is not DropReason.BAD_TCP_CHECKSUM else "InCsumErrors"] += 1
                counters[f"Drop{pkt.reason.name}"] += 1
            elif type(pkt) is IpPacket:
                v6 = pkt.src > addr.MAX4
                if pkt.dst != self.addr and pkt.dst not in self.addrs and not (v6 and is_multicast(pkt.dst)):
                    counters["InAddrErrors"] += 1
                    continue
                if pkt.src != checked:
                    if self.sources.martian(pkt.src):
                        self._martian(pkt.src)
                        continue
                    checked = pkt.src
                try:
                    conn, reply = (self.ip6 if v6 else self.ip).receive(pkt, now)
                except Exception:  # ICMP's errors may name a connection, but the bug is not known to be its
                    self._internal_error(None)
                    continue
                if conn is not None:
                    self._dirty.add(conn)
                if self._reassembly_timer is None and len(self.ip.fragments):
                    self._arm_reassembly_timer()
                if reply is not None:
                    mtu = self.device.mtu
                    if v6:  # what a Packet Too Big taught about the path (IPv4 lets routers fragment)
                        mtu = min(mtu, self.demux.learned_mtu(pkt.src, now) or mtu)
                    if len(reply) > mtu:  # an echo reply as large as its request
                        pieces = fragment6(reply, mtu) if v6 else fragment4(reply, mtu)
                        counters["Ip6FragOKs" if v6 else "FragOKs"] += 1
                        counters["Ip6FragCreates" if v6 else "FragCreates"] += len(pieces)
                        for piece in pieces:
                            self._out.packet(piece)
                    else:
                        self._out.packet(reply)

    def _options_arrived(self, pkt: TcpPacket, opened: Connection | None) -> bytes:
        """The IPv4 options of an answer to `pkt` (RFC 1122 §4.2.3.8: a record route or timestamp option,
        with our entries, as Linux's ip_options_echo); a passive connection `pkt` opened (its SYN, or the
        ACK that a SYN cookie let through) sends them in all its segments, as Linux's ireq_opt."""
        header, options = answering(pkt.ip_header, ms_since_midnight(self.ip.wall_clock()))
        if opened is not None and opened.passive and options:
            self._ip_options[opened] = header
            opened.carry_ip_options(len(options))
        return options

    def _arm_reassembly_timer(self) -> None:
        deadline = self.ip.fragments.next_deadline()
        if deadline is not None:
            delay = self.resolution.delay(deadline - self.now())
            self._reassembly_timer = self._loop.call_later(delay, self._on_reassembly_timer)

    def _on_reassembly_timer(self) -> None:
        """Datagrams whose fragments did not all come in time are given up (RFC 791 §3.2, RFC 8200 §4.5),
        and the source of each whose first fragment came is told so by ICMP."""
        self._reassembly_timer = None
        now = self.now()
        for key, headers, first in self.ip.fragments.take_timed_out(now + self.resolution.tick):
            if key[0] > addr.MAX4:
                error = self.ip6.reassembly_timed_out(key, headers, first, now)
            else:
                error = self.ip.reassembly_timed_out(headers, first, now)
            if error is not None:
                self._out.packet(error)
        if len(self.ip.fragments):
            self._arm_reassembly_timer()
        self._flush()

    def _martian(self, src: int) -> None:
        """A packet from a source no host may answer (RFC 1122 §3.2.1.3): dropped silently, counted."""
        self.counters[martians.TOTAL] += 1
        self.counters[self.sources.reason(src)] += 1

    # ------------------------------------------------------------ output

    def mark_dirty(self, conn: Connection) -> None:
        self._dirty.add(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def call_soon(self, callback) -> None:
        self._loop.call_soon(callback)

    def call_soon_deliver(self, transport: TcpTransport) -> None:
        self._loop.call_soon(self._deliver_soon, transport)

    def _deliver_soon(self, transport: TcpTransport) -> None:
        transport._deliver_reads()
        self.mark_dirty(transport._conn)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._closed:
            return
        now = self.now()
        out = self._out
        released = self._after_app
        if released:  # their applications have run since: what they wrote goes with what was held
            self._after_app = set()
            self._dirty |= released
        kept: list[tuple[Connection, TcpTransport | None]] = []  # charged and scheduled once the packets left
        rounds = 0
        while self._dirty and rounds < 8:  # callbacks may touch connections again; bounded
            rounds += 1
            dirty, self._dirty = self._dirty, set()
            for conn in dirty:
                try:
                    transport = self._dispatch_events(conn)
                    if self._conn_woke_app and conn not in released and not conn.finished:
                        # its application answers in the next loop iteration, most often at once (a reply,
                        # a FIN): its output waits for the flush queued behind it (below), so that one
                        # segment carries the ACK, the answer and its flags, as Linux's delayed ACK lets a
                        # reply carry the ACK; a connection is held once, for one iteration
                        self._after_app.add(conn)
                        continue
                    segments = conn.segments_to_send(now)
                except Exception:
                    self._internal_error(conn)
                    continue
                if segments:  # most flushes of a connection send nothing (a read, a delayed ACK pending)
                    self._queue(conn, segments)
                if conn.events_pending:  # sending made room for a waiting writer: its wake-up, next round
                    self.mark_dirty(conn)
                if conn.finished:
                    self._retire(conn)
                else:
                    kept.append((conn, transport))
        packets = len(out)
        if packets:
            self.counters["OutPackets"] += packets
            if self._write_encoded is not None:
                self._write_encoded(out)
            else:
                self.device.write_batch(out.build())
        if self._looped:  # delivered in the loop's next iteration, as a loopback device's softirq does
            looped, self._looped = self._looped, []
            self._loop.call_soon(self._input_looped, looped)
        failed = self._failed
        for conn, transport in kept:  # after the write: the answer does not wait for this bookkeeping
            if not conn.finished and conn not in failed:  # (retired in a later round)
                self._charge(conn, transport)
                self._schedule(conn)
        if failed:
            failed.clear()
        self._arm_timer()
        if self.event_log is not None:
            self.event_log.flush()  # readable while the stack runs, as the pcap is
        if self._app_woken:
            # the application's tasks just woken run in the loop's next iteration, and what they write is
            # flushed in the one after (call_soon from within a callback waits an iteration): a flush queued
            # now, behind their wake-ups, sends their answer in the same iteration instead
            self._app_woken = False
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)

    def _queue(self, conn: Connection, segments: list[Segment]) -> None:
        """The connection's segments into this flush's output."""
        out, local, remote = self._out, conn.local[0], conn.remote[0]
        if remote in self.addrs or addr.is_loopback(remote):  # a connection to ourselves (both its ends are ours)
            for seg in segments:
                self._looped.append(encode_tcp(local, remote, seg))
        elif remote > addr.MAX4:
            flow = self._flows.get(conn)
            if flow is None:
                flow = self._flows[conn] = flow_label(conn.local, conn.remote)
            for seg in segments:
                out.tcp(local, remote, seg, flow=flow)
        elif self._ip_options and conn in self._ip_options:  # IPv4 options its opening segment asked back
            options = reply_options(self._ip_options[conn], local, ms_since_midnight(self.ip.wall_clock()))
            for seg in segments:
                out.tcp_with_options(local, remote, seg, options)
        else:
            for seg in segments:
                out.tcp(local, remote, seg)
        if self.event_log is not None:
            for seg in segments:
                self.event_log.segment_out(conn, seg)
            self.event_log.after(conn, "output")

    def _internal_error(self, conn: Connection | None) -> None:
        """A bug raised while the stack handled a packet, the output, the events or a timer of `conn`:
        logged with its traceback and counted (InternalErrors), and the connection reset as ABORT resets
        one (a RST if one can still be built; its application gets ECONNRESET) and dropped, so that
        neither it nor the stack's other connections hang on it."""
        self.counters["InternalErrors"] += 1
        if conn is None:  # a packet for no connection (ICMP, a listener's segment, a stray RST): dropped
            log.exception("internal error on an arriving packet: dropped")
            return
        log.exception("internal error on the connection with %s: resetting it", _fmt(conn.remote))
        self._failed.add(conn)
        try:
            now = self.now()
            conn.abort(now)
            self._queue(conn, conn.segments_to_send(now))
        except Exception:  # failing again: no RST now, the peer's next segment draws one (no TCB is left)
            log.debug("no RST for the failed connection with %s", _fmt(conn.remote), exc_info=True)
        transport = self._transports.get(conn)
        pending = self._connecting.get(conn)
        self._retire(conn)
        error = ConnectionResetError(errno.ECONNRESET, "Connection reset: internal error in the stack")
        if transport is not None:
            transport._lose(error)
        elif pending is not None and not pending[0].done():
            pending[0].set_exception(error)
        self._dirty.discard(conn)  # (also if its application's callbacks touched it)
        self._after_app.discard(conn)

    def _dispatch_events(self, conn: Connection) -> TcpTransport | None:
        """Hand the connection's events to its transport (or its pending connect or accept); returns the
        transport it has afterwards, if any."""
        transports = self._transports
        self._conn_woke_app = False
        while (event := conn.next_event()) is not None:
            transport = transports.get(conn)
            if transport is not None:
                if type(event) in _WAKES_APPLICATION:
                    self._app_woken = self._conn_woke_app = True
                transport.handle_event(event)
                continue
            pending = self._connecting.get(conn)
            if pending is not None:
                self._on_connect_event(conn, event, *pending)
            elif type(event) is Connected:
                self._app_woken = self._conn_woke_app = True
                self._accept(conn)
        transport = transports.get(conn)
        if transport is not None:  # a closing transport ends when both FINs are done, event or not (CLOSING)
            transport.check_done()
        return transport

    def _on_connect_event(
        self, conn: Connection, event, future: asyncio.Future, factory: ProtocolFactory, v4_mapped: bool
    ) -> None:
        if type(event) is Connected:
            del self._connecting[conn]
            if future.cancelled():
                conn.abort(self.now())
                return
            try:
                protocol = factory()
            except Exception as exc:  # raised to connect()'s caller, as asyncio's create_connection raises it
                conn.abort(self.now())
                future.set_exception(exc)
                return
            transport = TcpTransport(self, conn, protocol, v4_mapped=v4_mapped)
            self._transports[conn] = transport
            transport.report_made()
            future.set_result((transport, protocol))
        elif type(event) in (Reset, TimedOut, Unreachable, Closed):
            del self._connecting[conn]
            if not future.done():
                if type(event) is Unreachable:
                    future.set_exception(OSError(event.error, f"Connect call failed {_fmt(conn.remote)}"))
                elif type(event) is Reset:
                    future.set_exception(
                        ConnectionRefusedError(errno.ECONNREFUSED, f"Connect call failed {_fmt(conn.remote)}")
                    )
                elif type(event) is TimedOut:
                    future.set_exception(timeout_error(conn))
                else:
                    future.set_exception(
                        ConnectionAbortedError(errno.ECONNABORTED, "connection closed before it was established")
                    )

    def _accept(self, conn: Connection) -> None:
        listener = self.demux.parent.get(conn)
        if listener is None or not (servers := self._servers.get(listener)):
            conn.abort(self.now())
            return
        server = servers[hash(conn.remote) % len(servers)]  # SO_REUSEPORT: spread by the peer's address
        self.demux.accepted(conn, listener)
        try:
            protocol = server.protocol_for_connection()
        except Exception:
            log.exception("protocol factory of %r failed; aborting the connection", server)
            conn.abort(self.now())
            return
        inherited = server.inherited_options(conn.local[0])
        if inherited:  # options set on the listening socket (Linux's accepted sockets inherit them)
            sockopts.configure(conn, self.now(), **inherited)
        transport = TcpTransport(self, conn, protocol, server)
        self._transports[conn] = transport
        transport.report_made()

    def _trace_transition(self, conn: Connection, t: Transition) -> None:
        if self.trace is not None:
            self.trace(f"{_fmt(conn.remote)} {t}")
        if self.event_log is not None:
            self.event_log.transition(conn, t)

    def _charge(self, conn: Connection, transport: TcpTransport | None) -> None:
        """Charge the stack's memory budget for what this connection holds now (the core's buffers and
        what its application wrote that its transport has not handed to the core yet)."""
        held = conn.held_bytes + (transport.get_write_buffer_size() if transport is not None else 0)
        before = self._held.get(conn, 0)
        if held != before:
            self.demux.memory.charge(held - before)
            self._held[conn] = held

    def _retire(self, conn: Connection) -> None:
        self.demux.memory.charge(-self._held.pop(conn, 0))
        self.demux.remove(conn)
        self._transports.pop(conn, None)
        self._connecting.pop(conn, None)
        self._scheduled.pop(conn, None)
        self._flows.pop(conn, None)
        self._ip_options.pop(conn, None)
        if self._retired is None:
            self._retired = Counters()
        self._retired.add(conn.counters)
        if conn.state is State.CLOSED:
            at = Clock(self.now())
            self._closed_conns.append(connection_row(conn, at) if conn.held_bytes else (conn, at))
        if not self.demux.connections:
            self._idle.set()
        if self.event_log is not None:
            self.event_log.forget(conn)

    # ------------------------------------------------------------ timers

    def _schedule(self, conn: Connection) -> None:
        deadline = conn.next_deadline()
        if deadline is None:
            self._scheduled.pop(conn, None)
        elif self._scheduled.get(conn) != deadline:
            self._scheduled[conn] = deadline
            heapq.heappush(self._heap, (deadline, next(self._tiebreak), conn))

    def _arm_timer(self) -> None:
        heap = self._heap
        while heap and self._scheduled.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # stale entry
        if not heap:
            if self._timer is not None:  # nothing left to wait for: a wake-up would find nothing due
                self._timer.cancel()
                self._timer = self._timer_at = None
            return
        at = heap[0][0]
        armed = self._timer_at
        if self._timer is not None and armed is not None and self.resolution.keeps(armed, self._timer_fires, at):
            return  # armed for this deadline already (to the loop's resolution)
        if self._timer is not None:
            self._timer.cancel()  # too late for a new earlier deadline, or early for one that moved later
        now = self.now()
        delay = self.resolution.delay(at - now)
        self._timer_at = at
        self._timer_fires = self.resolution.earliest_fire(now, delay)
        self._timer = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.counters["TimerWakeups"] += 1
        # input first: libuv runs due timers before it polls for I/O, so under load the ACKs that make a
        # loss probe or a retransmission needless may be waiting in the device's queue when its timer fires
        self._read_device()
        # the loop's clock is coarser than ours: a timer may fire up to one tick before its deadline,
        # which then counts as due, with `now` = the deadline (as aioquic's max(timer_at, loop.time()))
        now = self.now()
        due_by = now + self.resolution.tick
        heap = self._heap
        fired = False
        while heap and heap[0][0] <= due_by:
            deadline, _, conn = heapq.heappop(heap)
            if self._scheduled.get(conn) != deadline:
                continue
            del self._scheduled[conn]
            fired = True
            try:
                conn.handle_timer(max(now, deadline))
            except Exception:
                self._internal_error(conn)
                continue
            self._dirty.add(conn)
            if self.event_log is not None:
                self.event_log.after(conn, "timer")
        if not fired:
            self.counters["TimerWakeupsEmpty"] += 1
        self._flush()


def _port(port: Port) -> int:
    """A port as getaddrinfo takes it: a number, a string of digits, or a service name (/etc/services)."""
    try:
        value = int(port)
    except (TypeError, ValueError):
        value = _service_port(port)
    if not 0 <= value <= 65535:
        raise OverflowError(f"port must be 0-65535, not {value}")
    return value


def _service_port(name: object) -> int:
    try:
        return socket.getservbyname(name.decode() if isinstance(name, bytes) else str(name), "tcp")
    except (UnicodeDecodeError, OSError):
        raise socket.gaierror(socket.EAI_SERVICE, f"Servname not supported: {name!r}") from None


def _family(addr: IpAddress) -> socket.AddressFamily:
    return socket.AF_INET6 if addr.version == 6 else socket.AF_INET


def _listen_peer(bound: int) -> str:
    """A listener's peer column, as ss shows it: *:* for both families, else its family's unspecified one."""
    if bound == addr.ANY:
        return "*:*"
    return "[::]:*" if addr.is_v6(bound) else "0.0.0.0:*"


def conn_counters(conn: Connection) -> Counter[str]:
    """One connection's counters under the names `tcpstack stats` shows (Linux's MIB names)."""
    return Counter(conn.counters.by_linux_name())
