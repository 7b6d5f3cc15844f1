"""`tcpstack sim`: its options and the command. Option values parse with units.py; a bad one is a
one-line error (exit 2), as everywhere in the tcpstack command."""

from __future__ import annotations

import argparse
import os
import sys

from stack.sim import units


def _typed(parse, what: str = ""):
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{what}{exc}") from None

    return convert


def _flow(text: str) -> units.FlowSpec:
    from stack.tcp import congestion

    spec = units.FlowSpec.parse(text)
    head, colon, tail = spec.controller.rpartition(":")
    if colon and head in congestion.REGISTRY:  # "cubic:abc" meant a size, not a class of a module "cubic"
        raise ValueError(f"{text!r}: {tail!r} is not a size (like 300KB or 20MB)")
    congestion.create(spec.controller, 1460, 10)  # fails here, in one line, if the controller is unusable
    return spec


def _burst(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    if not 2 <= len(parts) <= 4:
        raise ValueError(f"{text!r}: expected P,R[,BAD[,GOOD]] like 1%,30% (into the bad state, out of it)")
    p, r, bad, good = (units.fraction(part) for part in (*parts, "100%", "0%")[:4])
    if r == 0:
        raise ValueError(f"{text!r}: R must be above 0, or the bad state never ends")
    return p, r, bad, good


def _aqm(text: str) -> str:
    if text not in ("droptail", "codel"):
        raise ValueError(f"aqm {text!r}: choose droptail or codel")
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--flow",
        action="append",
        required=True,
        type=_typed(_flow, "flow: "),
        metavar="CC[:SIZE][@START]",
        help="a flow through the bottleneck (repeat for more): controller by name or package.module:Class, "
        "bytes to send (default: until --duration), start time; e.g. cubic:20MB@0s",
    )
    p.add_argument("--rate", type=_typed(units.rate), default=10e6, help="bottleneck rate (default 10Mbit)")
    p.add_argument("--delay", type=_typed(units.seconds), default=0.020, help="one-way delay, each way (default 20ms)")
    p.add_argument("--jitter", type=_typed(units.seconds), default=0.0, help="+- on the data direction's delay")
    p.add_argument(
        "--queue",
        type=_typed(units.QueueLimit.parse),
        default=units.QueueLimit(1, "bdp"),
        help="bottleneck queue: packets (100pkt), bytes (150KB) or bandwidth-delay products (default 1bdp)",
    )
    p.add_argument("--aqm", type=_typed(_aqm), default="droptail", help="droptail (default) or codel (RFC 8289)")
    p.add_argument(
        "--loss", type=_typed(units.fraction), default=0.0, help="random loss after the bottleneck, e.g. 1%%"
    )
    p.add_argument(
        "--burst-loss",
        type=_typed(_burst),
        default=None,
        metavar="P,R[,BAD[,GOOD]]",
        help="bursty loss (Gilbert-Elliott): per packet, P into the bad state and R out of it; a packet is lost "
        "with BAD there (default 100%%) and GOOD in the good state (default 0%%); e.g. 1%%,30%%",
    )
    p.add_argument("--duplicate", type=_typed(units.fraction), default=0.0, help="packets duplicated, e.g. 1%%")
    p.add_argument("--reorder", type=_typed(units.fraction), default=0.0, help="packets held back, e.g. 1%%")
    p.add_argument("--reorder-delay", type=_typed(units.seconds), default=0.005, help="how long (default 5ms)")
    p.add_argument("--mtu", type=_typed(_mtu), default=1500, help="bottleneck MTU: the MSS is MTU - 40 (default 1500)")
    p.add_argument("--seed", type=int, default=1, help="the same seed gives the same run, byte for byte (default 1)")
    p.add_argument(
        "--duration", type=_typed(units.seconds), default=600.0, help="stop after this much simulated time (600s)"
    )
    p.add_argument("--out", default=".", metavar="DIR", help="where the pcap and event log of each flow go (.)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _mtu(text: str) -> int:
    value = int(text)
    if not 576 <= value <= 65535:
        raise ValueError(f"mtu {value}: expected 576..65535")
    return value


def run(args) -> int:
    from stack.sim.engine import LinkConfig, Simulation

    if args.jitter > args.delay:
        sys.stderr.write("tcpstack: sim: --jitter cannot exceed --delay\n")
        return 2
    link = LinkConfig(
        rate=args.rate,
        delay=args.delay,
        jitter=args.jitter,
        queue=args.queue,
        aqm=args.aqm,
        loss=args.loss,
        burst_loss=args.burst_loss,
        duplicate=args.duplicate,
        reorder=args.reorder,
        reorder_delay=args.reorder_delay,
        mtu=args.mtu,
    )
    try:
        os.makedirs(args.out, exist_ok=True)
        sim = Simulation(link, args.flow, seed=args.seed, out_dir=args.out, duration=args.duration)
    except OSError as exc:
        sys.stderr.write(f"tcpstack: sim: {exc.filename or args.out}: {exc.strerror}\n")
        return 1
    report = sim.run()
    sys.stdout.write(report.to_json() if args.json else report.table() + "\n")
    return 0
