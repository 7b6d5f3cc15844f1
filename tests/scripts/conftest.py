"""Every tests/scripts/**/*.pkt file is a test: it runs against the core in virtual time."""

from __future__ import annotations

import pytest

from stack.script.errors import ScriptFailure, ScriptSkip
from stack.script.parser import ScriptSyntaxError
from stack.script.runner import run_script
from stack.tcp.state import TRANSITIONS

COVERED: set[tuple[str, str]] = set()


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".pkt":
        return PktFile.from_parent(parent, path=file_path)
    return None


class PktFile(pytest.File):
    def collect(self):
        yield PktItem.from_parent(self, name=self.path.stem)


class PktItem(pytest.Item):
    def runtest(self) -> None:
        try:
            COVERED.update(run_script(str(self.path)))
        except ScriptSkip as exc:
            pytest.skip(str(exc))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, (ScriptFailure, ScriptSyntaxError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"script {self.path.name}"


def pytest_terminal_summary(terminalreporter):
    """The RFC 9293 coverage report: which (state, event) transitions of the table the scripts exercised."""
    if not COVERED:
        return
    pairs = {(state.name, event.name): new.name for (state, event), new in TRANSITIONS.items()}
    covered = pairs.keys() & COVERED
    terminalreporter.write_sep(
        "-", f"TCP (state, event) transitions covered by .pkt scripts: {len(covered)}/{len(pairs)}"
    )
    for (state, event), new in sorted(pairs.items()):
        if (state, event) not in covered:
            terminalreporter.write_line(f"  uncovered: {state} --{event}--> {new}")
