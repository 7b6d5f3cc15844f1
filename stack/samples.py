"""Where a running `tcpstack serve` spends its time, sampled by py-spy (for tools/profile-*).

py-spy reads the process's stacks from outside (`--native`: the C frames too, so compiled code, the event
loop and system calls show), without slowing each call as cProfile does; to read the C frames it stops the
process for a moment at each sample, so it samples only as often as leaves the process near its speed
(RATE). `record` samples processes while a workload runs; `summarize_samples` turns py-spy's raw output
into the share of each layer and of each function.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# py-spy's frames: "name (file:line)" for Python and compiled C alike, "name (library.so)" for a library's
# symbol. The layer of a file or library (inline helpers such as object.h's say nothing: the frame around
# them decides; CPython's own functions do not show, py-spy folds them into the frame that called them)
LAYERS = (
    ("compiled code", ("__native_core.c", "CPy.h", "int_ops.c", "dict_ops.c", "list_ops.c", "generic_ops.c",
                       "getargs.c", "getargsfast.c", "pythonsupport.h", "pythonsupport.c", "pythoncapi_compat.h",
                       "core__mypyc")),
    ("C fast path", ("fast.c", "batch.c", "stack._fast.c", "_fast.abi3.so")),
    ("cffi", ("_cffi_backend",)),
    ("event loop", ("loop.c", "core.c", "linux.c", "loop-watcher.c", "uv-common.c", "timer.c", "queue.h",
                    "internal.h", "uvloop/", "_asyncio.")),
)  # fmt: skip
SYSTEM_CALLS = {"read", "write", "writev", "readv", "epoll_ctl", "ioctl"}
# a process waiting for its next event: idle, which py-spy does not always tell (a worker of several waits often)
IDLE_CALLS = {"epoll_wait", "epoll_pwait"}
EVENT_LOOP_RUN = ("asyncio/runners.py", "uvloop/__init__.py")  # the files of the frames that run the loop
FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")

Ranking = list[tuple[str, float]]


def frame_layer(name: str, where: str) -> str | None:
    """The layer a sampled frame belongs to, or None for one that does not tell."""
    if where.endswith(".py") or where.startswith(("<string>", "<frozen")):
        return "Python (interpreted)"
    if where == "libc.so.6":
        return "system calls" if name in SYSTEM_CALLS else None
    for layer, marks in LAYERS:
        if any(mark in where for mark in marks):
            return layer
    return None


def frame_function(name: str, where: str) -> str | None:
    """How the report names a sampled frame's function: a Python one by its file, a compiled one by its
    module (mypyc's CPyDef_module___Class___method); None for the rest."""
    if where.endswith(".py"):
        path = Path(where)
        shown = path.relative_to(REPO).as_posix() if path.is_absolute() and path.is_relative_to(REPO) else where
        return f"{name} ({shown})"
    if name.startswith("CPyDef_"):
        return f"{name.removeprefix('CPyDef_').replace('___', '.')} (compiled)"
    return None


def summarize_samples(path: str, top: int) -> tuple[int, dict[str, float], Ranking, Ranking]:
    """py-spy's raw output (one line per distinct stack: frames from the outermost, then the count): the
    number of samples (less those waiting for an event), each layer's share, the `top` functions by
    share (callees included) of those the event loop runs (below asyncio's or uvloop's `run`: what is
    above is the same in every sample of a process), and the `top` functions by their own share: each
    sample counts for the innermost function named (what it calls in the C library, in CPython or in
    an inline helper is its own)."""
    total = 0
    layers: dict[str, int] = {}
    functions: dict[str, int] = {}
    own: dict[str, int] = {}
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [(m.group(1), m.group(2)) for m in map(FRAME.match, stack.split(";")) if m]
        if frames and frames[-1][0] in IDLE_CALLS:
            continue
        total += n
        layer = next((found for f in reversed(frames) if (found := frame_layer(*f))), "other")
        layers[layer] = layers.get(layer, 0) + n
        loop = max((i for i, (_, where) in enumerate(frames) if where.endswith(EVENT_LOOP_RUN)), default=-1)
        named = [name for f in frames[loop + 1 :] if (name := frame_function(*f))]
        for name in set(named):
            functions[name] = functions.get(name, 0) + n
        if named:
            own[named[-1]] = own.get(named[-1], 0) + n
    if not total:
        return 0, {}, [], []
    shares = {layer: n / total for layer, n in sorted(layers.items(), key=lambda kv: (-kv[1], kv[0]))}

    def ranked(counts: dict[str, int]) -> Ranking:
        return sorted(((name, n / total) for name, n in counts.items()), key=lambda kv: (-kv[1], kv[0]))[:top]

    return total, shares, ranked(functions), ranked(own)


def py_spy_path() -> str | None:
    """py-spy: the repository's venv has it (tools/setup), or the PATH."""
    return shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


# Samples per second. To read the C frames (--native) py-spy stops the process for each sample: at 499 a
# second sequential connections ran at a third of their speed and a download at a twentieth, and where
# their time went changed with it; at 200 a second they run within a few percent of their speed. (py-spy's
# own --subprocesses, which looks for new processes as it samples, slowed them more: `record` starts one
# py-spy for each process instead.)
RATE = 200


@contextlib.contextmanager
def record(pids: list[int], out: str, rate: int = RATE) -> Iterator[None]:
    """py-spy samples each of `pids` (`serve` and its workers) while the block runs, into `out` (raw
    format, the processes' samples one after another). Sampling starts once py-spy has attached, a moment
    after the block begins: read shares, not totals."""
    py_spy = py_spy_path()
    if py_spy is None:
        raise RuntimeError("py-spy is not installed (tools/setup installs it)")
    outs = [f"{out}.{pid}" for pid in pids]
    spies = [
        subprocess.Popen(
            [py_spy, "record", "--native", "--rate", str(rate), "--format", "raw", "--output", one, "--pid", str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pid, one in zip(pids, outs, strict=True)
    ]
    errors = []
    try:
        yield
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
        errors = [spy.communicate(timeout=60)[1] for spy in spies]
    finally:
        for spy in spies:
            if spy.poll() is None:
                spy.kill()
                spy.wait()
    sampled = [one for one in outs if os.path.exists(one)]
    if not sampled:
        raise RuntimeError(f"py-spy sampled nothing: {' '.join(errors)}")
    with open(out, "w") as joined:
        for one in sampled:
            joined.write(Path(one).read_text())
            os.remove(one)
