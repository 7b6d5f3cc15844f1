"""A small fake kernel socket layer: the system calls of a script onto Listener/Connection calls.

File descriptors are numbered like Linux's (the lowest free one, from 3). A call returns its outcome
`(result, errno name or None)`, or, when a blocking socket has to wait, a `Poll` the runner calls again
after every change until it gives the outcome. Options tcpstack cannot honour raise `ScriptSkip`.
"""

from __future__ import annotations

import errno as errno_codes
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from stack.demux import Demux
from stack.script import epoll, errqueue, msghdr, pipes, poll_events
from stack.script.ast import AnyValue, Arg, Array, BitOr, Call, Name, Struct, SyscallLine
from stack.script.errors import ScriptFailure, ScriptSkip
from stack.script.files import Files, OpenFile
from stack.tcp import congestion, sockopts, tx_timestamps, urgent
from stack.tcp.config import (
    IPV6_EXTRA_HEADER,
    PMTUDISC_DO,
    PMTUDISC_DONT,
    PMTUDISC_INTERFACE,
    PMTUDISC_OMIT,
    PMTUDISC_PROBE,
    PMTUDISC_WANT,
    TcpConfig,
)
from stack.tcp.connection import Connection
from stack.tcp.errors import LocalProtocolError
from stack.tcp.events import (
    Closed,
    Connected,
    DataAvailable,
    Event,
    PeerClosed,
    Reset,
    SendSpace,
    TimedOut,
    Unreachable,
)
from stack.tcp.listener import Listener, fast_open_option
from stack.tcp.receiver import DEFAULT_MSS
from stack.tcp.state import OPENING, State
from stack.tcp.write_queue import mss_cache
from stack.wire import addr
from stack.wire.seq import seq_sub

LOCAL_IP = 0xC0A80001  # 192.168.0.1, packetdrill's local address
REMOTE_IP = 0xC0000201  # 192.0.2.1, packetdrill's remote address
LOCAL_IP6 = addr.parse("fd3d:fa7b:d17d::1")  # the addresses of a run with --ip_version=ipv6
REMOTE_IP6 = addr.parse("fd3d:fa7b:d17d::2")
LOCAL_PORT = 8080  # packetdrill binds and connects to port 8080

Outcome = tuple[int, str | None]
Poll = Callable[[], Outcome | None]

O_RDWR = 0o2  # the flag values F_GETFL reports, as on Linux
O_NONBLOCK = 0o4000
FD_CLOEXEC = 1  # the one descriptor flag (fcntl(2) F_GETFD/F_SETFD)
_FCNTL_FLAGS = {"O_RDONLY": 0, "O_WRONLY": 0o1, "O_RDWR": O_RDWR, "O_NONBLOCK": O_NONBLOCK}

# socket options that are plain TcpConfig fields: name -> (field, the script's integer as the field's
# value, the field's value as getsockopt reports it); negative values are EINVAL, as Linux's
_MS = (lambda ms: ms / 1000, lambda seconds: round(seconds * 1000))
_CONFIG_OPTIONS: dict[str, tuple[str, Callable[[int], object], Callable[[object], int]]] = {
    "TCP_NODELAY": ("nodelay", bool, int),
    "TCP_CORK": ("cork", bool, int),
    "TCP_USER_TIMEOUT": ("user_timeout", *_MS),
    "TCP_SYNCNT": ("syn_retries", int, int),  # 1 to 127 (Linux MAX_TCP_SYNCNT)
    "SO_KEEPALIVE": ("keepalive", bool, int),
    "SO_MAX_PACING_RATE": ("max_pacing_rate", sockopts.pacing_limit, sockopts.reported_pacing_limit),
    "TCP_KEEPIDLE": ("keepalive_idle", float, int),
    "TCP_KEEPINTVL": ("keepalive_interval", float, int),
    "TCP_KEEPCNT": ("keepalive_count", int, int),
}
# options that only the socket layer keeps: name -> Socket attribute
_SOCKET_FLAGS = {"SO_REUSEADDR": "reuseaddr", "TCP_INQ": "inq", "SO_ZEROCOPY": "zerocopy", "IP_FREEBIND": "freebind"}
_PMTUDISC = {
    "IP_PMTUDISC_DONT": PMTUDISC_DONT,
    "IP_PMTUDISC_WANT": PMTUDISC_WANT,
    "IP_PMTUDISC_DO": PMTUDISC_DO,
    "IP_PMTUDISC_PROBE": PMTUDISC_PROBE,
    "IP_PMTUDISC_INTERFACE": PMTUDISC_INTERFACE,
    "IP_PMTUDISC_OMIT": PMTUDISC_OMIT,
}
_TOS_OPTIONS = {"IP_TOS": False, "IPV6_TCLASS": True}  # option -> whether it is for IPv6 packets
_BUFFER_OPTIONS = ("SO_RCVBUF", "SO_SNDBUF")
_TCP_CA_NAME_MAX = 16  # getsockopt(TCP_CONGESTION) copies at most this much of the name
# send flags with a meaning here: MSG_NOSIGNAL has none (no signals), MSG_ZEROCOPY sends the same bytes
# (Linux too copies when it cannot pin the pages; its completions on the error queue are not modelled)
_SEND_FLAGS = frozenset({"MSG_DONTWAIT", "MSG_NOSIGNAL", "MSG_ZEROCOPY", "MSG_MORE", "MSG_EOR", "MSG_OOB"})
_RECV_FLAGS = frozenset({"MSG_DONTWAIT", "MSG_ERRQUEUE", "MSG_PEEK", "MSG_TRUNC", "MSG_WAITALL", "MSG_OOB"})
MAX_SYNCNT = 127  # Linux MAX_TCP_SYNCNT
MAX_BYTES_PER_CALL = 64 << 20  # what one write, sendmsg or sendfile of a script may ask for
MIN_USER_MSS, MAX_USER_MSS = 88, 32767  # Linux TCP_MIN_MSS and MAX_TCP_WINDOW
_FIN_UNACKED = (State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK)  # Linux sk_stream_closing
_CLOSING = (State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSING, State.LAST_ACK, State.TIME_WAIT)


def _linger(value: object) -> tuple[int, int] | None:
    """A struct linger as packetdrill writes it, `{onoff=1, linger=0}` (or with the C names `l_onoff`
    and `l_linger`): (onoff, linger), None if it is not one."""
    if not isinstance(value, Struct):
        return None
    onoff = value.get("onoff") if value.get("onoff") is not None else value.get("l_onoff")
    linger = value.get("linger") if value.get("linger") is not None else value.get("l_linger")
    if not isinstance(onoff, int) or not isinstance(linger, int):
        return None
    return onoff, linger


@dataclass
class Socket:
    fd: int
    nonblocking: bool = False
    port: int = LOCAL_PORT
    config: dict[str, object] = field(default_factory=dict)  # TcpConfig changes made by setsockopt
    reuseaddr: bool = False  # one stack, no port conflicts with older incarnations: nothing to do
    linger: tuple[int, int] = (0, 0)  # (l_onoff, l_linger)
    listener: Listener | None = None
    conn: Connection | None = None
    connecting: bool = False  # connect() was called and has not reported its outcome yet
    shut_rd: bool = False
    shut_wr: bool = False
    disconnected: bool = False  # shutdown() while connecting: closed, never connected (reads say ENOTCONN)
    user_mss: int = 0  # TCP_MAXSEG as set
    notsent_lowat: int = 0  # TCP_NOTSENT_LOWAT as set (0: net.ipv4.tcp_notsent_lowat applies)
    inq: bool = False  # TCP_INQ: recvmsg reports the bytes still queued (TCP_CM_INQ)
    zerocopy: bool = False  # SO_ZEROCOPY
    tsflags: int = 0  # SO_TIMESTAMPING as set
    freebind: bool = False  # IP_FREEBIND: bind() takes an address no interface has (yet)
    nonlocal_bound: bool = False  # bound so (the run's packets never reach such an address)
    cloexec: bool = False  # FD_CLOEXEC, a flag of the descriptor (F_GETFD/F_SETFD), not of the socket
    tos: dict[str, int] = field(default_factory=dict)  # IP_TOS and IPV6_TCLASS as set, ECN field cleared
    pmtu_discovery: int = PMTUDISC_WANT  # IP_MTU_DISCOVER as set
    fast_open_queue: int = 0  # TCP_FASTOPEN as set before listen() (0: none, or the sysctl's 0x400)
    fast_open_no_cookie: bool = False  # TCP_FASTOPEN_NO_COOKIE as set before listen()


def _event_names(arg: Arg, known: frozenset[str] = poll_events.KNOWN, kind: str = "poll") -> frozenset[str]:
    """The names of a poll or epoll event set (`POLLIN|POLLOUT`, 0), each one known (BadArgument if not)."""
    names = msghdr.flag_names(arg)
    unknown = names - known
    if unknown:
        raise msghdr.BadArgument(f"{kind} events {', '.join(sorted(unknown))} are not known")
    return names


class Kernel:
    """The socket layer of one script run."""

    def __init__(
        self,
        demux: Demux,
        config: TcpConfig,
        path: str,
        files: Files,
        local_ip: int = LOCAL_IP,
        remote_ip: int = REMOTE_IP,
    ) -> None:
        self.demux = demux
        self.local_ip = local_ip
        self.remote_ip = remote_ip
        self.config = config
        self.path = path
        self.now = 0.0
        self.sockets: dict[int, Socket] = {}
        self.files = files  # what the script's shell lines created, and the descriptors open on them
        self.pipes: dict[int, pipes.End] = {}  # descriptors of the pipes pipe() made
        self.epolls: dict[int, epoll.Epoll] = {}  # descriptors of the epoll instances epoll_create() made
        self._received: dict[Connection, int] = {}  # in-order bytes each connection had (epoll wakeups)
        self.errors: dict[Connection, int] = {}  # pending SO_ERROR per connection
        self.connected: set[Connection] = set()
        self.active: Connection | None = None  # the newest connect(): inbound packets go to it
        self.newest: Connection | None = None  # the newest connected or accepted socket's connection
        # connections that existed when a later socket() was made: packetdrill no longer watches them
        self.superseded: set[Connection] = set()
        self._timeouts: dict[Poll, float] = {}  # blocked calls that return at a time of their own
        self.tolerance = 0.004  # the run's --tolerance_usecs, for times a call reports (timestamps)

    # ---------------------------------------------------------------- core events

    def on_event(self, conn: Connection, event: Event) -> None:
        if isinstance(event, Connected):
            self.connected.add(conn)
            listener = self.demux.parent.get(conn)
            if listener is not None and conn in listener.syn_queue:
                listener.on_established(conn)  # now accept() can return it
        elif isinstance(event, Reset):
            # (Linux tcp_reset: EPIPE in CLOSE_WAIT, where the peer had closed its side already)
            if event.refused:
                self.errors[conn] = errno_codes.ECONNREFUSED
            else:
                self.errors[conn] = errno_codes.EPIPE if event.in_close_wait else errno_codes.ECONNRESET
        elif isinstance(event, TimedOut):
            self.errors[conn] = errno_codes.ETIMEDOUT
        elif isinstance(event, Unreachable):
            self.errors[conn] = event.error
        if self.epolls:
            self._wake(conn, event)

    def _wake(self, conn: Connection, event: Event) -> None:
        """The wakeups Linux gives the event's socket (and, for a connection ready to accept, its
        listener's), for the epoll instances watching them."""
        if isinstance(event, DataAvailable):
            self._wake_socket(conn, epoll.READABLE)
        elif isinstance(event, SendSpace):
            self._wake_socket(conn, epoll.WRITABLE)  # sk_stream_write_space
        elif isinstance(event, (Connected, PeerClosed, Reset, TimedOut, Unreachable, Closed)):
            self._wake_socket(conn, epoll.EVERYTHING)  # sk_state_change, sk_error_report
            listener = self.demux.parent.get(conn) if isinstance(event, Connected) else None
            if listener is not None:  # a connection to accept: sk_data_ready of the listener
                self._wake_fds([sock.fd for sock in self.sockets.values() if sock.listener is listener], epoll.READABLE)

    def on_progress(self, conn: Connection) -> None:
        """After a connection's segments: new in-order bytes wake its readers, every segment's as Linux's
        tcp_data_ready does, queued bytes unread or not (counted whether an epoll instance watches yet)."""
        received = conn.receiver.bytes_received
        if received != self._received.get(conn, 0):
            self._received[conn] = received
            if self.epolls:
                self._wake_socket(conn, epoll.READABLE)

    def _wake_socket(self, conn: Connection, key: frozenset[str] | None) -> None:
        self._wake_fds([sock.fd for sock in self.sockets.values() if sock.conn is conn], key)

    def _wake_fds(self, fds: list[int], key: frozenset[str] | None) -> None:
        for fd in fds:
            for instance in self.epolls.values():
                instance.wake(fd, key)

    # ---------------------------------------------------------------- dispatch

    def call(self, line: SyscallLine, now: float) -> Outcome | Poll:
        self.now = now
        handler = getattr(self, f"_sys_{line.name}", None)
        if handler is None:
            raise self.skip(line, f"system call {line.name}() is not supported")
        return handler(line)

    def under_test(self) -> Connection | None:
        """packetdrill's socket under test: the newest one connected or accepted."""
        return self.newest

    def skip(self, line: SyscallLine, reason: str) -> ScriptSkip:
        return ScriptSkip(f"{self.path}:{line.line}: {reason}")

    def fail(self, line: SyscallLine, expected: str, actual: str) -> ScriptFailure:
        return ScriptFailure(f"{self.path}:{line.line}: {line.text}\n  expected: {expected}\n  actual:   {actual}")

    def _arg(self, line: SyscallLine, i: int) -> Arg:
        if i >= len(line.args):
            raise ScriptFailure(f"{self.path}:{line.line}: {line.name}() needs at least {i + 1} arguments")
        return line.args[i]

    def _int(self, line: SyscallLine, i: int) -> int:
        value = self._arg(line, i)
        if isinstance(value, Array) and len(value.items) == 1:
            value = value.items[0]
        if isinstance(value, Name) and value.name in errno_codes.__dict__:
            return getattr(errno_codes, value.name)
        if not isinstance(value, int):
            raise ScriptFailure(f"{self.path}:{line.line}: argument {i + 1} of {line.name}() must be a number")
        return value

    def _byte_count(self, line: SyscallLine, count: int) -> int:
        """A count of bytes a call sends: made here as zeroes, so bounded (a negative one cannot be written)."""
        self._not_negative(line, count)
        if count > MAX_BYTES_PER_CALL:
            raise ScriptSkip(f"{line.name}() of {count} bytes: at most {MAX_BYTES_PER_CALL} in one call")
        return count

    def _not_negative(self, line: SyscallLine, count: int) -> int:
        """A count of bytes a call moves: a negative one is a mistake in the script."""
        if count < 0:
            raise ScriptFailure(f"{self.path}:{line.line}: {line.name}() of {count} bytes")
        return count

    def _sock(self, line: SyscallLine) -> Socket | None:
        fd = self._arg(line, 0)
        return self.sockets.get(fd) if isinstance(fd, int) else None

    def _new_fd(self, line: SyscallLine) -> int:
        """The descriptor the script names as the result (`socket(...) = 4`) if free, else Linux's
        lowest free one: packetdrill maps script descriptors onto the live ones the same way."""
        taken = self._open_fds()
        if isinstance(line.result, int) and line.result >= 3 and line.result not in taken:
            return line.result
        fd = 3
        while fd in taken:
            fd += 1
        return fd

    def _open_fds(self) -> set[int]:
        """Every descriptor the script has open: sockets, files, pipe ends and epoll instances."""
        return self.sockets.keys() | self.files.open.keys() | self.pipes.keys() | self.epolls.keys()

    def _config(self, sock: Socket) -> TcpConfig:
        return replace(self.config, **sock.config)

    def _error(self, sock: Socket, clear: bool = True) -> int:
        if sock.conn is None:
            return 0
        return self.errors.pop(sock.conn, 0) if clear else self.errors.get(sock.conn, 0)

    # ---------------------------------------------------------------- sockets

    def _sys_socket(self, line: SyscallLine) -> Outcome:
        domain, kind = self._arg(line, 0), self._arg(line, 1)
        # as packetdrill with --ip_version=ipv6, AF_INET in a script means the run's family
        domains = (Name("AF_INET"), Name("AF_INET6")) if addr.is_v6(self.local_ip) else (Name("AF_INET"),)
        if not isinstance(domain, AnyValue) and domain not in domains:
            raise self.skip(line, f"socket domain {domain} is not supported in this run's IP version")
        names = {t.name for t in kind.terms if isinstance(t, Name)} if isinstance(kind, BitOr) else {str(kind)}
        if "SOCK_STREAM" not in names or names - {"SOCK_STREAM", "SOCK_NONBLOCK", "SOCK_CLOEXEC"}:
            raise self.skip(line, f"socket type {kind} is not supported (SOCK_STREAM only)")
        fd = self._new_fd(line)
        # a Linux socket reads urgent data out of band until SO_OOBINLINE is set
        self.sockets[fd] = Socket(
            fd, nonblocking="SOCK_NONBLOCK" in names, cloexec="SOCK_CLOEXEC" in names, config={"urgent_inline": False}
        )
        self.superseded.update(self.demux.connections.values())
        return fd, None

    def _sys_bind(self, line: SyscallLine) -> Outcome:
        sock = self._sock(line)
        if sock is None:
            return -1, "EBADF"
        address = self._arg(line, 1)
        if isinstance(address, Struct):
            port = address.get("sin_port")
            if isinstance(port, Call) and port.function == "htons" and port.args and isinstance(port.args[0], int):
                sock.port = port.args[0]
            elif port is not None:
                raise self.skip(line, f"bind address {address} is not supported")
            ip = address.get("sin_addr")
            if isinstance(ip, Call) and ip.function == "inet_addr" and ip.args and isinstance(ip.args[0], str):
                try:
                    wanted = addr.parse(ip.args[0])
                except ValueError:
                    return -1, "EINVAL"
                # an address of no interface here: EADDRNOTAVAIL unless IP_FREEBIND lets it be bound
                # before it exists (Linux inet_addr_valid_or_nonlocal)
                if wanted not in (0, self.local_ip) and not sock.freebind:
                    return -1, "EADDRNOTAVAIL"
                sock.nonlocal_bound = wanted not in (0, self.local_ip)
            elif ip is not None and not isinstance(ip, AnyValue) and ip != Call("htonl", (Name("INADDR_ANY"),)):
                raise self.skip(line, f"bind address {ip} is not supported")
        return 0, None

    def _sys_listen(self, line: SyscallLine) -> Outcome:
        sock = self._sock(line)
        if sock is None:
            return -1, "EBADF"
        if sock.conn is not None:
            return -1, "EINVAL"
        if sock.nonlocal_bound:
            raise self.skip(line, "listening on an address the run's packets do not go to is not modelled")
        self.demux.config = self._config(sock)  # the listener and its children use the socket's options
        try:
            sock.listener = self.demux.listen((self.local_ip, sock.port), self._int(line, 1), self.now)
        except OSError:
            return -1, "EADDRINUSE"
        finally:
            self.demux.config = self.config
        sock.listener.take_fast_open_options(sock.fast_open_queue, sock.fast_open_no_cookie)
        return 0, None

    def _sys_accept(self, line: SyscallLine) -> Outcome | Poll:
        sock = self._sock(line)
        if sock is None:
            return -1, "EBADF"
        listener = sock.listener
        if listener is None:
            return -1, "EINVAL"

        def attempt() -> Outcome | None:
            child = listener.accept()
            if child is None:
                return None
            fd = self._new_fd(line)
            self.sockets[fd] = Socket(
                fd,
                port=sock.port,
                config=dict(sock.config),
                conn=child,
                tsflags=sock.tsflags,
                tos=dict(sock.tos),
                pmtu_discovery=sock.pmtu_discovery,
            )
            if sock.tsflags:  # the child inherits the listener's SO_TIMESTAMPING (Linux sk_clone_lock)
                child.set_tx_timestamping(sock.tsflags)
            self.newest = child
            return fd, None

        return self._maybe_block(sock, attempt)

    def _sys_connect(self, line: SyscallLine) -> Outcome | Poll:
        sock = self._sock(line)
        if sock is None:
            return -1, "EBADF"
        if sock.listener is not None:
            return -1, "EISCONN"
        if sock.conn is not None:
            if sock.connecting:
                return self._connect_outcome(sock) or (-1, "EALREADY")
            return -1, "EISCONN"
        self.demux.config = self._config(sock)
        try:
            sock.conn = self.demux.connect(self.local_ip, (self.remote_ip, LOCAL_PORT), self.now)
        finally:
            self.demux.config = self.config
        sock.connecting = True
        if sock.tsflags:
            sock.conn.set_tx_timestamping(sock.tsflags)
        self.active = self.newest = sock.conn
        if sock.nonblocking:
            return -1, "EINPROGRESS"
        return lambda: self._connect_outcome(sock)

    def _connect_outcome(self, sock: Socket) -> Outcome | None:
        """A connect finishes when the handshake completes or fails (SO_ERROR is then consumed)."""
        assert sock.conn is not None
        if sock.conn in self.connected:
            sock.connecting = False
            return 0, None
        err = self._error(sock)
        if err:
            sock.connecting = False
            return -1, errno_codes.errorcode[err]
        return None

    def _maybe_block(self, sock: Socket, attempt: Callable[[], Outcome | None]) -> Outcome | Poll:
        outcome = attempt()
        if outcome is not None:
            return outcome
        if sock.nonblocking:
            return -1, "EAGAIN"
        return attempt

    # ---------------------------------------------------------------- data

    def _sys_write(self, line: SyscallLine) -> Outcome | Poll:
        """write(fd, buf, len); send(fd, buf, len, flags); sendto(..., addr, addrlen), whose address a
        connected socket ignores."""
        sock = self._sock(line)
        if sock is None:
            return -1, "EBADF"
        flags = self._flags(line, 3, _SEND_FLAGS)
        buf = self._arg(line, 1)
        total = self._byte_count(line, self._int(line, 2))
        if buf == Name("NULL") and total:
            return (-1, "EFAULT") if sock.conn is not None else self._not_connected(sock)
        data = buf.encode()[:total].ljust(total, b"\0") if isinstance(buf, str) else bytes(total)
        return self._send(sock, data, flags)

    _sys_send = _sys_write
    _sys_sendto = _sys_write

    def _sys_sendmsg(self, line: SyscallLine) -> Outcome | Poll:
        """sendmsg(fd, msghdr, flags): the iovecs' bytes as one write (msg_name: ignored when connected)."""
        sock = self._sock(line)
        if sock is None:
            return -1, "EBADF"
        flags = self._flags(line, 2, _SEND_FLAGS)
        try:
            total = sum(msghdr.iov_lengths(self._arg(line, 1)))
        except msghdr.BadArgument as exc:
            raise ScriptFailure(f"{self.path}:{line.line}: {exc}") from None
        return self._send(sock, bytes(self._byte_count(line, total)), flags)

    def _not_connected(self, sock: Socket) -> Outcome:
        return -1, "ENOTCONN" if sock.listener is None else "EPIPE"

    def _send(self, sock: Socket, data: bytes, flags: frozenset[str]) -> Outcome | Poll:
        conn = sock.conn
        if conn is None:
            return self._not_connected(sock)
        total = len(data)
        nonblocking = sock.nonblocking or "MSG_DONTWAIT" in flags
        sent = 0
        waiting = False  # blocked for room in the send buffer

        def attempt() -> Outcome | None:
            nonlocal sent, waiting
            err = self._error(sock)
            if err:
                return -1, errno_codes.errorcode[err]
            if sock.shut_wr or conn.finished or conn.state in (*_CLOSING, State.CLOSED):
                return -1, "EPIPE"
            if conn not in self.connected:
                return None  # still in the handshake: Linux waits for it
            if not total:
                return 0, None
            if waiting and not poll_events.writable(conn):
                return None  # Linux wakes a writer only when a third of the buffer is free (sk_stream_write_space)
            try:
                sent += conn.send(data[sent:], self.now, "MSG_MORE" in flags, "MSG_EOR" in flags, "MSG_OOB" in flags)
            except LocalProtocolError:
                return -1, "EPIPE"
            if sent == total or (nonblocking and sent):
                return sent, None
            waiting = True
            return None  # a blocking write waits until every byte is in the send buffer

        outcome = attempt()
        if outcome is not None:
            return outcome
        return (-1, "EAGAIN") if nonblocking else attempt

    def _flags(self, line: SyscallLine, i: int, supported: frozenset[str]) -> frozenset[str]:
        """The flags argument at `i` (absent: none); a flag tcpstack does not model makes the script SKIP."""
        if i >= len(line.args):
            return frozenset()
        try:
            names = msghdr.flag_names(line.args[i])
        except msghdr.BadArgument as exc:
            raise ScriptFailure(f"{self.path}:{line.line}: {exc}") from None
        if names - supported:
            raise self.skip(line, f"{line.name}() flags {line.args[i]} are not supported")
        return names

    def _sys_read(self, line: SyscallLine) -> Outcome | Poll:
        """read(fd, buf, len); recv(fd, buf, len, flags); recvfrom(..., addr, addrlen)."""
        sock = self._sock(line)
        if sock is None:
            return -1, "EBADF"
        flags = self._flags(line, 3, _RECV_FLAGS)
        size = self._not_negative(line, self._int(line, 2))
        if "MSG_ERRQUEUE" in flags:
            return self._read_errqueue(line, sock, size, None, [])
        null = self._arg(line, 1) == Name("NULL")
        return self._receive(sock, size, null, flags, lambda: None)

    _sys_recv = _sys_read
    _sys_recvfrom = _sys_read

    def _sys_recvmsg(self, line: SyscallLine) -> Outcome | Poll:
        """recvmsg(fd, msghdr, flags): into the iovecs; with TCP_INQ on, the TCP_CM_INQ control message
        says how many bytes are still queued, the peer's FIN counting as one once it arrived (Linux
        tcp_inq_hint: RCV.NXT less the next byte to read)."""
        sock = self._sock(line)
        if sock is None:
            return -1, "EBADF"
        flags = self._flags(line, 2, _RECV_FLAGS)
        msg = self._arg(line, 1)
        try:
            size = sum(msghdr.iov_lengths(msg))
            expected = msghdr.control_messages(msg)
        except msghdr.BadArgument as exc:
            raise ScriptFailure(f"{self.path}:{line.line}: {exc}") from None
        out_flags = msg.get("msg_flags") if isinstance(msg, Struct) else None
        if "MSG_ERRQUEUE" in flags:
            return self._read_errqueue(line, sock, size, out_flags, expected)
        # what Linux's tcp_recvmsg reports of a stream: MSG_OOB (and MSG_TRUNC with no room) for the
        # urgent byte, nothing else (the control buffer is sized for what the script expects)
        urgent = frozenset({"MSG_OOB"} | ({"MSG_TRUNC"} if not size else set()))
        self._check_msg_flags(line, out_flags, urgent if "MSG_OOB" in flags else frozenset())

        for want in expected:
            if want.level not in ("SOL_TCP", "IPPROTO_TCP") or want.type != "TCP_CM_INQ":
                raise self.skip(line, f"control message {want.level}/{want.type} is not supported")

        def check_control() -> None:
            conn = sock.conn
            assert conn is not None
            actual = [conn.recv_queue_bytes + (1 if conn.receiver.peer_fin else 0)] if sock.inq else []
            if len(expected) != len(actual) or any(
                not isinstance(w.data, AnyValue) and w.data != a for w, a in zip(expected, actual, strict=True)
            ):
                shown = ", ".join(f"{{TCP_CM_INQ={a}}}" for a in actual) or "none"
                raise self.fail(line, f"msg_control={msg.get('msg_control')}", f"control messages {shown}")

        return self._receive(sock, size, False, flags, check_control)

    def _check_msg_flags(self, line: SyscallLine, out_flags: Arg | None, got: frozenset[str]) -> None:
        """recvmsg's msg_flags as the script expects them, unless it leaves them out or writes `...`."""
        if out_flags is None or isinstance(out_flags, AnyValue):
            return
        try:
            want = msghdr.flag_names(out_flags)
        except msghdr.BadArgument as exc:
            raise ScriptFailure(f"{self.path}:{line.line}: {exc}") from None
        if want != got:
            raise self.fail(line, f"msg_flags={out_flags}", f"msg_flags={'|'.join(sorted(got)) or 0}")

    def _read_errqueue(
        self, line: SyscallLine, sock: Socket, size: int, out_flags: Arg | None, expected: list[msghdr.ControlMessage]
    ) -> Outcome:
        """A read of the error queue: the oldest transmit timestamp, never blocking (EAGAIN when empty),
        its msg_flags and control messages checked (errqueue.py)."""
        if sock.zerocopy:
            raise self.skip(line, "zerocopy completions on the error queue are not modelled")
        stamps = sock.conn.tx_stamps if sock.conn is not None else None
        if stamps is None or not stamps.queue:
            return -1, "EAGAIN"
        report = stamps.queue[0]
        if report.packet and size:
            raise self.skip(line, "the packet a transmit timestamp carries is not modelled (OPT_TSONLY reads it)")
        self._check_msg_flags(line, out_flags, errqueue.out_flags(report, size))
        if expected:
            try:
                problem = errqueue.mismatch(report, expected, addr.is_v6(self.local_ip), self.tolerance)
            except errqueue.Unmodelled as exc:
                raise self.skip(line, str(exc)) from None
            if problem:
                raise self.fail(line, "the transmit timestamp the script gives", problem)
        stamps.queue.pop(0)
        return 0, None

    def _receive(
        self, sock: Socket, size: int, null: bool, flags: frozenset[str], after: Callable[[], None]
    ) -> Outcome | Poll:
        conn = sock.conn
        if conn is None:
            return -1, "ENOTCONN"  # also on a listener (Linux tcp_recvmsg)
        if "MSG_OOB" in flags:
            return self._read_urgent(sock, conn, size, "MSG_PEEK" in flags)

        nonblocking = sock.nonblocking or "MSG_DONTWAIT" in flags
        # MSG_WAITALL: a blocking read returns once `size` bytes are taken (or at EOF or an error); Linux
        # takes them as they come, so the window keeps opening (tcp_recvmsg's target)
        target = size if "MSG_WAITALL" in flags and not nonblocking else 1
        peek = "MSG_PEEK" in flags
        taken = 0

        def attempt() -> Outcome | None:
            nonlocal taken
            queued = conn.recv_queue_bytes
            if queued and size:
                if null and "MSG_TRUNC" not in flags:
                    return -1, "EFAULT"  # the copy to address 0 fails; the data stays queued
                if peek:  # read without taking (Linux peek_seq); with MSG_WAITALL, until `size` are queued
                    if queued >= min(size, target) or self._read_ends(sock):
                        after()
                        return min(queued, size), None
                    return None
                # (MSG_TRUNC: taken but not copied, as Linux's tcp_recvmsg for a stream socket)
                taken += len(conn.read(size - taken))
                if taken >= target or not conn.recv_queue_bytes and self._read_ends(sock):
                    after()
                    return taken, None
                return None
            if queued and not size:
                return 0, None
            if taken:  # MSG_WAITALL got part of it: EOF or an error ends it with what it has
                return (taken, None) if self._read_ends(sock) else None
            return self._nothing_queued(sock, conn)

        return self._try(attempt, nonblocking)

    def _nothing_queued(self, sock: Socket, conn: Connection) -> Outcome | None:
        """A read with nothing queued: 0 after the peer's FIN, then the pending error (Linux tcp_recvmsg
        looks at SOCK_DONE first: an error after the FIN waits for the next call), 0 at EOF, else None
        (it waits)."""
        if conn.at_eof:
            return 0, None
        err = self._error(sock)
        if err:
            return -1, errno_codes.errorcode[err]
        if sock.disconnected:  # Linux's tcp_recvmsg on a socket that never connected
            return -1, "ENOTCONN"
        if sock.shut_rd or conn.at_eof or conn.finished:
            return 0, None
        return None

    def _try(self, attempt: Callable[[], Outcome | None], nonblocking: bool) -> Outcome | Poll:
        """Try a call once; a blocking one that has to wait is tried again after every change."""
        outcome = attempt()
        if outcome is not None:
            return outcome
        return (-1, "EAGAIN") if nonblocking else attempt

    def _read_urgent(self, sock: Socket, conn: Connection, size: int, peek: bool) -> Outcome:
        """recv(MSG_OOB), Linux tcp_recv_urg: the urgent byte, once (MSG_PEEK leaves it); EINVAL when there
        is none to read or it is read in-line, EAGAIN while it has not arrived (this never blocks)."""
        pointer = conn.urgent
        if conn.config.urgent_inline or pointer is None or pointer.read:
            return -1, "EINVAL"
        if pointer.byte is not None:
            pointer.read = not peek
            return min(size, 1), None
        if conn.finished or sock.shut_rd or conn.receiver.peer_fin:
            return 0, None
        return -1, "EAGAIN"

    def _read_ends(self, sock: Socket) -> bool:
        """No more bytes can come for a read: EOF, shutdown(SHUT_RD), a closed connection or an error."""
        conn = sock.conn
        assert conn is not None
        return sock.shut_rd or conn.at_eof or conn.finished or bool(self._error(sock, clear=False))

    # ---------------------------------------------------------------- poll

    def _sys_poll(self, line: SyscallLine) -> Outcome | Poll:
        """poll(fds, nfds, timeout_ms): Linux tcp_poll's events for each descriptor; it blocks until one is
        ready or the timeout (-1: none) passes. Each `revents` the script gives is checked."""
        fds = self._arg(line, 0)
        timeout_ms = self._int(line, 2)
        entries = fds.items if isinstance(fds, Array) else ()
        polled = []
        for entry in entries:
            fd = entry.get("fd") if isinstance(entry, Struct) else None
            if not isinstance(fd, int):
                raise ScriptFailure(f"{self.path}:{line.line}: poll() needs {{fd=N, events=...}} entries")
            want = entry.get("revents")
            try:
                wanted = _event_names(entry.get("events") or 0) | poll_events.ALWAYS
                expected = None if want is None or isinstance(want, AnyValue) else _event_names(want)
            except msghdr.BadArgument as exc:
                raise ScriptFailure(f"{self.path}:{line.line}: {exc}") from None
            polled.append((fd, wanted, want, expected))
        deadline = None if timeout_ms < 0 else self.now + timeout_ms / 1000

        def attempt() -> Outcome | None:
            ready = [(fd, self._ready(fd) & wanted, want, expected) for fd, wanted, want, expected in polled]
            count = sum(1 for _, got, _, _ in ready if got)
            if not count and (deadline is None or self.now < deadline - 1e-9):
                return None
            for fd, got, want, expected in ready:
                if expected is not None and expected != got:
                    raise self.fail(line, f"fd {fd} revents={want}", f"fd {fd} revents={_shown(got)}")
            self._timeouts.pop(attempt, None)
            return count, None

        return self._wait(attempt, deadline)

    def _sys_epoll_create(self, line: SyscallLine) -> Outcome:
        """epoll_create(size): a new epoll instance; the size is only checked (EINVAL unless positive)."""
        if self._int(line, 0) <= 0:
            return -1, "EINVAL"
        fd = self._new_fd(line)
        self.epolls[fd] = epoll.Epoll()
        return fd, None

    def _sys_epoll_ctl(self, line: SyscallLine) -> Outcome:
        """epoll_ctl(epfd, EPOLL_CTL_ADD|MOD|DEL, fd, {events=..., fd=N}) on the script's sockets, with
        Linux's errors: EBADF for a descriptor not open, EINVAL for epfd not an epoll instance (or fd the
        instance itself), EPERM for a file, EEXIST for a second ADD, ENOENT to change what was not added."""
        epfd, op, fd = self._arg(line, 0), self._arg(line, 1), self._arg(line, 2)
        instance = self.epolls.get(epfd) if isinstance(epfd, int) else None
        opened = self._open_fds()
        if epfd not in opened or fd not in opened:
            return -1, "EBADF"
        if instance is None or fd == epfd:
            return -1, "EINVAL"
        if fd in self.files.open:
            return -1, "EPERM"  # a regular file is always ready: epoll refuses it
        if not isinstance(fd, int) or fd not in self.sockets:
            raise self.skip(line, "epoll of a pipe or of another epoll instance is not supported")
        name = op.name if isinstance(op, Name) else None
        if name not in ("EPOLL_CTL_ADD", "EPOLL_CTL_MOD", "EPOLL_CTL_DEL"):
            return -1, "EINVAL"
        if (name == "EPOLL_CTL_ADD") == (fd in instance.interests):
            return -1, "EEXIST" if name == "EPOLL_CTL_ADD" else "ENOENT"
        if name == "EPOLL_CTL_DEL":
            instance.remove(fd)
            return 0, None
        names, data = self._epoll_event(line, self._arg(line, 3))
        if "EPOLLEXCLUSIVE" in names and (name == "EPOLL_CTL_MOD" or "EPOLLONESHOT" in names):
            return -1, "EINVAL"  # as Linux: exclusive wakeups are set once, and not with one-shot
        interest = epoll.Interest(names - epoll.MODES, "EPOLLET" in names, "EPOLLONESHOT" in names, data)
        instance.arm(fd, interest, epoll.epoll_names(self._ready(fd)))
        return 0, None

    def _sys_epoll_wait(self, line: SyscallLine) -> Outcome | Poll:
        """epoll_wait(epfd, {events=..., fd=N}, maxevents, timeout_ms): the ready interests' events; it
        blocks until there are some or the timeout (-1: none) passes. As packetdrill, the script's event
        is checked against the first one reported (all zero when none is)."""
        epfd, most, timeout_ms = self._arg(line, 0), self._int(line, 2), self._int(line, 3)
        instance = self.epolls.get(epfd) if isinstance(epfd, int) else None
        if instance is None:
            return -1, "EINVAL" if epfd in self._open_fds() else "EBADF"
        if most <= 0:
            return -1, "EINVAL"
        want = self._arg(line, 1)
        expected = None if isinstance(want, AnyValue) else self._epoll_event(line, want)
        deadline = None if timeout_ms < 0 else self.now + timeout_ms / 1000

        def attempt() -> Outcome | None:
            taken = instance.take(most, lambda fd: epoll.epoll_names(self._ready(fd)))
            if not taken and (deadline is None or self.now < deadline - 1e-9):
                return None
            self._timeouts.pop(attempt, None)
            if expected is not None:
                names, data = taken[0] if taken else (frozenset(), epoll.Data(expected[1].member, 0))
                if names != expected[0] or not data.matches(expected[1]):
                    want_names, want_data = expected
                    raise self.fail(
                        line,
                        f"{{events={_shown(want_names)}, {want_data.member}={want_data.value}}}",
                        f"{{events={_shown(names)}, {data.member}={data.value}}}",
                    )
            return len(taken), None

        return self._wait(attempt, deadline)

    def _epoll_event(self, line: SyscallLine, arg: Arg) -> tuple[frozenset[str], epoll.Data]:
        """A struct epoll_event as packetdrill writes it: `{events=EPOLLIN|EPOLLET, fd=4}` (or ptr=, u32=,
        u64= for the data)."""
        if not isinstance(arg, Struct):
            raise ScriptFailure(f"{self.path}:{line.line}: {line.name}() needs an {{events=..., fd=N}} event")
        try:
            names = _event_names(arg.get("events") or 0, epoll.KNOWN, "epoll")
        except msghdr.BadArgument as exc:
            raise ScriptFailure(f"{self.path}:{line.line}: {exc}") from None
        for member in ("fd", "ptr", "u32", "u64"):
            value = arg.get(member)
            if isinstance(value, int):
                return names, epoll.Data(member, value)
        raise ScriptFailure(f"{self.path}:{line.line}: the event's data needs fd=, ptr=, u32= or u64=")

    def _wait(self, attempt: Poll, deadline: float | None) -> Outcome | Poll:
        """Try a call once; if it has to wait, the runner tries it again after every change and, with a
        deadline, wakes it then (timeout())."""
        outcome = attempt()
        if outcome is not None:
            return outcome
        if deadline is not None:
            self._timeouts[attempt] = deadline
        return attempt

    def timeout(self, call: Poll) -> float | None:
        """When a blocked call returns by itself (poll's timeout), if it does."""
        return self._timeouts.get(call)

    def _ready(self, fd: int) -> frozenset[str]:
        sock = self.sockets.get(fd)
        if sock is None:
            return frozenset({"POLLNVAL"})
        if sock.listener is not None:
            return poll_events.listener(len(sock.listener.accept_queue))
        conn = sock.conn
        stamps = conn.tx_stamps if conn is not None else None
        error = self._error(sock, clear=False) != 0 or bool(stamps and stamps.queue)  # the error queue too
        connected = conn in self.connected
        events = poll_events.connection(conn, error, sock.shut_rd, sock.shut_wr, connected, sock.disconnected)
        # urgent data not yet read out of band (Linux tcp_poll: EPOLLPRI)
        return events | {"POLLPRI"} if conn is not None and urgent.pending(conn) else events

    # ---------------------------------------------------------------- closing

    def _sys_shutdown(self, line: SyscallLine) -> Outcome:
        sock = self._sock(line)
        if sock is None:
            return -1, "EBADF"
        how = str(self._arg(line, 1))
        if how not in ("SHUT_RD", "SHUT_WR", "SHUT_RDWR"):
            return -1, "EINVAL"
        if sock.listener is not None:
            # Linux's inet_shutdown: a listener ignores SHUT_WR, and SHUT_RD stops it listening (tcp_disconnect,
            # which resets the children nobody accepted, as close() does)
            if how != "SHUT_WR":
                self._close_listener(sock.listener)
                sock.listener = None
            return 0, None
        conn = sock.conn
        if conn is None or conn.finished or conn.state is State.CLOSED:
            return -1, "ENOTCONN"
        if conn.state is State.SYN_SENT:
            # Linux's inet_shutdown disconnects a socket still connecting (tcp_disconnect): no RST (the peer
            # has no TCB), and the connect fails with ECONNRESET
            conn.abort(self.now)
            self.errors[conn] = errno_codes.ECONNRESET
            sock.disconnected = True
            return 0, None
        if how != "SHUT_WR":
            sock.shut_rd = True
            conn.shutdown_receive()
        if how != "SHUT_RD" and not sock.shut_wr:
            sock.shut_wr = True
            if conn.state not in _CLOSING:
                conn.close(self.now)  # CLOSE (§3.10.4): FIN after the queued data; receiving goes on
        if conn.state is State.TIME_WAIT:
            # Linux's socket was closed when a timewait socket took the connection over (tcp_time_wait):
            # inet_shutdown still marks it shut, and says ENOTCONN
            return -1, "ENOTCONN"
        return 0, None

    def _sys_pipe(self, line: SyscallLine) -> Outcome:
        """pipe([r, w]): two descriptors (those the script names, if free) on one new pipe."""
        fds = self._arg(line, 0)
        wanted = list(fds.items) if isinstance(fds, Array) and len(fds.items) == 2 else [None, None]
        pipe = pipes.Pipe()
        for want, writes in zip(wanted, (False, True), strict=True):
            fd = self._new_fd(replace(line, result=want if isinstance(want, int) else -1))
            self.pipes[fd] = pipes.End(pipe, writes)
        return 0, None

    def _sys_splice(self, line: SyscallLine) -> Outcome | Poll:
        """splice(socket, NULL, pipe, NULL, len, flags): move up to len received bytes into the pipe, as
        Linux's tcp_splice_read. It stops at the urgent mark and never skips the urgent byte; at the mark
        it returns 0 rather than wait (the bytes queued behind it cannot be reached). No room in the pipe:
        it waits, unless SPLICE_F_NONBLOCK or the socket says not to (EAGAIN); no data: it waits unless
        the socket is non-blocking, whatever the flag (which is the pipe's, splice(2); do_splice's
        wait_for_space, then tcp_splice_read's sock_rcvtimeo)."""
        sock, out = self._sock(line), self.pipes.get(self._arg(line, 2))
        if sock is None or out is None:
            raise self.skip(line, "splice() other than from a socket into a pipe is not supported")
        if not out.writes:
            return -1, "EBADF"
        if self._arg(line, 1) != Name("NULL") or self._arg(line, 3) != Name("NULL"):
            return -1, "ESPIPE"  # neither a socket nor a pipe has a file offset
        conn = sock.conn
        if conn is None:
            return -1, "ENOTCONN"
        flags = self._flags(line, 5, frozenset({"SPLICE_F_NONBLOCK", "SPLICE_F_MOVE", "SPLICE_F_MORE"}))
        size, pipe = self._not_negative(line, self._int(line, 4)), out.pipe

        def attempt() -> Outcome | None:
            queued = conn.recv_queue_bytes
            if queued and pipe.room:
                limit = min(size, pipe.room, queued)
                marked = conn.urgent
                if marked is not None and 0 <= seq_sub(marked.seq, urgent.copied_seq(conn)) < limit:
                    limit = seq_sub(marked.seq, urgent.copied_seq(conn))
                n = len(conn.read(limit)) if limit else 0
                pipe.held += n
                return n, None
            if not pipe.room:
                return (-1, "EAGAIN") if "SPLICE_F_NONBLOCK" in flags else None
            return None if queued else self._nothing_queued(sock, conn)

        return self._try(attempt, sock.nonblocking)

    def _sys_open(self, line: SyscallLine) -> Outcome:
        """open(path, O_RDONLY) of a file the script's shell lines created (files.py)."""
        path, flags = self._arg(line, 0), self._arg(line, 1)
        if not isinstance(path, str) or flags != Name("O_RDONLY"):
            raise self.skip(line, "open() other than O_RDONLY of a file the script made is not supported")
        if path not in self.files.sizes:
            return -1, "ENOENT"
        fd = self._new_fd(line)
        self.files.open[fd] = OpenFile(path)
        return fd, None

    def _sys_sendfile(self, line: SyscallLine) -> Outcome | Poll:
        """sendfile(out_fd, in_fd, [offset] or NULL, count): the file's bytes go out as a write."""
        sock = self._sock(line)
        in_fd, offset = self._arg(line, 1), self._arg(line, 2)
        if sock is None or in_fd not in self.files.open:
            return -1, "EBADF"
        start = None if offset == Name("NULL") else self._int(line, 2)
        if start is not None and start < 0:
            return -1, "EINVAL"  # as rw_verify_area
        n = self.files.read(in_fd, start, self._byte_count(line, self._int(line, 3)))
        return self._send(sock, bytes(n), frozenset())

    def _sys_close(self, line: SyscallLine) -> Outcome:
        if self.files.open.pop(self._arg(line, 0), None) is not None:  # a file's descriptor
            return 0, None
        if self.epolls.pop(self._arg(line, 0), None) is not None:  # an epoll instance
            return 0, None
        if self.pipes.pop(self._arg(line, 0), None) is not None:  # a pipe's end
            return 0, None
        sock = self._sock(line)
        if sock is None:
            return -1, "EBADF"
        del self.sockets[sock.fd]
        for instance in self.epolls.values():  # a closed descriptor leaves every interest list
            instance.remove(sock.fd)
        if sock.listener is not None:
            self._close_listener(sock.listener)
        conn = sock.conn
        if conn is None or conn.finished:
            return 0, None
        if sock.linger == (1, 0):
            # SO_LINGER with a zero timeout: RST instead of FIN (RFC 9293 §3.10.5 ABORT)
            conn.abort_by_application(self.now)
        elif conn.recv_queue_bytes:
            # unread data is lost: RST, as Linux does (RFC 1122 §4.2.2.13, RFC 2525 §2.17)
            conn.abort_by_application(self.now)
        elif not sock.shut_wr and conn.state not in _CLOSING:
            conn.close(self.now)
        conn.detach(self.now)  # an orphan now: FIN_WAIT_2 is bounded by tcp_fin_timeout, as Linux
        if sock.linger[0] and sock.linger[1]:
            return self._linger(conn, sock.linger[1])
        return 0, None

    def _linger(self, conn: Connection, seconds: int) -> Outcome | Poll:
        """SO_LINGER with a timeout (socket(7)): close() waits while our FIN is not acknowledged (FIN_WAIT_1,
        CLOSING, LAST_ACK: Linux sk_stream_wait_close), at most `seconds`, a non-blocking socket too. It
        returns 0 either way: the connection goes on as an orphan, without the RST BSD would send. A
        negative l_linger is a huge unsigned time in Linux: no limit."""
        deadline = self.now + seconds if seconds > 0 else None

        def attempt() -> Outcome | None:
            closing = conn.state in _FIN_UNACKED and not conn.finished
            if closing and (deadline is None or self.now < deadline - 1e-9):
                return None
            self._timeouts.pop(attempt, None)
            return 0, None

        return self._wait(attempt, deadline)

    def _close_listener(self, listener: Listener) -> None:
        """Like Linux: children nobody accepted are reset; half-open ones are forgotten without a RST."""
        self.demux.unlisten(listener, self.now)
        for child in list(listener.accept_queue):
            if not child.finished:  # (one reset before it was accepted is over already)
                child.abort(self.now)
        for child in list(listener.syn_queue):
            self.demux.remove(child)

    # ---------------------------------------------------------------- options

    def _sys_fcntl(self, line: SyscallLine) -> Outcome:
        sock = self._sock(line)
        if sock is None:
            return -1, "EBADF"
        command = str(self._arg(line, 1))
        if command == "F_GETFL":
            return O_RDWR | (O_NONBLOCK if sock.nonblocking else 0), None
        if command == "F_GETFD":
            return (FD_CLOEXEC if sock.cloexec else 0), None
        if command == "F_SETFD":
            value = self._arg(line, 2)
            if value not in (Name("FD_CLOEXEC"), FD_CLOEXEC, 0):
                raise self.skip(line, f"fcntl F_SETFD {value} is not supported")
            sock.cloexec = value != 0  # only FD_CLOEXEC exists (fcntl(2))
            return 0, None
        if command != "F_SETFL":
            raise self.skip(line, f"fcntl {command} is not supported")
        flags = self._arg(line, 2)
        terms = flags.terms if isinstance(flags, BitOr) else (flags,)
        value = 0
        for term in terms:
            if isinstance(term, int):
                value |= term
            elif isinstance(term, Name) and term.name in _FCNTL_FLAGS:
                value |= _FCNTL_FLAGS[term.name]
            else:
                raise self.skip(line, f"fcntl flag {term} is not supported")
        sock.nonblocking = bool(value & O_NONBLOCK)
        return 0, None

    def _sys_setsockopt(self, line: SyscallLine) -> Outcome:
        sock = self._sock(line)
        if sock is None:
            return -1, "EBADF"
        option = str(self._arg(line, 2))
        value = self._arg(line, 3)
        if option == "SO_LINGER":
            fields = _linger(value)
            if fields is None:
                return -1, "EINVAL"
            sock.linger = (1 if fields[0] else 0, fields[1])
            return 0, None
        if option == "TCP_CONGESTION":
            return self._set_congestion(line, sock, value)
        if option == "SO_TIMESTAMPING":
            return self._set_timestamping(line, sock, value)
        if self._ipv6_option_on_ipv4(option):
            return -1, "ENOPROTOOPT"
        if option in _TOS_OPTIONS:
            return self._set_tos(sock, option, self._int(line, 3))
        if option == "IP_MTU_DISCOVER":
            return self._set_mtu_discover(line, sock, value)
        if option == "TCP_MAXSEG":
            return self._set_maxseg(sock, self._int(line, 3))
        if option in ("TCP_FASTOPEN", "TCP_FASTOPEN_NO_COOKIE"):
            return self._set_fast_open(sock, option, self._int(line, 3))
        if option == "TCP_NOTSENT_LOWAT":
            lowat = self._int(line, 3)
            if lowat < 0:
                return -1, "EINVAL"
            sock.notsent_lowat = lowat  # 0: the sysctl's value
            self._configure(sock, "notsent_lowat", lowat or self.config.notsent_lowat)
            return 0, None
        if option not in (*_SOCKET_FLAGS, *_BUFFER_OPTIONS, *_CONFIG_OPTIONS, "SO_OOBINLINE"):
            raise self.skip(line, f"socket option {option} is not supported")
        number = self._int(line, 3)
        if option in _SOCKET_FLAGS:
            setattr(sock, _SOCKET_FLAGS[option], bool(number))
            return 0, None
        if option == "SO_OOBINLINE":
            self._configure(sock, "urgent_inline", bool(number))
            return 0, None
        if option in _BUFFER_OPTIONS:
            # net.core.[rw]mem_max are taken to be above what any script asks (packetdrill's tests run
            # where they are raised); Linux's floor and doubling as the library's sockets have them
            changes = sockopts.buffer_changes(number, receive=option == "SO_RCVBUF", limit=sockopts.INT_MAX)
            for name, value in changes.items():
                self._configure(sock, name, value)
            return 0, None
        name, convert, _ = _CONFIG_OPTIONS[option]
        if number < 0 or option == "TCP_SYNCNT" and not 1 <= number <= MAX_SYNCNT:
            return -1, "EINVAL"
        self._configure(sock, name, convert(number))
        return 0, None

    def _set_fast_open(self, sock: Socket, option: str, value: int) -> Outcome:
        """TCP_FASTOPEN (the listener's queue of fast open children, at most somaxconn) and
        TCP_FASTOPEN_NO_COOKIE (0 or 1): on a socket that is not connected (Linux do_tcp_setsockopt)."""
        no_cookie = option == "TCP_FASTOPEN_NO_COOKIE"
        try:
            value = fast_open_option(no_cookie, value, connected=sock.conn is not None or sock.connecting)
        except OSError:
            return -1, "EINVAL"
        if no_cookie:
            sock.fast_open_no_cookie = bool(value)
        else:
            sock.fast_open_queue = value
        if sock.listener is not None:
            sock.listener.set_fast_open_option(no_cookie, value)
        return 0, None

    def _configure(self, sock: Socket, name: str, value: object) -> None:
        """An option on a connected socket changes its connection; before that it waits for one."""
        sock.config[name] = value
        if sock.listener is not None:
            sock.listener.config = replace(sock.listener.config, **{name: value})
        if sock.conn is not None:
            sockopts.configure(sock.conn, self.now, **{name: value})

    def _set_maxseg(self, sock: Socket, mss: int) -> Outcome:
        """TCP_MAXSEG (Linux tcp_sock_set_maxseg): the MSS we offer and send with is at most this; it acts
        on the SYN, so a connection that exists keeps its MSS. 0 clears it."""
        if mss and not MIN_USER_MSS <= mss <= MAX_USER_MSS:
            return -1, "EINVAL"
        sock.user_mss = mss
        if sock.conn is None:
            default = self.config.mss
            # config.mss is stored for IPv4: the IPv6 config takes 20 off (config.for_ipv6)
            extra = IPV6_EXTRA_HEADER if addr.is_v6(self.local_ip) else 0
            self._configure(sock, "mss", min(mss + extra, default) if mss else default)
        return 0, None

    def _ipv6_option_on_ipv4(self, option: str) -> bool:
        """An IPv4 socket has no IPv6 options: Linux's ip_setsockopt and ip_getsockopt say ENOPROTOOPT."""
        return option == "IPV6_TCLASS" and not addr.is_v6(self.local_ip)

    def _set_tos(self, sock: Socket, option: str, value: int) -> Outcome:
        """IP_TOS (any value, its low byte) and IPV6_TCLASS (-1 to 255, -1 the default 0): the byte our
        segments carry, less the ECN field, which stays TCP's (Linux __ip_sock_set_tos and
        do_ipv6_setsockopt mask it for a stream socket). An IPv6 socket takes both, each for its own IP
        version's packets."""
        if option == "IPV6_TCLASS" and not -1 <= value <= 0xFF:
            return -1, "EINVAL"
        sock.tos[option] = max(value, 0) & 0xFC
        if _TOS_OPTIONS[option] == addr.is_v6(self.local_ip):
            self._configure(sock, "tos", sock.tos[option])
        return 0, None

    def _set_mtu_discover(self, line: SyscallLine, sock: Socket, value: Arg) -> Outcome:
        """IP_MTU_DISCOVER (ip(7)): whether our IPv4 segments carry DF and what a smaller path MTU does
        (stack/tcp/config.py); a value outside IP_PMTUDISC_DONT..IP_PMTUDISC_OMIT is EINVAL, as Linux's."""
        if isinstance(value, Array) and len(value.items) == 1:
            value = value.items[0]
        mode = _PMTUDISC.get(value.name) if isinstance(value, Name) else value
        if not isinstance(mode, int):
            raise self.skip(line, f"IP_MTU_DISCOVER value {value} is not known")
        if not PMTUDISC_DONT <= mode <= PMTUDISC_OMIT:
            return -1, "EINVAL"
        sock.pmtu_discovery = mode
        if not addr.is_v6(self.local_ip):  # an IPv6 socket's IPv6 packets follow IPV6_MTU_DISCOVER instead
            self._configure(sock, "pmtu_discovery", mode)
        return 0, None

    def _set_timestamping(self, line: SyscallLine, sock: Socket, value: Arg) -> Outcome:
        """SO_TIMESTAMPING's transmit timestamps (tx_timestamps.py). OPT_ID needs a connection, as Linux's
        sock_set_timestamping (EINVAL in CLOSE and LISTEN); receive timestamps and hardware ones SKIP."""
        if isinstance(value, Array) and len(value.items) == 1:
            value = value.items[0]
        flags = 0
        for term in value.terms if isinstance(value, BitOr) else (value,):
            if isinstance(term, int):
                flags |= term
            elif isinstance(term, Name) and term.name in tx_timestamps.FLAGS:
                flags |= tx_timestamps.FLAGS[term.name]
            else:
                raise self.skip(line, f"SO_TIMESTAMPING flag {term} is not supported")
        if flags & ~tx_timestamps.SUPPORTED:
            raise self.skip(line, f"SO_TIMESTAMPING flags {flags & ~tx_timestamps.SUPPORTED:#x} are not supported")
        conn = sock.conn
        open_conn = conn is not None and not conn.finished and conn.state is not State.CLOSED
        if flags & tx_timestamps.OPT_ID and not sock.tsflags & tx_timestamps.OPT_ID and not open_conn:
            return -1, "EINVAL"
        sock.tsflags = flags
        if conn is not None:
            conn.set_tx_timestamping(flags)
        return 0, None

    def _set_congestion(self, line: SyscallLine, sock: Socket, value: Arg) -> Outcome:
        if not isinstance(value, str):
            return -1, "EINVAL"
        if value not in congestion.REGISTRY:
            if line.result == 0:
                raise self.skip(line, f"congestion control {value!r} is not available")
            return -1, "ENOENT"  # Linux's answer for an unknown algorithm
        if sock.conn is not None and sock.conn.config.congestion != value:
            sock.conn.set_congestion_control(value)  # Linux allows it on an open socket too
        sock.config["congestion"] = value
        return 0, None

    def _sys_ioctl(self, line: SyscallLine) -> Outcome:
        """SIOCINQ (FIONREAD): bytes ready to read; SIOCOUTQ (TIOCOUTQ): bytes not yet acknowledged,
        SIOCOUTQNSD: bytes not yet sent; both 0 before the handshake is over, as Linux's tcp_ioctl."""
        sock = self._sock(line)
        if sock is None:
            return -1, "EBADF"
        request = str(self._arg(line, 1))
        if request == "FIONBIO":  # ioctl(2): the same flag as fcntl's O_NONBLOCK
            sock.nonblocking = bool(self._int(line, 2))
            return 0, None
        if request not in ("SIOCINQ", "FIONREAD", "SIOCOUTQ", "TIOCOUTQ", "SIOCOUTQNSD", "SIOCATMARK"):
            raise self.skip(line, f"ioctl {request} is not supported")
        conn = sock.conn
        if conn is None:
            return -1, "EINVAL"
        if request in ("SIOCINQ", "FIONREAD"):
            actual = urgent.readable_bytes(conn)
        elif request == "SIOCATMARK":  # the next byte to read is the urgent one
            actual = int(urgent.at_mark(conn))
        elif conn.state in OPENING:
            actual = 0
        elif request == "SIOCOUTQNSD":
            actual = conn.sender.unsent(conn.tcb.snd_nxt)
        else:
            actual = conn.send_queue_bytes
        want = self._arg(line, 2)
        expected = want.items[0] if isinstance(want, Array) and len(want.items) == 1 else want
        if not isinstance(expected, AnyValue) and expected != actual:
            raise self.fail(line, f"{request} = {want}", f"{request} = [{actual}]")
        return 0, None

    def _sys_getsockopt(self, line: SyscallLine) -> Outcome:
        sock = self._sock(line)
        if sock is None:
            return -1, "EBADF"
        option = str(self._arg(line, 2))
        want = self._arg(line, 3)
        config = sock.conn.config if sock.conn is not None else self._config(sock)
        actual: object
        if option == "SO_ERROR":
            err = self._error(sock)
            actual = err
            shown = errno_codes.errorcode.get(err, "0") if err else "0"
            if isinstance(want, Array) and want.items and isinstance(want.items[0], Name):
                actual = errno_codes.errorcode.get(err, "0")
        elif option == "SO_LINGER":
            actual, shown = sock.linger, f"{{onoff={sock.linger[0]}, linger={sock.linger[1]}}}"
            want = _linger(want) or want
        elif option == "TCP_CONGESTION":
            # Linux copies min(optlen, TCP_CA_NAME_MAX) bytes of the name (do_tcp_getsockopt)
            length = self._arg(line, 4)
            size = length.items[0] if isinstance(length, Array) and length.items else None
            cut = min(size, _TCP_CA_NAME_MAX) if isinstance(size, int) else _TCP_CA_NAME_MAX
            actual = shown = config.congestion[:cut]
        elif option == "SO_TIMESTAMPING":
            actual = sock.tsflags
        elif option == "IP_MTU_DISCOVER":
            actual = sock.pmtu_discovery
        elif option == "SO_OOBINLINE":
            actual = int(config.urgent_inline)
        elif self._ipv6_option_on_ipv4(option):
            return -1, "ENOPROTOOPT"
        elif option in _TOS_OPTIONS:
            actual = sock.tos.get(option, 0)  # without the ECN field TCP marks segments with (as Linux 6.18)
        elif option == "TCP_NOTSENT_LOWAT":
            actual = sock.notsent_lowat
        elif option == "TCP_FASTOPEN":
            actual = sock.listener.fast_open_queue if sock.listener is not None else sock.fast_open_queue
        elif option == "TCP_FASTOPEN_NO_COOKIE":
            actual = int(sock.fast_open_no_cookie)
        elif option == "TCP_MAXSEG":
            # Linux: the MSS in use once connected (less the timestamp option); before, what was set
            conn = sock.conn
            if conn is not None and conn.state.synchronized:
                actual = mss_cache(conn.tcb)
            else:
                actual = sock.user_mss or DEFAULT_MSS
        elif option in _SOCKET_FLAGS:
            actual = int(getattr(sock, _SOCKET_FLAGS[option]))
        elif option in _BUFFER_OPTIONS:
            actual = sockopts.buffer_in_use(sock.conn, config, receive=option == "SO_RCVBUF")
        elif option in _CONFIG_OPTIONS:
            name, _, report = _CONFIG_OPTIONS[option]
            actual = report(getattr(config, name))
        else:
            raise self.skip(line, f"socket option {option} is not supported")
        if option not in ("SO_ERROR", "SO_LINGER", "TCP_CONGESTION"):
            shown = str(actual)
        expected = want.items[0] if isinstance(want, Array) and len(want.items) == 1 else want
        if isinstance(expected, Name):
            expected = expected.name
        if option == "IP_MTU_DISCOVER" and isinstance(expected, str):
            expected = _PMTUDISC.get(expected, expected)
        if not isinstance(expected, AnyValue) and expected != actual:
            raise self.fail(line, f"{option} = {want}", f"{option} = [{shown}]")
        return 0, None


def _shown(names: frozenset[str]) -> str:
    """An event set as a script writes it: `POLLIN|POLLOUT`, or 0."""
    return "|".join(sorted(names)) or "0"
