"""The simulation: N flows of real `Connection`s (stack/tcp) over one bottleneck, in virtual time.

Each flow is a sender host that connects to the receiver host and sends its bytes, then closes (like
`iperf`); the receiver host is a `Demux` with one listener that reads everything and closes when the
sender has. Data goes through the bottleneck (link.py); ACKs come back over an uncongested wire of
the same delay. The engine only uses the core's public interface: connect / the Demux, receive_segment,
segments_to_send, next_event, next_deadline, handle_timer, send, read, close. Every random draw comes
from `Random`s derived from the seed (the link's, and each host's `TcpConfig.rng`), and every time is
virtual, so a seed gives the same run every time.
"""

from __future__ import annotations

import ipaddress
import os
import re
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from random import Random

from stack.demux import Demux
from stack.pcap import PcapWriter
from stack.sim.aqm import CoDel, DropTail
from stack.sim.events import EventQueue
from stack.sim.link import Bottleneck, Packet, Wire
from stack.sim.loss import Bernoulli, GilbertElliott
from stack.sim.report import FlowResult, LinkResult, Report
from stack.sim.units import FlowSpec, QueueLimit
from stack.tcp.config import TcpConfig
from stack.tcp.connection import Connection, Transition
from stack.tcp.events import Closed, Connected, DataAvailable, PeerClosed, Reset, TimedOut
from stack.tcp.state import OPEN_FOR_DATA
from stack.trace import EventLog
from stack.wire.codec import encode_tcp
from stack.wire.segment import Flags, Segment
from stack.wire.seq import seq_add, seq_gt, seq_le

RECEIVER = (int(ipaddress.IPv4Address("10.0.2.1")), 5001)
SENDER_NET = int(ipaddress.IPv4Address("10.0.1.0"))
SENDER_PORT = 50000
_CHUNK = bytes(65536)  # what the sending application writes: zeros, a slice at a time
_IP_TCP_HEADERS = 40


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """The bottleneck and the wire behind it (docs/sim.md)."""

    rate: float = 10e6  # bits per second
    delay: float = 0.020  # one way, both directions: the base RTT is twice this
    jitter: float = 0.0  # +- seconds on the data direction's delay
    queue: QueueLimit = QueueLimit(1, "bdp")
    aqm: str = "droptail"  # or "codel" (RFC 8289)
    loss: float = 0.0  # independent loss on the data direction
    burst_loss: tuple[float, float, float, float] | None = None  # Gilbert-Elliott (p, r, loss bad, loss good)
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.005
    mtu: int = 1500

    @property
    def rtt(self) -> float:
        return 2 * self.delay


class _RttSampler:
    """Sender-side RTT samples as tcptrace takes them: send time of new data to the ACK that covers
    it, one sample per ACK (the newest segment it covers), none for data sent again (Karn)."""

    __slots__ = ("pending", "highest", "karn", "samples")

    def __init__(self) -> None:
        self.pending: deque[tuple[int, float]] = deque()  # (end sequence number, time sent), oldest first
        self.highest: int | None = None
        self.karn: int | None = None  # segments ending at or below this were sent more than once
        self.samples = array("d")  # 8 bytes a sample: a long run keeps millions

    def sent(self, seg: Segment, now: float) -> None:
        if not seg.payload:
            return
        end = seq_add(seg.seq, len(seg.payload))
        if self.highest is None or seq_gt(end, self.highest):
            self.pending.append((end, now))
            self.highest = end
        elif self.karn is None or seq_gt(end, self.karn):
            self.karn = end

    def acked(self, ack: int, now: float) -> None:
        pending = self.pending
        newest = None
        while pending and seq_le(pending[0][0], ack):
            newest = pending.popleft()
        if newest is not None and (self.karn is None or seq_gt(newest[0], self.karn)):
            self.samples.append(now - newest[1])


@dataclass(eq=False)
class _Flow:
    index: int
    spec: FlowSpec
    local: tuple[int, int]
    config: TcpConfig
    log: EventLog | None = None
    pcap: PcapWriter | None = None
    conn: Connection | None = None  # the sender
    peer: Connection | None = None  # the receiver's connection
    unsent: int | None = None  # bytes the application has still to write (None: no end)
    closed: bool = False  # the sender application called close
    delivered: int = 0  # bytes the receiving application read
    last_byte: float | None = None
    progress: list[tuple[float, int]] = field(default_factory=list)  # (time, bytes read so far)
    finished_at: float | None = None  # both ends closed (the sender may sit in TIME_WAIT)
    failure: str | None = None
    data_sent: int = 0  # segments carrying data, first transmissions and retransmissions
    rtt: _RttSampler = field(default_factory=_RttSampler)
    qdelay: array = field(default_factory=lambda: array("d"))
    drops: Counter = field(default_factory=Counter)

    @property
    def done(self) -> bool:
        return self.finished_at is not None or self.failure is not None


_PROGRESS_STEP = 0.001  # reads closer together than this share one entry of a flow's progress


def _record_progress(progress: list[tuple[float, int]], now: float, delivered: int) -> None:
    """Bounded by time, not by packets: a long fast run keeps one entry per millisecond at most."""
    if progress and now - progress[-1][0] < _PROGRESS_STEP:
        progress[-1] = (progress[-1][0], delivered)
    else:
        progress.append((now, delivered))


def file_stem(index: int, controller: str) -> str:
    """flow1-cubic, flow2-mypkg.cc_MyCC: safe as a file name."""
    return f"flow{index + 1}-{re.sub(r'[^A-Za-z0-9._-]', '_', controller)}"


class Simulation:
    def __init__(
        self,
        link: LinkConfig,
        flows: list[FlowSpec],
        seed: int = 1,
        out_dir: str | None = None,
        duration: float = 600.0,
        config: TcpConfig | None = None,
    ) -> None:
        if not flows:
            raise ValueError("at least one flow is needed")
        self.link = link
        self.seed = seed
        self.duration = duration
        self.events = EventQueue()
        base = config or TcpConfig(mss=link.mtu - _IP_TCP_HEADERS)
        self.receiver = Demux(replace(base, rng=Random(f"{seed}/receiver")))
        self.listener = self.receiver.listen(RECEIVER)
        self.flows: list[_Flow] = []
        self.files: list[str] = []
        for i, spec in enumerate(flows):
            flow_config = replace(base, congestion=spec.controller, rng=Random(f"{seed}/flow{i + 1}"))
            flow = _Flow(i, spec, (SENDER_NET + i + 1, SENDER_PORT + i), flow_config, unsent=spec.size)
            if out_dir is not None:
                stem = os.path.join(out_dir, file_stem(i, spec.controller))
                flow.pcap = PcapWriter(stem + ".pcap")
                flow.log = EventLog(open(stem + ".jsonl", "w"), now=self._now, offset=0.0)  # noqa: SIM115
                self.files += [stem + ".pcap", stem + ".jsonl"]
            self.flows.append(flow)
        self._build_path(Random(f"{seed}/link"))
        self._peer_flow: dict[Connection, _Flow] = {}
        self._dirty: dict[Connection, None] = {}  # an ordered set: runs repeat only if the order does
        self._flush_due = False
        self._deadline: dict[Connection, float] = {}
        self._stopped = False

    def _now(self) -> float:
        return self.events.now

    def _build_path(self, rng: Random) -> None:
        link = self.link
        limit, in_bytes = link.queue.resolve(link.rate, link.rtt, link.mtu)
        self.queue_limit = (limit, in_bytes)
        queue = CoDel(limit, in_bytes, mtu=link.mtu) if link.aqm == "codel" else DropTail(limit, in_bytes)
        loss = None
        if link.burst_loss is not None:
            p, r, bad, good = link.burst_loss
            loss = GilbertElliott(p, r, rng, loss_bad=bad, loss_good=good)
        elif link.loss:
            loss = Bernoulli(link.loss, rng)
        forward = Wire(
            self.events,
            rng,
            self._arrive_at_receiver,
            link.delay,
            link.jitter,
            loss,
            link.duplicate,
            link.reorder,
            link.reorder_delay,
            self._dropped,
        )
        self.bottleneck = Bottleneck(self.events, link.rate, queue, forward, self._dropped)
        self.back = Wire(self.events, rng, self._arrive_at_sender, link.delay)

    # ------------------------------------------------------------------ running

    def run(self) -> Report:
        for flow in self.flows:
            self.events.at(flow.spec.start, self._start, flow)
        events = self.events
        try:
            while not self._stopped:
                at = events.next_time()
                if at is None or at > self.duration:
                    break
                events.run_one()
            cut_short = not self._stopped and events.next_time() is not None
            end = self.duration if cut_short else events.now
            return self._report(end)
        finally:
            self.close()

    def close(self) -> None:
        for flow in self.flows:
            if flow.pcap is not None:
                flow.pcap.close()
            if flow.log is not None:
                flow.log.close()

    def _start(self, flow: _Flow) -> None:
        hook = self._transition_hook(flow)
        flow.conn = Connection.connect(flow.config, flow.local, RECEIVER, self.events.now, hook)
        self._touch(flow.conn)

    @staticmethod
    def _transition_hook(flow: _Flow):
        if flow.log is None:
            return None
        log = flow.log

        def hook(conn: Connection, t: Transition) -> None:
            log.transition(conn, t)

        return hook

    def _touch(self, conn: Connection) -> None:
        self._dirty[conn] = None
        if not self._flush_due:
            self._flush_due = True
            self.events.at(self.events.now, self._flush)

    # ------------------------------------------------------------------ arrivals

    def _arrive_at_receiver(self, pkt: Packet) -> None:
        seg = pkt.segment
        flow = self.flows[pkt.flow]
        if seg.payload:
            flow.qdelay.append(pkt.sojourn)
        conn, rst = self.receiver.segment_arrives(pkt.src, pkt.dst, seg, self.events.now)
        if conn is not None:
            self._peer_flow[conn] = flow
            flow.peer = conn
            self._touch(conn)
        elif rst is not None:
            self._send_back(flow, rst)

    def _arrive_at_sender(self, pkt: Packet) -> None:
        flow = self.flows[pkt.flow]
        conn = flow.conn
        seg = pkt.segment
        now = self.events.now
        if flow.pcap is not None:
            flow.pcap.write(encode_tcp(pkt.src, pkt.dst, seg), now)
        if conn is None or conn.finished:
            return  # the run keeps no TCB for it; nothing left to answer
        if flow.log is not None:
            flow.log.segment_in(pkt.src, pkt.dst, seg, conn)
        if seg.flags & Flags.ACK:
            flow.rtt.acked(seg.ack, now)
        conn.receive_segment(seg, now)
        if flow.log is not None:
            flow.log.after(conn, "segment")
        self._touch(conn)

    def _dropped(self, pkt: Packet, reason: str) -> None:
        self.flows[pkt.flow].drops[reason] += 1

    # ------------------------------------------------------------------ output and applications

    def _flush(self) -> None:
        self._flush_due = False
        now = self.events.now
        while self._dirty:
            dirty = list(self._dirty)
            self._dirty.clear()
            for conn in dirty:
                flow = self._peer_flow.get(conn)
                if flow is not None:
                    self._receiver_app(flow, conn, now)
                    for seg in conn.segments_to_send(now):
                        self._send_back(flow, seg)
                else:
                    flow = self._sender_flow(conn)
                    self._sender_app(flow, conn, now)
                    self._send_data(flow, conn, now)
                    if conn.events_pending:  # sending made room for the writer: it writes again now
                        self._dirty.add(conn)
                self._schedule(conn)
        if all(flow.done for flow in self.flows):
            self._stopped = True

    def _sender_flow(self, conn: Connection) -> _Flow:
        return self.flows[conn.local[1] - SENDER_PORT]

    def _sender_app(self, flow: _Flow, conn: Connection, now: float) -> None:
        while (event := conn.next_event()) is not None:
            kind = type(event)
            if kind is Reset:
                flow.failure = "refused" if event.refused else "reset"
            elif kind is TimedOut:
                flow.failure = "timed out"
            elif kind is Closed and flow.failure is None and flow.finished_at is None:
                flow.failure = "closed early"
        if conn.state in OPEN_FOR_DATA and not flow.closed:
            while flow.unsent != 0 and conn.send_space > 0:
                n = min(conn.send_space, len(_CHUNK), flow.unsent if flow.unsent is not None else len(_CHUNK))
                flow.unsent = flow.unsent - n if flow.unsent is not None else None
                conn.send(_CHUNK[:n], now)
            if flow.unsent == 0:
                conn.close(now)
                flow.closed = True

    def _receiver_app(self, flow: _Flow, conn: Connection, now: float) -> None:
        while (event := conn.next_event()) is not None:
            kind = type(event)
            if kind is Connected:
                self.listener.on_established(conn)
                self.listener.accept()
            elif kind is DataAvailable:
                n = len(conn.read())
                if n:
                    flow.delivered += n
                    flow.last_byte = now
                    _record_progress(flow.progress, now, flow.delivered)
            elif kind is PeerClosed:
                flow.delivered += len(conn.read())
                conn.close(now)
            elif kind is Closed:
                self.receiver.remove(conn)
                if conn.at_eof and flow.failure is None:
                    flow.finished_at = now

    def _send_data(self, flow: _Flow, conn: Connection, now: float) -> None:
        segments = conn.segments_to_send(now)
        if not segments:
            return
        src, dst = conn.local[0], conn.remote[0]
        for seg in segments:
            raw = encode_tcp(src, dst, seg)
            if flow.pcap is not None:
                flow.pcap.write(raw, now)
            if flow.log is not None:
                flow.log.segment_out(conn, seg)
            flow.rtt.sent(seg, now)
            if seg.payload:
                flow.data_sent += 1
            self.bottleneck.send(Packet(flow.index, src, dst, seg, len(raw)))
        if flow.log is not None:
            flow.log.after(conn, "output")

    def _send_back(self, flow: _Flow, seg: Segment) -> None:
        src, dst = RECEIVER[0], flow.local[0]
        self.back.carry(Packet(flow.index, src, dst, seg, _IP_TCP_HEADERS + len(seg.payload)))

    # ------------------------------------------------------------------ timers

    def _schedule(self, conn: Connection) -> None:
        deadline = None if conn.finished else conn.next_deadline()
        if deadline is None:
            self._deadline.pop(conn, None)
        elif self._deadline.get(conn) != deadline:
            self._deadline[conn] = deadline
            self.events.at(deadline, self._timer, conn, deadline)

    def _timer(self, conn: Connection, deadline: float) -> None:
        if self._deadline.get(conn) != deadline:
            return  # moved or stopped since
        del self._deadline[conn]
        conn.handle_timer(self.events.now)
        flow = self._peer_flow.get(conn)
        if flow is None:
            log = self._sender_flow(conn).log
            if log is not None:
                log.after(conn, "timer")
        self._touch(conn)

    # ------------------------------------------------------------------ results

    def _report(self, end: float) -> Report:
        rows = []
        for flow in self.flows:
            conn = flow.conn
            counters = conn.counters if conn is not None else None
            rows.append(
                FlowResult(
                    index=flow.index + 1,
                    controller=flow.spec.controller,
                    start=flow.spec.start,
                    size=flow.spec.size,
                    delivered=flow.delivered,
                    progress=flow.progress,
                    completed=flow.last_byte if flow.finished_at is not None else None,
                    end=end,
                    data_segments=flow.data_sent,
                    retransmissions=counters.retrans_segs if counters else 0,
                    timeouts=counters.events_seen().timeouts if counters else 0,
                    rtt=sorted(flow.rtt.samples),
                    qdelay=sorted(flow.qdelay),
                    drops=dict(sorted(flow.drops.items())),
                    failure=flow.failure,
                )
            )
        link = LinkResult(
            rate=self.link.rate,
            delay=self.link.delay,
            queue_limit=self.queue_limit[0],
            queue_in_bytes=self.queue_limit[1],
            aqm=self.link.aqm,
            busy_time=self.bottleneck.busy_time(end),
            end=end,
        )
        return Report(self.seed, link, rows)
