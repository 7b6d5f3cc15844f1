"""The stack's configurable bounds: one table gives the `tcpstack serve` flags, their defaults (from
TcpConfig) and the counters that show each bound being hit. The README's "Limits" table follows it.

Kept light (argparse and the config dataclass only): the command line builds its parser from it.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from stack.control import MAX_CLIENTS as MAX_CONTROL_CLIENTS
from stack.tcp.config import TcpConfig


@dataclass(frozen=True, slots=True)
class Limit:
    flag: str  # the serve option
    field: str  # the TcpConfig field it sets ("" for the control socket's own bound)
    low: int
    high: int
    help: str
    counters: tuple[str, ...]  # `tcpstack stats` counters that count what the bound turned away

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


LIMITS: tuple[Limit, ...] = (
    Limit(
        "--syncookies",
        "syncookies",
        0,
        2,
        "SYN cookies as Linux tcp_syncookies: 0 never, 1 when the SYN queue is full, 2 always",
        ("SyncookiesSent", "SyncookiesRecv", "SyncookiesFailed", "TCPReqQFullDoCookies"),
    ),
    Limit(
        "--syn-backlog",
        "syn_backlog",
        1,
        1 << 20,
        "half-open connections per listener (SYN queue); beyond it SYN cookies, or drops",
        ("TCPReqQFullDoCookies", "TCPReqQFullDrop"),
    ),
    Limit(
        "--backlog",
        "backlog",
        1,
        1 << 20,
        "established connections waiting for accept per listener; beyond it SYNs and final ACKs are dropped",
        ("ListenOverflows", "ListenDrops"),
    ),
    Limit(
        "--max-connections",
        "max_connections",
        1,
        1 << 24,
        "connections per stack, TIME_WAIT included; beyond it new SYNs are dropped and connect() fails",
        ("TCPConnLimitDrop",),
    ),
    Limit(
        "--max-time-wait",
        "max_time_wait",
        0,
        1 << 24,
        "TIME_WAIT entries per stack (Linux tcp_max_tw_buckets); beyond it a closing connection skips TIME_WAIT",
        ("TCPTimeWaitOverflow",),
    ),
    Limit(
        "--ofo-max-bytes",
        "ofo_max_bytes",
        0,
        1 << 30,
        "out-of-order bytes held per connection; beyond it the data furthest from RCV.NXT is dropped",
        ("TCPOFODrop",),
    ),
    Limit(
        "--ofo-max-holes",
        "ofo_max_holes",
        0,
        1 << 20,
        "separate out-of-order runs (holes) held per connection; beyond it the highest run is dropped",
        ("TCPOFODrop",),
    ),
    Limit(
        "--memory-limit",
        "memory_limit",
        1 << 20,
        1 << 40,
        "bytes all connections may hold in receive, out-of-order and send buffers together (Linux tcp_mem); "
        "from 3/4 of it windows stop growing and out-of-order data is pruned, beyond it new data is dropped",
        ("TCPMemoryPressures", "OfoPruned", "TCPRcvQDrop"),
    ),
    Limit(
        "--send-buffer",
        "send_buffer",
        1024,
        1 << 30,
        "send buffer per connection, counted as Linux counts sk_sndbuf (bytes and 1280 per buffer of up to "
        "64 KB); grown with the congestion window up to 4 MiB (tcp_wmem[1], [2]); when full, writes wait",
        (),
    ),
    Limit(
        "--receive-buffer",
        "receive_buffer",
        1024,
        1 << 30,
        "bytes received and not yet read per connection (SO_RCVBUF, the largest window offered)",
        (),
    ),
    Limit(
        "--max-control-clients",
        "",
        1,
        4096,
        "control-socket clients served at once; more get an error",
        ("ControlClientsRefused",),
    ),
)

COUNTERS: tuple[str, ...] = tuple(dict.fromkeys(name for limit in LIMITS for name in limit.counters))


def default(limit: Limit) -> int:
    if not limit.field:
        return MAX_CONTROL_CLIENTS
    return getattr(TcpConfig(), limit.field)


def _parser_for(limit: Limit):
    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{limit.flag} {text!r} is not an integer") from None
        if not limit.low <= value <= limit.high:
            raise argparse.ArgumentTypeError(f"{limit.flag} must be between {limit.low} and {limit.high}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("limits", "bounds on queues and memory (README: Limits)")
    for limit in LIMITS:
        group.add_argument(
            limit.flag,
            type=_parser_for(limit),
            default=None,
            metavar="N",
            help=f"{limit.help} (default {default(limit)})",
        )


def apply(config: TcpConfig, args: argparse.Namespace) -> TcpConfig:
    """The config with the limits given on the command line."""
    changes = {
        limit.field: getattr(args, limit.dest)
        for limit in LIMITS
        if limit.field and getattr(args, limit.dest, None) is not None
    }
    return dataclasses.replace(config, **changes) if changes else config


def control_clients(args: argparse.Namespace) -> int:
    value = getattr(args, "max_control_clients", None)
    return MAX_CONTROL_CLIENTS if value is None else value
