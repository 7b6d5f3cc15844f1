"""The README's state diagram is generated from the transition table and must not drift from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_state_diagram_matches_transition_table():
    generated = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "state_diagram.py"), "--mermaid"], capture_output=True, text=True
    ).stdout.strip()
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```mermaid\n", 1)[1].split("```", 1)[0].strip()
    assert block == generated
