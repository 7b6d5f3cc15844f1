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


def test_batches_and_virtio_headers_clean_under_asan_and_ubsan(tmp_path):
    """native/batch.c: garbage records and virtio_net_hdrs, and builds into buffers of every size."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    exe = tmp_path / "fuzz_batch"
    flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g", "-O1"]
    sources = [ROOT / "native" / "fast.c", ROOT / "native" / "batch.c", Path(__file__).with_name("fuzz_batch.c")]
    build = subprocess.run(
        ["gcc", *flags, "-I", str(ROOT / "native"), *map(str, sources), "-o", str(exe)], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe), "20000"], capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "20000 rounds" in run.stdout
