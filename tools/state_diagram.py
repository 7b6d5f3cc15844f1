#!/usr/bin/env python3
"""Print the TCP state diagram, generated from `stack.tcp.state.TRANSITIONS`, as Graphviz dot or Mermaid;
every edge is labelled with the events that take it.

tools/state_diagram.py            # Graphviz dot on stdout
tools/state_diagram.py --mermaid  # a Mermaid stateDiagram for the README
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stack.tcp.state import TRANSITIONS, State  # noqa: E402


def _edges() -> list[tuple[State, State, str]]:
    """One edge per (old, new) pair, labelled with every event that takes it, in the table's order."""
    labels: dict[tuple[State, State], list[str]] = {}
    for (old, event), new in TRANSITIONS.items():
        labels.setdefault((old, new), []).append(event.value)
    order = list(State)
    edges = sorted(labels, key=lambda e: (order.index(e[0]), order.index(e[1])))
    return [(old, new, ", ".join(labels[old, new])) for old, new in edges]


def to_dot() -> str:
    lines = ["digraph tcp {", "  rankdir=TB;", "  node [shape=box, style=rounded];"]
    lines += [f'  {src.name} -> {dst.name} [label="{label}"];' for src, dst, label in _edges()]
    lines.append("}")
    return "\n".join(lines)


def to_mermaid() -> str:
    lines = ["stateDiagram-v2", "  [*] --> CLOSED"]
    lines += [f"  {src.name} --> {dst.name} : {label}" for src, dst, label in _edges()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mermaid", action="store_true", help="emit Mermaid instead of Graphviz dot")
    args = parser.parse_args()
    print(to_mermaid() if args.mermaid else to_dot())


if __name__ == "__main__":
    main()
