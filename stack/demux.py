"""TCP demultiplexing: 4-tuple -> Connection, port -> Listener, RST for everything else (RFC 9293 §3.10.7.1)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Final, TypeAlias

from stack.tcp import fast_open, icmp_input, syncookies, timers
from stack.tcp.config import PathConfigs, TcpConfig
from stack.tcp.connection import Address, Connection, TransitionHook
from stack.tcp.listener import Listener
from stack.tcp.memory import MemoryBudget
from stack.tcp.reset import reset_for
from stack.tcp.segment_arrives import syn_ends_time_wait
from stack.tcp.state import State
from stack.wire.addr import ANY, accepts
from stack.wire.segment import Flags, Segment
from stack.wire.seq import seq_add

# (globals: see stack/tcp/state.py)
_SYN_RECEIVED: Final = State.SYN_RECEIVED
_TIME_WAIT: Final = State.TIME_WAIT

EPHEMERAL_PORTS: Final = range(32768, 61000)  # Linux ip_local_port_range

PATH_MTU_EXPIRES: Final = 600.0  # seconds a learned path MTU holds (Linux ip_rt_mtu_expires; RFC 1191 §6.3: 10 min)
PATH_MTU_ENTRIES: Final = 4096  # destinations remembered at most: ICMP errors cannot grow memory without bound
SYN_FIN_DROPS: Final = "DropListenSynFin"  # SYN+FIN to a listener (Linux: drop reason TCP_FLAGS, no MIB counter)

Key: TypeAlias = tuple[int, int, int, int]  # (local ip, local port, remote ip, remote port)


class Demux:
    def __init__(self, config: TcpConfig) -> None:
        self.config = config
        self.path_configs = PathConfigs()  # what a connection over IPv6 or with the stack itself takes
        self.connections: dict[Key, Connection] = {}
        self.listeners: dict[int, Listener] = {}
        self.parent: dict[Connection, Listener] = {}
        self.counters: Counter[str] = Counter()
        self.on_transition: TransitionHook | None = None  # given to every new connection (--trace)
        self.time_wait: set[Connection] = set()  # bounded by config.max_time_wait
        self.cookie_secret = syncookies.new_secret(config.rng)  # one key per stack, for all its listeners
        self.fast_open_key = fast_open.LazyKey(config.rng)  # fast open's, where config.fast_open_keys has none
        self.replaced: list[Connection] = []  # TIME_WAIT connections a new SYN ended; the owner retires them
        self.memory = MemoryBudget(config.memory_limit)  # every connection's buffers together; the driver charges it
        # remote address -> (path MTU, until when): what ICMP taught, for the next connections there
        self.path_mtus: dict[int, tuple[int, float]] = {}

    def listen(self, local: Address, backlog: int | None = None, now: float = 0.0) -> Listener:
        if local[1] in self.listeners:
            raise OSError(98, f"port {local[1]} already in use")
        listener = Listener(
            self.config,
            local,
            backlog,
            now,
            cookie_secret=self.cookie_secret,
            counters=self.counters,
            fast_open_key=self.fast_open_key,
        )
        self.listeners[local[1]] = listener
        return listener

    def unlisten(self, listener: Listener, now: float = 0.0) -> None:
        self.listeners.pop(listener.local[1], None)
        listener.close(now)

    def connect(self, local_ip: int, remote: Address, now: float, port: int | None = None) -> Connection:
        """Active OPEN from `port` (bind() before connect()), or from a free ephemeral port."""
        if len(self.connections) >= self.config.max_connections:
            raise OSError(105, "no buffer space available: the stack's connection limit is reached")  # ENOBUFS
        if port is None:
            port = self._free_port(local_ip, remote)
        elif (local_ip, port, remote[0], remote[1]) in self.connections or port in self.listeners:
            raise OSError(98, f"port {port} already in use for this destination")  # EADDRINUSE
        path_mtu = self.learned_mtu(remote[0], now)
        config = self.path_configs.of(self.config, local_ip, remote[0], path_mtu)
        conn = Connection.connect(config, (local_ip, port), remote, now, self.on_transition)
        conn.memory = self.memory
        if path_mtu:
            conn.use_path_mtu(path_mtu)
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
        successor_iss: int | None = None
        if conn is not None and conn.state is not _TIME_WAIT:
            listener = None  # a new SYN may take the 4-tuple only from TIME_WAIT (syn_ends_time_wait)
        else:
            listener = self.listeners.get(seg.dst_port)
            if listener is not None:
                bound = listener.local[0]
                if bound != ANY and bound != dst and not accepts(bound, dst):
                    listener = None  # bound to another address or family
        if conn is not None:
            if listener is None or not syn_ends_time_wait(conn, seg, now):
                if conn.state is _SYN_RECEIVED and self._accept_queue_refuses(conn, seg):
                    return None, None
                conn.receive_segment(seg, now)
                if conn.state is _TIME_WAIT and conn not in self.time_wait:
                    self._entered_time_wait(conn, now)
                return conn, None
            del self.connections[key]  # the SYN goes to the listener below
            self.time_wait.discard(conn)
            self.replaced.append(conn)
            successor_iss = conn.successor_iss()
        if listener is not None:
            # RFC 9293 §3.10.7.2: RST ignored, ACK answered by RST (or a SYN cookie), SYN creates a child
            flags = seg.flags
            if flags & Flags.RST or not flags & (Flags.ACK | Flags.SYN):
                return None, None
            if flags & Flags.FIN and not flags & Flags.ACK:  # SYN+FIN: no host opens on it (Linux drops)
                self.counters[SYN_FIN_DROPS] += 1
                return None, None
            if len(self.connections) >= self.config.max_connections:
                self.counters["TCPConnLimitDrop"] += 1  # refused without a trace, like a full queue
                return None, None
            remote = (src, seg.src_port)
            local = (dst, seg.dst_port)
            path_mtu = self.learned_mtu(src, now)
            if flags & Flags.ACK:
                answer = listener.ack_arrives(remote, seg, now, self.on_transition, local, path_mtu)
            else:
                answer = listener.syn_arrives(remote, seg, now, self.on_transition, local, successor_iss, path_mtu)
            if isinstance(answer, Connection):
                answer.memory = self.memory
                if path_mtu:
                    answer.use_path_mtu(path_mtu)
                self.connections[(dst, seg.dst_port, src, seg.src_port)] = answer
                self.parent[answer] = listener
                self.counters["PassiveOpens"] += 1
                return answer, None
            if answer is not None and answer.flags & Flags.RST:
                self.counters["OutRsts"] += 1
            return None, answer
        return None, self._count_rst(reset_for(seg))

    def accepted(self, child: Connection, listener: Listener) -> None:
        """The application took the child from the listener's accept queue: from now on it is an ordinary
        connection, and the listener (which holds it in neither queue) need not hear of it again."""
        listener.on_established(child)
        listener.accept()
        del self.parent[child]

    def _accept_queue_refuses(self, child: Connection, seg: Segment) -> bool:
        """A child's final ACK that finds the accept queue full is dropped (Linux, tcp_abort_on_overflow=0)."""
        listener = self.parent.get(child)
        if listener is None or seg.flags & (Flags.RST | Flags.SYN) or not seg.flags & Flags.ACK:
            return False
        if child.fast_open or seg.ack != seq_add(child.tcb.iss, 1) or not listener.accept_queue_full():
            return False
        listener.refuse_final_ack()
        return True

    def _entered_time_wait(self, conn: Connection, now: float) -> None:
        """Bound TIME_WAIT like Linux's tcp_max_tw_buckets: beyond it the connection closes at once (its
        last ACK still goes out) and TCPTimeWaitOverflow counts it."""
        if len(self.time_wait) < self.config.max_time_wait:
            self.time_wait.add(conn)
            return
        self.counters["TCPTimeWaitOverflow"] += 1
        conn.timers.start(timers.TIME_WAIT, now)

    def icmp_error(self, local: Address, remote: Address, error: icmp_input.IcmpError, now: float) -> Connection | None:
        """An ICMP error quoting a segment we sent from local to remote: the connection it touched, if any."""
        conn = self.connections.get((local[0], local[1], remote[0], remote[1]))
        if conn is None:
            self.counters["IcmpUnmatched"] += 1
            return None
        outcome = icmp_input.icmp_error(conn, error, now)
        self.counters[outcome.value] += 1
        if outcome is icmp_input.Outcome.PMTU_REDUCED:
            self._learn_mtu(remote[0], conn.path_mtu, now)
        return conn

    def path_too_big(self, remote_ip: int, mtu: int, now: float) -> None:
        """A Packet Too Big about a packet we sent to `remote_ip` outside any connection (an echo reply): its
        MTU holds for what goes there next, if lower than what holds now, as Linux's icmpv6_err updates
        the route's (rt6_do_update_pmtu)."""
        learned = self.learned_mtu(remote_ip, now)
        if learned == 0 or mtu < learned:
            self._learn_mtu(remote_ip, mtu, now)

    def _learn_mtu(self, remote_ip: int, mtu: int, now: float) -> None:
        self.path_mtus.pop(remote_ip, None)  # newest last: the oldest goes first when full
        if len(self.path_mtus) >= PATH_MTU_ENTRIES:
            del self.path_mtus[next(iter(self.path_mtus))]
        self.path_mtus[remote_ip] = (mtu, now + PATH_MTU_EXPIRES)

    def learned_mtu(self, remote_ip: int, now: float) -> int:
        """The path MTU an ICMP error taught for `remote_ip` (Linux keeps it with the route), 0 if none."""
        learned = self.path_mtus.get(remote_ip)
        if learned is None:
            return 0
        if now >= learned[1]:  # RFC 1191 §6.3: an estimate ages out, the link's MTU is tried again
            del self.path_mtus[remote_ip]
            return 0
        return learned[0]

    def _count_rst(self, rst: Segment | None) -> Segment | None:
        if rst is not None:
            self.counters["OutRsts"] += 1
        return rst

    def remove(self, conn: Connection) -> None:
        key = (conn.local[0], conn.local[1], conn.remote[0], conn.remote[1])
        if self.connections.get(key) is conn:  # a new incarnation may hold the 4-tuple already
            del self.connections[key]
        self.time_wait.discard(conn)
        listener = self.parent.pop(conn, None)
        if listener is not None:
            listener.forget(conn)
