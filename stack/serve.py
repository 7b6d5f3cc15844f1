"""`tcpstack serve`: the stack on a TUN device with the services, a control socket and clean shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace

from stack import core_build, limits


def _trace_printer(line: str) -> None:
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"  # like tcpdump
    try:
        sys.stderr.write(f"trace: {stamp} {line}\n")
        sys.stderr.flush()
    except OSError:  # its reader went away (`--trace 2>&1 | head`): the stack serves on, no longer traced
        from stack.cli import discard_output

        discard_output(sys.stderr)  # a transition that could not be printed must not fail its connection


def stop_signals() -> tuple[int, ...]:
    """The signals that stop serve and nc cleanly (device removed, control socket unlinked, recordings
    flushed): Ctrl-C, SIGTERM, and the hang-up of a terminal that closes, as tcpdump takes it, unless the
    hang-up was ignored when they started (`nohup`)."""
    hangup = () if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN else (signal.SIGHUP,)
    return (signal.SIGINT, signal.SIGTERM, *hangup)


def offload_wanted(args) -> bool:
    """--offload, else TCPSTACK_OFFLOAD (so that a whole test run can go either way), else on."""
    return (args.offload or os.environ.get("TCPSTACK_OFFLOAD") or "on") != "off"


def note(line: str) -> None:
    sys.stderr.write(f"tcpstack: {line}\n")
    sys.stderr.flush()


def note_addresses_reached_elsewhere(addrs: list[str], ours: str) -> None:
    """A line for each of the stack's addresses that the kernel already reaches directly through another
    device (another stack's TUN with the same --addr, a LAN of that subnet): asked before our device
    exists, as its packets would then go one way or the other, and not necessarily to this stack. A
    route through the device named `ours` says nothing of the kind: that device is taken, and opening it
    fails with its own error."""
    for addr in addrs:
        device = _direct_route_device(addr)
        if device is not None and device != ours:
            note(f"{addr} is already reached through {device}: the kernel may send its packets there, not here")


def _direct_route_device(addr: str) -> str | None:
    """The device of the kernel's route to `addr` when it is a link of its own (no gateway, not local)."""
    try:
        answer = subprocess.run(["ip", "-j", "route", "get", addr], capture_output=True, text=True, timeout=10)
        routes = json.loads(answer.stdout) if answer.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired, ValueError):  # no `ip`, or an answer it cannot give
        return None
    for route in routes:
        if "gateway" not in route and route.get("type") in (None, "unicast") and route.get("dev") not in (None, "lo"):
            return route["dev"]
    return None


def open_trace(target: str | None):
    """What `--trace` asks for: (text printer, event log). `--trace` alone or `--trace -` prints each state
    transition on stderr; `--trace FILE` writes the JSON-lines event log (docs/trace.md) to FILE."""
    if target is None:
        return None, None
    if target == "-":
        return _trace_printer, None
    from stack.trace import EventLog

    try:
        return None, EventLog.open(target)
    except OSError as exc:
        raise OSError(exc.errno, f"--trace {target}: {exc.strerror}") from None


def config_from_args(args):
    """The TcpConfig that the device options serve and nc share ask for."""
    from stack.tcp.config import TcpConfig
    from stack.tcp.fast_open import SERVER_ENABLE

    config = TcpConfig(mss=args.mtu - 40)
    config = limits.apply(config, args)  # serve's --syncookies, --max-connections, ... (nc has none)
    if getattr(args, "fast_open", 0):  # serve's (the listeners' queues: serve_on)
        config = replace(config, fast_open=config.fast_open | SERVER_ENABLE, fast_open_keys=args.fast_open_key)
    if args.msl is not None:
        config = replace(config, msl=args.msl)
    if args.fin_timeout is not None:
        config = replace(config, fin_timeout=args.fin_timeout)
    if args.cc is not None:
        config = replace(config, congestion=args.cc)
    if args.timestamps is not None:
        config = replace(config, timestamps=args.timestamps == "on")
    if args.ecn:
        config = replace(config, ecn=True)
    keepalive = getattr(args, "keepalive", None)  # serve only
    if keepalive is not None:
        idle, interval, count = keepalive
        config = replace(
            config, keepalive=True, keepalive_idle=idle, keepalive_interval=interval, keepalive_count=count
        )
    return config


async def open_stack_from_args(args, queue=None, worker: int | None = None):
    """The Stack on a new TUN device, configured by the device options serve and nc share; or on `queue`,
    worker `worker`'s queue of a device already open (`--workers`: its pcap and event log get `.wN`)."""
    from stack.aio.stack import Stack

    config = config_from_args(args)
    if queue is None:  # (the workers' parent asked before it opened their device)
        note_addresses_reached_elsewhere(args.addr, args.tun)
    suffix = "" if worker is None else f".w{worker}"
    trace = args.trace + suffix if args.trace not in (None, "-") else args.trace
    text_trace, event_log = open_trace(trace)
    try:
        return await Stack.open_tun(
            args.tun,
            args.addr,
            args.peer,
            mtu=args.mtu,
            config=config,
            fault=args.fault,
            pcap=args.pcap + suffix if args.pcap is not None else None,
            trace=text_trace,
            event_log=event_log,
            offload=offload_wanted(args),
            note=note,
            queue=queue,
        )
    except BaseException:
        if event_log is not None:
            event_log.close()
        raise


async def serve(args) -> int:
    from stack.control import claim, default_path

    control_path = args.control or default_path()
    claim(control_path)  # before the TUN exists: a refused serve leaves nothing behind
    return await serve_on(args, control_path)


async def serve_on(args, control_path: str, queue=None, worker: int | None = None) -> int:
    """Serve the services until SIGINT/SIGTERM: on a new TUN device, or as worker `worker` on `queue`."""
    from stack.control import serve_control, stop_control
    from stack.services import DEFAULT_PORTS, SERVICES

    stack = await open_stack_from_args(args, queue, worker)
    control = None
    try:
        services = args.services or list(DEFAULT_PORTS.items())
        for name, port in services:
            server = await stack.start_server(SERVICES[name], port=port, backlog=stack.config.backlog)
            if args.fast_open:
                for sock in server.sockets:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, args.fast_open)
        control = await serve_control(control_path, stack, limits.control_clients(args))
        stack.settle_heap()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # a worker is stopped by its parent (SIGTERM), which takes the others for all of them
        for sig in stop_signals() if worker is None else (signal.SIGTERM,):
            loop.add_signal_handler(sig, stop.set)
        names = ", ".join(f"{n}:{p}" for n, p in services)
        if worker is None:  # the workers' parent speaks for them
            where = (
                f"at {' and '.join(args.addr)} on {stack.device.name} (control {control_path}, core {core_build.BUILD})"
            )
            print(f"tcpstack: serving {names} {where}", flush=True)
        await stop.wait()
    finally:
        stop_control(control, control_path)
        await stack.close()
    return 0
