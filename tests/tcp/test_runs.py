"""Runs of segments sent together (TSO) are recorded once, and every answer is the one a record per
segment gives (RFC 6675 §3 scoreboard, RFC 8985 RACK, the delivery-rate draft's samples): a random
sequence of sends, SACKs, cumulative ACKs, losses, retransmissions and timeouts drives the run-level
structure and a reference side by side."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack import core_build
from stack.tcp.delivery_rate import DeliveryRateEstimator
from stack.tcp.rack import Rack
from stack.tcp.scoreboard import Scoreboard
from stack.wire.seq import seq_add
from tests.tcp.segment_model import SegmentModel, detect_loss

BASE = 0xFFFFF000  # near the wrap: sequence numbers wrap inside the runs, offsets never do
OPS = ("send", "send", "send", "sack", "sack", "ack", "detect", "resend_lost", "head", "tail", "probe_from",
       "rto", "rto_spares_recent", "forget", "lost_from", "resegment", "tick")  # fmt: skip
ops = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 1 << 20), st.integers(0, 1 << 20)), max_size=60)


def _pieces(recs) -> list[tuple]:
    """Run records as the segments they hold, with their marks."""
    return [
        (s, e, r.xmit_ts, r.retransmitted, r.sacked, r.lost) for r in recs for s, e in r.pieces()
    ]  # fmt: skip


def _keys(recs) -> list[tuple]:
    return [r.key() for r in recs]


def _rack_state(rack: Rack) -> tuple:
    return (rack.xmit_ts, rack.end, rack.rtt, rack.min_rtt, rack.reordering_seen)


class _Pair:
    """The run-level scoreboard and the reference, each with its own RACK, fed the same events."""

    def __init__(self) -> None:
        self.board, self.model = Scoreboard(BASE), SegmentModel()
        self.rack, self.model_rack = Rack(), Rack()
        self.top = 0
        self.now = 0.0

    def seq(self, offset: int) -> int:
        return seq_add(BASE, offset)

    def deliver(self, got, want) -> None:
        assert _pieces(got) == _keys(want)
        for rec in got:
            self.rack.on_delivered(rec, self.now)
        for rec in want:
            self.model_rack.on_delivered(rec, self.now)

    def check(self) -> None:
        board, model = self.board, self.model
        assert _pieces(board) == _keys(model)
        assert board.segments == len(model.recs)
        pipe = board.outstanding - board.sacked_bytes - board.lost_bytes
        assert (board.sacked_bytes, board.lost_bytes, pipe) == (model.sacked_bytes, model.lost_bytes, model.in_flight())
        assert (board.pipe_packets, board.sacked_packets) == (model.pipe_packets, model.sacked_packets)
        assert board.lost_packets == sum(1 for r in model.recs if r.lost)
        assert board.retrans_packets == sum(1 for r in model.recs if r.retransmitted and not r.sacked and not r.lost)
        assert _rack_state(self.rack) == _rack_state(self.model_rack)
        # RACK's chain: every record neither SACKed nor lost, by send time, those sent together in sequence
        chained = list(board.by_send_time())
        assert sorted(_pieces(chained)) == sorted(p for p in _pieces(board) if not p[4] and not p[5])
        assert [(r.xmit_ts, r.start) for r in chained] == sorted((r.xmit_ts, r.start) for r in chained)

    def resend(self, got, want) -> None:
        """Both send the segment they named again, alone."""
        assert (got is None) == (want is None)
        if got is None:
            return
        assert (got.start, got.end) == (want.start, want.end)
        resent = self.board.sent(self.seq(got.start), got.length, self.now)
        assert sum(r.segments for r in resent) == self.model.sent(want.start, want.length, self.now, want.length)

    def step(self, op: str, a: int, b: int) -> None:
        board, model = self.board, self.model
        una = model.una
        flight = self.top - una
        if op == "send":
            seg = (100, 1000, 1448)[b % 3]
            count = a % 8 + 1
            length = count * seg - (b // 3 % seg if a % 3 == 0 else 0)  # sometimes a short last segment
            board.sent(self.seq(self.top), length, self.now, seg if count > 1 else 0)
            model.sent(self.top, length, self.now, seg)
            self.top += length
        elif op == "sack" and flight:
            left = una + a % flight
            right = left + 1 + b % (self.top - left)
            if a % 2:  # most blocks fall on segment boundaries
                left, right = _snap(model, left), _snap(model, right)
                if left >= right:
                    return
            self.deliver(board.sack(self.seq(left), self.seq(right)), model.sack(left, right))
        elif op == "ack" and flight:
            upto = una + a % (flight + 1)
            if b % 2:
                upto = _snap(model, upto)
            assert board.sacked_below(self.seq(upto)) == model.sacked_below(upto)
            self.deliver(board.ack(self.seq(upto)), model.ack(upto))
        elif op == "detect":
            reo_wnd = (0.0, 0.001, 0.01)[b % 3]
            lost, wait = self.rack.detect_loss(board, self.now, reo_wnd)
            model_lost, model_wait = detect_loss(self.model_rack, model, self.now, reo_wnd)
            assert _pieces(lost) == _keys(model_lost) and wait == model_wait
            if lost:
                assert lost[0].first_length == model_lost[0].length
        elif op == "resend_lost":
            self.resend(board.first_lost(), model.first_lost())
        elif op in ("head", "tail", "probe_from"):
            offset = una + a % (flight + 1)
            if b % 4 < 2:
                offset = _snap(model, offset)
            if op == "head":
                got, want = board.first(), model.first()
            elif op == "tail":
                got, want = board.last(), model.last()
            else:
                got, want = board.first_from(self.seq(offset)), model.first_from(offset)
            if got is not None:
                assert board.mark_lost(got) == model.mark_lost(want)
            if b % 2:
                self.resend(got, want)
        elif op == "rto":
            board.mark_all_lost()
            model.mark_all_lost()
        elif op == "rto_spares_recent":
            sent_by = self.now - (0.0, 0.001, 0.05)[a % 3]
            board.mark_lost_on_timeout(sent_by)
            model.mark_lost_on_timeout(sent_by)
        elif op == "forget":
            board.forget_losses(bool(a % 2))
            model.forget_losses(bool(a % 2))
        elif op == "lost_from":
            offset = una + a % (flight + 1)
            if b % 2:
                offset = _snap(model, offset)
            board.mark_lost_from(self.seq(offset))
            model.mark_lost_from(offset)
        elif op == "resegment":
            size = 50 + a % 1500
            assert board.resegment(size) == model.resegment(size)
        elif op == "tick":
            self.now += (0.0, 0.0001, 0.002, 0.05)[a % 4]


def _snap(model: SegmentModel, offset: int) -> int:
    """The segment boundary nearest below `offset`."""
    edges = [r.start for r in model.recs] + [r.end for r in model.recs]
    below = [e for e in edges if e <= offset]
    return max(below) if below else offset


@pytest.mark.skipif(core_build.BUILD == "compiled", reason="hands RACK model records: compiled code checks types")
@settings(max_examples=500, deadline=None)
@given(ops)
def test_scoreboard_any_sends_sacks_acks_and_losses_match_a_record_per_segment(steps):
    """RFC 6675 §3, RFC 8985 §6.2: a run recorded once gives the same SACKed, lost and retransmit
    decisions, the same pipe and the same RACK state as one record per segment."""
    pair = _Pair()
    for op, a, b in steps:
        pair.step(op, a, b)
        pair.check()
        pair.now += 0.001 if b % 3 else 0.0  # some events at the same time


def _sample(est: DeliveryRateEstimator, now: float) -> tuple:
    s = est.take_sample(now)
    return None if s is None else (s.delivered, s.interval, s.delivery_rate, s.prior_delivered, s.app_limited, s.rtt)


@settings(max_examples=500, deadline=None)
@given(ops)
def test_delivery_rate_run_sent_once_samples_as_its_segments_sent_one_by_one(steps):
    """Draft-cheng-iccrg-delivery-rate-estimation §3.2-3.3: a run's segments share one snapshot, so
    recording the run once gives the samples, the delivered count and the RTTs of sending each alone;
    the bytes delivered are those of every segment wholly below the cumulative ACK or inside a block."""
    runs, pieces = DeliveryRateEstimator(), DeliveryRateEstimator()
    top = una = 0
    sent: list[tuple[int, int]] = []  # every segment's (start, end) offsets, for resends and SACK edges
    delivered: set[tuple[int, int]] = set()
    now = 0.0
    for op, a, b in steps:
        now += (0.0, 0.0005, 0.01)[a % 3]
        flight = top - una
        if op == "send":
            seg = (100, 1000, 1448)[b % 3]
            count = a % 8 + 1
            length = count * seg
            runs.on_sent(seq_add(BASE, top), length, flight, now, seg if count > 1 else 0)
            for off in range(0, length, seg):
                pieces.on_sent(seq_add(BASE, top + off), seg, flight + off, now)
                sent.append((top + off, top + off + seg))
            top += length
        elif op == "resend_lost" and flight:
            start, end = next(((s, e) for s, e in sent if s >= una + a % flight), sent[-1])
            for est in (runs, pieces):
                est.on_sent(seq_add(BASE, start), end - start, flight, now)
        elif op == "sack" and flight:
            left = una + a % flight
            right = left + 1 + b % (top - left)
            if a % 2:
                left = max((s for s, _ in sent if s <= left), default=left)
                right = max((e for _, e in sent if e <= right), default=right)
            for est in (runs, pieces):
                est.on_sack(((seq_add(BASE, left), seq_add(BASE, right)),), now)
            delivered.update((s, e) for s, e in sent if left <= s and e <= right)
        elif op == "ack" and flight:
            una += a % (flight + 1)
            for est in (runs, pieces):
                est.on_cumulative_ack(seq_add(BASE, una), now)
            delivered.update((s, e) for s, e in sent if e <= una)
        elif op == "rto":
            for est in (runs, pieces):
                est.check_app_limited(a % 3000, flight, 10_000, 1000, False)
        assert _sample(runs, now) == _sample(pieces, now)
        assert runs.delivered == sum(e - s for s, e in delivered)
        assert (runs.delivered, runs.delivered_time, runs.min_rtt) == (
            pieces.delivered,
            pieces.delivered_time,
            pieces.min_rtt,
        )
