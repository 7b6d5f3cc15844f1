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
    assert any("_output_data" in f for f in functions), out.stdout
    assert any("fast_send_batch" in f for f in functions), out.stdout
    start_up = [f for f in functions if "builtins.compile" in f or "importlib" in f or "marshal.loads" in f]
    assert start_up == [], start_up
    assert markdown.read_text() == out.stdout
