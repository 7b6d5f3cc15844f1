"""tools/profile-download: where a download's CPU time goes in `tcpstack serve`, profiled from just before
curl starts until the download is complete (the tool makes and removes its own namespace)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent.parent / "tools" / "profile-download"


def test_profile_download_profiles_the_transfer_not_the_start_up(tmp_path):
    """The tables hold the send path (the output path, the codec's writes to the device) and nothing of
    start-up (compiling and importing modules) or of the wait for curl; --markdown writes the same tables."""
    markdown = tmp_path / "profile.md"
    argv = [sys.executable, str(TOOL), "--size", "20000000", "--top", "200", "--markdown", str(markdown)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert re.match(r"20 MB download \(curl GET /bytes/N\) from `tcpstack serve` under cProfile", out.stdout), (
        out.stdout
    )
    functions = re.findall(r"^\| [\d.]+% \| `(.+)` \|$", out.stdout, re.MULTILINE)
    assert any(f.startswith("stack/tcp/output.py:") and f.endswith("(output_data)") for f in functions), out.stdout
    assert any("fast_send_batch" in f for f in functions), out.stdout
    start_up = [f for f in functions if "builtins.compile" in f or "importlib" in f or "marshal.loads" in f]
    assert start_up == [], start_up
    assert markdown.read_text() == out.stdout


def test_profile_download_sample_splits_the_transfer_by_layer_and_function(tmp_path):
    """--sample has py-spy sample the server as it runs (its core compiled where the build is current):
    the layers' shares make up the whole, the stack's flush, which every segment sent goes through, is
    among the functions (callees included), and the functions' own shares, each sample counted once, add
    up to no more than the whole; --markdown writes the same tables."""
    markdown = tmp_path / "profile.md"
    argv = [sys.executable, str(TOOL), "--size", "3000000000", "--sample", "--top", "200"]
    out = subprocess.run([*argv, "--markdown", str(markdown)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    heading = r"3000 MB download \(curl GET /bytes/N\) from `tcpstack serve`, its core (\w+), sampled by py-spy"
    first = re.match(heading, out.stdout)
    assert first, out.stdout
    tables = out.stdout.split("\n\n")[1:]
    assert [table.splitlines()[0] for table in tables] == [
        "| share | layer |",
        "| share | function (callees included) |",
        "| share | function (own time) |",
    ], out.stdout
    row = re.compile(r"\| ([\d.]+)% \| (.+) \|")
    layers, functions, own = ([row.fullmatch(line).groups() for line in table.splitlines()[2:]] for table in tables)
    assert abs(sum(float(share) for share, _ in layers) - 100) <= 0.05 * len(layers), out.stdout
    flush = "`stack.Stack._flush (compiled)`" if first.group(1) == "compiled" else "`Stack._flush (stack/aio/stack.py)`"
    assert flush in [name for _, name in functions], out.stdout
    assert sum(float(share) for share, _ in own) <= 100 + 0.05 * len(own), out.stdout  # (each rounded to 0.1%)
    assert markdown.read_text() == out.stdout
