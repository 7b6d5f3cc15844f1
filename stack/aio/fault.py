"""Fault injection at the device boundary: loss, duplication, reordering, corruption and delay.

This kernel has no sch_netem, so `--fault loss=5%,dup=1%,reorder=10%,corrupt=1%,delay=20ms,seed=N`
impairs packets in both directions here, as a small wrapper around any device. Targeted rules
(`drop=fin,dir=out,count=1`, see drop_rules.py) lose chosen segments instead of random ones.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

from stack.aio.drop_rules import RULE_KEYS, DropRule, DropRules, new_rule
from stack.wire.batch import PacketBatch

_PERCENT_KEYS = ("loss", "dup", "reorder", "corrupt")


@dataclass(frozen=True, slots=True)
class FaultSpec:
    loss: float = 0.0  # probabilities in [0, 1]
    dup: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0
    delay: float = 0.0  # seconds
    seed: int | None = None
    drops: tuple[DropRule, ...] = ()  # targeted rules: `drop=KIND` and the dir/port/skip/count after it

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        values: dict[str, float | int] = {}
        drops: list[DropRule] = []
        rule_keys: set[str] = set()
        for item in filter(None, (p.strip() for p in text.split(","))):
            key, sep, raw = item.partition("=")
            key = key.strip()
            raw = raw.strip()
            if not sep or not raw:
                raise ValueError(f"fault {item!r}: expected key=value")
            if key == "drop":
                drops.append(new_rule(raw))
                rule_keys = set()
                continue
            if key in RULE_KEYS:
                if not drops:
                    raise ValueError(f"fault {key}={raw}: belongs to a rule, write drop=KIND before it")
                if key in rule_keys:
                    raise ValueError(f"fault {key!r} given twice for {drops[-1].kind!r}")
                rule_keys.add(key)
                drops[-1] = drops[-1].with_option(key, raw)
                continue
            if key in values:
                raise ValueError(f"fault {key!r} given twice")
            if key in _PERCENT_KEYS:
                values[key] = _parse_probability(key, raw)
            elif key == "delay":
                values[key] = _parse_duration(raw)
            elif key == "seed":
                try:
                    values[key] = int(raw)
                except ValueError:
                    raise ValueError(f"fault seed {raw!r}: expected an integer") from None
            else:
                raise ValueError(
                    f"unknown fault {key!r}; known: loss, dup, reorder, corrupt, delay, seed, "
                    "drop (with dir, port, skip, count)"
                )
        if not values and not drops:
            raise ValueError("empty fault specification")
        return cls(**values, drops=tuple(drops))  # type: ignore[arg-type]


def _parse_probability(key: str, raw: str) -> float:
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ValueError(f"fault {key}={raw!r}: expected a percentage like 5%") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"fault {key}={raw!r}: must be between 0% and 100%")
    return value


def _parse_duration(raw: str) -> float:
    number, scale = raw, 1e-3  # a bare number is milliseconds, like netem
    for suffix, suffix_scale in (("ms", 1e-3), ("us", 1e-6), ("s", 1.0)):
        if raw.endswith(suffix):
            number, scale = raw[: -len(suffix)], suffix_scale
            break
    try:
        value = float(number) * scale
    except ValueError:
        raise ValueError(f"fault delay={raw!r}: expected a duration like 20ms") from None
    if not 0 <= value <= 60:
        raise ValueError(f"fault delay={raw!r}: must be between 0 and 60 s")
    return value


class Impairment:
    """Applies a FaultSpec to a list of packets; delayed packets are released through `release`."""

    def __init__(
        self,
        spec: FaultSpec,
        rng: random.Random,
        loop: asyncio.AbstractEventLoop,
        release: Callable[[list[bytes]], None],
        *,
        direction: str = "in",
        rules: DropRules | None = None,
    ) -> None:
        self.spec = spec
        self._rng = rng
        self._loop = loop
        self._release = release
        self._direction = direction  # "in": toward the stack; what `dir=` in a drop rule names
        self._rules = rules if rules is not None and rules.rules else None
        self._held: set[asyncio.TimerHandle] = set()  # delayed packets not yet released
        self.counts = {"dropped": 0, "duplicated": 0, "reordered": 0, "corrupted": 0, "dropped_by_rule": 0}

    def apply(self, packets: list[bytes]) -> list[bytes]:
        spec, rng, rules = self.spec, self._rng, self._rules
        now_out: list[bytes] = []
        for pkt in packets:
            if rules is not None and rules.drops(pkt, self._direction):
                self.counts["dropped_by_rule"] += 1
                continue
            if spec.loss and rng.random() < spec.loss:
                self.counts["dropped"] += 1
                continue
            copies = 2 if spec.dup and rng.random() < spec.dup else 1
            if copies == 2:
                self.counts["duplicated"] += 1
            for _ in range(copies):
                p = pkt
                if spec.corrupt and rng.random() < spec.corrupt:
                    self.counts["corrupted"] += 1
                    p = _flip_one_byte(p, rng)
                delay = spec.delay
                if spec.reorder and rng.random() < spec.reorder:
                    self.counts["reordered"] += 1
                    delay += max(spec.delay, 0.002) * (1 + rng.random())  # held back behind later packets
                if delay > 0:
                    self._hold(delay, p)
                else:
                    now_out.append(p)
        return now_out

    def _hold(self, delay: float, packet: bytes) -> None:
        packet = bytes(packet)  # it outlives the batch buffer it came in

        def release() -> None:
            self._held.discard(handle)
            self._release([packet])

        handle = self._loop.call_later(delay, release)
        self._held.add(handle)

    def cancel(self) -> None:
        """Drop what is still held: the device behind it is closing."""
        for handle in self._held:
            handle.cancel()
        self._held.clear()


def _flip_one_byte(pkt: bytes, rng: random.Random) -> bytes:
    buf = bytearray(pkt)
    i = rng.randrange(len(buf)) if buf else 0
    if buf:
        buf[i] ^= 1 << rng.randrange(8)
    return bytes(buf)


class FaultyDevice:
    """Wraps a device; impairs packets both ways. `on_delayed_input` is set by the stack.

    Faults act on wire-sized packets, so the device below must not coalesce them (no TUN offloads)."""

    def __init__(self, inner, spec: FaultSpec, loop: asyncio.AbstractEventLoop) -> None:
        if getattr(inner, "vnet", 0):
            raise ValueError("the fault layer acts on wire-sized packets: open the device with offloads off")
        rng = random.Random(spec.seed)
        self.inner = inner
        self.name = inner.name
        self.mtu = inner.mtu
        self.vnet = 0
        self.gso = False
        self.on_delayed_input: Callable[[list[bytes]], None] | None = None
        rules = DropRules(spec.drops)
        self.inbound = Impairment(
            spec, random.Random(rng.random()), loop, self._deliver_late, direction="in", rules=rules
        )
        self.outbound = Impairment(
            spec, random.Random(rng.random()), loop, inner.write_batch, direction="out", rules=rules
        )

    def _deliver_late(self, packets: list[bytes]) -> None:
        if self.on_delayed_input is not None:
            self.on_delayed_input(packets)

    def fileno(self) -> int:
        return self.inner.fileno()

    def read_batch(self) -> list[bytes]:
        return self.inbound.apply(_packets(self.inner.read_batch()))

    def write_batch(self, batch: PacketBatch | list[bytes]) -> None:
        out = self.outbound.apply(_packets(batch))
        if out:
            self.inner.write_batch(out)

    def close(self) -> None:
        self.inbound.cancel()
        self.outbound.cancel()  # a delayed write must not reach a closed device (or pcap file)
        self.inner.close()


def _packets(batch: PacketBatch | list[bytes]) -> list:
    return batch.packets() if isinstance(batch, PacketBatch) else batch
