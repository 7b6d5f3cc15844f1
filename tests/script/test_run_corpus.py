"""tools/run-corpus: counts a directory of scripts as PASS/SKIP/FAIL, once or once per IP version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "run-corpus"
PASSING = """0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 7>
"""
IPV4_ONLY = "--ip_version=ipv4\n" + PASSING
SKIPPING = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 `echo 1 > /sys/x`\n"
FAILING = PASSING.replace("wscale 7>\n", "wscale 9>\n")


def corpus(tmp_path: Path) -> Path:
    for name, text in [("a.pkt", PASSING), ("b.pkt", SKIPPING), ("c.pkt", FAILING), ("d_ipv4.pkt", IPV4_ONLY)]:
        (tmp_path / name).write_text(text)
    return tmp_path


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, check=True)
    return done.stdout


def test_run_corpus_counts_each_verdict(tmp_path):
    out = run(str(corpus(tmp_path)), "-v")
    assert "4 scripts: PASS 2  SKIP 1  FAIL 1  (50% pass)" in out
    assert "FAIL " + str(tmp_path / "c.pkt") + ": options differ" in out


def test_run_corpus_ksft_runs_each_script_per_ip_version(tmp_path):
    """As ksft_runner.sh: IPv4, IPv6 and IPv4-mapped IPv6 with its addresses; a script that fixes its own
    --ip_version cannot take the other family's addresses and SKIPs there."""
    out = run(str(corpus(tmp_path)), "--ksft", "-v")
    assert "12 runs of 4 scripts: PASS 5  SKIP 4  FAIL 3" in out
    assert f"PASS {tmp_path / 'a.pkt'} [ipv6]" in out
    assert f"SKIP {tmp_path / 'd_ipv4.pkt'} [ipv6]" in out


def test_run_corpus_classic_leaves_out_features_by_name(tmp_path):
    """--classic leaves out fast open's client side, zerocopy, TSO, ... scripts by name, and only those: a
    script about setsockopt is classic although its name holds the letters t-s-o, and fast open's server
    side is classic."""
    for name in ("mss-setsockopt.pkt", "tso-sizing.pkt", "fastopen-client.pkt", "fastopen-server.pkt"):
        (tmp_path / name).write_text(PASSING)
    (tmp_path / "fastopen" / "client").mkdir(parents=True)
    (tmp_path / "fastopen" / "client" / "poll.pkt").write_text(PASSING)
    out = run(str(tmp_path), "--classic", "-v")
    assert "2 scripts: PASS 2" in out and "mss-setsockopt.pkt" in out and "fastopen-server.pkt" in out
