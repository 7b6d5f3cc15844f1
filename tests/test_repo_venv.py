"""The repository's tools run on its .venv: started by another Python (`#!/usr/bin/env python3` finds the
system's), they run again on .venv's, with the same arguments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# what a tool does first, as a program of its own, with `repo` standing in for the repository
TOOL = """
import sys
from pathlib import Path
sys.path.insert(0, {repo_src!r})
from stack.repo_venv import run_on_repo_venv
run_on_repo_venv(Path({repo!r}))
print("ran on", sys.argv[1:])
"""


def _run_tool(repo: Path, *args: str) -> subprocess.CompletedProcess:
    code = TOOL.format(repo_src=str(REPO), repo=str(repo))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)


def _fake_venv(repo: Path) -> Path:
    """A .venv whose python writes down how it was started."""
    python = repo / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    record = repo / "started"
    python.write_text(f'#!/bin/sh\necho "$0 $*" > {record}\n')
    python.chmod(0o755)
    return record


def test_tool_started_by_another_python_runs_again_on_the_venvs_with_its_arguments(tmp_path):
    record = _fake_venv(tmp_path)
    result = _run_tool(tmp_path, "--rounds", "3")
    assert result.returncode == 0, result.stderr
    assert "ran on" not in result.stdout  # replaced before it went on
    assert record.read_text().split() == [str(tmp_path / ".venv" / "bin" / "python"), "-c", "--rounds", "3"]


def test_tool_on_the_venvs_python_runs_on(tmp_path):
    os.symlink(sys.prefix, tmp_path / ".venv")  # the repository's .venv is the one running the tool
    result = _run_tool(tmp_path, "x")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran on ['x']"


def test_tool_without_a_venv_runs_on_the_python_that_started_it(tmp_path):
    result = _run_tool(tmp_path, "x")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran on ['x']"
