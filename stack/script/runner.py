"""Run a parsed packetdrill script against the sans-I/O core in virtual time.

As in packetdrill: the stack under test is 192.168.0.1:8080, the remote end 192.0.2.1; inbound
sequence numbers are the remote's own (as written), inbound ACK numbers and outbound sequence numbers
are relative to our ISN; outbound lines are matched in order within the time tolerance, and any
outbound packet the script does not expect fails it.
"""

from __future__ import annotations

import errno as errno_codes
from collections import deque
from dataclasses import dataclass, replace

from stack.demux import Demux
from stack.script.ast import PacketLine, Script, SyscallLine
from stack.script.parser import parse
from stack.tcp.config import TcpConfig
from stack.tcp.connection import Connection
from stack.tcp.events import Reset, TimedOut
from stack.tcp.listener import Listener
from stack.wire.segment import Flags, Segment, TcpOptions, flags_str
from stack.wire.seq import seq_add, seq_sub

LOCAL_IP = 0xC0A80001  # 192.168.0.1
REMOTE_IP = 0xC00002 << 8 | 1  # 192.0.2.1
LOCAL_PORT = 8080
REMOTE_PORT = 40000
DEFAULT_TOLERANCE = 0.004  # packetdrill's default --tolerance_usecs=4000

_LETTER = {
    "S": Flags.SYN,
    "F": Flags.FIN,
    "R": Flags.RST,
    "P": Flags.PSH,
    ".": Flags.ACK,
    "U": Flags.URG,
    "E": Flags.ECE,
    "W": Flags.CWR,
}


_KEEPALIVE_OPTIONS = {
    "SO_KEEPALIVE": ("keepalive", lambda v: v != "0"),
    "TCP_KEEPIDLE": ("keepalive_idle", float),
    "TCP_KEEPINTVL": ("keepalive_interval", float),
    "TCP_KEEPCNT": ("keepalive_count", int),
}


class ScriptFailure(AssertionError):
    """The stack did not behave as the script says."""


class ScriptSkip(Exception):
    """The script uses something tcpstack does not support yet: skipped, never passed."""


def _flags(text: str) -> Flags:
    out = Flags(0)
    for ch in text:
        out |= _LETTER[ch]
    return out


def option_layout(options: TcpOptions, syn: bool) -> list[tuple[str, tuple[int, ...]]]:
    """The options as the C builder lays them out on the wire (Linux's layout), in script notation."""
    out: list[tuple[str, tuple[int, ...]]] = []
    if syn:
        if options.mss is not None:
            out.append(("mss", (options.mss,)))
        if options.timestamps is not None:
            out += [("sackOK", ())] if options.sack_permitted else [("nop", ()), ("nop", ())]
            out.append(("TS", options.timestamps))
        elif options.sack_permitted:
            out += [("nop", ()), ("nop", ()), ("sackOK", ())]
        if options.wscale is not None:
            out += [("nop", ()), ("wscale", (options.wscale,))]
        return out
    if options.timestamps is not None:
        out += [("nop", ()), ("nop", ()), ("TS", options.timestamps)]
    if options.sack_blocks:
        out += [("nop", ()), ("nop", ()), ("sack", tuple(x for b in options.sack_blocks for x in b))]
    return out


def _ignore_tsval(layout):
    """Our TSval is a clock with a random offset: scripts check TSecr (what we echo), not TSval."""
    return [(name, (None, values[1]) if name == "TS" else values) for name, values in layout]


def _format_options(layout) -> str:
    parts = []
    for name, values in layout:
        if name == "TS":
            parts.append(f"TS val {values[0]} ecr {values[1]}")
        elif name == "sack":
            parts.append("sack " + " ".join(f"{values[i]}:{values[i + 1]}" for i in range(0, len(values), 2)))
        else:
            parts.append(" ".join([name, *map(str, values)]))
    return "<" + ",".join(parts) + ">"


@dataclass
class _Socket:
    fd: int
    nonblocking: bool = False
    config_changes: dict | None = None
    listener: Listener | None = None
    conn: Connection | None = None
    error: int = 0
    linger_zero: bool = False  # SO_LINGER {l_onoff=1, l_linger=0}: close() sends RST


class Runner:
    def __init__(self, script: Script, config: TcpConfig | None = None) -> None:
        self.script = script
        self.config = config or TcpConfig()
        if "tcp_timestamps" in script.options:  # like packetdrill's sysctl lines: per-script stack settings
            self.config = replace(self.config, timestamps=script.options["tcp_timestamps"] != "0")
        self.tolerance = float(script.options.get("tolerance_usecs", DEFAULT_TOLERANCE * 1e6)) / 1e6
        self.demux = Demux(self.config)
        self.now = 0.0
        self.sockets: dict[int, _Socket] = {}
        self.out: deque[tuple[float, Segment]] = deque()
        self.iss: int | None = None
        self.remote_port = REMOTE_PORT
        self.edges: set[tuple[str, str]] = set()  # state transitions the script made the stack take
        self.listeners: list[Listener] = []

    # ------------------------------------------------------------ virtual time and I/O

    def _connections(self) -> list[Connection]:
        return list(self.demux.connections.values())

    def _collect(self) -> None:
        for conn in self._connections():
            self.edges.update((t.old.name, t.new.name) for t in conn.history)
            for seg in conn.segments_to_send(self.now):
                if seg.flags & Flags.SYN:
                    self.iss = seg.seq  # outbound numbers are relative to the newest connection's ISN
                self.out.append((self.now, seg))
            if conn.finished:
                self._drain_events(conn)
                self.demux.remove(conn)
            else:
                self._drain_events(conn)

    def _collect_edges(self) -> None:
        for owner in [*self._connections(), *self.listeners]:
            self.edges.update((t.old.name, t.new.name) for t in owner.history)

    def _drain_events(self, conn: Connection) -> None:
        while (event := conn.next_event()) is not None:
            if isinstance(event, (Reset, TimedOut)):
                for sock in self.sockets.values():
                    if sock.conn is conn:
                        sock.error = (
                            errno_codes.ECONNREFUSED
                            if getattr(event, "refused", False)
                            else (errno_codes.ETIMEDOUT if isinstance(event, TimedOut) else errno_codes.ECONNRESET)
                        )
            if conn in self.demux.parent and conn.state.name == "ESTABLISHED":
                listener = self.demux.parent[conn]
                if conn in listener.syn_queue:
                    listener.on_established(conn)

    def _advance(self, to: float) -> None:
        while True:
            deadlines = [d for c in self._connections() if (d := c.next_deadline()) is not None]
            if not deadlines or min(deadlines) > to:
                break
            self.now = max(self.now, min(deadlines))
            for conn in self._connections():
                d = conn.next_deadline()
                if d is not None and d <= self.now:
                    conn.handle_timer(self.now)
            self._collect()
        self.now = max(self.now, to)

    # ------------------------------------------------------------ running

    def run(self) -> None:
        last = 0.0
        for event in self.script.events:
            t = event.time
            at = self.now if t.value is None else (last + t.value if t.relative else t.value)
            last = at
            if isinstance(event, PacketLine) and not event.inbound:
                self._expect(event, at)
                continue
            self._advance(at)
            self._no_stale_output(at, event)
            if isinstance(event, PacketLine):
                self._inject(event)
            else:
                self._syscall(event)
            self._collect()
        if self.out:
            t, seg = self.out[0]
            raise ScriptFailure(f"{self.script.path}: unexpected outbound packet at {t:.3f}: {self._describe(seg)}")

    def _no_stale_output(self, at: float, event) -> None:
        if self.out and self.out[0][0] < at - self.tolerance:
            t, seg = self.out[0]
            raise ScriptFailure(
                f"{self.script.path}:{event.line}: unexpected outbound packet at {t:.3f} before this line: "
                f"{self._describe(seg)}"
            )

    def _inject(self, line: PacketLine) -> None:
        flags = _flags(line.flags)
        ack = 0
        if line.ack is not None:
            if self.iss is None:
                raise ScriptFailure(f"{self.script.path}:{line.line}: 'ack' before the stack sent its SYN")
            ack = seq_add(self.iss, line.ack)
        options = self._options_from_script(line)
        payload = bytes(line.end - line.start)
        seg = Segment(
            self.remote_port,
            self._local_port(),
            line.start & 0xFFFFFFFF,
            ack,
            flags,
            65535 if line.win is None else line.win,
            payload,
            options,
        )
        _, rst = self.demux.segment_arrives(REMOTE_IP, LOCAL_IP, seg, self.now)
        if rst is not None:
            self.out.append((self.now, rst))

    def _local_port(self) -> int:
        for conn in self._connections():
            return conn.local[1]
        return LOCAL_PORT

    def _options_from_script(self, line: PacketLine) -> TcpOptions:
        values: dict = {}
        for name, args in line.options or ():
            if name == "mss":
                values["mss"] = args[0]
            elif name == "wscale":
                values["wscale"] = args[0]
            elif name == "sackOK":
                values["sack_permitted"] = True
            elif name == "TS":
                values["timestamps"] = args
            elif name == "sack":
                values["sack_blocks"] = tuple((args[i], args[i + 1]) for i in range(0, len(args), 2))
        return TcpOptions(**values)

    def _expect(self, line: PacketLine, at: float) -> None:
        if not self.out:
            self._advance(at + self.tolerance)
        if not self.out:
            raise ScriptFailure(self._mismatch(line, "no packet was sent"))
        t, seg = self.out.popleft()
        if line.time.value is not None and abs(t - at) > self.tolerance + 1e-9:
            raise ScriptFailure(self._mismatch(line, f"{self._describe(seg)}  (at {t:.3f} s, expected {at:.3f} s)"))
        problems = self._compare(line, seg)
        if problems:
            raise ScriptFailure(self._mismatch(line, f"{self._describe(seg)}  ({'; '.join(problems)})"))
        self.now = max(self.now, t)

    def _compare(self, line: PacketLine, seg: Segment) -> list[str]:
        problems = []
        if seg.flags & ~Flags.ECE & ~Flags.CWR != _flags(line.flags):
            problems.append("flags differ")
        rel_seq = seq_sub(seg.seq, self.iss) if self.iss is not None else seg.seq
        if rel_seq != line.start:
            problems.append("sequence number differs")
        if len(seg.payload) != line.end - line.start:
            problems.append("payload length differs")
        if line.ack is not None and (not seg.flags & Flags.ACK or seg.ack != line.ack & 0xFFFFFFFF):
            problems.append("ack differs")
        if line.win is not None and seg.window != line.win:
            problems.append("window differs")
        if line.options is not None:
            actual = _ignore_tsval(option_layout(seg.options, bool(seg.flags & Flags.SYN)))
            if actual != _ignore_tsval(list(line.options)):
                problems.append("options differ")
        return problems

    def _describe(self, seg: Segment) -> str:
        letters = flags_str(seg.flags).replace("none", "")
        rel = seq_sub(seg.seq, self.iss) if self.iss is not None else seg.seq
        text = f"> {letters} {rel}:{rel + len(seg.payload)}({len(seg.payload)})"
        if seg.flags & Flags.ACK:
            text += f" ack {seg.ack}"
        text += f" win {seg.window}"
        layout = option_layout(seg.options, bool(seg.flags & Flags.SYN))
        if layout:
            text += " " + _format_options(layout)
        return text

    def _mismatch(self, line: PacketLine, actual: str) -> str:
        expected = line.text.split(None, 1)[1]
        return f"{self.script.path}:{line.line}: {line.text}\n  expected: {expected}\n  actual:   {actual}"

    # ------------------------------------------------------------ system calls

    def _syscall(self, call: SyscallLine) -> None:
        handler = getattr(self, f"_sys_{call.name}", None)
        if handler is None:
            raise ScriptSkip(f"{self.script.path}:{call.line}: system call {call.name}() is not supported")
        result, err = handler(call)
        want_err = call.errno
        if call.result != "..." and (str(result) != call.result or (want_err or None) != err):
            got = f"{result}" + (f" {err}" if err else "")
            want = call.result + (f" {want_err}" if want_err else "")
            raise ScriptFailure(
                f"{self.script.path}:{call.line}: {call.text}\n  expected: = {want}\n  actual:   = {got}"
            )

    def _sock(self, call: SyscallLine) -> _Socket:
        try:
            return self.sockets[int(call.args[0])]
        except (ValueError, KeyError, IndexError):
            raise ScriptFailure(f"{self.script.path}:{call.line}: no such socket {call.args[:1]}") from None

    def _sys_socket(self, call):
        fd = 3 + len(self.sockets)
        self.sockets[fd] = _Socket(fd, config_changes={})
        return fd, None

    def _sys_setsockopt(self, call):
        sock = self._sock(call)
        option, value = call.args[2], call.args[3].strip("[]")
        if option == "SO_REUSEADDR":
            return 0, None
        if option == "TCP_NODELAY":
            sock.config_changes["nodelay"] = value != "0"
            return 0, None
        if option in ("SO_RCVBUF", "SO_SNDBUF"):
            sock.config_changes["receive_buffer" if option == "SO_RCVBUF" else "send_buffer"] = int(value)
            return 0, None
        if option in _KEEPALIVE_OPTIONS:
            field, kind = _KEEPALIVE_OPTIONS[option]
            self._configure(sock, **{field: kind(value)})
            return 0, None
        if option == "SO_LINGER":
            linger = dict(part.split("=") for part in value.strip("{}").replace(" ", "").split(","))
            if linger.get("l_onoff") == "1" and linger.get("l_linger") != "0":
                raise ScriptSkip(f"{self.script.path}:{call.line}: SO_LINGER with a timeout is not supported")
            sock.linger_zero = linger.get("l_onoff") == "1"
            return 0, None
        raise ScriptSkip(f"{self.script.path}:{call.line}: socket option {option} is not supported")

    def _configure(self, sock: _Socket, **changes) -> None:
        """Options set on a connected socket change its connection; before that they wait for it."""
        sock.config_changes.update(changes)
        if sock.conn is not None:
            sock.conn.config = replace(sock.conn.config, **changes)
            sock.conn.arm_keepalive(self.now)

    def _sys_fcntl(self, call):
        sock = self._sock(call)
        if call.args[1] == "F_SETFL":
            sock.nonblocking = "O_NONBLOCK" in call.args[2]
            return 0, None
        raise ScriptSkip(f"{self.script.path}:{call.line}: fcntl {call.args[1]} is not supported")

    def _sys_bind(self, call):
        self._sock(call)
        return 0, None

    def _sys_listen(self, call):
        sock = self._sock(call)
        self.demux.config = replace(self.config, **sock.config_changes)
        sock.listener = self.demux.listen((LOCAL_IP, LOCAL_PORT), int(call.args[1]), self.now)
        self.listeners.append(sock.listener)
        return 0, None

    def _sys_accept(self, call):
        sock = self._sock(call)
        if sock.listener is None:
            return -1, "EINVAL"
        child = sock.listener.accept()
        if child is None:
            if sock.nonblocking:
                return -1, "EAGAIN"
            raise ScriptFailure(f"{self.script.path}:{call.line}: accept() would block: no connection is established")
        fd = 3 + len(self.sockets)
        self.sockets[fd] = _Socket(fd, config_changes={}, conn=child)
        return fd, None

    def _sys_connect(self, call):
        sock = self._sock(call)
        if not sock.nonblocking:
            raise ScriptSkip(f"{self.script.path}:{call.line}: blocking connect() is not supported; use O_NONBLOCK")
        self.demux.config = replace(self.config, **sock.config_changes)
        sock.conn = self.demux.connect(LOCAL_IP, (REMOTE_IP, LOCAL_PORT), self.now)
        self.remote_port = LOCAL_PORT
        return -1, "EINPROGRESS"

    def _sys_getsockopt(self, call):
        sock = self._sock(call)
        if call.args[2] != "SO_ERROR":
            raise ScriptSkip(f"{self.script.path}:{call.line}: getsockopt {call.args[2]} is not supported")
        want = call.args[3].strip("[]")
        got = errno_codes.errorcode.get(sock.error, "0") if sock.error else "0"
        if want not in (got, str(sock.error), "..."):
            raise ScriptFailure(f"{self.script.path}:{call.line}: {call.text}\n  expected: {want}\n  actual:   {got}")
        return 0, None

    def _sys_write(self, call):
        sock = self._sock(call)
        if sock.conn is None:
            return -1, "EPIPE"
        return sock.conn.send(bytes(int(call.args[2])), self.now), None

    _sys_send = _sys_write

    def _sys_read(self, call):
        sock = self._sock(call)
        if sock.conn is None:
            return -1, "ENOTCONN"
        if sock.error:
            return -1, errno_codes.errorcode[sock.error]
        data = sock.conn.read(int(call.args[2]))
        if not data and not sock.conn.at_eof:
            return -1, "EAGAIN"
        return len(data), None

    _sys_recv = _sys_read

    def _sys_shutdown(self, call):
        sock = self._sock(call)
        if "SHUT_WR" not in call.args[1] and "SHUT_RDWR" not in call.args[1]:
            raise ScriptSkip(f"{self.script.path}:{call.line}: shutdown {call.args[1]} is not supported")
        sock.conn.close(self.now)
        return 0, None

    def _sys_close(self, call):
        sock = self._sock(call)
        if sock.listener is not None:
            self.demux.unlisten(sock.listener, self.now)
        elif sock.conn is not None and sock.linger_zero:
            sock.conn.abort(self.now)  # SO_LINGER with zero timeout: reset instead of FIN
        elif (
            sock.conn is not None
            and not sock.conn.finished
            and sock.conn.state.name not in ("FIN_WAIT_1", "FIN_WAIT_2", "CLOSING", "LAST_ACK", "TIME_WAIT")
        ):
            sock.conn.close(self.now)
        return 0, None


def run_script(path: str, config: TcpConfig | None = None) -> set[tuple[str, str]]:
    """Run one .pkt file: returns the state edges it covered; raises ScriptFailure or ScriptSkip."""
    with open(path) as f:
        script = parse(f.read(), path)
    runner = Runner(script, config)
    try:
        runner.run()
    finally:
        runner._collect_edges()
    return runner.edges


def run_scripts(paths: list[str]) -> int:
    """`tcpstack script`: run each file, print PASS/SKIP/FAIL; exit 1 if any failed."""
    from stack.script.parser import ScriptSyntaxError

    failed = 0
    for path in paths:
        try:
            run_script(path)
            print(f"PASS {path}")
        except ScriptSkip as exc:
            print(f"SKIP {path}: {exc}")
        except (ScriptFailure, ScriptSyntaxError, OSError) as exc:
            failed += 1
            print(f"FAIL {exc}")
    return 1 if failed else 0
