"""The type hints of the TCP core and the wire format hold: mypy, as pyproject.toml configures it, finds
nothing in stack/tcp and stack/wire (a payload that is a view typed as bytes, a value that may be None
used as if it never were)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_core_and_wire_type_hints_hold_under_mypy():
    """Run with the repository's configuration (its `files`, Python version and import settings)."""
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", os.devnull], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success: no issues found" in out.stdout
