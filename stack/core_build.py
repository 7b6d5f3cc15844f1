"""Which build of the TCP core runs: the one compiled with mypyc (tools/build-core) or the Python source.

stack/tcp and stack/wire (and stack and stack/aio, for the per-packet glue compiled with the core) call
`extend_path` first: when stack/_compiled holds a build made from exactly the source beside it, by this
Python, its directory comes first on the package's path, so that `import stack.tcp.connection` loads the
compiled module. The environment variable TCPSTACK_CORE, read once when `stack` is first imported, chooses:
"auto" (the default: the build when it is current, else the source, with a one-line note when a build is
there but stale, as after an edit), "python" (the source, always: to profile with cProfile, which does not
see compiled functions) or "compiled" (the build, or an ImportError that says why not).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

PACKAGES = ("tcp", "wire")
# The glue every packet passes through, compiled with the core: it calls the core's methods and reads its
# values natively (docs/performance.md, "The glue compiled with the core"). The rest of stack/ stays Python.
GLUE = ("demux.py", "aio/stack.py", "aio/batchio.py", "aio/clock.py")
_STACK = Path(__file__).resolve().parent
COMPILED = _STACK / "_compiled"
GROUP = "stack._compiled.core"  # the shared library's module name, inside COMPILED
_MANIFEST = COMPILED / "manifest.json"
MODES = ("auto", "python", "compiled")
# Interpreted on purpose (paths relative to stack/):
STAY_INTERPRETED = {
    # users subclass the controllers and load their own; CUBIC's cwnd is a property over Reno's attribute
    # (contained.py, the wrapper around whichever controller a connection has, is compiled)
    *(f"tcp/congestion/{name}.py" for name in ("base", "bbr", "cubic", "cubic_linux", "hystart", "reno")),
    # Flags subclasses int, which a native class cannot
    "wire/flags.py",
}


def compiled_sources() -> list[Path]:
    """The modules tools/build-core compiles: every one of PACKAGES but STAY_INTERPRETED, and the GLUE."""
    found = [_STACK / name for name in GLUE]
    for package in PACKAGES:
        for path in sorted((_STACK / package).rglob("*.py")):
            if path.name != "__init__.py" and path.relative_to(_STACK).as_posix() not in STAY_INTERPRETED:
                found.append(path)
    return found


def _python() -> str:
    return f"{sys.implementation.cache_tag} {sysconfig.get_config_var('SOABI')}"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(sources: list[Path]) -> None:
    """Record what a build was made from: the Python and each compiled source file's digest."""
    digests = {path.relative_to(_STACK).as_posix(): _digest(path) for path in sources}
    _MANIFEST.write_text(json.dumps({"python": _python(), "sources": digests}, indent=1, sort_keys=True) + "\n")


def why_not_current() -> str | None:
    """None when stack/_compiled holds a build of the source beside it for this Python, else the reason."""
    try:
        manifest = json.loads(_MANIFEST.read_text())
    except FileNotFoundError:
        return "no compiled build (tools/build-core makes one)"
    except (OSError, ValueError) as exc:
        return f"unreadable {_MANIFEST}: {exc}"
    if manifest.get("python") != _python():
        return f"the compiled build is for another Python ({manifest.get('python')})"
    sources = manifest.get("sources", {})
    for name, digest in sources.items():
        try:
            if _digest(_STACK / name) != digest:
                return f"stack/{name} changed since the core was compiled"
        except OSError:
            return f"stack/{name} is gone since the core was compiled"
    wanted = {path.relative_to(_STACK).as_posix() for path in compiled_sources()}
    differ = sorted(wanted.symmetric_difference(sources))  # a module added, or one that stays interpreted now
    if differ:
        name = differ[0]
        return (
            f"stack/{name} is not in the compiled build"
            if name in wanted
            else f"stack/{name} is compiled but runs as source now"
        )
    return None


def _decide() -> str:
    mode = os.environ.get("TCPSTACK_CORE", "auto")
    if mode not in MODES:
        raise ImportError(f"TCPSTACK_CORE={mode!r}: expected one of {', '.join(MODES)}")
    if mode == "python":
        return "interpreted"
    why = why_not_current()
    if why is None:
        return "compiled"
    if mode == "compiled":
        raise ImportError(f"TCPSTACK_CORE=compiled: {why}")
    if _MANIFEST.exists():
        print(f"tcpstack: the TCP core runs interpreted: {why} (tools/build-core compiles it again)", file=sys.stderr)
    return "interpreted"


BUILD = _decide()  # "compiled" or "interpreted"


def extend_path(path: list[str], package: str) -> None:
    """Put the compiled modules of stack.`package` ahead of its source, when they are the ones to run."""
    if BUILD == "compiled":
        path.insert(0, str(COMPILED / package))


@contextlib.contextmanager
def interpreted_children() -> Iterator[None]:
    """Processes started inside run the core interpreted: cProfile and sys.settrace see only Python functions."""
    before = os.environ.get("TCPSTACK_CORE")
    os.environ["TCPSTACK_CORE"] = "python"
    try:
        yield
    finally:
        if before is None:
            del os.environ["TCPSTACK_CORE"]
        else:
            os.environ["TCPSTACK_CORE"] = before
