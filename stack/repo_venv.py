"""The repository's tools (tools/bench, tools/profile-*, ...) run on its virtual environment.

They start through `#!/usr/bin/env python3`, which on a fresh Debian machine is the system's Python, without
what tools/setup installed into .venv (uvloop, cffi and the C fast path, ...). Started so, a tool runs
again on .venv's Python. Stdlib only: this runs before anything else is importable.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def run_on_repo_venv(repo: Path) -> None:
    """Replace this process with the same command on `repo`/.venv's Python, unless it already runs on it
    (or there is none: then the current environment is the one the user chose)."""
    venv = repo / ".venv"
    python = venv / "bin" / "python"
    if python.exists() and Path(sys.prefix).resolve() != venv.resolve():
        os.execv(python, [str(python), *sys.argv])
