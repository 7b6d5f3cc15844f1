"""Run a parsed packetdrill script against the sans-I/O core in virtual time.

As in packetdrill: the stack under test is 192.168.0.1, the remote end 192.0.2.1. The remote's SYN (or
SYN,ACK) carries its ISN as written; its later sequence numbers, and our ACK numbers and SACK blocks of
them, are relative to that ISN. Inbound ACK numbers and SACK blocks, and outbound sequence numbers, are
relative to our ISN, learned from our SYN or SYN,ACK (whose own number, as written on the first of a
socket, matches any: later SYNs count from it). An inbound TSecr
is shifted by the offset between our real TSval and the value the script wrote for it (packetdrill does
so under --tcp_ts_ecr_scaled, and else takes only echoes of values the script wrote for our TSvals).

Time is virtual: an event at time t runs once every timer due before t has fired. Outbound lines are
matched, in order, against the segments the core emits, within the tolerance (packetdrill's default
--tolerance_usecs=4000); an outbound segment no line expects fails the script. A system call on a
blocking socket that cannot complete waits: written `start...end`, it must return at `end` while later
lines run; otherwise, as packetdrill makes it in its only thread, no later line runs while it waits, and
the stack's timers alone must complete it within the tolerance. Relative times count from the previous
event, as it actually happened.

A packet line may name its ports as packetdrill's `src>dst` (`< 40001>8080 S 0:0(0) ...`, then
`> 8080>40001 S. 0:0(0) ack 1 ...`): that packet belongs to the connection with those ports, its
relative numbers to that connection's ISN, and an outbound line with ports checks them. Lines without
ports concern the newest connect() or, for a passive open, remote port 40000. This is how a script
drives several connections to one listener (listen queues). A new passive connection on the ports of an
earlier one (after a RST, or ending its TIME_WAIT) is numbered from the earlier one's ISN until the next
socket() call, as packetdrill, which hands its SYN to the same socket, numbers it.

Option lines `--name=value` set, for one script, the stack settings Linux has as sysctls
(`--tcp_timestamps=1`, `--tcp_challenge_ack_limit=1`, ...: see sysctls.py), like a packetdrill script's
`sysctl` shell lines, which shell.py interprets (never running them). packetdrill's own command-line
options are understood too (`--tolerance_usecs`, `--tolerance_percent`, `--ip_version=ipv4`, the
default `--local_ip`/`--remote_ip`, `--tcp_ts_tick_usecs`, `--tcp_ts_ecr_scaled`, `--strict_segments`).

packetdrill's matching rules: the timing tolerance is the larger of --tolerance_usecs and
--tolerance_percent (12.5) of the time since the previous event. An outbound line longer than the
segment sent is matched, as packetdrill matches what a TSO device hands it, against the run of
back-to-back segments that add up to it (equal sizes but the last, headers of the last, sequence number
of the first); --strict_segments or `ethtool -K tun0 tso off` turn that off. In such a run PSH is not
compared: Linux marks it where its socket buffers end, which segment sizes do not show. A `%{ python }%` block runs
with the tcp_info of the newest socket (tcp_info.py) and shares its names with the blocks before it.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from stack import ip6
from stack.demux import Demux
from stack.script import python_block, shell
from stack.script.ast import (
    AnyValue,
    IcmpLine,
    PacketLine,
    PythonLine,
    Script,
    ShellLine,
    SyscallLine,
    TimeKind,
    TimeSpec,
)
from stack.script.errors import ScriptFailure, ScriptSkip
from stack.script.parser import FAST_OPEN_OPTIONS, TFO_COOKIE, parse_file
from stack.script.syscalls import LOCAL_IP, LOCAL_IP6, LOCAL_PORT, REMOTE_IP, REMOTE_IP6, Kernel, Outcome, Poll
from stack.script.sysctls import config_changes
from stack.tcp import fast_open, icmp_input
from stack.tcp.config import IPV6_EXTRA_HEADER, TcpConfig
from stack.tcp.connection import Connection
from stack.tcp.listener import Listener
from stack.wire import addr
from stack.wire.segment import Flags, Segment, TcpOptions, flags_str
from stack.wire.seq import seq_add, seq_sub

if TYPE_CHECKING:
    from stack.script.recording import Recorder

REMOTE_PORT = 40000  # the script's end of a passive open
DEFAULT_TOLERANCE = 0.004  # packetdrill's default --tolerance_usecs=4000
DEFAULT_TOLERANCE_PERCENT = 12.5  # packetdrill's default --tolerance_percent
HORIZON = 3600.0  # how far `*` looks ahead for an outbound packet, in virtual seconds
# the latest virtual time a script may name (about three years): beyond it a float's resolution passes a
# hundredth of a microsecond, short timers would stop moving time forward, and a run would never end
MAX_TIME = 1e8
ECN_CODEPOINTS = {"noecn": 0, "ect1": 1, "ect0": 2, "ce": 3}  # packetdrill's names for the IP ECN field
ECN_NAMES = {value: name for name, value in ECN_CODEPOINTS.items()}
INBOUND_WINDOW = 65535  # an inbound packet without `win`
_SUPPORTED_OPTIONS = {"nop", "eol", "mss", "wscale", "sackOK", "TS", "sack", *FAST_OPEN_OPTIONS}
# ipv4-mapped-ipv6: an AF_INET6 socket whose packets are IPv4, which is what the wire shows
IP_VERSIONS = {"ipv4": False, "ipv4-mapped-ipv6": False, "ipv6": True}
_ADDRESS_OPTIONS = {"local_ip", "remote_ip", "gateway_ip", "netmask_ip"}
# options that only change how packetdrill reports or matches
_RUNNER_OPTIONS = {
    "tolerance_usecs",
    "tolerance_percent",
    "tcp_ts_tick_usecs",
    "tcp_ts_ecr_scaled",  # inbound TSecr shifted by our TSval's offset: what this runner always does
    "strict_segments",
    "verbose",
    "mss",
    "send_omit_free",  # how packetdrill manages zerocopy send buffers
    "packetdrill_outbound",  # tcpstack's own: outbound packets checked only as packetdrill checks them
}
# ICMP type and code names packetdrill uses -> (type, code)
_ICMP = {
    ("unreachable", None): (icmp_input.DEST_UNREACHABLE, icmp_input.CODE_NET_UNREACHABLE),
    ("unreachable", "net_unreachable"): (icmp_input.DEST_UNREACHABLE, 0),
    ("unreachable", "host_unreachable"): (icmp_input.DEST_UNREACHABLE, 1),
    ("unreachable", "protocol_unreachable"): (icmp_input.DEST_UNREACHABLE, 2),
    ("unreachable", "port_unreachable"): (icmp_input.DEST_UNREACHABLE, 3),
    # packetdrill's run_all.py runs its gtests with -D CODE=host_unreachable (over IPv4, which writes it)
    ("unreachable", "CODE"): (icmp_input.DEST_UNREACHABLE, 1),
    ("unreachable", "frag_needed"): (icmp_input.DEST_UNREACHABLE, icmp_input.CODE_FRAG_NEEDED),
    ("packet_too_big", None): (icmp_input.DEST_UNREACHABLE, icmp_input.CODE_FRAG_NEEDED),  # ICMPv6's
    ("time_exceeded", None): (icmp_input.TIME_EXCEEDED, 0),
    ("source_quench", None): (icmp_input.SOURCE_QUENCH, 0),
}

_LETTER = {
    "S": Flags.SYN,
    "F": Flags.FIN,
    "R": Flags.RST,
    "P": Flags.PSH,
    ".": Flags.ACK,
    "U": Flags.URG,
    "E": Flags.ECE,
    "W": Flags.CWR,
    "-": Flags(0),  # packetdrill's "no flags"
}

Layout = list[tuple[str, tuple[int, ...]]]


def script_flags(text: str) -> Flags:
    out = Flags(0)
    for ch in text:
        out |= _LETTER[ch]
    return out


def option_layout(options: TcpOptions, syn: bool, remote_isn: int = 0) -> Layout:
    """The options as the C builder lays them out on the wire (Linux's layout), in script notation (SACK
    edges counted from the peer's ISN `remote_isn`)."""
    out: Layout = []
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
        cookie = options.fast_open
        if cookie is not None:  # last, padded with NOPs to a word
            out.append(("FOEXP" if options.fast_open_exp else "FO", tuple(cookie)))
            out += [("nop", ())] * (-((4 if options.fast_open_exp else 2) + len(cookie)) % 4)
        return out
    if options.timestamps is not None:
        out += [("nop", ()), ("nop", ()), ("TS", options.timestamps)]
    if options.sack_blocks:
        edges = tuple(seq_sub(x, remote_isn) & 0xFFFFFFFF for b in options.sack_blocks for x in b)
        out += [("nop", ()), ("nop", ()), ("sack", edges)]
    return out


def format_options(layout: Layout) -> str:
    parts = []
    for name, values in layout:
        if name == "TS":
            parts.append(f"TS val {values[0]} ecr {values[1]}")
        elif name == "sack":
            parts.append("sack " + " ".join(f"{values[i]}:{values[i + 1]}" for i in range(0, len(values), 2)))
        elif name in FAST_OPEN_OPTIONS:
            parts.append(f"{name} {bytes(values).hex()}" if values else name)
        else:
            parts.append(" ".join([name, *map(str, values)]))
    return "<" + ",".join(parts) + ">"


@dataclass
class _Sent:
    time: float
    seg: Segment
    iss: int | None  # our ISN on this segment's connection (None: not known, numbers shown as they are)
    merged: int = 1  # segments packetdrill's TSO aggregation made this one of


@dataclass
class _Blocked:
    """A blocking system call in progress."""

    line: SyscallLine
    poll: Poll
    end: float  # when the script says it returns


class Runner:
    def __init__(self, script: Script, config: TcpConfig | None = None, recorder: Recorder | None = None) -> None:
        self.script = script
        self.recorder = recorder  # `tcpstack script --trace/--pcap`
        self.path = script.path
        self.config = config or TcpConfig()
        sysctls: dict[str, str] = {}
        for name, value in script.options:
            if name not in _RUNNER_OPTIONS and name not in _ADDRESS_OPTIONS and name not in ("ip_version", "mtu"):
                sysctls[name] = value
        self.config = replace(self.config, **config_changes(sysctls, self.path))
        self._setup_link(script)
        self.tolerance = self._number_option("tolerance_usecs", DEFAULT_TOLERANCE * 1e6) / 1e6
        self.tolerance_percent = self._number_option("tolerance_percent", DEFAULT_TOLERANCE_PERCENT)
        self.ts_tick = self._number_option("tcp_ts_tick_usecs", 0) / 1e6  # 0: TSval not checked
        self.gso_size = int(self._number_option("mss", 0))  # packetdrill's --mss: inbound GRO segment size
        # packetdrill reads the stack's packets only when a script line expects one, so a packet sent
        # before an inbound or system-call line is compared with the next outbound line, and packets
        # after the last one are never read; by default every packet must be expected where it is sent
        self.packetdrill_outbound = script.option("packetdrill_outbound") is not None
        self.host = shell.Host(tso=script.option("strict_segments") is None)
        self.python = python_block.Namespace()
        self.demux = Demux(self.config)
        if recorder is not None:
            self.demux.on_transition = recorder.transition
        # the shell's `dd` makes the files open() finds
        self.kernel = Kernel(self.demux, self.config, self.path, self.host.files, self.local_ip, self.remote_ip)
        self.kernel.tolerance = self.tolerance  # timestamps a call reports are checked within it
        self.now = 0.0
        self.last = 0.0  # when the previous event happened: the base of relative times
        self.out: deque[_Sent] = deque()
        self.iss: dict[Connection, int] = {}
        self.port_iss: dict[tuple[int, int], int] = {}  # (local port, remote port) -> our ISN, kept after close
        # packetdrill's socket under test: a passive connection on the ports of one since the last socket()
        # is the same socket to it, numbered from that one's ISN
        self.child_iss: dict[tuple[int, int], int] = {}
        # (local port, remote port) -> the peer's ISN, the script's SYN's (or SYN,ACK's) sequence number:
        # packetdrill counts the peer's later sequence numbers (and our ACKs and SACKs of them) from it
        self.remote_isn: dict[tuple[int, int], int] = {}
        # (local port, remote port) -> the sequence number the script wrote on the first SYN (or SYN,ACK)
        # of ours since the last socket(): the peer's SYN,ACK acknowledges it as written, whatever our ISN
        self.script_isn: dict[tuple[int, int], int] = {}
        self.ts_offset: int | None = None  # our real TSval minus the script's
        self.blocked: _Blocked | None = None
        self.taken: set[tuple[str, str]] = set()  # (state, event) pairs the script made the stack take
        self.listeners: set[Listener] = set()
        self._seen: dict[Connection, None] = {}  # every connection of the run, in order (counters)

    def _setup_link(self, script: Script) -> None:
        """--ip_version, --local_ip, --remote_ip and --mtu: the addresses and the MSS of the run."""
        version = script.option("ip_version", "ipv4")
        if version not in IP_VERSIONS:
            raise ScriptSkip(f"{self.path}: option --ip_version={version} is not supported")
        self.v6 = IP_VERSIONS[version]
        self.local_ip = self._address_option(script, "local_ip", LOCAL_IP6 if self.v6 else LOCAL_IP)
        self.remote_ip = self._address_option(script, "remote_ip", REMOTE_IP6 if self.v6 else REMOTE_IP)
        for name in ("gateway_ip", "netmask_ip"):  # the route to the remote end: one hop here
            value = script.option(name)
            if value is not None:
                self._parse_address(name, value)
        if self.local_ip == self.remote_ip:
            raise ScriptFailure(f"{self.path}: --local_ip and --remote_ip are the same address")
        if script.option("mtu") is not None:
            # IPv4 and TCP headers without options (RFC 9293 §3.7.1); the core takes 20 more over IPv6
            mss = int(self._number_option("mtu", 0)) - 40
            if mss < 88:  # Linux's floor for the MSS (TCP_MIN_MSS)
                raise ScriptSkip(f"{self.path}: --mtu={script.option('mtu')} is below what TCP can use")
            self.config = replace(self.config, mss=mss)
        elif self.v6:  # the link's MTU is 20 bytes larger, so a script's MSS values mean the same in both versions
            self.config = replace(self.config, mss=self.config.mss + IPV6_EXTRA_HEADER)

    def _address_option(self, script: Script, name: str, default: int) -> int:
        value = script.option(name)
        if value is None:
            return default
        address = self._parse_address(name, value)
        if addr.is_v6(address) != self.v6:  # e.g. the selftests' IPv6 run of a script that is IPv4 only
            raise ScriptSkip(f"{self.path}: --{name}={value} is not an address of the script's --ip_version")
        return address

    def _parse_address(self, name: str, value: str) -> int:
        try:
            return addr.parse(value)
        except ValueError:
            raise ScriptFailure(f"{self.path}: --{name}={value}: not an IP address") from None

    def _number_option(self, name: str, default: float) -> float:
        value = self.script.option(name)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            raise ScriptFailure(f"{self.path}: --{name}={value}: the value must be a number") from None

    def _tolerance_after(self, start: float) -> float:
        """packetdrill's tolerance for an event due at `start`: a share of the time since the last one."""
        return max(self.tolerance, self.tolerance_percent / 100 * max(0.0, start - self.last))

    def _shell(self, line: ShellLine) -> None:
        try:
            shell.interpret(line.command, self.host, self._counters())
        except shell.ShellSkip as exc:
            raise ScriptSkip(f"{self.path}:{line.line}: {exc}") from None
        except AssertionError as exc:
            raise ScriptFailure(f"{self.path}:{line.line}: {exc}") from None
        changes = config_changes(self.host.sysctls, f"{self.path}:{line.line}")
        route = self.host.route
        if self.host.link_mtu is not None:  # as --mtu: IPv4 and TCP headers without options (RFC 9293 §3.7.1)
            changes["mss"] = self.host.link_mtu - 40
        if "advmss" in route:  # the MSS offered over this route; the core's IPv6 MSS is 20 bytes less
            changes["mss"] = route["advmss"] + (IPV6_EXTRA_HEADER if self.v6 else 0)
        if "initcwnd" in route:
            changes["initial_window_segments"] = route["initcwnd"]
        qdisc = {"fq_pacing": self.host.qdisc == "fq", "qdisc_drops": self.host.qdisc == "drop"}
        changes.update(qdisc)
        for conn in self._seen:  # the qdisc is the device's: open connections send through it too
            if not conn.finished and any(getattr(conn.config, name) != value for name, value in qdisc.items()):
                conn.config = replace(conn.config, **qdisc)
        if "mtu" in route:  # new connections to the remote end fit their segments to it
            before = self.demux.path_mtus.get(self.remote_ip)
            self.demux.path_mtus[self.remote_ip] = (route["mtu"], math.inf)
            if before is not None and before[0] != route["mtu"]:
                for conn in self._seen:  # and open ones that probe their path MTU (Connection.route_mtu_changed)
                    if conn.remote[0] == self.remote_ip and not conn.finished:
                        conn.route_mtu_changed(route["mtu"])
        self.config = replace(self.config, **changes)
        self.demux.config = self.kernel.config = self.config

    def _counters(self) -> dict[str, int]:
        """The stack's counters under Linux's names, as `tcpstack stats` shows them."""
        from stack.aio.stack import conn_counters

        total = Counter(self.demux.counters)
        for conn in self._seen:
            total.update(conn_counters(conn))
        return dict(total)

    # ------------------------------------------------------------ the script

    def run(self) -> None:
        for event in self.script.events:
            if isinstance(event, ShellLine):
                self._shell(event)
                continue
            if isinstance(event, PacketLine):
                self._check_options_supported(event)
            start, end = self._when(event.time)
            if not start <= MAX_TIME or (end != math.inf and not end <= MAX_TIME):
                late = start if not start <= MAX_TIME else end
                raise ScriptFailure(
                    f"{self.path}:{event.line}: a time of {late:g} s is past the end of virtual time,"
                    f" {MAX_TIME:g} s (about three years)"
                )
            if event.time.kind is TimeKind.ABSOLUTE and start < self.last - self.tolerance - 1e-9:
                raise ScriptFailure(
                    f"{self.path}:{event.line}: time goes backward, from {self.last:.3f} s to {start:.3f} s"
                )
            if isinstance(event, PacketLine) and not event.inbound:
                self._expect(event, start, end)
                continue
            at = self.now if event.time.kind is TimeKind.ANY else start
            self._advance(at)
            if not self.packetdrill_outbound:
                self._no_stale_output(event.line, at)
            if isinstance(event, PacketLine):
                self._inject(event)
            elif isinstance(event, IcmpLine):
                self._icmp(event)
            elif isinstance(event, PythonLine):
                self._python(event)
            else:
                self._syscall(event, start)
            self.last = at
            self._settle()
        if self.blocked is not None:  # the last event is a blocking call: let time run to its return
            self._advance(self.blocked.end + self.tolerance)
            if self.blocked is not None:
                self._check_blocked_deadline(math.inf)
        if self.out and not self.packetdrill_outbound:
            raise ScriptFailure(f"{self.path}: unexpected outbound packet at the end: {self._describe(self.out[0])}")

    def _check_options_supported(self, line: PacketLine) -> None:
        if "A" in line.flags:
            raise ScriptSkip(f"{self.path}:{line.line}: AccECN (the AE flag) is not supported")
        for name, _ in line.options or ():
            if name not in _SUPPORTED_OPTIONS:
                raise ScriptSkip(f"{self.path}:{line.line}: TCP option {name} is not supported")

    def _when(self, time: TimeSpec) -> tuple[float, float]:
        """The [earliest, latest] virtual time the script allows for an event."""
        if time.kind is TimeKind.ANY:
            return self.now, math.inf
        base = self.last if time.kind is TimeKind.RELATIVE else 0.0
        start = base + time.start
        return start, start if time.end is None else base + time.end

    # ------------------------------------------------------------ virtual time

    def _connections(self) -> list[Connection]:
        return list(self.demux.connections.values())

    def _next_deadline(self) -> float | None:
        deadlines = [d for c in self._connections() if (d := c.next_deadline()) is not None]
        if self.blocked is not None and (timeout := self.kernel.timeout(self.blocked.poll)) is not None:
            deadlines.append(timeout)  # a call with a timeout of its own (poll) returns then
        return min(deadlines) if deadlines else None

    def _fire_next_timer(self, limit: float) -> bool:
        """Move time to the earliest deadline if it is at most `limit` and fire it; False if there is none."""
        deadline = self._next_deadline()
        if deadline is None or deadline > limit:
            return False
        self.now = max(self.now, deadline)
        for conn in self._connections():
            d = conn.next_deadline()
            if d is not None and d <= self.now:
                conn.handle_timer(self.now)
        self._settle()
        return True

    def _advance(self, to: float) -> None:
        while self._fire_next_timer(to):
            pass
        if self.blocked is not None:
            self._check_blocked_deadline(to)
        self.now = max(self.now, to)

    def _settle(self) -> None:
        """Collect what the core emitted and reported; complete a blocking call whose condition holds."""
        while True:
            self._collect()
            if self.blocked is None:
                return
            self.kernel.now = self.now
            outcome = self.blocked.poll()
            if outcome is None:
                self._collect()  # what a blocked write queued meanwhile leaves now, as a write's data does
                return
            blocked, self.blocked = self.blocked, None
            if abs(self.now - blocked.end) > self.tolerance + 1e-9:
                raise ScriptFailure(
                    f"{self.path}:{blocked.line.line}: {blocked.line.text}\n"
                    f"  expected: to return at {blocked.end:.3f} s\n  actual:   returned at {self.now:.3f} s"
                )
            self._check_outcome(blocked.line, outcome)

    def _check_blocked_deadline(self, to: float) -> None:
        blocked = self.blocked
        assert blocked is not None
        if to > blocked.end + self.tolerance + 1e-9:
            raise ScriptFailure(
                f"{self.path}:{blocked.line.line}: {blocked.line.text}\n"
                f"  expected: to return at {blocked.end:.3f} s\n  actual:   still blocked at "
                f"{min(to, blocked.end + self.tolerance):.3f} s"
            )

    def _collect(self) -> None:
        for conn in self._connections():
            self.taken.update((t.old.name, t.event.name) for t in conn.history)
            self._seen.setdefault(conn)
            segments = conn.segments_to_send(self.now)
            if self.packetdrill_outbound and conn in self.kernel.superseded:
                segments = []  # packetdrill reads only the socket under test's packets: a new socket() replaced it
            for seg in segments:
                if seg.flags & Flags.SYN and conn not in self.iss:
                    self._number(conn, seg)
                self.out.append(_Sent(self.now, seg, self.iss.setdefault(conn, conn.tcb.iss)))
                if self.recorder is not None:
                    self.recorder.outbound(self.local_ip, self.remote_ip, seg, conn)
            while (event := conn.next_event()) is not None:
                self.kernel.on_event(conn, event)
            self.kernel.on_progress(conn)
            if conn.finished:
                self.demux.remove(conn)
        self.listeners.update(self.demux.listeners.values())
        for listener in self.listeners:  # closed ones too: their LISTEN -> CLOSED counts
            self.taken.update((t.old.name, t.event.name) for t in listener.history)

    def _number(self, conn: Connection, syn: Segment) -> None:
        """The ISN a connection's relative numbers count from, learned from its first SYN or SYN,ACK."""
        ports = (conn.local[1], conn.remote[1])
        if syn.flags & Flags.ACK:
            self.iss[conn] = self._passive_iss(ports, syn.seq)
        else:
            self.iss[conn] = self.port_iss[ports] = syn.seq

    def _passive_iss(self, ports: tuple[int, int], seq: int) -> int:
        """The ISN a passive connection's numbers count from, its SYN,ACK carrying `seq`: packetdrill makes
        a socket for a SYN only while a listener is the socket under test, and later SYNs on its ports (a
        new incarnation) go to that socket, and keep its numbers."""
        iss = self.child_iss.setdefault(ports, seq)
        self.port_iss[ports] = iss
        return iss

    # ------------------------------------------------------------ inbound packets

    def _target(self, line: PacketLine | None = None) -> tuple[int, int, Connection | None]:
        """(local port, remote port, connection) an inbound packet is addressed to."""
        if line is not None and line.src_port is not None and line.dst_port is not None:
            local, remote = line.dst_port, line.src_port
            return local, remote, self.demux.connections.get((self.local_ip, local, self.remote_ip, remote))
        active = self.kernel.active
        if active is not None:
            return active.local[1], active.remote[1], active
        port = next(iter(self.demux.listeners), LOCAL_PORT)
        conn = self.demux.connections.get((self.local_ip, port, self.remote_ip, REMOTE_PORT))
        return port, REMOTE_PORT, conn

    def _current_iss(self, line: PacketLine | None = None) -> int | None:
        local_port, remote_port, conn = self._target(line)
        if conn is not None and conn in self.iss:
            return self.iss[conn]
        if line is not None and line.src_port is not None:
            return self.port_iss.get((local_port, remote_port))  # that connection's, even once it is gone
        if conn is None and not self.iss:  # no connection yet: a SYN cookie's SYN,ACK numbered its ports
            return self.port_iss.get((local_port, remote_port))
        return next(reversed(self.iss.values()), None)  # the connection is gone: the newest one's

    def _inject(self, line: PacketLine) -> None:
        local_port, remote_port, _ = self._target(line)
        iss = self._current_iss(line) or 0  # before our SYN, numbers are taken as written
        flags = script_flags(line.flags)
        ports = (local_port, remote_port)
        start = line.start
        if flags & Flags.SYN:  # a SYN's number as written, the peer's ISN (run_packet.c, remote_isn)
            if flags & Flags.ACK or ports not in self.child_iss:  # (a later SYN of the same socket keeps it)
                self.remote_isn[ports] = start & 0xFFFFFFFF
        else:
            start = seq_add(self.remote_isn.get(ports, 0), start)
        # an ACK written without its number acknowledges relative 0, as packetdrill fills it in
        ack = seq_add(iss, line.ack or 0) if line.ack is not None or flags & Flags.ACK else 0
        if flags & Flags.SYN and ack:  # (run_packet.c, local_seq_script_to_live_offset)
            ack = seq_add(ack, -self.script_isn.get(ports, 0))
        payload = bytes(line.end - line.start)
        # packetdrill hands the stack a packet longer than --mss as GRO would: segments of that size
        gso = self.gso_size if self.gso_size and len(payload) > self.gso_size else 0
        seg = Segment(
            remote_port,
            local_port,
            start & 0xFFFFFFFF,
            ack,
            flags,
            INBOUND_WINDOW if line.win is None else line.win,
            payload,
            self._inbound_options(line, iss),
            line.urg or 0,
            ECN_CODEPOINTS[line.ecn or "noecn"] if line.tos is None else line.tos & 3,
            gso,
        )
        if self.recorder is not None:
            self.recorder.inbound(self.remote_ip, self.local_ip, seg, self._target(line)[2])
        _, rst = self.demux.segment_arrives(self.remote_ip, self.local_ip, seg, self.now)
        if rst is not None and self.recorder is not None:
            self.recorder.outbound(self.local_ip, self.remote_ip, rst, None)
        for ended in self.demux.replaced:  # a TIME_WAIT incarnation a new SYN ended: nothing to retire here
            self.taken.update((t.old.name, t.event.name) for t in ended.history)
        self.demux.replaced.clear()
        if rst is not None and rst.flags & Flags.SYN:  # a SYN cookie's SYN,ACK: no connection holds its ISN
            self.out.append(_Sent(self.now, rst, self._passive_iss((rst.src_port, rst.dst_port), rst.seq)))
        elif rst is not None:
            self.out.append(_Sent(self.now, rst, self._current_iss(line)))

    def _inbound_options(self, line: PacketLine, iss: int) -> TcpOptions:
        values: dict = {}
        for name, args in line.options or ():
            if name == "mss":
                values["mss"] = args[0]
            elif name == "wscale":
                values["wscale"] = args[0]
            elif name == "sackOK":
                values["sack_permitted"] = True
            elif name == "TS":
                ecr = args[1] if self.ts_offset is None else (args[1] + self.ts_offset) & 0xFFFFFFFF
                values["timestamps"] = (args[0], ecr)
            elif name == "sack":
                values["sack_blocks"] = tuple(
                    (seq_add(iss, args[i]), seq_add(iss, args[i + 1])) for i in range(0, len(args), 2)
                )
            elif name in FAST_OPEN_OPTIONS:
                values["fast_open"] = bytes(self._cookie_bytes(args))
                values["fast_open_exp"] = name == "FOEXP"
        return TcpOptions(**values)

    def _cookie_bytes(self, args: tuple[int, ...]) -> tuple[int, ...]:
        """A script's cookie, `TFO_COOKIE` being the one the stack makes for the script's addresses (as
        packetdrill's runner defines it for Linux's)."""
        if args != TFO_COOKIE:
            return args
        key = (self.demux.config.fast_open_keys or (self.demux.fast_open_key.get(),))[0]
        return tuple(fast_open.cookie(key, self.remote_ip, self.local_ip))

    def _icmp(self, line: IcmpLine) -> None:
        kind = _ICMP.get((line.kind, line.code))
        if kind is None:
            raise ScriptSkip(f"{self.path}:{line.line}: ICMP {line.kind} {line.code or ''} is not supported")
        local_port, remote_port, conn = self._target()
        iss = self._current_iss() or 0
        seq = seq_add(iss, line.start) if line.start is not None else (conn.tcb.snd_una if conn else iss)
        mtu = line.mtu or 0
        if self.v6 and kind == _ICMP[("packet_too_big", None)]:
            mtu = max(mtu, ip6.MIN_MTU)  # as packetdrill sends Packet Too Big; RFC 8201 §4 floor
        error = icmp_input.IcmpError(kind[0], kind[1], seq, mtu)
        self.demux.icmp_error((self.local_ip, local_port), (self.remote_ip, remote_port), error, self.now)

    def _python(self, line: PythonLine) -> None:
        conn = self.kernel.under_test()
        try:
            self.python.run(line.code, conn, self.now)
        except python_block.BlockError as exc:
            raise ScriptFailure(f"{self.path}:{line.line}: {line.text.strip()}\n  {exc}") from None

    # ------------------------------------------------------------ outbound packets

    def _expect(self, line: PacketLine, start: float, end: float) -> None:
        limit = self.now + HORIZON if end == math.inf else end + self.tolerance
        while not self.out and self._fire_next_timer(limit):
            pass
        if not self.out:
            if self.blocked is not None:
                self._check_blocked_deadline(limit)
            raise ScriptFailure(self._mismatch(line, f"no packet was sent by {limit:.3f} s{self._next_packet_note()}"))
        sent = self._merged(line, self.out.popleft(), limit)
        if self.blocked is not None:
            self._check_blocked_deadline(sent.time)
        tolerance = self._tolerance_after(start)
        if line.time.kind is not TimeKind.ANY and not (start - tolerance - 1e-9 <= sent.time <= end + tolerance + 1e-9):
            window = f"{start:.3f} s" if start == end else f"{start:.3f}~{end:.3f} s"
            raise ScriptFailure(
                self._mismatch(line, f"{self._describe(sent, line)}  (at {sent.time:.3f} s, expected {window})")
            )
        problems = self._compare(line, sent)
        if problems:
            raise ScriptFailure(self._mismatch(line, f"{self._describe(sent, line)}  ({'; '.join(problems)})"))
        self.now = max(self.now, sent.time)
        self.last = sent.time

    def _merged(self, line: PacketLine, first: _Sent, limit: float) -> _Sent:
        """What packetdrill sees of a TSO send: the line's length gathered from back-to-back segments
        (each the size of the first but the last), with the last one's flags and the first one's
        sequence number and CWR (packetdrill's aggregate_packets)."""
        want = line.end - line.start
        size = len(first.seg.payload)
        if not self.host.tso or size == 0 or size >= want:
            return first
        parts = [first]
        total = size
        while total < want:
            if not self.out and not self._fire_next_timer(limit):
                break
            if not self.out:
                continue
            seg, prev = self.out[0].seg, parts[-1].seg
            if (
                len(seg.payload) == 0
                or seg.seq != seq_add(prev.seq, len(prev.payload))
                or (seg.src_port, seg.dst_port) != (prev.src_port, prev.dst_port)
                or len(prev.payload) != size
            ):
                break
            parts.append(self.out.popleft())
            total += len(seg.payload)
        if len(parts) == 1:
            return first
        last = parts[-1].seg
        flags = (last.flags & ~Flags.CWR) | (first.seg.flags & Flags.CWR)
        payload = b"".join(p.seg.payload for p in parts)
        merged = replace(last, seq=first.seg.seq, flags=flags, payload=payload)
        return _Sent(parts[-1].time, merged, first.iss, len(parts))

    def _next_packet_note(self) -> str:
        """For a failure message: the packet the stack would have sent next, if any (the run is over)."""
        limit = self.now + HORIZON
        while not self.out and self._fire_next_timer(limit):
            pass
        if not self.out:
            return ""
        return f"; the next one came at {self.out[0].time:.3f} s: {self._describe(self.out[0])}"

    def _no_stale_output(self, line: int, at: float) -> None:
        if self.out and self.out[0].time < at - self.tolerance - 1e-9:
            sent = self.out[0]
            raise ScriptFailure(
                f"{self.path}:{line}: unexpected outbound packet at {sent.time:.3f} s, before this line: "
                f"{self._describe(sent)}"
            )

    def _compare(self, line: PacketLine, sent: _Sent) -> list[str]:
        seg, problems = sent.seg, []
        if line.src_port is not None and (seg.src_port, seg.dst_port) != (line.src_port, line.dst_port):
            problems.append("ports differ")
        want_flags = script_flags(line.flags)
        if sent.merged > 1:  # Linux puts PSH where its buffers end, which no segment size reveals
            want_flags = (want_flags & ~Flags.PSH) | (seg.flags & Flags.PSH)
        if seg.flags != want_flags:
            problems.append("flags differ")
        rel_seq = seq_sub(seg.seq, sent.iss) if sent.iss is not None else seg.seq
        ports = (seg.src_port, seg.dst_port)
        if seg.flags & Flags.SYN and ports not in self.script_isn:
            # the socket's first SYN (or SYN,ACK): its number as written is the script's ISN, whatever ours
            # is (run_packet.c, local_isn); a later one counts from it
            self.script_isn[ports] = line.start & 0xFFFFFFFF
        elif (rel_seq + (self.script_isn.get(ports, 0) if seg.flags & Flags.SYN else 0)) & 0xFFFFFFFF != (
            line.start & 0xFFFFFFFF
        ):
            problems.append("sequence number differs")
        if len(seg.payload) != line.end - line.start:
            problems.append("payload length differs")
        remote_isn = self._remote_isn(seg)
        if line.ack is not None and (not seg.flags & Flags.ACK or seg.ack != seq_add(remote_isn, line.ack)):
            problems.append("ack differs")
        if line.win is not None and seg.window != line.win:
            problems.append("window differs")
        if line.urg is not None and seg.urgent != line.urg:
            problems.append("urgent pointer differs")
        if line.ecn is not None and seg.ecn != ECN_CODEPOINTS[line.ecn]:
            problems.append("ECN field differs")
        if line.tos is not None and seg.tos | seg.ecn != line.tos:
            problems.append("TOS byte differs")
        if not line.any_options:
            actual = option_layout(seg.options, bool(seg.flags & Flags.SYN), remote_isn)
            expected = [(n, self._cookie_bytes(v) if n in FAST_OPEN_OPTIONS else v) for n, v in line.options or ()]
            if _without_tsval(actual) != _without_tsval(expected):
                problems.append("options differ")
            elif seg.options.timestamps is not None:
                script_val = next(values[0] for name, values in expected if name == "TS")
                if self.ts_offset is None:
                    self.ts_offset = (seg.options.timestamps[0] - script_val) & 0xFFFFFFFF
                elif self.ts_tick and not self._tsval_matches(seg.options.timestamps[0], script_val):
                    problems.append("TSval differs")
        return problems

    def _tsval_matches(self, ours: int, script_val: int) -> bool:
        """--tcp_ts_tick_usecs: our TSval, in the script's terms, within the timing tolerance in ticks
        (our clock ticks every millisecond; Linux's too)."""
        assert self.ts_offset is not None
        off_ms = seq_sub((ours - self.ts_offset) & 0xFFFFFFFF, script_val)
        return abs(off_ms * 0.001) <= self._tolerance_after(self.now) + self.ts_tick

    def _remote_isn(self, seg: Segment) -> int:
        """What our segment's ACK and SACK edges count from in the script: the peer's ISN, except on our
        SYN or SYN,ACK, whose ACK is written as it is (run_packet.c, remote_seq_live_to_script_offset)."""
        return 0 if seg.flags & Flags.SYN else self.remote_isn.get((seg.src_port, seg.dst_port), 0)

    def _describe(self, sent: _Sent, line: PacketLine | None = None) -> str:
        """The segment in script notation (with its ports when the expected line names ports)."""
        seg = sent.seg
        rel = seq_sub(seg.seq, sent.iss) if sent.iss is not None else seg.seq
        ports = f"{seg.src_port}>{seg.dst_port} " if line is not None and line.src_port is not None else ""
        text = f"> {ports}{flags_str(seg.flags).replace('none', '')} {rel}:{rel + len(seg.payload)}({len(seg.payload)})"
        remote_isn = self._remote_isn(seg)
        if seg.flags & Flags.ACK:
            text += f" ack {seq_sub(seg.ack, remote_isn) & 0xFFFFFFFF}"
        text += f" win {seg.window}"
        if seg.urgent:
            text += f" urg {seg.urgent}"
        if seg.tos:
            text = text.replace("> ", f"> [tos {seg.tos | seg.ecn:#04x}] ", 1)
        elif seg.ecn:
            text = text.replace("> ", f"> [{ECN_NAMES[seg.ecn]}] ", 1)
        layout = option_layout(seg.options, bool(seg.flags & Flags.SYN), remote_isn)
        if layout:
            text += " " + format_options(_script_tsval(layout, self.ts_offset))
        return text

    def _mismatch(self, line: PacketLine, actual: str) -> str:
        expected = line.text.split(None, 1)[1]
        return f"{self.path}:{line.line}: {line.text}\n  expected: {expected}\n  actual:   {actual}"

    # ------------------------------------------------------------ system calls

    def _syscall(self, line: SyscallLine, start: float) -> None:
        if self.blocked is not None:
            raise ScriptFailure(
                f"{self.path}:{line.line}: {line.text}\n  a blocking call is still running: {self.blocked.line.text}"
            )
        if line.name == "socket":
            self.child_iss.clear()  # the new socket is the one under test
            self.script_isn.clear()
        if line.name == "socket" and self.packetdrill_outbound:
            self._collect()
            self.out.clear()  # packetdrill reads only the new socket under test's packets from now on
        outcome = self.kernel.call(line, self.now)
        if isinstance(outcome, tuple):
            self._check_outcome(line, outcome)
            return
        if line.time.blocking_end is None:
            self.blocked = _Blocked(line, outcome, start)
            self._wait_alone(line, start)
            return
        if line.time.kind is TimeKind.RELATIVE:
            end = self.last + line.time.blocking_end
        else:
            end = line.time.blocking_end
        self.blocked = _Blocked(line, outcome, end)

    def _wait_alone(self, line: SyscallLine, start: float) -> None:
        """A call written without `start...end` runs in packetdrill's only thread: while it blocks no
        later line runs, so no packet of the script can complete it, only the stack's own timers, and it
        must return within the tolerance (or the next line comes late)."""
        self._settle()
        while self.blocked is not None and self._fire_next_timer(start + self.tolerance):
            pass
        if self.blocked is not None:
            raise ScriptFailure(
                f"{self.path}:{line.line}: {line.text}\n  the call blocks: packetdrill runs no later line until it"
                " returns (a call that waits for the script's packets is written start...end)"
            )

    def _check_outcome(self, line: SyscallLine, outcome: Outcome) -> None:
        result, err = outcome
        if isinstance(line.result, AnyValue):
            return
        if result != line.result or (line.errno is not None and err != line.errno):  # (errno if named)
            got = f"{result}" + (f" {err}" if err else "")
            want = f"{line.result}" + (f" {line.errno}" if line.errno else "")
            raise ScriptFailure(f"{self.path}:{line.line}: {line.text}\n  expected: = {want}\n  actual:   = {got}")


def _without_tsval(layout: Layout) -> Layout:
    """TSval is our clock plus a random offset: scripts check TSecr (what we echo), not TSval."""
    return [(name, (0, values[1]) if name == "TS" else values) for name, values in layout]


def _script_tsval(layout: Layout, offset: int | None) -> Layout:
    """Show our TSval in the script's terms once the offset is known."""
    if offset is None:
        return layout
    return [(n, ((v[0] - offset) & 0xFFFFFFFF, v[1]) if n == "TS" else v) for n, v in layout]


def run_script(
    path: str,
    config: TcpConfig | None = None,
    options: list[tuple[str, str]] | None = None,
    recorder: Recorder | None = None,
) -> set[tuple[str, str]]:
    """Run one .pkt file: returns the (state, event) pairs it covered; raises ScriptFailure or ScriptSkip.

    `options` are packetdrill command-line options (`("mss", "1000")`); the script's own lines win.
    """
    script = parse_file(path)
    if options:
        script = replace(script, options=(*options, *script.options))
    runner = Runner(script, config, recorder)
    if recorder is not None:
        recorder.bind(lambda: runner.now)
    runner.run()
    return runner.taken
