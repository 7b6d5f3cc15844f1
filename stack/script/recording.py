"""What a script run did, for `tcpstack script --trace/--pcap`: its packets in a pcap and its event log,
both stamped with the run's virtual time (a run starts at 0 s, the pcap at 1970-01-01 00:00:00)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from stack.pcap import PcapWriter
from stack.tcp.connection import Connection
from stack.tcp.state import Transition
from stack.trace import EventLog
from stack.wire.addr import fmt_endpoint
from stack.wire.codec import encode_tcp
from stack.wire.segment import Segment


class Recorder:
    """Records segments in and out and state transitions; `bind` gives it the runner's virtual clock."""

    def __init__(self, pcap: str | None = None, trace: str | None = None) -> None:
        self._clock: Callable[[], float] = lambda: 0.0
        self._pcap = PcapWriter(pcap) if pcap is not None else None
        self._log: EventLog | None = None
        self._text = trace == "-"  # --trace alone: transitions on stderr
        if trace is not None and trace != "-":
            self._log = EventLog(open(trace, "w"), now=self._now, offset=0.0)  # noqa: SIM115 - closed by close()

    def bind(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def _now(self) -> float:
        return self._clock()

    def inbound(self, src: int, dst: int, seg: Segment, conn: Connection | None) -> None:
        if self._pcap is not None:
            self._pcap.write(encode_tcp(src, dst, seg), self._now())
        if self._log is not None:
            self._log.segment_in(src, dst, seg, conn)

    def outbound(self, src: int, dst: int, seg: Segment, conn: Connection | None) -> None:
        if self._pcap is not None:
            self._pcap.write(encode_tcp(src, dst, seg), self._now())
        if self._log is not None:
            if conn is None:
                self._log.segment_out_unattached(src, dst, seg)
            else:
                self._log.segment_out(conn, seg)
                self._log.after(conn, "output")

    def transition(self, conn: Connection, t: Transition) -> None:
        if self._text:
            sys.stderr.write(f"trace: {self._now():.6f} {fmt_endpoint(*conn.remote)} {t}\n")
        if self._log is not None:
            self._log.transition(conn, t)

    def close(self) -> None:
        if self._pcap is not None:
            self._pcap.close()
        if self._log is not None:
            self._log.close()
