"""tools/impair's decisions, without the kernel: its spec syntax, corruption, and the order of its verdicts.

The kernel side (NFQUEUE, the raw-socket duplicate) is exercised by tests/integration/test_lossy.py.
"""

from __future__ import annotations

import random

import pytest
from scapy.layers.inet import IP, TCP, UDP

from stack.aio.fault import FaultSpec
from tests.tool_module import load_tool

impair = load_tool("impair")


@pytest.mark.parametrize(
    "text",
    ["loss=5%,dup=1%,reorder=10%,corrupt=1%,delay=20ms,seed=3", "loss=0.5", "delay=2s", "delay=150", "corrupt=100%"],
)
def test_spec_means_what_fault_layer_spec_means(text):
    ours = impair.parse_spec(text)
    theirs = FaultSpec.parse(text)
    assert [getattr(ours, k) for k in ("loss", "dup", "reorder", "corrupt", "delay", "seed")] == [
        getattr(theirs, k) for k in ("loss", "dup", "reorder", "corrupt", "delay", "seed")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("loss", "key=value"),
        ("loss=abc", "percentage"),
        ("loss=150%", "between"),
        ("delay=-5ms", "between"),
        ("delay=xs", "duration"),
        ("jitter=5ms", "unknown impairment"),
        ("loss=1%,loss=2%", "twice"),
        ("seed=1.5", "integer"),
    ],
)
def test_spec_bad_input_is_rejected_with_its_reason(text, message):
    with pytest.raises(ValueError, match=message):
        impair.parse_spec(text)


def _tcp(payload: bytes = b"", **tcp) -> bytes:
    return bytes(IP(src="10.7.0.2", dst="10.6.0.1") / TCP(sport=80, dport=40000, flags="PA", **tcp) / payload)


def _checksum_ok(packet: bytes) -> bool:
    parsed = IP(packet)
    stored = parsed[TCP].chksum
    del parsed[TCP].chksum
    return IP(bytes(parsed))[TCP].chksum == stored


@pytest.mark.parametrize("seed", range(20))
def test_corrupt_changes_one_payload_byte_and_breaks_the_checksum(seed):
    """RFC 9293 §3.1: the checksum covers the payload, so the receiver must discard the result."""
    packet = _tcp(bytes(range(200)), options=[("MSS", 1460), ("NOP", None), ("WScale", 7)])
    bad = impair.corrupt_tcp(packet, random.Random(seed))
    changed = [i for i in range(len(packet)) if packet[i] != bad[i]]
    assert len(bad) == len(packet) and len(changed) == 1
    assert changed[0] >= len(packet) - 200  # in the payload, past IP header, TCP header and options
    assert _checksum_ok(packet) and not _checksum_ok(bad)


def test_corrupt_header_only_segment_changes_seq_or_ack():
    packet = _tcp()
    bad = impair.corrupt_tcp(packet, random.Random(1))
    (changed,) = [i for i in range(len(packet)) if packet[i] != bad[i]]
    assert 20 + 4 <= changed < 20 + 12 and not _checksum_ok(bad)


def test_corrupt_leaves_other_protocols_alone():
    packet = bytes(IP(dst="10.6.0.1") / UDP(dport=53) / b"query")
    assert impair.corrupt_tcp(packet, random.Random(1)) == packet


def _direction(text: str, seed: int = 1):
    return impair.Direction("out", impair.parse_spec(text), random.Random(seed))


def test_loss_drops_about_the_given_share():
    d = _direction("loss=20%")
    kept = sum(bool(d.decide(b"p")) for _ in range(5000))
    assert 3800 < kept < 4200 and d.counts["dropped"] == 5000 - kept


def test_same_seed_gives_the_same_decisions():
    text = "loss=10%,dup=10%,reorder=10%,corrupt=10%,delay=1ms"
    a, b = _direction(text, seed=7), _direction(text, seed=7)
    packet = _tcp(b"data")
    assert [a.decide(packet) for _ in range(500)] == [b.decide(packet) for _ in range(500)]


def test_dup_gives_two_copies_of_the_same_bytes():
    assert [c.data for c in _direction("dup=100%").decide(b"pkt")] == [b"pkt", b"pkt"]


def test_reordered_packet_is_held_longer_than_the_delay():
    d = _direction("reorder=50%,delay=10ms")
    holds = [c.hold for _ in range(200) for c in d.decide(b"p")]
    assert min(holds) == 0.01 and all(h == 0.01 or 0.02 <= h < 0.03 for h in holds) and max(holds) > 0.02


class RecordedPacket:
    """Stands in for netfilterqueue.Packet, whose verdicts need a kernel queue: records what it was given."""

    def __init__(self, name: bytes, verdicts: list) -> None:
        self.name, self._verdicts, self.payload = name, verdicts, None

    def get_payload(self) -> bytes:
        return _tcp(self.name)

    def set_payload(self, data: bytes) -> None:
        self.payload = data

    def accept(self) -> None:
        self._verdicts.append(("accept", self.name, self.payload))

    def drop(self) -> None:
        self._verdicts.append(("drop", self.name, None))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _link():
    verdicts: list = []
    clock = Clock()
    link = impair.Link(lambda data: verdicts.append(("copy", IP(data)[TCP].payload.load, None)), clock)
    return link, clock, verdicts


def test_delayed_packets_are_released_in_arrival_order_after_the_delay():
    link, clock, verdicts = _link()
    d = _direction("delay=100ms")
    for i, name in enumerate((b"a", b"b", b"c")):
        clock.now = i * 0.01
        link.on_packet(d, RecordedPacket(name, verdicts))
    clock.now = 0.099
    assert link.release_due() == pytest.approx(0.001) and verdicts == []
    clock.now = 0.115
    assert link.release_due() == pytest.approx(0.005)
    assert verdicts == [("accept", b"a", None), ("accept", b"b", None)]
    clock.now = 1.0
    assert link.release_due() is None and [v[1] for v in verdicts] == [b"a", b"b", b"c"]


def test_reordered_packet_is_overtaken_by_later_ones():
    link, clock, verdicts = _link()
    link.on_packet(_direction("reorder=100%"), RecordedPacket(b"first", verdicts))
    link.on_packet(_direction("loss=0%"), RecordedPacket(b"second", verdicts))
    assert verdicts == [("accept", b"second", None)]
    clock.now = 1.0
    link.release_due()
    assert [v[1] for v in verdicts] == [b"second", b"first"]


def test_lost_packet_gets_a_drop_verdict():
    link, _, verdicts = _link()
    link.on_packet(_direction("loss=100%"), RecordedPacket(b"x", verdicts))
    assert verdicts == [("drop", b"x", None)]


def test_duplicate_is_accepted_and_sent_once_more():
    link, _, verdicts = _link()
    link.on_packet(_direction("dup=100%"), RecordedPacket(b"x", verdicts))
    assert verdicts == [("accept", b"x", None), ("copy", b"x", None)]


def test_corrupted_packet_is_accepted_with_its_new_payload():
    link, _, verdicts = _link()
    link.on_packet(_direction("corrupt=100%"), RecordedPacket(b"payload", verdicts))
    ((verdict, _, payload),) = verdicts
    assert verdict == "accept" and payload != _tcp(b"payload") and len(payload) == len(_tcp(b"payload"))


def test_failed_copy_is_counted_not_raised():
    def refuse(data: bytes) -> None:
        raise OSError("no route")

    link = impair.Link(refuse, Clock())
    link.on_packet(_direction("dup=100%"), RecordedPacket(b"x", []))
    assert link.copy_errors == 1
