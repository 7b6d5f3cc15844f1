"""Coverage-guided fuzzing of the C fast path (native/fast.c) with libFuzzer, ASan and UBSan, on a fixed budget.

The seed corpus is generated here from valid packets (the codec's own output in both IP versions and
scapy-built packets with IP options, IPv6 extension headers and odd TCP options); libFuzzer mutates
it under fuzz_fast.c, whose checks are described there. A crash, a sanitizer report or a failed round
trip fails the test with the saved input. TCPSTACK_FUZZ_RUNS raises the budget for a longer local run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stack.wire import addr
from stack.wire.codec import PROTO_ICMP, PROTO_ICMPV6, Rejected, decode, encode_ipv4, encode_ipv6, encode_tcp
from stack.wire.segment import NO_OPTIONS, Flags, Segment, TcpOptions

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RUNS = int(os.environ.get("TCPSTACK_FUZZ_RUNS", "2000000"))
MAX_SECONDS = 120  # a ceiling only; on this 2-core machine 2,000,000 runs take about 6 s
SRC, DST = 0x0A070001, 0x0A070002
SRC6, DST6 = addr.parse("fd3d:fa7b:d17d::2"), addr.parse("fd3d:fa7b:d17d::1")

F = Flags


def _tcp(flags: Flags, payload: bytes = b"", options: TcpOptions = NO_OPTIONS, **fields: int) -> bytes:
    seg = Segment(
        fields.get("sport", 40000),
        fields.get("dport", 80),
        fields.get("seq", 0x12345678),
        fields.get("ack", 0x9ABCDEF0),
        flags,
        fields.get("window", 65535),
        payload,
        options,
        fields.get("urgent", 0),
    )
    if fields.get("v6"):
        return encode_tcp(SRC6, DST6, seg, ttl=fields.get("ttl", 64), flow=fields.get("flow", 0))
    return encode_tcp(SRC, DST, seg, ttl=fields.get("ttl", 64), ident=fields.get("ident", 0))


def _scapy_packets() -> list[bytes]:
    """Layouts our encoder never writes: IP options, EOL, unknown kinds, unaligned option lists."""
    from scapy.layers.inet import IP, TCP, IPOption_NOP, IPOption_RR
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop

    ip = IP(src="10.7.0.1", dst="10.7.0.2")
    return [
        bytes(ip / TCP(sport=1, dport=80, flags="S", options=[("MSS", 536), ("EOL", None)])),
        bytes(
            IP(src="10.7.0.1", dst="10.7.0.2", options=[IPOption_NOP(), IPOption_RR()])
            / TCP(flags="PA", options=[("WScale", 14), ("SAckOK", b""), ("NOP", None)])
            / b"data"
        ),
        bytes(ip / TCP(flags="A", options=[(30, b"\x01\x02\x03"), ("Timestamp", (1, 0))]) / b"x"),
        bytes(ip / TCP(flags="A", options=[("SAck", (1, 2, 3, 4, 5, 6))])),
        bytes(ip / TCP(flags="FA", urgptr=3, options=[("NOP", None)] * 7) / b"fin"),
        bytes(IPv6(src="fd3d::2", dst="fd3d::1", fl=0xABCDE) / TCP(flags="S", options=[("MSS", 1220), ("EOL", None)])),
        bytes(IPv6(src="fd3d::2", dst="fd3d::1") / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / TCP(flags="A")),
        bytes(IPv6(src="fd3d::2", dst="fd3d::1") / IPv6ExtHdrFragment(m=1, id=9) / TCP(flags="PA") / b"piece"),
    ]


def seed_packets() -> list[bytes]:
    full_syn = TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamps=(1, 0))
    sack4 = ((1, 2), (3, 4), (5, 6), (7, 8))
    echo = bytes([8, 0, 0xF7, 0xFE, 0, 1, 0, 0])  # ICMP echo request, id 1 seq 0, checksum filled in
    packets = [
        _tcp(F.SYN, options=full_syn),
        _tcp(F.SYN, options=TcpOptions(mss=1460, sack_permitted=True, wscale=0)),
        _tcp(F.SYN | F.ACK, options=TcpOptions(mss=536, timestamps=(7, 9))),
        _tcp(F.ACK, bytes(range(256)) * 6),
        _tcp(F.ACK | F.PSH, b"GET / HTTP/1.1\r\n\r\n", TcpOptions(timestamps=(5, 6), sack_blocks=sack4[:3])),
        _tcp(F.ACK, options=TcpOptions(sack_blocks=sack4)),
        _tcp(F.FIN | F.ACK, b"bye", urgent=2),
        _tcp(F.RST, seq=0, ack=0, window=0),
        _tcp(F.RST | F.ACK, window=0),
        _tcp(Flags(0xFF), b"\0", ttl=1, ident=0xFFFF),
        encode_ipv4(SRC, DST, PROTO_ICMP, echo),
        encode_ipv4(SRC, DST, 17, b"\x00\x35\x00\x35\x00\x0c\x00\x00abcd"),
        _tcp(F.SYN, options=full_syn, v6=1, flow=0x12345),
        _tcp(F.ACK | F.PSH, b"GET / HTTP/1.1\r\n\r\n", TcpOptions(timestamps=(5, 6), sack_blocks=sack4[:3]), v6=1),
        _tcp(F.FIN | F.ACK, b"bye", urgent=2, v6=1, ttl=255),
        encode_ipv6(SRC6, DST6, PROTO_ICMPV6, bytes([128, 0, 0, 0, 0, 1, 0, 0])),
    ]
    return packets + _scapy_packets()


def _build(tmp_path: Path) -> Path:
    if shutil.which("clang") is None:
        pytest.skip("clang is not installed (tools/setup installs clang and libclang-rt-*-dev)")
    exe = tmp_path / "fuzz_fast"
    build = subprocess.run(
        [
            "clang",
            "-fsanitize=fuzzer,address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
            "-g",
            "-O1",
            "-Wall",
            "-Werror",
            "-I",
            str(ROOT / "native"),
            str(ROOT / "native" / "fast.c"),
            str(HERE / "fuzz_fast.c"),
            "-o",
            str(exe),
        ],
        capture_output=True,
        text=True,
    )
    if build.returncode != 0 and "libclang_rt.fuzzer" in build.stderr:
        pytest.skip("the libFuzzer runtime is missing (Debian: libclang-rt-<version>-dev)")
    assert build.returncode == 0, build.stderr
    return exe


def test_seed_corpus_packets_all_decode():
    """The corpus starts from valid packets, so mutations begin past every header check."""
    for packet in seed_packets():
        assert not isinstance(decode(packet), Rejected), packet.hex()


def test_fast_parse_and_build_survive_libfuzzer_budget_under_asan_and_ubsan(tmp_path):
    """RFC 791/9293 header parsing never reads out of bounds, never hits undefined behaviour, and
    every accepted TCP packet survives build -> parse unchanged (fuzz_fast.c lists the checks)."""
    exe = _build(tmp_path)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, packet in enumerate(seed_packets()):
        (corpus / f"seed-{i:02d}").write_bytes(packet)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    env = dict(os.environ, UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1", ASAN_OPTIONS="detect_leaks=1")
    run = subprocess.run(
        [
            str(exe),
            f"-runs={RUNS}",
            f"-max_total_time={MAX_SECONDS}",
            "-seed=1",
            "-max_len=4096",
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=MAX_SECONDS + 60,
    )
    saved = sorted(artifacts.iterdir())
    detail = "\n".join(run.stderr.splitlines()[-40:])
    assert run.returncode == 0 and not saved, (
        f"libFuzzer failed (exit {run.returncode}); inputs: {[p.name for p in saved]}\n"
        + "".join(f"{p.name}: {p.read_bytes().hex()}\n" for p in saved)
        + detail
    )
    executed = re.search(r"stat::number_of_executed_units:\s*(\d+)", run.stderr)
    assert executed is not None, detail
    # the budget is runs; the time ceiling only guards against a machine far slower than expected
    assert int(executed.group(1)) >= min(RUNS, 200_000), detail
