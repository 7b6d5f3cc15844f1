"""packetdrill's `%{ ... }%` blocks: Python asserting on the tcp_info of the socket under test.

The block runs with the tcp_info fields (tcpi_snd_cwnd, ...) and Linux's constants (TCP_CA_Recovery,
TCP_INFINITE_SSTHRESH, ...) as names, and the names earlier blocks assigned. Only the few builtins such
checks use are there, and no dunder name can be reached, so a script cannot touch the host. A failed
assert fails the script; a tcp_info field the core does not keep makes it SKIP.
"""

from __future__ import annotations

import re
import textwrap

from stack.script.errors import ScriptSkip
from stack.tcp.connection import Connection
from stack.tcp.tcp_info import CONSTANTS, tcp_info

_FIELD = re.compile(r"\btcpi_\w+|\bsk_meminfo\w*|\bSK_MEMINFO_\w+")


class BlockError(Exception):
    """An assertion in a block failed, or the block is not valid Python."""


def _print(*args: object, **kwargs: object) -> None:
    """Scripts print diagnostics; a run keeps its output to PASS/SKIP/FAIL lines."""


_BUILTINS = {
    "abs": abs,
    "min": min,
    "max": max,
    "len": len,
    "int": int,
    "float": float,
    "str": str,
    "round": round,
    "range": range,
    "print": _print,
    "AssertionError": AssertionError,
}


class Namespace:
    """The names all blocks of one script share."""

    def __init__(self) -> None:
        self.names: dict[str, object] = {"__builtins__": _BUILTINS, **CONSTANTS}

    def run(self, code: str, conn: Connection | None, now: float) -> None:
        if "__" in code:
            raise BlockError("dunder names are not available in a script's Python")
        source = _source(code)
        if conn is None and _FIELD.search(source):
            raise BlockError("no socket to read tcp_info from (packetdrill: no socket to use for code)")
        info = tcp_info(conn, now) if conn is not None else {}
        missing = sorted({name for name in _FIELD.findall(source) if name not in info and name not in self.names})
        if missing:
            raise ScriptSkip(f"tcp_info field(s) not kept by tcpstack: {', '.join(missing)}")
        self.names.update(info)
        try:
            exec(compile(source, "<script python>", "exec"), self.names)  # noqa: S102 - restricted names
        except AssertionError as exc:
            raise BlockError(f"assertion failed: {exc}" if str(exc) else "assertion failed") from None
        except SyntaxError as exc:
            raise BlockError(f"not valid Python: {exc.msg}") from None
        except NameError as exc:
            raise BlockError(f"unknown name: {exc.name}") from None


def _source(code: str) -> str:
    text = textwrap.dedent(code).strip()
    while text.endswith("\\"):  # a continuation before `}%` joins nothing (the selftests end lines so)
        text = text[:-1].rstrip()
    try:
        compile(text, "<script python>", "exec")
    except SyntaxError:
        text = "\n".join(line.strip() for line in text.splitlines())  # indented as the script's layout
    return text
