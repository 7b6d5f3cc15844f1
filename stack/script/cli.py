"""`tcpstack script FILE.pkt...`: run scripts and print one PASS/SKIP/FAIL line each."""

from __future__ import annotations

from stack.script.errors import ScriptFailure, ScriptSkip
from stack.script.parser import ScriptSyntaxError
from stack.script.runner import run_script


def run_scripts(paths: list[str]) -> int:
    """The exit code: 0 when every script passed or was skipped, 1 when one failed or could not be read."""
    failed = 0
    for path in paths:
        try:
            run_script(path)
        except ScriptSkip as exc:
            print(f"SKIP {path}: {exc}")
        except (ScriptFailure, ScriptSyntaxError, OSError) as exc:
            failed += 1
            print(f"FAIL {path}\n{exc}")
        else:
            print(f"PASS {path}")
    return 1 if failed else 0
