"""The C fast path under AddressSanitizer and UndefinedBehaviorSanitizer with a few hundred thousand inputs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_parse_and_build_clean_under_asan_and_ubsan(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    exe = tmp_path / "fuzz_parse"
    build = subprocess.run(
        [
            "gcc",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
            "-g",
            "-O1",
            "-I",
            str(ROOT / "native"),
            str(ROOT / "native" / "fast.c"),
            str(Path(__file__).with_name("fuzz_parse.c")),
            "-o",
            str(exe),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe), "400000"], capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "400000 rounds" in run.stdout
