"""The sim's link model in isolation: rate, delay, drop-tail, CoDel (RFC 8289), Gilbert-Elliott loss,
jitter, reordering and duplication. Packets here are bare: only sizes and times matter."""

from __future__ import annotations

from random import Random

import pytest

from stack.sim.aqm import CoDel, DropTail
from stack.sim.events import EventQueue
from stack.sim.link import Bottleneck, Packet, Wire
from stack.sim.loss import Bernoulli, GilbertElliott
from stack.wire.segment import Flags, Segment

SEG = Segment(1, 2, 0, 0, Flags.ACK, 0)


def packet(n: int = 0, size: int = 1250) -> Packet:
    """Packet number n (kept in the flow field: these tests have one flow)."""
    return Packet(n, 1, 2, SEG, size)


class Path:
    """A bottleneck and its wire; records (arrival time, packet) and (packet, reason) for drops."""

    def __init__(self, rate: float, queue, delay: float = 0.0, **wire) -> None:
        self.events = EventQueue()
        self.arrived: list[tuple[float, Packet]] = []
        self.drops: list[tuple[Packet, str]] = []
        self.drop_times: list[float] = []
        self.wire = Wire(self.events, Random(1), self._arrive, delay, on_drop=self._drop, **wire)
        self.link = Bottleneck(self.events, rate, queue, self.wire, self._drop)

    def _arrive(self, pkt: Packet) -> None:
        self.arrived.append((self.events.now, pkt))

    def _drop(self, pkt: Packet, reason: str) -> None:
        self.drops.append((pkt, reason))
        self.drop_times.append(self.events.now)

    def send_at(self, t: float, pkt: Packet) -> None:
        self.events.at(t, self.link.send, pkt)


def test_link_rate_serializes_packets_back_to_back():
    """1250 bytes at 1 Mbit/s take 10 ms each: a burst of 5 arrives 10 ms apart, after the delay."""
    path = Path(1e6, DropTail(100), delay=0.05)
    for i in range(5):
        path.send_at(0.0, packet(i))
    path.events.run()
    assert [t for t, _ in path.arrived] == pytest.approx([0.06, 0.07, 0.08, 0.09, 0.10])


def test_link_queue_wait_is_the_sojourn_time():
    """A packet's sojourn is the time it waited behind others, not its own serialization."""
    path = Path(1e6, DropTail(100))
    for i in range(3):
        path.send_at(0.0, packet(i))
    path.events.run()
    assert [p.sojourn for _, p in path.arrived] == pytest.approx([0.0, 0.01, 0.02])


def test_link_droptail_full_queue_drops_the_arriving_packet():
    """A burst of 20 into a 5-packet queue: one on the wire, five wait, fourteen are dropped at the tail."""
    path = Path(1e6, DropTail(5))
    burst = [packet(i) for i in range(20)]
    for p in burst:
        path.send_at(0.0, p)
    path.events.run()
    assert [p for _, p in path.arrived] == burst[:6]
    assert path.drops == [(p, "queue") for p in burst[6:]]


def test_link_droptail_in_bytes_counts_bytes():
    """A 3000-byte queue holds two 1250-byte packets, then refuses until one leaves."""
    queue = DropTail(3000, in_bytes=True)
    assert queue.enqueue(packet(0), 0.0) and queue.enqueue(packet(1), 0.0)
    assert not queue.enqueue(packet(2), 0.0)
    assert queue.enqueue(packet(3, size=500), 0.0)
    queue.pop()
    assert queue.enqueue(packet(4), 0.0)


def _overload(queue, seconds: float = 3.0, factor: float = 2.0) -> Path:
    """Offer `factor` times the link rate (1 Mbit/s, 100 packets/s) for `seconds`."""
    path = Path(1e6, queue)
    n = int(seconds * 100 * factor)
    for i in range(n):
        path.send_at(i / (100 * factor), packet(i))
    path.events.run()
    return path


def test_link_codel_standing_queue_drops_and_keeps_delay_near_target():
    """RFC 8289 §4: with 1.5 times the link rate offered, drop-tail with a large buffer lets the delay
    grow toward a second; CoDel drops at the head once the sojourn stays above 5 ms for 100 ms, and by
    the end packets leave after a tenth of what drop-tail makes them wait."""
    tail = _overload(DropTail(10_000), factor=1.5)
    codel = _overload(CoDel(10_000), factor=1.5)
    assert not tail.drops
    assert codel.drops and {reason for _, reason in codel.drops} == {"codel"}
    late_tail = [p.sojourn for t, p in tail.arrived if t > 2.5]
    late_codel = [p.sojourn for t, p in codel.arrived if t > 2.5]
    assert min(late_tail) > 0.8
    assert max(late_codel) < 0.1 * min(late_tail)
    first_above = next(t - 0.01 for t, p in codel.arrived if p.sojourn > 0.005)  # dequeued (10 ms before arrival)
    assert codel.drop_times[0] >= first_above + 0.1  # a whole interval above target passes without a drop


def test_link_codel_below_link_rate_never_drops():
    """Without a standing queue (offered load under the rate) CoDel does nothing."""
    path = _overload(CoDel(10_000), factor=0.9)
    assert not path.drops


def test_link_codel_drop_rate_grows_while_the_queue_stands():
    """§4.2 control law: successive drops come interval/sqrt(count) apart, closer and closer."""
    path = _overload(CoDel(10_000), seconds=2.0, factor=1.5)
    times = path.drop_times
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(gaps) > 5 and gaps[-1] < gaps[0]


def _run_loss(model, n: int) -> list[bool]:
    return [model.lost() for _ in range(n)]


def _bursts(outcomes: list[bool]) -> list[int]:
    runs, current = [], 0
    for lost in outcomes:
        if lost:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    return runs


def test_link_gilbert_elliott_loss_rate_and_burst_length():
    """Gilbert's model: the mean loss is p/(p+r) and a burst lasts 1/r packets on average."""
    p, r = 0.01, 0.25
    outcomes = _run_loss(GilbertElliott(p, r, Random(7)), 200_000)
    assert sum(outcomes) / len(outcomes) == pytest.approx(p / (p + r), rel=0.1)
    bursts = _bursts(outcomes)
    assert sum(bursts) / len(bursts) == pytest.approx(1 / r, rel=0.1)
    assert GilbertElliott(p, r, Random(1)).mean_loss == pytest.approx(p / (p + r))


def test_link_bernoulli_losses_come_alone():
    """Independent loss at the same rate has bursts of about one packet: what makes GE different."""
    outcomes = _run_loss(Bernoulli(0.0385, Random(7)), 200_000)
    assert sum(outcomes) / len(outcomes) == pytest.approx(0.0385, rel=0.1)
    bursts = _bursts(outcomes)
    assert sum(bursts) / len(bursts) < 1.1


def test_link_wire_loss_drops_after_the_queue():
    path = Path(1e9, DropTail(10_000), loss=Bernoulli(0.5, Random(3)))
    for i in range(1000):
        path.send_at(i * 0.001, packet(i))
    path.events.run()
    assert 400 < len(path.drops) < 600 and {r for _, r in path.drops} == {"loss"}
    assert len(path.arrived) + len(path.drops) == 1000


def _spaced(path: Path, n: int = 500) -> list[int]:
    for i in range(n):
        path.send_at(i * 0.001, packet(i))
    path.events.run()
    return [p.flow for _, p in path.arrived]


def test_link_jitter_varies_delay_without_reordering():
    path = Path(1e9, DropTail(10_000), delay=0.02, jitter=0.01)
    order = _spaced(path)
    assert order == sorted(order)
    gaps = {round(t - n * 0.001, 6) for (t, _), n in zip(path.arrived, order, strict=True)}
    assert len(gaps) > 100  # the delay varies


def test_link_reorder_lets_later_packets_overtake():
    path = Path(1e9, DropTail(10_000), delay=0.02, reorder=0.1, reorder_delay=0.005)
    order = _spaced(path)
    assert sorted(order) == list(range(500)) and order != sorted(order)
    assert 25 < path.wire.reordered < 75


def test_link_duplicate_delivers_a_copy():
    path = Path(1e9, DropTail(10_000), delay=0.02, duplicate=0.1)
    order = _spaced(path)
    assert len(order) == 500 + path.wire.duplicated and 25 < path.wire.duplicated < 75
    assert set(order) == set(range(500))


def test_link_busy_time_counts_a_transmission_under_way_up_to_now():
    """Utilization never exceeds the time elapsed: a packet still being serialized counts up to `until`."""
    path = Path(1e6, DropTail(100))
    for i in range(3):
        path.send_at(0.0, packet(i))
    path.events.run(until=0.025)  # two packets sent, the third halfway
    assert path.link.busy_time(0.025) == pytest.approx(0.025)
    path.events.run()
    assert path.link.busy_time(1.0) == pytest.approx(0.03)


def test_link_gilbert_elliott_partial_loss_in_each_state():
    """Elliott's extension: the bad state loses only some packets and the good one a few, so the mean
    loss is share_bad * BAD + share_good * GOOD."""
    model = GilbertElliott(0.02, 0.2, Random(5), loss_bad=0.5, loss_good=0.01)
    outcomes = _run_loss(model, 200_000)
    share_bad = 0.02 / 0.22
    assert sum(outcomes) / len(outcomes) == pytest.approx(share_bad * 0.5 + (1 - share_bad) * 0.01, rel=0.1)
    assert model.mean_loss == pytest.approx(share_bad * 0.5 + (1 - share_bad) * 0.01)
