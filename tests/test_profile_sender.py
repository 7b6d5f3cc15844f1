"""tools/profile-sender: the core's CPU per MB in virtual time, a run that repeats exactly."""

import re
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent / "tools" / "profile-sender"


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_profile_sender_lossy_transfer_completes_and_repeats_its_segments_exactly():
    """The same seed gives the same segments on the link (the digest a behaviour-preserving change keeps)."""
    first = _run("--size", "2000000", "--loss", "0.02", "--cut")
    assert re.search(r"2 MB, tso 65536, loss 0.02: [\d.]+ s CPU, [\d.]+ ms per MB", first)
    digest = re.search(r"link digest (\w+)", first).group(1)
    assert re.search(r"link digest (\w+)", _run("--size", "2000000", "--loss", "0.02", "--cut")).group(1) == digest


def test_profile_sender_profile_lists_the_core_functions():
    out = _run("--size", "1000000", "--profile", "--top", "40")
    assert "stack/tcp/connection.py" in out and "under cProfile" in out
