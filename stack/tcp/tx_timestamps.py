"""SO_TIMESTAMPING's transmit timestamps for one connection, as Linux reports them for TCP.

A write marks its last byte (Linux tcp_tx_timestamp) with the timestamps asked for then: SCHED and SND
each time a segment carrying that byte leaves (it enters the packet scheduler, and the device sends it:
both at once here), ACK the first time the cumulative ACK passes it (tcp_ack_tstamp; SACKs do not
count). Each report waits in the socket's error queue, read by recvmsg(MSG_ERRQUEUE). With OPT_ID a
report carries the byte's key: its sequence number less SND.UNA when OPT_ID was set (sk_tskey).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Final

from stack.wire.seq import seq_ge, seq_gt, seq_sub

# what SO_TIMESTAMPING's value asks for (Linux include/uapi/linux/net_tstamp.h)
TX_SOFTWARE: Final = 1 << 1  # an SND timestamp when the device sends
SOFTWARE: Final = 1 << 4  # reports carry the software time (else no SCM_TIMESTAMPING message)
OPT_ID: Final = 1 << 7  # reports carry the byte's key
TX_SCHED: Final = 1 << 8
TX_ACK: Final = 1 << 9
OPT_TSONLY: Final = 1 << 11  # reports carry no copy of the packet
FLAGS: Final = {
    "SOF_TIMESTAMPING_TX_SOFTWARE": TX_SOFTWARE,
    "SOF_TIMESTAMPING_SOFTWARE": SOFTWARE,
    "SOF_TIMESTAMPING_OPT_ID": OPT_ID,
    "SOF_TIMESTAMPING_TX_SCHED": TX_SCHED,
    "SOF_TIMESTAMPING_TX_ACK": TX_ACK,
    "SOF_TIMESTAMPING_OPT_TSONLY": OPT_TSONLY,
}
SUPPORTED: Final = TX_SOFTWARE | SOFTWARE | OPT_ID | TX_SCHED | TX_ACK | OPT_TSONLY
_TX: Final = TX_SCHED | TX_SOFTWARE | TX_ACK
# ee_info: which moment a report stamps (Linux errqueue.h SCM_TSTAMP_*)
SCM_TSTAMP_SND: Final = 0
SCM_TSTAMP_SCHED: Final = 1
SCM_TSTAMP_ACK: Final = 2
KINDS: Final = {
    "SCM_TSTAMP_SND": SCM_TSTAMP_SND,
    "SCM_TSTAMP_SCHED": SCM_TSTAMP_SCHED,
    "SCM_TSTAMP_ACK": SCM_TSTAMP_ACK,
}
# the error queue is bounded as Linux bounds it by the receive buffer (sock_queue_err_skb): beyond this
# many unread reports, new ones are dropped
MAX_QUEUED: Final = 1024
# marks of writes not yet acknowledged, at most: beyond, a write's mark replaces the newest one, as a
# write that adds to Linux's last skb replaces that skb's key (tcp_tx_timestamp); a peer that never
# acknowledges cannot make the list grow with every small write
MAX_MARKS: Final = 4096


@dataclass(frozen=True, slots=True)
class TxTimestamp:
    time: float  # when it was taken
    kind: int  # SCM_TSTAMP_*
    key: int  # ee_data: the byte's key with OPT_ID, else 0
    packet: bool  # it carries a copy of the packet (not with OPT_TSONLY): a read shorter than it is MSG_TRUNC
    software: bool  # SOFTWARE was asked for: an SCM_TIMESTAMPING message with the time comes with it


class TxTimestamps:
    __slots__ = ("flags", "key_base", "_marks", "queue", "dropped")

    def __init__(self) -> None:
        self.flags = 0
        self.key_base = 0  # sk_tskey
        self._marks: list[tuple[int, int]] = []  # (sequence number of a write's last byte, its flags)
        self.queue: list[TxTimestamp] = []  # the error queue, oldest first
        self.dropped = 0

    def set_flags(self, flags: int, snd_una: int) -> None:
        """setsockopt(SO_TIMESTAMPING): OPT_ID newly set counts keys from SND.UNA (Linux
        sock_set_timestamping); marks already made keep the flags of their write."""
        if flags & OPT_ID and not self.flags & OPT_ID:
            self.key_base = snd_una
        self.flags = flags

    def wrote(self, last_byte: int) -> None:
        """A write ended at `last_byte`: mark it with the timestamps asked for now."""
        if self.flags & _TX:
            if len(self._marks) < MAX_MARKS:
                self._marks.append((last_byte, self.flags & _TX))
            else:
                self._marks[-1] = (last_byte, self.flags & _TX)

    def sent(self, seq: int, length: int, now: float) -> None:
        """A segment [seq, seq+length) left: SCHED and SND for each marked byte in it."""
        marks = self._marks
        if not marks:
            return

        # the marks are in sequence order: only those inside the segment are visited
        def offset(mark: tuple[int, int]) -> int:
            return seq_sub(mark[0], seq)

        for byte, flags in marks[bisect_left(marks, 0, key=offset) : bisect_left(marks, length, key=offset)]:
            if flags & TX_SCHED:
                self._report(SCM_TSTAMP_SCHED, byte, now)
            if flags & TX_SOFTWARE:
                self._report(SCM_TSTAMP_SND, byte, now)

    def acked(self, snd_una: int, ack: int, now: float) -> None:
        """The cumulative ACK moved from `snd_una` to `ack`: ACK for each marked byte it passed, once; the
        marks it passed are done."""
        if not self._marks:
            return
        kept = []
        for byte, flags in self._marks:
            if seq_gt(ack, byte):
                if flags & TX_ACK and seq_ge(byte, snd_una):
                    self._report(SCM_TSTAMP_ACK, byte, now)
            else:
                kept.append((byte, flags))
        self._marks = kept

    def _report(self, kind: int, byte: int, now: float) -> None:
        if len(self.queue) >= MAX_QUEUED:
            self.dropped += 1
            return
        key = seq_sub(byte, self.key_base) & 0xFFFFFFFF if self.flags & OPT_ID else 0
        packet = not self.flags & OPT_TSONLY
        self.queue.append(TxTimestamp(now, kind, key, packet, bool(self.flags & SOFTWARE)))
