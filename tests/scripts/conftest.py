"""Every tests/scripts/**/*.pkt file is a test: it runs against the core in virtual time."""

from __future__ import annotations

import pytest

from stack.script.runner import ScriptFailure, ScriptSkip, run_script


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
            run_script(str(self.path))
        except ScriptSkip as exc:
            pytest.skip(str(exc))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ScriptFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"script {self.path.name}"
