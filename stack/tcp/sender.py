"""The send side's own state: the send buffer and the FIN after it, and the rules that hold data back.

It owns what the application queued (send_buffer.py), where our FIN goes, Nagle's algorithm with
Minshall's variant (RFC 9293 §3.7.4) and sender SWS avoidance (§3.8.6.2.1), the pacing clock, the
zero-window probe backoff (§3.8.6.1), the tail-loss-probe marks (RFC 8985 §7) and the one segment timed
for an RTT sample (Karn, RFC 6298 §3). The connection's output path asks it, and sends.
"""

from __future__ import annotations

from typing import Final

from stack.tcp import timers
from stack.tcp.pacing import next_departure
from stack.tcp.send_buffer import SendBuffer
from stack.tcp.tcb import Tcb
from stack.tcp.write_marks import WriteMarks
from stack.wire.seq import seq_add, seq_gt

PERSIST_MAX: Final = 60.0  # the longest zero-window probe interval
# a writer waiting for room (Linux SOCK_NOSPACE): none; one; one, and a segment arrived since the last send
# attempt, after which Linux asks at once whether the buffer may grow and the writer go on (tcp_data_snd_check)
NO_WRITER_WAITS: Final = 0
WRITER_WAITS: Final = 1
WRITER_WAITS_SEGMENT_CAME: Final = 2


class Sender:
    __slots__ = (
        "timers",
        "_timer_slack",
        "buffer",
        "fin_queued",
        "fin_seq",
        "snd_sml",
        "_pace_at",
        "persist_backoff",
        "last_progress",
        "space_wanted",
        "rtt_seq",
        "rtt_time",
        "marks",
        "data_sent_at",
        "sndbuf",
    )  # thousands of these: no instance dicts

    def __init__(self, deadlines: timers.Timers, timer_slack: float) -> None:
        self.timers = deadlines  # the connection's (Connection.watch_timers swaps both)
        self._timer_slack = timer_slack
        self.buffer = SendBuffer()
        self.fin_queued = False  # CLOSE was called: a FIN follows the queued data
        self.fin_seq: int | None = None  # its sequence number, once sent
        self.snd_sml = 0  # end of the last small segment sent (Nagle/Minshall)
        self._pace_at = 0.0  # when the next packet may leave at the pacing rate (Linux tcp_wstamp_ns)
        self.persist_backoff = 0
        self.last_progress = 0.0  # when data was last sent or newly acknowledged
        self.space_wanted = NO_WRITER_WAITS  # send() was short: report SendSpace once room is made
        # our SYN while it is timed (data is timed from the scoreboard's send times)
        self.rtt_seq: int | None = None
        self.rtt_time = 0.0
        self.marks = WriteMarks()  # PSH, records and MSG_MORE as the writes asked (write_marks.py)
        self.data_sent_at = 0.0  # when a segment with data last left, new or resent (Linux lsndtime)
        self.sndbuf = 0  # Linux sk_sndbuf, against the buffer's truesize (write_queue.py)

    def start(self, iss: int) -> None:
        """The first data byte follows the SYN at ISS."""
        self.snd_sml = iss
        self.buffer.seq = seq_add(iss, 1)

    # ------------------------------------------------------------------ the FIN

    def queue_fin(self) -> None:
        self.fin_queued = True

    def fin_in_flight(self, snd_nxt: int) -> bool:
        return self.fin_seq is not None and seq_gt(snd_nxt, self.fin_seq)

    def unsent(self, snd_nxt: int) -> int:
        """Queued bytes not yet sent (from SND.NXT on)."""
        return len(self.buffer) - self.buffer.offset(snd_nxt)

    # ------------------------------------------------------------------ holding back small segments

    def holds_back(self, n: int, unsent: int, last: bool, flight: int, tcb: Tcb, nodelay: bool, cork: bool) -> bool:
        """A segment of n bytes, less than a full one, of the `unsent` bytes up to the end of the queue (or of
        its record: then `last` is False) waits: window-limited, for sender SWS avoidance (§3.8.6.2.1);
        data-limited at the end of the queue, under TCP_CORK or MSG_MORE (`cork`), or for Nagle (§3.7.4) in
        Minshall's variant as Linux: one small segment in flight. Retransmissions, the data before a FIN,
        the end of a record followed by more data and a push (TCP_NODELAY just set) are never held."""
        if n < unsent:
            return n < tcb.max_snd_wnd // 2 or flight == 0 and tcb.snd_wnd == 0
        if not last or self.fin_queued or self.marks.push_once or tcb.snd_nxt != tcb.snd_max:
            return False
        return cork or not nodelay and seq_gt(self.snd_sml, tcb.snd_una)

    # ------------------------------------------------------------------ pacing

    def pace(self, length: int, now: float, rate: float) -> None:
        """A packet of `length` bytes left: at the pacing rate the next waits its time, by Linux's
        departure-time rule (pacing.py); a sender woken late by the caller's timers catches up."""
        self._pace_at = next_departure(self._pace_at, now, length, rate, self._timer_slack)

    def nondata_sent(self, now: float) -> None:
        """A segment without data left (a pure ACK, a window update, a probe): Linux's __tcp_transmit_skb
        moves tcp_wstamp_ns up to now for every segment, so the idle time before it no longer counts
        as credit for the next paced packet."""
        if now > self._pace_at:
            self._pace_at = now

    def last_transmit(self) -> float:
        """When a segment last left, or the next paced packet may (Linux tcp_wstamp_ns)."""
        return max(self._pace_at, self.data_sent_at)

    def paced(self, now: float, rate: float | None) -> bool:
        """With a pacing rate (the controller's, BBR's, or the qdisc's), a packet may leave only when the
        previous one's time at that rate has passed; until then the pacing timer holds the rest."""
        if rate is None or now >= self._pace_at:
            return False
        self.timers.start(timers.PACING, self._pace_at)
        return True

    # ------------------------------------------------------------------ zero-window probes

    def persist_interval(self, rto: float) -> float:
        return min(rto * (1 << self.persist_backoff), PERSIST_MAX)
