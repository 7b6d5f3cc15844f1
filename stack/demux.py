"""TCP demultiplexing: 4-tuple -> Connection, port -> Listener, RST for everything else (RFC 9293 §3.10.7.1)."""

from __future__ import annotations

import random
from collections import Counter

from stack.tcp.config import TcpConfig
from stack.tcp.connection import Address, Connection, TransitionHook
from stack.tcp.listener import Listener
from stack.tcp.reset import reset_for
from stack.tcp.segment_arrives import syn_ends_time_wait
from stack.wire.segment import Flags, Segment

EPHEMERAL_PORTS = range(32768, 61000)  # Linux ip_local_port_range

Key = tuple[int, int, int, int]  # (local ip, local port, remote ip, remote port)


class Demux:
    def __init__(self, config: TcpConfig) -> None:
        self.config = config
        self.connections: dict[Key, Connection] = {}
        self.listeners: dict[int, Listener] = {}
        self.parent: dict[Connection, Listener] = {}
        self.counters: Counter[str] = Counter()
        self.on_transition: TransitionHook | None = None  # given to every new connection (--trace)
        self.replaced: list[Connection] = []  # TIME_WAIT connections a new SYN ended; the owner retires them

    def listen(self, local: Address, backlog: int | None = None, now: float = 0.0) -> Listener:
        if local[1] in self.listeners:
            raise OSError(98, f"port {local[1]} already in use")
        listener = Listener(self.config, local, backlog, now)
        self.listeners[local[1]] = listener
        return listener

    def unlisten(self, listener: Listener, now: float = 0.0) -> None:
        self.listeners.pop(listener.local[1], None)
        listener.close(now)

    def connect(self, local_ip: int, remote: Address, now: float) -> Connection:
        port = self._free_port(local_ip, remote)
        conn = Connection.connect(self.config, (local_ip, port), remote, now, self.on_transition)
        self.connections[(local_ip, port, remote[0], remote[1])] = conn
        self.counters["ActiveOpens"] += 1
        return conn

    def _free_port(self, local_ip: int, remote: Address) -> int:
        start = random.randrange(len(EPHEMERAL_PORTS))
        for i in range(len(EPHEMERAL_PORTS)):
            port = EPHEMERAL_PORTS[(start + i) % len(EPHEMERAL_PORTS)]
            if (local_ip, port, remote[0], remote[1]) not in self.connections and port not in self.listeners:
                return port
        raise OSError(99, "no free local port")

    def segment_arrives(self, src: int, dst: int, seg: Segment, now: float) -> tuple[Connection | None, Segment | None]:
        """Route one segment; returns the connection it touched, or a RST to send back."""
        self.counters["InSegs"] += 1
        key = (dst, seg.dst_port, src, seg.src_port)
        conn = self.connections.get(key)
        listener = self.listeners.get(seg.dst_port)
        if conn is not None:
            if listener is None or not syn_ends_time_wait(conn, seg, now):
                conn.receive_segment(seg, now)
                return conn, None
            del self.connections[key]  # the SYN goes to the listener below
            self.replaced.append(conn)
        if listener is not None:
            # RFC 9293 §3.10.7.2: RST ignored, ACK answered by RST, SYN creates a child
            flags = seg.flags
            if flags & Flags.RST:
                return None, None
            if flags & Flags.ACK:
                return None, self._count_rst(reset_for(seg))
            if flags & Flags.SYN:
                child = listener.on_syn((src, seg.src_port), seg, now, self.on_transition)
                if child is None:
                    self.counters["ListenOverflows"] += 1
                    return None, None
                self.connections[(dst, seg.dst_port, src, seg.src_port)] = child
                self.parent[child] = listener
                self.counters["PassiveOpens"] += 1
                return child, None
            return None, None
        return None, self._count_rst(reset_for(seg))

    def _count_rst(self, rst: Segment | None) -> Segment | None:
        if rst is not None:
            self.counters["OutRsts"] += 1
        return rst

    def remove(self, conn: Connection) -> None:
        key = (conn.local[0], conn.local[1], conn.remote[0], conn.remote[1])
        if self.connections.get(key) is conn:  # a new incarnation may hold the 4-tuple already
            del self.connections[key]
        listener = self.parent.pop(conn, None)
        if listener is not None:
            listener.forget(conn)
