"""Every tests/scripts/**/*.pkt file is a test: it runs against the core in virtual time, once over IPv4
and once over IPv6 (packetdrill's --ip_version=ipv6) unless the script has something only IPv4 has."""

from __future__ import annotations

import re

import pytest

from stack.script.errors import ScriptFailure, ScriptSkip
from stack.script.parser import ScriptSyntaxError
from stack.script.runner import run_script
from stack.tcp.state import TRANSITIONS

COVERED: set[tuple[str, str]] = set()
# constructs that only mean something over IPv4: ICMPv4 lines, IPv4 literals, a fixed --ip_version
_IPV4_ONLY = re.compile(r"\bicmp\b|inet_addr|\b\d+\.\d+\.\d+\.\d+\b|--ip_version|AF_INET6")
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".pkt":
        return PktFile.from_parent(parent, path=file_path)
    return None


class PktFile(pytest.File):
    def collect(self):
        yield PktItem.from_parent(self, name=f"{self.path.stem}[ipv4]", ip_version="ipv4")
        if not _IPV4_ONLY.search(_COMMENT.sub("", self.path.read_text())):
            yield PktItem.from_parent(self, name=f"{self.path.stem}[ipv6]", ip_version="ipv6")


class PktItem(pytest.Item):
    def __init__(self, *, ip_version: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ip_version = ip_version

    def runtest(self) -> None:
        try:
            COVERED.update(run_script(str(self.path), options=[("ip_version", self.ip_version)]))
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
