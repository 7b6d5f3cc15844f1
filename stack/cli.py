"""The `tcpstack` command. Imports stay lazy: `tcpstack netstat` must answer in well under 0.3 s."""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import sys

PROG = "tcpstack"


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


class _CommandParser(_Parser):
    """A command's parser: an argument it does not know is its error ("tcpstack netstat: error: ..."), where
    argparse would hand it back to the top-level parser, whose message names no command."""

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 or IPv6 address") from None


def _cidr(text: str) -> str:
    if "/" not in text:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give the kernel-side address with a prefix, like 10.7.0.1/24 or fd3d:fa7b:d17d::1/64"
        )
    try:
        return str(ipaddress.ip_interface(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 or IPv6 address with a prefix length") from None


def _check_families(parser: argparse.ArgumentParser, addrs: list[str], peers: list[str]) -> None:
    """One address per family on each side, and the same families on both (a dual stack has two of each)."""
    ours = [ipaddress.ip_address(a).version for a in addrs]
    theirs = [ipaddress.ip_interface(p).version for p in peers]
    if len(set(ours)) != len(ours) or len(set(theirs)) != len(theirs):
        parser.error("give at most one --addr and one --peer per IP version")
    if set(ours) != set(theirs):
        parser.error("every --addr needs a --peer of the same IP version (and the other way round)")


def _bounded(kind, low, high, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} {text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be between {low} and {high}")
        return value

    return parse


def positive_int(text: str) -> int:
    """An argparse type for counts and sizes (also the tools'): 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def _port(text: str) -> int:
    """A port as nc takes it: a number, or a service name from /etc/services ("http")."""
    if not text.lstrip("-").isdigit():
        try:
            return socket.getservbyname(text, "tcp")
        except OSError:
            raise argparse.ArgumentTypeError(f"port {text!r} is neither a number nor a known service name") from None
    return _bounded(int, 1, 65535, "port")(text)


def _tun_name(text: str) -> str:
    if not 1 <= len(text) <= 15 or "/" in text or text.strip() != text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid interface name (1-15 characters)")
    return text


def _services(text: str):
    from stack.services import parse_services

    try:
        return parse_services(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _congestion(text: str) -> str:
    from stack.tcp import congestion

    try:
        congestion.create(text, 1460, 10)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _fault(text: str):
    from stack.aio.fault import FaultSpec

    try:
        return FaultSpec.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _trace_target(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return text
    # `nc --trace HOST PORT` would otherwise write the event log to a file named after HOST
    raise argparse.ArgumentTypeError(
        f"{text!r} looks like HOST, not a trace file: write --trace=- (or put --trace after HOST PORT)"
    )


def _time_span(text: str) -> tuple[float, float]:
    start, sep, end = text.partition(":")
    try:
        span = float(start), float(end)
    except ValueError:
        span = None
    if not sep or span is None or not 0 <= span[0] < span[1] or span[1] == float("inf"):
        raise argparse.ArgumentTypeError(f"time {text!r}: expected START:END in seconds, START < END, like 1.5:2")
    return span


def _fast_open_keys(text: str) -> tuple[bytes, ...]:
    from stack.tcp import fast_open

    try:
        return fast_open.parse_keys(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _keepalive(text: str) -> tuple[float, float, int]:
    parts = text.split(",")
    if not 1 <= len(parts) <= 3:
        raise argparse.ArgumentTypeError(f"keepalive {text!r}: expected IDLE[,INTERVAL[,COUNT]]")
    idle = _bounded(float, 0.01, 86400 * 7, "keepalive idle")(parts[0])
    interval = _bounded(float, 0.01, 86400, "keepalive interval")(parts[1]) if len(parts) > 1 else 75.0
    count = _bounded(int, 1, 1000, "keepalive count")(parts[2]) if len(parts) > 2 else 9
    return idle, interval, count


def _add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tun", required=True, type=_tun_name, help="TUN device to create, e.g. tun0")
    p.add_argument(
        "--addr",
        required=True,
        action="append",
        type=_ip,
        help="the stack's own address, e.g. 10.7.0.2 or fd3d:fa7b:d17d::2 (repeat for both IP versions)",
    )
    p.add_argument(
        "--peer",
        required=True,
        action="append",
        type=_cidr,
        help="kernel-side address/prefix, e.g. 10.7.0.1/24 or fd3d:fa7b:d17d::1/64 (one per --addr)",
    )
    p.add_argument(
        "--mtu", type=_bounded(int, 576, 65535, "mtu"), default=1500, help="the TUN device's MTU (default 1500)"
    )
    p.add_argument(
        "--msl",
        type=_bounded(float, 0.001, 3600, "msl"),
        default=None,
        help="maximum segment lifetime in seconds (TIME_WAIT lasts 2*MSL; default 30)",
    )
    p.add_argument(
        "--fin-timeout",
        type=_bounded(float, 0.001, 3600, "fin-timeout"),
        default=None,
        help="how long an orphaned FIN_WAIT_2 connection lives, in seconds (default 60, like Linux)",
    )
    p.add_argument(
        "--fault",
        type=_fault,
        default=None,
        help="impair packets both ways: loss=5%%,dup=1%%,reorder=10%%,corrupt=1%%,delay=20ms,seed=N; "
        "lose chosen segments: drop=syn|synack|ack|fin|rst|data|any[,dir=in|out][,port=N][,skip=N][,count=N]",
    )
    p.add_argument(
        "--cc",
        type=_congestion,
        default=None,
        help="congestion control: a registered name (reno, cubic, bbr) or package.module:Class of your own",
    )
    p.add_argument("--ecn", action="store_true", help="ask for and accept ECN (RFC 3168); off by default")
    p.add_argument(
        "--timestamps",
        choices=("on", "off"),
        default=None,
        help="offer RFC 7323 timestamps (RTT measurement, PAWS); default on, like Linux",
    )
    p.add_argument(
        "--offload",
        choices=("on", "off"),
        default=None,
        help="TUN offloads: checksums and super-segments of up to 64 KB both ways (default on where the "
        "kernel allows; off with --fault)",
    )
    p.add_argument(
        "--pcap",
        default=None,
        help="write every packet in and out to this pcap file (serve: - for standard output, as tcpdump -w -)",
    )
    p.add_argument(
        "--trace",
        nargs="?",
        const="-",
        default=None,
        type=_trace_target,
        metavar="FILE",
        help="--trace alone (or --trace -): each state transition with its cause on stderr; "
        "--trace FILE: the JSON-lines event log (segments, congestion state, timers, recovery; docs/trace.md)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="A userspace TCP/IP stack over a Linux TUN device.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_CommandParser)

    serve = sub.add_parser("serve", help="run the stack and serve echo/discard/chargen/http")
    _add_device_args(serve)
    serve.add_argument(
        "--services", type=_services, default=None, help="name:port list (default echo:7,discard:9,chargen:19,http:80)"
    )
    serve.add_argument(
        "--keepalive",
        type=_keepalive,
        default=None,
        metavar="IDLE[,INTERVAL[,COUNT]]",
        help="probe idle connections (SO_KEEPALIVE for all): seconds idle, seconds between probes, probes",
    )
    serve.add_argument(
        "--fast-open",
        type=_bounded(int, 0, 4096, "fast open queue"),
        default=0,
        metavar="N",
        help="TCP Fast Open for the services (RFC 7413, server side): a client that holds a cookie sends its "
        "request in the SYN; at most N such connections per service before their handshake ends (default 0: off)",
    )
    serve.add_argument(
        "--fast-open-key",
        type=_fast_open_keys,
        default=None,
        metavar="KEY[,BACKUP]",
        help="the cookies' key as Linux's net.ipv4.tcp_fastopen_key writes it, to share with other stacks "
        "(default: a random one per run, all workers alike)",
    )
    serve.add_argument("--control", default=None, help="control socket path (default /run/tcpstack/PID.sock)")
    serve.add_argument(
        "--workers",
        type=_bounded(int, 1, 64, "workers"),
        default=1,
        help="processes, one per queue of a multi-queue TUN device; the kernel spreads flows over them",
    )
    from stack import limits  # light: argparse and the config dataclass

    limits.add_arguments(serve)

    nc = sub.add_parser("nc", help="netcat over the userspace stack: connect to HOST PORT, or -l PORT to listen")
    _add_device_args(nc)
    nc.add_argument("-l", "--listen", action="store_true", help="wait for one connection on PORT (like nc -l)")
    nc.add_argument(
        "-k", dest="keep_listening", action="store_true", help="with -l: listen again after each connection (nc -k)"
    )
    nc.add_argument("--control", default=None, help="control socket path (default /run/tcpstack/PID.sock)")
    nc.add_argument(
        "--linger-time-wait",
        action="store_true",
        help="after the close, stay until the connection is gone (TIME_WAIT's 2*MSL, an orphan's FIN_WAIT2 "
        "timeout), so netstat can watch it",
    )
    for letter, dest, least, text in (
        ("q", "quit_after", 0, "after EOF on stdin, wait this long for the peer to finish, then close (nc -q)"),
        ("w", "timeout", 0.001, "give up a connection not made within SECONDS, close one idle both ways that long"),
    ):  # as OpenBSD nc's
        flag = f"-{letter}"
        nc.add_argument(flag, dest=dest, type=_bounded(float, least, 86400, flag), metavar="SECONDS", help=text)
    nc.add_argument("-v", dest="verbose", action="store_true", help="say on stderr when a connection is made (nc -v)")
    nc.add_argument(
        "-z", dest="zero_io", action="store_true", help="connect, send nothing and close: is PORT open? (nc -z)"
    )
    # what OpenBSD nc asks for with -N and -n is what this one always does
    nc.add_argument("-N", action="store_true", help="accepted as nc's: EOF on stdin always shuts the sending side")
    nc.add_argument("-n", action="store_true", help="accepted as nc's: HOST is always an address, never a name")
    nc.add_argument("host", type=_ip, nargs="?", help="the IPv4 or IPv6 address to connect to (not with -l)")
    nc.add_argument("port", type=_port)

    for name, text in (("netstat", "list connections of a running stack"), ("stats", "counters of a running stack")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--control", default=None, help="control socket path (found automatically if one runs)")
        p.add_argument("--json", action="store_true", help="machine-readable output")
    netstat = sub.choices["netstat"]
    netstat.add_argument(
        "-i", "--info", action="store_true", help="add what ss -i shows: cwnd, ssthresh, rtt, rto, mss, wscale, cc"
    )
    netstat.add_argument("--closed", action="store_true", help="also the last 16 connections that closed")
    netstat.add_argument("-l", "--listening", action="store_true", help="only listeners, as netstat -l")
    # what net-tools' netstat asks for with -n, -a, -t and -o is what this one always shows: `netstat -nat`
    # as fingers type it works
    for letter, shown in (("n", "numeric addresses"), ("a", "all sockets"), ("t", "TCP"), ("o", "timers")):
        netstat.add_argument(f"-{letter}", action="store_true", help=f"accepted as netstat's: {shown}, always shown")

    demo = sub.add_parser("demo", help="run ping, curl and nc against the stack in a private network namespace")
    demo.add_argument("--states", action="store_true", help="the tour of the eleven TCP states instead (tcpstack tour)")
    tour = sub.add_parser("tour", help="produce each of the eleven TCP states against the kernel, shown in netstat")
    for p in (demo, tour):
        p.add_argument(
            "--pause",
            type=_bounded(float, 0, 1, "pause"),
            default=0.5,
            help="seconds to hold each state on screen for a watching person (0 to 1, default 0.5)",
        )

    top = sub.add_parser("top", help="every connection of every running stack, refreshed live (q quits)")
    top.add_argument(
        "--control", action="append", default=None, help="a stack's control socket (repeatable; default: all)"
    )
    top.add_argument("--interval", type=_bounded(float, 0.1, 60, "interval"), default=1.0, help="seconds")

    script = sub.add_parser("script", help="run packetdrill-format .pkt scripts against the core in virtual time")
    script.add_argument("files", nargs="+", metavar="FILE.pkt")
    script.add_argument(
        "--trace",
        nargs="?",
        const="-",
        default=None,
        metavar="FILE",
        help="what the script did: --trace alone prints its transitions on stderr, --trace FILE writes the event "
        "log (one script), both in the run's virtual time",
    )
    script.add_argument(
        "--pcap", default=None, help="write the script's packets, in virtual time (one script; - for standard output)"
    )
    script.add_argument(
        "--ip_version",
        choices=("ipv4", "ipv6"),
        default="ipv4",
        help="run over IPv6 as packetdrill's --ip_version=ipv6 (the stack fd3d:fa7b:d17d::1, the peer ::2)",
    )

    sim = sub.add_parser("sim", help="run flows of the real TCP core over a simulated bottleneck, in virtual time")
    from stack.sim.cli import add_arguments as add_sim_arguments  # light: argparse and unit parsing

    add_sim_arguments(sim)

    plot = sub.add_parser(
        "plot",
        help="draw connections: a time-sequence graph from a pcap, or --overlay, --ladder, --states pictures",
    )
    plot.add_argument("pcap", nargs="?", metavar="PCAP", help="a capture, e.g. from serve --pcap or sim")
    plot.add_argument("--trace", default=None, metavar="LOG", help="the --trace FILE event log: adds cwnd/RTT")
    plot.add_argument("--port", type=_port, default=None, help="the connection using this port (default: most data)")
    plot.add_argument("--time", type=_time_span, default=None, metavar="START:END", help="zoom: seconds from the start")
    kind = plot.add_mutually_exclusive_group()
    kind.add_argument(
        "--overlay", nargs="+", metavar="LOG", help="compare event logs (runs, sim flows): acked data, rate, cwnd, RTT"
    )
    kind.add_argument(
        "--ladder",
        action="store_true",
        help="a sequence diagram of one connection's handshake and close, with states and timers from --trace",
    )
    kind.add_argument("--states", nargs="+", metavar="LOG", help="the state diagram of transitions these logs show")
    plot.add_argument("-o", "--output", required=True, metavar="OUT.png|OUT.svg")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at exit, where a reader that went away could no longer be answered
        return code
    except BrokenPipeError:
        return _output_closed()


def _output_closed() -> int:
    """Whoever read the output went away (`tcpstack netstat | head`): stop quietly, as a command that
    SIGPIPE ends does, without a traceback or a second error when Python flushes stdout at exit."""
    discard_output(sys.stdout)
    return 128 + signal.SIGPIPE  # the status a shell reports for such a command


def discard_output(stream) -> None:
    """What is still written to `stream` (and what its buffer holds) goes to /dev/null, without an error:
    for a stdout or stderr whose reader went away."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stream.fileno())
    os.close(devnull)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "nc" and args.listen == (args.host is not None):
        parser.error("nc: give HOST PORT to connect, or -l PORT to listen")
    if args.command == "nc" and args.keep_listening and not args.listen:
        parser.error("nc: -k keeps listening, so it needs -l")
    if args.command == "nc" and args.zero_io and args.listen:
        parser.error("nc: -z connects to HOST PORT: not with -l")
    if args.command in ("serve", "nc", "script") and args.pcap == "-":
        _capture_to_stdout(parser, args)
    if args.command == "serve" and args.fast_open_key is not None and not args.fast_open:
        parser.error("serve: --fast-open-key is the key of --fast-open N: give both")
    if args.command == "serve" and args.fast_open and args.fast_open_key is None:
        args.fast_open_key = (os.urandom(16),)  # one key for every worker (they fork from here)
    if args.command in ("serve", "nc"):
        _check_families(parser, args.addr, args.peer)
        for text in args.addr:
            version = ipaddress.ip_address(text).version
            _check_addresses(parser, text, next(p for p in args.peer if ipaddress.ip_interface(p).version == version))
    try:
        if args.command in ("netstat", "stats"):
            return _query(args)
        if args.command == "script":
            from stack.script.cli import run_scripts

            if (args.pcap or args.trace not in (None, "-")) and len(args.files) > 1:
                parser.error("script: --pcap and --trace FILE record one script; give one FILE.pkt")
            return run_scripts(args.files, trace=args.trace, pcap=args.pcap, ip_version=args.ip_version)
        if args.command == "top":
            from stack.top import run_top

            return run_top(args.control, args.interval)
        if args.command == "tour" or (args.command == "demo" and args.states):
            from stack.tour import run_tour

            return run_tour(args.pause)
        if args.command == "demo":
            from stack.demo import run_demo

            return run_demo()
        if args.command == "plot":
            return _plot(args)
        if args.command == "sim":
            from stack.sim.cli import run as run_sim

            return run_sim(args)
        _check_can_create_tun()
        if args.command == "serve" and args.workers > 1:
            return _serve_workers(args)
        if args.command == "serve":
            from stack.serve import serve as command
        else:
            from stack.nc import nc as command
        return _run_on_uvloop(command(args), args.command)
    except KeyboardInterrupt:
        return 130


def _capture_to_stdout(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """`--pcap -`, as tcpdump's `-w -`: the capture is the command's standard output (into `tcpdump -r -`
    or Wireshark), so what the command prints goes to stderr instead."""
    if args.command == "nc":
        parser.error("nc: --pcap -: nc's standard output is what the connection receives; give --pcap a file")
    if args.command == "serve" and args.workers > 1:
        parser.error(
            "serve: --pcap - with --workers: each worker writes a capture of its own (FILE.w0, ...); give a file"
        )
    if os.isatty(1):
        parser.error(
            f"{args.command}: --pcap -: standard output is a terminal; pipe it (| tcpdump -nr -) or give a file"
        )
    sys.stdout = sys.stderr


def _check_addresses(parser: argparse.ArgumentParser, addr_text: str, peer_text: str) -> None:
    """--addr must be an address the kernel can reach through the TUN: not its own side (--peer), not
    the subnet's network or broadcast address, and not one no host may have (RFC 1122 §3.2.1.3)."""
    addr = ipaddress.ip_address(addr_text)
    peer = ipaddress.ip_interface(peer_text)
    net = peer.network
    if addr == peer.ip:
        parser.error(f"--addr {addr} is the kernel side's address (--peer {peer}): give the stack another one")
    if net.prefixlen < net.max_prefixlen - 1 and addr in (net.network_address, net.broadcast_address):
        parser.error(f"--addr {addr} is the network or broadcast address of {net}: give the stack a host address")
    if addr.is_multicast or addr.is_loopback or addr.is_unspecified or addr.is_reserved or addr.packed[0] == 0:
        parser.error(f"--addr {addr} cannot be a host's address (multicast, loopback, 0.0.0.0/8 or class E)")


def _plot(args) -> int:
    from stack.plot import PlotError

    try:
        print(f"wrote {_draw(args)}")
    except PlotError as exc:
        return _fail(f"plot: {exc}")
    except OSError as exc:
        return _fail(f"plot: {exc.filename}: {exc.strerror}" if exc.filename else f"plot: {exc}")
    return 0


def _draw(args) -> str:
    from stack.plot import PlotError

    if args.overlay or args.states:
        if args.pcap is not None or args.trace is not None or args.time is not None:
            raise PlotError("--overlay and --states read event logs only: no PCAP, --trace or --time")
        if args.overlay:
            from stack.plot_overlay import overlay

            return overlay(args.overlay, args.output)
        from stack.plot_states import states

        return states(args.states, args.output, args.port)
    if args.ladder:
        from stack.plot_ladder import ladder

        return ladder(args.output, pcap=args.pcap, trace=args.trace, port=args.port)
    if args.pcap is None:
        raise PlotError("give a PCAP to draw (or --overlay LOG..., --ladder, --states LOG...)")
    from stack.plot import plot

    return plot(args.pcap, args.output, trace=args.trace, port=args.port, span=args.time)


def _serve_workers(args) -> int:
    from stack.workers import serve_workers

    try:
        return serve_workers(args)
    except OSError as exc:
        return _fail(f"serve: {exc.strerror or exc}")


def _run_on_uvloop(coro, name: str) -> int:
    import uvloop

    try:
        return uvloop.run(coro)
    except BrokenPipeError:
        raise  # stdout's reader went away: main() ends quietly
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""  # the path it could not use
        return _fail(f"{name}: {where}{exc.strerror or exc}")


def _fail(message: str, code: int = 1) -> int:
    sys.stderr.write(f"{PROG}: {message}\n")
    return code


class SetupError(Exception):
    """An environment problem explained in one line (no root, no TUN, ...)."""


def _check_can_create_tun() -> None:
    if not os.path.exists("/dev/net/tun"):
        raise SystemExit(_fail("/dev/net/tun is missing: this kernel or container has no TUN support"))
    if os.geteuid() != 0 and not _has_cap_net_admin():
        raise SystemExit(_fail("creating a TUN device needs root (CAP_NET_ADMIN); run it as root or with sudo"))


def _has_cap_net_admin() -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 12))
    except OSError:
        pass
    return False


def _query(args) -> int:
    import json

    from stack import control

    options = {"closed": True} if getattr(args, "closed", False) else {}
    path = args.control
    try:
        if path is None and args.command == "netstat" and len(control.find_control_sockets()) > 1:
            results = control.request_all("netstat", **options)  # like netstat: every stack's connections
        else:
            path = path or control.find_control_socket()
            results = [control.request(path, args.command, **options)]
    except OSError as exc:
        if exc.errno is not None and path is not None:  # the socket is missing, refuses, or is no socket
            return _fail(f"{args.command}: no tcpstack answers at {path} ({exc.strerror})")
        return _fail(f"{args.command}: {exc}")
    except ValueError as exc:
        return _fail(f"{args.command}: {exc}")
    if args.command == "netstat":
        from stack.netstat import format_rows

        rows = [row for result in results for row in result if not args.listening or row["state"] == "LISTEN"]
        print(json.dumps(rows) if args.json else format_rows(rows, info=args.info))
    elif args.json:
        print(json.dumps(results[0], indent=1))
    else:
        for key, value in results[0].items():
            print(f"{key:<28}{value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
