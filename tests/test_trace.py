"""The `--trace FILE` event log (stack/trace.py, docs/trace.md) and the timers' observer hook.

Most tests drive the sans-I/O core in virtual time and feed the EventLog the way the Stack does
(segment in, process, `after`; segments out, `after`); one runs two real Stacks over a socketpair.
"""

from __future__ import annotations

import asyncio
import io
import json
import os

import pytest
import uvloop

from stack.aio.fault import FaultSpec, FaultyDevice
from stack.aio.stack import Stack
from stack.aio.tun import SocketPairDevice
from stack.cli import build_parser
from stack.services import SERVICES
from stack.tcp import timers
from stack.tcp.config import TcpConfig
from stack.tcp.connection import Connection
from stack.tcp.timers import ObservedTimers, Timers
from stack.trace import EVENTS, SCHEMA, EventLog, read_events
from stack.wire.segment import Flags, Segment, TcpOptions

LOCAL = (0x0A070002, 80)
REMOTE = (0x0A070001, 40000)
IRS = 5000
MSS = 1000
OFFSET = 1000.0  # virtual clock -> the log's wall clock
CONFIG = TcpConfig(mss=MSS, loss_probes=False, window_scaling=True, receive_buffer=1 << 20)


class Traced:
    """A passive connection and its event log, stepped by hand in virtual time."""

    def __init__(self, config: TcpConfig = CONFIG) -> None:
        self.now = 0.0
        self.buf = io.StringIO()
        self.log = EventLog(self.buf, now=lambda: self.now, offset=OFFSET)
        syn = self.segment(Flags.SYN, IRS, 0, options=TcpOptions(mss=MSS, wscale=7, sack_permitted=True))
        self.log.segment_in(REMOTE[0], LOCAL[0], syn, None)
        self.conn = Connection.from_syn(config, LOCAL, REMOTE, syn, self.now, self.log.transition)
        self.output()
        self.iss = self.conn.tcb.iss

    @staticmethod
    def segment(flags: Flags, seq: int, ack: int, sack=(), options: TcpOptions | None = None) -> Segment:
        if options is None:
            options = TcpOptions(sack_blocks=tuple(sack))
        return Segment(REMOTE[1], LOCAL[1], seq, ack, flags, 1000, b"", options)

    def deliver(self, seg: Segment, at: float) -> list[Segment]:
        self.now = at
        self.log.segment_in(REMOTE[0], LOCAL[0], seg, self.conn)
        self.conn.receive_segment(seg, at)
        self.log.after(self.conn, "segment")
        return self.output()

    def ack(self, ack: int, at: float, sack=()) -> list[Segment]:
        return self.deliver(self.segment(Flags.ACK, IRS + 1, self.iss + 1 + ack, sack), at)

    def fire_timers(self, at: float) -> list[Segment]:
        self.now = at
        self.conn.handle_timer(at)
        self.log.after(self.conn, "timer")
        return self.output()

    def output(self) -> list[Segment]:
        out = self.conn.segments_to_send(self.now)
        for seg in out:
            self.log.segment_out(self.conn, seg)
        if out:
            self.log.after(self.conn, "output")
        return out

    def established_with_data(self, segments: int) -> list[Segment]:
        self.ack(0, 0.01)
        self.conn.send(bytes(segments * MSS), 0.01)
        return self.output()

    def events(self, ev: str | None = None) -> list[dict]:
        lines = [json.loads(line) for line in self.buf.getvalue().splitlines()]
        return [e for e in lines if ev is None or e["ev"] == ev]


# ---------------------------------------------------------------------- the timers' observer


def test_timers_observer_sees_set_fired_and_cancel():
    seen = []
    t = ObservedTimers(lambda action, name, deadline: seen.append((action, name, deadline)))
    t.start(timers.RETRANSMIT, 1.0)
    t.start(timers.RETRANSMIT, 1.0)  # re-armed at the same deadline: no news
    t.start_if_idle(timers.RETRANSMIT, 5.0)  # running: untouched
    t.start(timers.DELAYED_ACK, 0.5)
    t.stop(timers.PERSIST)  # not running: nothing to cancel
    assert t.expired(0.7) == [timers.DELAYED_ACK]
    t.stop(timers.RETRANSMIT)
    t.start(timers.KEEPALIVE, 9.0)
    t.stop_all()
    assert seen == [
        ("set", "retransmit", 1.0),
        ("set", "delayed_ack", 0.5),
        ("fired", "delayed_ack", None),
        ("cancel", "retransmit", None),
        ("set", "keepalive", 9.0),
        ("cancel", "keepalive", None),
    ]


def test_timers_watching_carries_running_timers_over():
    plain = Timers()
    plain.start(timers.RETRANSMIT, 2.0)
    seen = []
    watched = ObservedTimers.watching(plain, lambda *e: seen.append(e))
    assert watched.deadline(timers.RETRANSMIT) == 2.0 and seen == []
    assert watched.expired(2.0) == [timers.RETRANSMIT] and seen == [("fired", "retransmit", None)]


def test_timers_unobserved_connection_keeps_plain_timers():
    """Zero cost when nobody traces: a connection's timers are the plain class."""
    syn = Traced.segment(Flags.SYN, IRS, 0)
    conn = Connection.from_syn(CONFIG, LOCAL, REMOTE, syn, 0.0)
    assert type(conn.timers) is Timers


# ---------------------------------------------------------------------- the schema


def test_trace_log_starts_with_schema_and_every_line_is_an_event():
    tr = Traced()
    tr.established_with_data(3)
    events = tr.events()
    assert events[0] == {"t": OFFSET, "ev": "log", "schema": SCHEMA}
    assert all(e["ev"] in EVENTS and isinstance(e["t"], float) for e in events)
    assert all(e["t"] >= OFFSET for e in events)


def test_trace_lines_are_compact_json_whatever_wrote_them():
    """Segment lines are formatted by hand for speed: they must read back to the same text."""
    tr = Traced()
    tr.established_with_data(6)
    first = tr.iss + 1
    tr.ack(0, 0.05, sack=[(first + MSS, first + 2 * MSS), (first + 3 * MSS, first + 4 * MSS)])
    lines = tr.buf.getvalue().splitlines()
    assert any('"sack":[[' in line for line in lines)
    for line in lines:
        assert json.dumps(json.loads(line), separators=(",", ":")) == line


def test_trace_syn_received_records_handshake_segments_state_and_timer():
    """RFC 9293 §3.10.7.2: SYN in, SYN,ACK out, SYN_RECV; the SYN,ACK's retransmission timer is set."""
    tr = Traced()
    seg_in, opened, state, timer, seg_out = (tr.events()[i] for i in (1, 2, 3, 4, 5))
    assert seg_in == {"t": OFFSET, "ev": "seg", "dir": "in", "local": "10.7.0.2:80", "remote": "10.7.0.1:40000",
                      "seq": IRS, "ack": 0, "len": 0, "flags": "S", "win": 1000, "sack": []}  # fmt: skip
    assert (opened["from"], opened["to"], opened["reason"]) == ("CLOSE", "LISTEN", "passive open")
    assert (state["from"], state["to"], state["reason"]) == ("LISTEN", "SYN_RECV", "SYN")
    assert (timer["action"], timer["name"], timer["in"]) == ("set", "retransmit", 1.0)  # RFC 6298 (2.1)
    assert (seg_out["dir"], seg_out["flags"], seg_out["seq"], seg_out["ack"]) == ("out", "S.", tr.iss, IRS + 1)
    assert "rexmit" in seg_out and seg_out["rexmit"] is False


def test_trace_windows_are_logged_scaled():
    """RFC 7323 §2.3: after the handshake windows are shifted by the negotiated scale; a SYN's never is."""
    tr = Traced()
    out = tr.established_with_data(1)
    data = [e for e in tr.events("seg") if e["dir"] == "out" and e["len"]][0]
    assert data["win"] == out[0].window << tr.conn.tcb.rcv_wscale and tr.conn.tcb.rcv_wscale > 0
    ack_in = [e for e in tr.events("seg") if e["dir"] == "in"][1]
    assert ack_in["win"] == 1000 << 7


def test_trace_state_transition_carries_its_cause():
    tr = Traced()
    tr.ack(0, 0.01)
    states = [(e["from"], e["to"], e["reason"]) for e in tr.events("state")]
    assert states[-1][:2] == ("SYN_RECV", "ESTABLISHED")
    assert states[-1][2] == tr.conn.history[-1].event.value


def test_trace_cc_written_when_congestion_state_changes():
    """A cc line follows a change only, and carries the controller's and the RTO estimator's values."""
    tr = Traced()
    tr.established_with_data(4)
    before = tr.events("cc")[-1]
    assert before["flight"] == 4 * MSS and before["recovery"] is None
    tr.ack(MSS, 0.05)
    after = tr.events("cc")[-1]
    assert (after["cwnd"], after["ssthresh"]) == (tr.conn.cc.cwnd, tr.conn.cc.ssthresh)
    assert after["flight"] == 3 * MSS  # the first segment left the flight
    rto = tr.conn.rto  # RFC 6298 (2.3): the 40 ms sample moved SRTT from the handshake's 10 ms
    assert (after["srtt"], after["rttvar"], after["rto"]) == pytest.approx((rto.srtt, rto.rttvar, rto.rto), abs=1e-6)
    assert before["srtt"] == pytest.approx(0.01) and after["srtt"] > before["srtt"]
    count = len(tr.events("cc"))
    tr.log.after(tr.conn, "segment")  # nothing changed
    assert len(tr.events("cc")) == count


def test_trace_fast_recovery_entry_and_exit():
    """RFC 6675 §5 / RFC 6582 §3.2: SACKed duplicates start fast recovery, the full ACK ends it."""
    tr = Traced()
    tr.established_with_data(6)
    first = tr.iss + 1
    for i in range(3):  # the first segment is lost; 2..4 arrive and are SACKed
        tr.ack(0, 0.05 + i * 0.001, sack=[(first + MSS, first + (2 + i) * MSS)])
    enter = tr.events("recovery")
    assert [(e["action"], e["kind"], e["cause"]) for e in enter] == [("enter", "fast", "segment")]
    rexmit = [e for e in tr.events("seg") if e.get("rexmit")]
    assert rexmit and rexmit[0]["seq"] == first
    cc = tr.events("cc")[-1]
    assert cc["recovery"] == "fast" and cc["ssthresh"] < 1 << 30
    tr.ack(6 * MSS, 0.1)
    assert [(e["action"], e["kind"]) for e in tr.events("recovery")] == [("enter", "fast"), ("exit", "fast")]
    assert tr.events("cc")[-1]["recovery"] is None


def test_trace_rto_fires_enters_rto_recovery_until_the_flight_is_acked():
    """RFC 6298 (5.4)-(5.5): the timer fires, the RTO doubles; recovery lasts until SND.MAX at the
    timeout is acknowledged (RFC 6582 §4's `recover` after a timeout)."""
    tr = Traced()
    tr.established_with_data(2)
    rto = tr.conn.rto.rto
    deadline = tr.conn.next_deadline()
    out = tr.fire_timers(deadline)
    assert out and out[0].seq == tr.iss + 1
    timer_events = [(e["action"], e["name"], e.get("in")) for e in tr.events("timer")]
    assert ("fired", "retransmit", None) in timer_events
    assert timer_events[-1] == ("set", "retransmit", pytest.approx(2 * rto))
    recovery = tr.events("recovery")
    assert [(e["action"], e["kind"], e["cause"]) for e in recovery] == [("enter", "rto", "retransmit timer")]
    tr.ack(MSS, deadline + 0.01)  # not yet all of the flight
    assert len(tr.events("recovery")) == 1
    tr.ack(2 * MSS, deadline + 0.02)
    assert [(e["action"], e["kind"]) for e in tr.events("recovery")][-1] == ("exit", "rto")


def test_trace_forget_drops_the_connection_record():
    tr = Traced()
    assert tr.conn in tr.log
    tr.log.forget(tr.conn)
    assert tr.conn not in tr.log


# ---------------------------------------------------------------------- reading a log


def _write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_trace_read_skips_a_cut_off_last_line(tmp_path):
    head = json.dumps({"t": 1.0, "ev": "log", "schema": SCHEMA})
    path = _write(tmp_path / "t.jsonl", head + '\n{"t": 2.0, "ev": "seg", "di')
    assert [e["ev"] for e in read_events(path)] == ["log"]


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"t": 1, "ev": "log", "schema": 1}\nnot json\n{"t": 2, "ev": "cc"}\n', ":2: not a JSON line"),
        ('{"t": 1, "ev": "log", "schema": 1}\n[1, 2]\n', ":2: not a trace event"),
        ('{"t": 1, "ev": "log", "schema": 99}\n', "trace schema 99"),
    ],
)
def test_trace_read_bad_line_is_a_clear_error(tmp_path, text, message):
    path = _write(tmp_path / "t.jsonl", text)
    with pytest.raises(ValueError, match=message):
        list(read_events(path))


def test_trace_read_of_a_file_that_is_not_text_is_a_clear_error(tmp_path):
    """A pcap or any binary file given where a log belongs: an error naming the file, not a codec's."""
    path = tmp_path / "capture.pcap"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ValueError, match=r"capture\.pcap: not an event log \(not UTF-8 text\)"):
        list(read_events(str(path)))


def test_trace_log_on_a_full_disk_stops_recording_once_and_raises_nothing(caplog):
    """An event log that can no longer be written (ENOSPC: /dev/full) ends with one error logged; the
    stack's calls into it (events, flushes, the close) raise nothing, so its connections go on."""
    log = EventLog.open("/dev/full")
    for _ in range(3):
        log.segment_in(REMOTE[0], LOCAL[0], Traced.segment(Flags.SYN, IRS, 0), None)
        log.flush()
    log.close()
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "/dev/full: No space left on device: recording stopped" in errors[0].getMessage()


# ---------------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    "argv, trace",
    [
        ([], None),
        (["--trace"], "-"),
        (["--trace", "-"], "-"),
        (["--trace", "events.jsonl"], "events.jsonl"),
        (["--trace=events.jsonl"], "events.jsonl"),
    ],
)
def test_cli_trace_option_forms(argv, trace):
    base = ["serve", "--tun", "t0", "--addr", "10.7.0.2", "--peer", "10.7.0.1/24"]
    assert build_parser().parse_args([*base, *argv]).trace == trace


def test_cli_nc_trace_before_host_is_refused_in_one_line(capsys):
    """`--trace HOST PORT` would take HOST as the log's file name: say so instead."""
    argv = ["nc", "--tun", "t1", "--addr", "10.8.0.2", "--peer", "10.8.0.1/24", "--trace", "10.8.0.1", "5000"]
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "looks like HOST" in err


# ---------------------------------------------------------------------- the Stack writes it


def test_stack_event_log_records_a_lossy_echo_transfer(tmp_path):
    """Two Stacks over a socketpair with 5 ms of delay, three of the client's data segments lost and the
    server's first FIN lost. The server loses nothing else, so nothing it sends after the FIN can reveal
    that loss: a timer must resend it (with random losses both ways, a resend of earlier data could
    reveal it without one). The server's log has both directions' segments, the handshake, timers,
    congestion state and at least one retransmission; text tracing still works."""
    path = str(tmp_path / "server.jsonl")
    lines: list[str] = []

    async def main() -> None:
        da, db = SocketPairDevice.pair()
        faults = FaultSpec.parse("delay=5ms,drop=data,dir=out,skip=30,count=3,drop=fin,dir=in,count=1")
        da = FaultyDevice(da, faults, asyncio.get_running_loop())
        client = Stack(da, "10.0.0.1")
        server = Stack(db, "10.0.0.2", trace=lines.append, event_log=EventLog.open(path))
        try:
            await server.start_server(SERVICES["echo"], port=7)
            reader, writer = await client.open_connection("10.0.0.2", 7)
            data = os.urandom(300_000)
            writer.write(data)
            writer.write_eof()
            assert await reader.read(-1) == data
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), 10)
        finally:
            await client.close()
            await server.close()  # closes the event log

    uvloop.run(asyncio.wait_for(main(), 120))
    events = list(read_events(path))
    conn = [e for e in events if e.get("local") == "10.0.0.2:7"]
    segs = [e for e in conn if e["ev"] == "seg"]
    assert {e["dir"] for e in segs} == {"in", "out"}
    assert sum(e["len"] for e in segs if e["dir"] == "in") >= 300_000
    assert any(e.get("rexmit") for e in segs)
    assert ("LISTEN", "SYN_RECV") in {(e["from"], e["to"]) for e in conn if e["ev"] == "state"}
    assert {"set", "cancel", "fired"} <= {e["action"] for e in conn if e["ev"] == "timer"}
    assert any(e["ev"] == "cc" and e["srtt"] is not None for e in conn)
    assert any("SYN_RECV -> ESTABLISHED" in line for line in lines)
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)


def test_stack_event_log_is_readable_while_the_stack_runs(tmp_path):
    """As the pcap, the log reaches its file after each batch: an exchange shows in it at once, not when
    a buffer fills or the stack stops."""
    path = str(tmp_path / "server.jsonl")

    async def main() -> list[dict]:
        da, db = SocketPairDevice.pair()
        client, server = Stack(da, "10.0.0.1"), Stack(db, "10.0.0.2", event_log=EventLog.open(path))
        try:
            await server.start_server(SERVICES["echo"], port=7)
            reader, writer = await client.open_connection("10.0.0.2", 7)
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
            return list(read_events(path))  # both stacks still running
        finally:
            await client.close()
            await server.close()

    events = uvloop.run(asyncio.wait_for(main(), 60))
    states = {(e["from"], e["to"]) for e in events if e["ev"] == "state" and e["local"] == "10.0.0.2:7"}
    assert ("SYN_RECV", "ESTABLISHED") in states
    assert any(e["ev"] == "seg" and e["dir"] == "out" and e["len"] == 4 for e in events)  # the echo


def test_trace_cc_names_the_controller_that_ran():
    """Every cc line says which controller ran, so runs and flows can be told apart when compared;
    a change of controller (TCP_CONGESTION) shows in the next line."""
    tr = Traced()
    tr.established_with_data(2)
    assert {e["controller"] for e in tr.events("cc")} == {"cubic"}
    tr.conn.set_congestion_control("bbr")
    tr.log.after(tr.conn, "segment")
    assert tr.events("cc")[-1]["controller"] == "bbr"
