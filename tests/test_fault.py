"""The fault layer: parsing and what it does to packets."""

from __future__ import annotations

import asyncio
import random

import pytest
import uvloop

from stack.aio.fault import FaultSpec, Impairment


def test_fault_parse_full_spec():
    spec = FaultSpec.parse("loss=5%,dup=1%,reorder=10%,corrupt=1%,delay=20ms,seed=3")
    assert spec == FaultSpec(loss=0.05, dup=0.01, reorder=0.10, corrupt=0.01, delay=0.02, seed=3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("loss", "key=value"),
        ("loss=abc", "percentage"),
        ("loss=150%", "between"),
        ("delay=-5ms", "between"),
        ("delay=xs", "duration"),
        ("jitter=5ms", "unknown fault"),
        ("loss=1%,loss=2%", "twice"),
        ("seed=1.5", "integer"),
    ],
)
def test_fault_parse_rejects_bad_input_clearly(text, message):
    with pytest.raises(ValueError, match=message):
        FaultSpec.parse(text)


def _apply(spec: FaultSpec, packets: list[bytes]):
    async def main():
        released: list[bytes] = []
        imp = Impairment(spec, random.Random(1), asyncio.get_running_loop(), released.extend)
        now = imp.apply(packets)
        return imp, now, released

    return uvloop.run(main())


def test_fault_loss_drops_about_the_given_share():
    imp, out, _ = _apply(FaultSpec(loss=0.2), [b"p"] * 5000)
    assert 800 < imp.counts["dropped"] < 1200 and len(out) == 5000 - imp.counts["dropped"]


def test_fault_dup_duplicates():
    imp, out, _ = _apply(FaultSpec(dup=1.0), [b"a", b"b"])
    assert out == [b"a", b"a", b"b", b"b"]


def test_fault_corrupt_changes_exactly_one_bit():
    imp, out, _ = _apply(FaultSpec(corrupt=1.0), [bytes(100)])
    (changed,) = out
    assert sum(bin(b).count("1") for b in changed) == 1


def test_fault_delay_releases_later_not_now():
    async def main():
        released: list[bytes] = []
        done = asyncio.Event()

        def release(packets):
            released.extend(packets)
            done.set()

        imp = Impairment(FaultSpec(delay=0.01), random.Random(1), asyncio.get_running_loop(), release)
        assert imp.apply([b"late"]) == []
        await asyncio.wait_for(done.wait(), 5)
        return released

    assert uvloop.run(main()) == [b"late"]


def test_fault_device_close_drops_held_packets_instead_of_writing_to_a_closed_device():
    """A delayed write must never reach a device (or its pcap file) that was closed meanwhile."""
    from stack.aio.fault import FaultyDevice

    class Device:
        name, mtu = "t0", 1500
        closed = False
        written: list[bytes] = []

        def write_batch(self, packets):
            assert not self.closed, "write after close"
            self.written.extend(packets)

        def close(self):
            self.closed = True

    async def main():
        loop = asyncio.get_running_loop()
        inner = Device()
        dev = FaultyDevice(inner, FaultSpec(delay=0.01), loop)
        dev.write_batch([b"held"])
        dev.close()
        await asyncio.sleep(0.05)  # past the delay: nothing may fire now
        return inner.written

    assert uvloop.run(main()) == []
