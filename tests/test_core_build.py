"""Which build of the core runs: the compiled one when it is current, the source otherwise (TCPSTACK_CORE)."""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stack import core_build

STACK = Path(core_build.__file__).parent
WHICH = "import stack.tcp.connection as c, stack.wire.seq as s; print(c.__file__); print(s.__file__)"


def _run(code: str, core: str | None, root: Path = STACK.parent) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TCPSTACK_CORE"}
    if core is not None:
        env["TCPSTACK_CORE"] = core
    env["PYTHONPATH"] = str(root)
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=60)


@pytest.fixture
def stack_copy(tmp_path: Path) -> Path:
    """A copy of the package with its compiled build, to edit."""
    if core_build.why_not_current() is not None:
        pytest.fail(f"tools/setup builds the core, and: {core_build.why_not_current()}")
    shutil.copytree(STACK, tmp_path / "stack", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_core_build_current_build_runs_compiled(stack_copy: Path):
    got = _run(WHICH, None, stack_copy)
    assert got.returncode == 0, got.stderr
    assert [Path(line).suffix for line in got.stdout.split()] == [".so", ".so"]
    assert got.stderr == ""


def test_core_build_current_build_runs_the_per_packet_glue_compiled(stack_copy: Path):
    """The demux, the stack's loop glue, its batched I/O and its timer rounding are compiled with the core
    (core_build.GLUE)."""
    modules = ["stack.demux", "stack.aio.stack", "stack.aio.batchio", "stack.aio.clock"]
    got = _run(f"import importlib; print(*(importlib.import_module(m).__file__ for m in {modules}))", None, stack_copy)
    assert got.returncode == 0, got.stderr
    assert [Path(line).suffix for line in got.stdout.split()] == [".so"] * len(modules)


def test_core_build_a_module_added_since_the_build_runs_interpreted_with_a_note(stack_copy: Path):
    (stack_copy / "stack" / "tcp" / "experiment.py").write_text('"""A module of the core written since the build."""\n')
    got = _run(WHICH, None, stack_copy)
    assert got.returncode == 0, got.stderr
    assert [Path(line).name for line in got.stdout.split()] == ["connection.py", "seq.py"]
    assert got.stderr == (
        "tcpstack: the TCP core runs interpreted: stack/tcp/experiment.py is not in the compiled build "
        "(tools/build-core compiles it again)\n"
    )


def test_core_build_python_runs_the_source(stack_copy: Path):
    got = _run(WHICH, "python", stack_copy)
    assert got.returncode == 0, got.stderr
    assert [Path(line).name for line in got.stdout.split()] == ["connection.py", "seq.py"]


def test_core_build_edited_source_runs_interpreted_with_a_note(stack_copy: Path):
    """An edit to a compiled module takes effect at once: the stale build is not used."""
    source = stack_copy / "stack" / "tcp" / "rto.py"
    source.write_text(source.read_text() + "\n# an experiment\n")
    got = _run(WHICH, None, stack_copy)
    assert got.returncode == 0, got.stderr
    assert [Path(line).name for line in got.stdout.split()] == ["connection.py", "seq.py"]
    assert got.stderr == (
        "tcpstack: the TCP core runs interpreted: stack/tcp/rto.py changed since the core was compiled "
        "(tools/build-core compiles it again)\n"
    )


def test_core_build_compiled_demanded_but_stale_is_an_import_error(stack_copy: Path):
    (stack_copy / "stack" / "wire" / "seq.py").unlink()
    got = _run(WHICH, "compiled", stack_copy)
    assert got.returncode == 1
    assert "ImportError: TCPSTACK_CORE=compiled: stack/wire/seq.py is gone since the core was compiled" in got.stderr


def test_core_build_compiled_demanded_without_a_build_is_an_import_error(stack_copy: Path):
    shutil.rmtree(stack_copy / "stack" / "_compiled")
    got = _run(WHICH, "compiled", stack_copy)
    assert "ImportError: TCPSTACK_CORE=compiled: no compiled build (tools/build-core makes one)" in got.stderr
    assert _run(WHICH, None, stack_copy).stderr == ""  # no build, no note: the source runs


def test_core_build_unknown_mode_is_an_import_error():
    got = _run(WHICH, "fast")
    assert "ImportError: TCPSTACK_CORE='fast': expected one of auto, python, compiled" in got.stderr


def test_core_build_compiled_modules_bind_no_module_name_unannotated():
    """Compiled, a module-level name marked Final is a constant: an int or float literal is inlined where it
    is used, any other value kept in a C static. An unmarked one is looked up in the module's dict and
    unboxed at every use, many times per segment. So every module-level assignment in a compiled module
    says what it is: Final, TypeAlias, or a declared type (a mutable global that tests replace)."""
    bare = [
        f"{path.relative_to(STACK.parent)}:{node.lineno}"
        for path in core_build.compiled_sources()
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.Assign)
    ]
    assert bare == []


def test_core_build_compiled_modules_call_min_and_max_with_two_arguments_at_most():
    """Compiled, min() and max() of two numbers are native comparisons; of three or more they call the
    builtin with every operand boxed. So the core nests them: min(min(a, b), c)."""
    wide = [
        f"{path.relative_to(STACK.parent)}:{node.lineno}"
        for path in core_build.compiled_sources()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max")
        if len(node.args) > 2
    ]
    assert wide == []


@pytest.mark.parametrize("module", ["wire/segment.py", "wire/codec.py", "tcp/state.py", "tcp/counters.py"])
def test_core_build_per_segment_value_modules_are_compiled(module: str):
    """The values every segment makes or touches are compiled, each built with one native call and its fields
    read without a descriptor lookup: the segment values and the codec that makes them (a frozen dataclass
    filled slot by slot took four times as long; the codec's own work per segment, reading the C parser's
    fields and describing a segment to the C builder, runs as C), the state table (a Transition at every
    change of state, the state groups tested on every segment) and a connection's counters (bumped on every
    segment, a set made for every connection)."""
    assert module not in core_build.STAY_INTERPRETED
    assert STACK / module in core_build.compiled_sources()
    if core_build.BUILD == "compiled":
        loaded = importlib.import_module("stack." + module.removesuffix(".py").replace("/", "."))
        assert Path(loaded.__file__).suffix == ".so"
