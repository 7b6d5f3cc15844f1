"""The core's parts keep their privates: no module in stack/tcp reads or writes another object's
underscore attributes. An underscore means "only this object touches it"; what another part needs has a
public name (a method or attribute) on the part that owns it."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

from stack.tcp.counters import Counters, Events

CORE = Path(__file__).resolve().parents[2] / "stack" / "tcp"


def _built_by_cls(function: ast.AST) -> set[str]:
    """Names a classmethod binds to `cls(...)`: the instance it is building is its own."""
    names = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Name) and func.id == "cls":
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def foreign_private_accesses(source: str) -> list[tuple[int, str]]:
    """(line, expression) for every `x._name` where x is not self, cls or an instance cls just built."""
    tree = ast.parse(source)
    found = []
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    own = {id(node): _built_by_cls(f) for f in functions for node in ast.walk(f)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
            continue
        value = node.value
        if isinstance(value, ast.Name) and (value.id in ("self", "cls") or value.id in own.get(id(node), ())):
            continue
        found.append((node.lineno, ast.unparse(node)))
    return found


def test_no_module_in_the_core_touches_another_objects_privates():
    offences = [
        f"{path.relative_to(CORE.parent.parent)}:{line}: {expr}"
        for path in sorted(CORE.rglob("*.py"))
        for line, expr in foreign_private_accesses(path.read_text())
    ]
    assert offences == []


def test_the_check_sees_a_private_read_through_another_object():
    """The check itself can fail: reads and writes through any other name are caught."""
    source = "def f(conn, cls):\n    conn._x = 1\n    return cls()._y, other.a._z, self._ok\n"
    assert [expr for _, expr in foreign_private_accesses(source)] == ["conn._x", "cls()._y", "other.a._z"]


def test_every_counter_has_one_linux_name():
    """The counters are one table: each field carries the MIB name `tcpstack stats` shows, none twice."""
    names = Counters().by_linux_name()
    kept = [f for f in fields(Counters) if "linux" in f.metadata] + list(fields(Events))
    assert len(names) == len(kept) and all(names)
