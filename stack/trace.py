"""The `--trace FILE` event log: what every connection did, one JSON object per line.

The schema is documented in docs/trace.md; `SCHEMA` changes when a field changes meaning. The Stack
(stack/aio/stack.py) feeds an `EventLog` with every segment in and out, every state transition, and
calls `after()` once it has handed a connection an input, so that congestion-state and recovery
changes are found by comparing snapshots; timers report through `ObservedTimers`. Nothing here runs
unless a log was asked for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TextIO

from stack.recording_file import RecordingFile
from stack.wire import addr
from stack.wire.segment import Flags, Segment, flags_str
from stack.wire.seq import seq_add, seq_gt, seq_lt, seq_sub

if TYPE_CHECKING:
    from stack.tcp.connection import Connection
    from stack.tcp.state import Transition

SCHEMA = 1
EVENTS = ("log", "seg", "cc", "timer", "recovery", "state")
_INFINITE_SSTHRESH = 1 << 30  # Reno's "arbitrarily high" initial ssthresh (RFC 5681 §3.1) and above
# segment events are the bulk of a log: their flags are looked up and their line formatted by hand,
# since IntFlag arithmetic and json.dumps cost more than everything else per segment
_FLAG_TEXT = [flags_str(Flags(i)) for i in range(256)]
_SYN = int(Flags.SYN)
_FIN = int(Flags.FIN)
_REXMIT = {None: "", False: ',"rexmit":false', True: ',"rexmit":true'}


def _fmt(ip: int, port: int) -> str:
    return addr.fmt_endpoint(ip, port)


def _r(x: float) -> float:
    return round(x, 6)


class _ConnTrace:
    """What the log remembers about one connection between events."""

    __slots__ = ("local", "remote", "snd_high", "cc", "recovery", "fired")

    def __init__(self, local: str, remote: str) -> None:
        self.local = local
        self.remote = remote
        self.snd_high: int | None = None  # end of the highest sequence number sent: below it is a retransmission
        self.cc: tuple | None = None  # the last congestion snapshot written
        self.recovery: str | None = None
        self.fired: list[str] = []  # timers that fired since the last snapshot


class EventLog:
    """Writes the event log. `now` is the stack's clock (timer deadlines use it); `t` in the log is
    wall-clock seconds (`now() + offset`), the clock of pcap timestamps, so the two can be lined up."""

    def __init__(
        self, out: TextIO | RecordingFile, now: Callable[[], float] = time.monotonic, offset: float | None = None
    ) -> None:
        self._out = out
        self._now = now
        self._offset = time.time() - now() if offset is None else offset
        self._conns: dict[Connection, _ConnTrace] = {}
        self._write({"ev": "log", "schema": SCHEMA})

    @classmethod
    def open(cls, path: str) -> EventLog:
        return cls(RecordingFile(open(path, "w", buffering=1 << 16), path))  # noqa: SIM115 - closed by close()

    def flush(self) -> None:
        """What is written so far to the file: the stack calls it once per batch, as it flushes the pcap,
        so that `tail -f` or `tcpstack plot` can read the log while the stack runs."""
        self._out.flush()

    def close(self) -> None:
        if not self._out.closed:
            self._out.close()

    # ------------------------------------------------------------------ what the stack calls

    def segment_in(self, src: int, dst: int, seg: Segment, conn: Connection | None = None) -> None:
        """A segment arrived for `conn` (None: no connection yet, or none at all). Logged before it is
        processed, so the transitions and timers it causes follow it in the log."""
        rec = self._record(conn) if conn is not None else None
        shift = conn.tcb.snd_wscale if conn is not None and not int(seg.flags) & _SYN else 0
        local, remote = (rec.local, rec.remote) if rec else (_fmt(dst, seg.dst_port), _fmt(src, seg.src_port))
        self._segment("in", local, remote, seg, seg.window << shift, None)

    def segment_out(self, conn: Connection, seg: Segment) -> None:
        rec = self._record(conn)
        flags = int(seg.flags)
        shift = conn.tcb.rcv_wscale if not flags & _SYN else 0
        rexmit = None
        seg_len = len(seg.payload) + (1 if flags & _SYN else 0) + (1 if flags & _FIN else 0)  # SEG.LEN
        if seg_len:
            end = seq_add(seg.seq, seg_len)
            rexmit = rec.snd_high is not None and seq_lt(seg.seq, rec.snd_high)
            if rec.snd_high is None or seq_gt(end, rec.snd_high):
                rec.snd_high = end
        self._segment("out", rec.local, rec.remote, seg, seg.window << shift, rexmit)

    def segment_out_unattached(self, src: int, dst: int, seg: Segment) -> None:
        """A segment sent on behalf of no connection (the RST answering a stray segment)."""
        self._segment("out", _fmt(src, seg.src_port), _fmt(dst, seg.dst_port), seg, seg.window, None)

    def transition(self, conn: Connection, t: Transition) -> None:
        rec = self._record(conn)
        self._conn_event(rec, "state", **{"from": t.old.linux_name, "to": t.new.linux_name, "reason": t.event.value})

    def after(self, conn: Connection, cause: str) -> None:
        """The stack handed `conn` an input (`segment`, `timer`) or took its output (`output`):
        write its congestion state if it changed, and any recovery entry or exit."""
        rec = self._record(conn)
        if cause == "timer" and rec.fired:
            cause = ", ".join(f"{name} timer" for name in rec.fired)
        rec.fired.clear()
        recovery = self._recovery(conn)
        if recovery != rec.recovery:
            if rec.recovery is not None:
                self._conn_event(rec, "recovery", action="exit", kind=rec.recovery, cause=cause)
            if recovery is not None:
                self._conn_event(rec, "recovery", action="enter", kind=recovery, cause=cause)
            rec.recovery = recovery
        if conn.cc is None:
            return  # released with the sending side (an orphan in TIME_WAIT): its last state was written
        snapshot = _cc_snapshot(conn, recovery)
        if snapshot != rec.cc:
            rec.cc = snapshot
            cwnd, ssthresh, srtt, rttvar, rto, flight, _, controller = snapshot
            self._conn_event(
                rec,
                "cc",
                controller=controller,
                cwnd=cwnd,
                ssthresh=ssthresh,
                srtt=srtt,
                rttvar=rttvar,
                rto=rto,
                flight=flight,
                recovery=recovery,
            )

    def forget(self, conn: Connection) -> None:
        """The connection was deleted: drop what the log kept about it."""
        self._conns.pop(conn, None)

    def __contains__(self, conn: Connection) -> bool:
        """The log keeps a record of this connection."""
        return conn in self._conns

    # ------------------------------------------------------------------ internals

    def _record(self, conn: Connection) -> _ConnTrace:
        rec = self._conns.get(conn)
        if rec is None:
            rec = _ConnTrace(_fmt(*conn.local), _fmt(*conn.remote))
            self._conns[conn] = rec
            conn.watch_timers(lambda a, n, d: self._timer(rec, a, n, d))
        return rec

    def _timer(self, rec: _ConnTrace, action: str, name: str, deadline: float | None) -> None:
        if action == "fired":
            rec.fired.append(name)
        if deadline is None:
            self._conn_event(rec, "timer", action=action, name=name)
        else:
            self._conn_event(rec, "timer", action=action, name=name, **{"in": _r(deadline - self._now())})

    def _recovery(self, conn: Connection) -> str | None:
        """`fast` during fast recovery (RFC 6582 `recover` set), `rto` during RTO recovery (until what was
        outstanding when the timer fired is acknowledged), else None: the connection's own state."""
        recovery = conn.recovery
        if recovery is None:  # an orphan in TIME_WAIT let go of its sending side: nothing to recover
            return None
        if recovery.in_fast_recovery:
            return "fast"
        return "rto" if recovery.loss_high is not None else None

    def _segment(self, direction: str, local: str, remote: str, seg: Segment, win: int, rexmit: bool | None) -> None:
        # the same JSON as _write would give; every string here is digits, dots, colons or flag letters
        sack = ",".join(f"[{left},{right}]" for left, right in seg.options.sack_blocks)
        self._out.write(
            f'{{"t":{_r(self._now() + self._offset)},"ev":"seg","dir":"{direction}","local":"{local}",'
            f'"remote":"{remote}","seq":{seg.seq},"ack":{seg.ack},"len":{len(seg.payload)},'
            f'"flags":"{_FLAG_TEXT[int(seg.flags)]}","win":{win},"sack":[{sack}]{_REXMIT[rexmit]}}}\n'
        )

    def _conn_event(self, rec: _ConnTrace, ev: str, **fields) -> None:
        self._write({"ev": ev, "local": rec.local, "remote": rec.remote, **fields})

    def _write(self, event: dict) -> None:
        line = json.dumps({"t": _r(self._now() + self._offset), **event}, separators=(",", ":"))
        self._out.write(line + "\n")


def _cc_snapshot(conn: Connection, recovery: str | None) -> tuple:
    cc, rto, tcb = conn.cc, conn.rto, conn.tcb
    srtt = None if rto.srtt is None else _r(rto.srtt)
    flight = seq_sub(tcb.snd_max, tcb.snd_una)  # FlightSize (RFC 5681 §2)
    return cc.cwnd, cc.ssthresh, srtt, _r(rto.rttvar), _r(rto.rto), flight, recovery, cc.name


# ---------------------------------------------------------------------- reading


def read_events(path: str) -> Iterator[dict]:
    """The events of a log, in order. A malformed line is a ValueError naming it, except a cut-off
    last line (the writer was killed mid-line), which is skipped; a file that is not UTF-8 text is one too."""
    with open(path, encoding="utf-8") as f:
        try:
            yield from _events(f, path)
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not an event log (not UTF-8 text)") from None


def _events(f: TextIO, path: str) -> Iterator[dict]:
    for number, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            if not line.endswith("\n"):  # the last line, cut off
                return
            raise ValueError(f"{path}:{number}: not a JSON line") from None
        _check(event, path, number)
        yield event


def _check(event: object, path: str, number: int) -> None:
    if not isinstance(event, dict) or not isinstance(event.get("t"), (int, float)) or "ev" not in event:
        raise ValueError(f"{path}:{number}: not a trace event (needs 't' and 'ev')")
    if event["ev"] == "log" and event.get("schema") != SCHEMA:
        raise ValueError(f"{path}:{number}: trace schema {event.get('schema')!r}, this tcpstack reads {SCHEMA}")


def ssthresh_is_infinite(ssthresh: int) -> bool:
    return ssthresh >= _INFINITE_SSTHRESH
