"""Targeted drop rules of `--fault` (drop=KIND,dir=,port=,skip=,count=): parsing and matching."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
import uvloop

from stack.aio.drop_rules import DropRule, DropRules, segment_kinds
from stack.aio.fault import FaultSpec, FaultyDevice
from stack.wire.codec import encode_ipv4, encode_tcp
from stack.wire.segment import Flags, Segment

STACK, KERNEL = 0x0A070002, 0x0A070001


def _pkt(flags: Flags, payload: bytes = b"", sport: int = 40000, dport: int = 80) -> bytes:
    return encode_tcp(KERNEL, STACK, Segment(sport, dport, 1000, 2000, flags, 65535, payload))


SYN, SYNACK, ACK = _pkt(Flags.SYN), _pkt(Flags.SYN | Flags.ACK), _pkt(Flags.ACK)
FIN, RST, DATA = _pkt(Flags.FIN | Flags.ACK), _pkt(Flags.RST), _pkt(Flags.ACK | Flags.PSH, b"hello")


def test_fault_parse_drop_rule_with_all_options():
    spec = FaultSpec.parse("drop=fin,dir=out,port=80,skip=1,count=2,loss=1%")
    assert spec.drops == (DropRule("fin", direction="out", port=80, skip=1, count=2),)
    assert spec.loss == 0.01


def test_fault_parse_options_belong_to_the_rule_before_them():
    spec = FaultSpec.parse("drop=ack,count=1,drop=ack,skip=2,count=1,dir=in")
    assert spec.drops == (DropRule("ack", count=1), DropRule("ack", direction="in", skip=2, count=1))
    assert str(spec.drops[1]) == "drop=ack,dir=in,skip=2,count=1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("drop=push", "expected one of syn, synack, ack, fin, rst, data, any"),
        ("count=1", "write drop=KIND before it"),
        ("drop=fin,dir=up", "expected in"),
        ("drop=fin,count=x", "whole number"),
        ("drop=fin,count=-1", "between 0 and"),
        ("drop=fin,port=0", "between 1 and 65535"),
        ("drop=fin,count=1,count=2", "given twice"),
        ("drop=", "key=value"),
    ],
)
def test_fault_parse_bad_drop_rule_is_a_clear_error(text, message):
    with pytest.raises(ValueError, match=message):
        FaultSpec.parse(text)


def test_segment_kinds_classifies_by_flags_and_payload():
    assert segment_kinds(SYN)[0] == {"any", "syn"}
    assert segment_kinds(SYNACK)[0] == {"any", "synack"}
    assert segment_kinds(ACK)[0] == {"any", "ack"}
    assert segment_kinds(FIN)[0] == {"any", "fin"}  # a FIN carrying an ACK is not a pure ACK
    assert segment_kinds(RST)[0] == {"any", "rst"}
    assert segment_kinds(DATA)[0] == {"any", "data"}
    assert segment_kinds(DATA)[1:] == (40000, 80)


def test_segment_kinds_ignores_what_is_not_tcp():
    assert segment_kinds(encode_ipv4(KERNEL, STACK, 1, b"\x08\x00" + bytes(6))) is None
    assert segment_kinds(b"\x45") is None


def test_drop_rule_count_drops_only_the_first_matches():
    rules = DropRules((DropRule("synack", count=1),))
    assert [rules.drops(p, "in") for p in (SYNACK, ACK, SYNACK, SYNACK)] == [True, False, False, False]


def test_drop_rule_skip_lets_the_first_matches_pass():
    rules = DropRules((DropRule("ack", skip=2, count=1),))
    assert [rules.drops(ACK, "in") for _ in range(4)] == [False, False, True, False]


def test_drop_rule_direction_and_port_must_match():
    rules = DropRules((DropRule("fin", direction="out", port=7),))
    assert not rules.drops(FIN, "out")  # ports 40000 and 80
    assert not rules.drops(_pkt(Flags.FIN, sport=7), "in")
    assert rules.drops(_pkt(Flags.FIN, sport=7), "out")
    assert rules.drops(_pkt(Flags.FIN, dport=7), "out")


def test_drop_rules_count_independently():
    rules = DropRules((DropRule("ack", count=1), DropRule("ack", skip=2, count=1)))
    assert [rules.drops(ACK, "in") for _ in range(5)] == [True, False, True, False, False]


class Pipe:
    name, mtu = "t", 1500

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.incoming: list[bytes] = []

    def read_batch(self) -> list[bytes]:
        out, self.incoming = self.incoming, []
        return out

    def write_batch(self, packets: list[bytes]) -> None:
        self.written.extend(packets)


def test_faulty_device_drops_by_rule_in_the_named_direction_only():
    async def main():
        inner = Pipe()
        dev = FaultyDevice(inner, FaultSpec.parse("drop=synack,dir=in,count=1"), asyncio.get_running_loop())
        inner.incoming = [SYNACK, SYNACK]
        got = dev.read_batch()
        dev.write_batch([SYNACK])
        return got, inner.written, dev.inbound.counts["dropped_by_rule"]

    got, written, dropped = uvloop.run(main())
    assert got == [SYNACK] and written == [SYNACK] and dropped == 1


def test_rules_leave_random_faults_reproducible():
    """A rule that matches nothing must not change what the seeded dice do."""
    plain = FaultSpec.parse("loss=30%,seed=4")
    ruled = FaultSpec.parse("loss=30%,seed=4,drop=rst")

    async def survivors(spec):
        dev = FaultyDevice(Pipe(), spec, asyncio.get_running_loop())
        return [i for i in range(200) if dev.outbound.apply([ACK])]

    assert uvloop.run(survivors(plain)) == uvloop.run(survivors(ruled))


def test_cli_bad_drop_rule_is_one_line_and_exit_2():
    argv = [sys.executable, "-m", "stack.cli", "nc", "--tun", "tun9", "--addr", "10.9.0.2", "--peer", "10.9.0.1/24"]
    result = subprocess.run(
        [*argv, "--fault", "drop=fin,dir=sideways", "10.9.0.1", "7"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "fault dir='sideways': expected in" in result.stderr, result.stderr
