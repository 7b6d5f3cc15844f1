#!/usr/bin/env python3
"""Print the TCP state diagram, generated from `stack.tcp.state.TRANSITIONS`, as Graphviz dot or Mermaid.

tools/state_diagram.py            # Graphviz dot on stdout
tools/state_diagram.py --mermaid  # a Mermaid stateDiagram for the README
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stack.tcp.state import TRANSITIONS, State  # noqa: E402


def _edges() -> list[tuple[State, State]]:
    order = list(State)
    return sorted(TRANSITIONS, key=lambda e: (order.index(e[0]), order.index(e[1])))


def to_dot() -> str:
    lines = ["digraph tcp {", "  rankdir=TB;", "  node [shape=box, style=rounded];"]
    lines += [f"  {src.name} -> {dst.name};" for src, dst in _edges()]
    lines.append("}")
    return "\n".join(lines)


def to_mermaid() -> str:
    lines = ["stateDiagram-v2", "  [*] --> CLOSED"]
    lines += [f"  {src.name} --> {dst.name}" for src, dst in _edges()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mermaid", action="store_true", help="emit Mermaid instead of Graphviz dot")
    args = parser.parse_args()
    print(to_mermaid() if args.mermaid else to_dot())


if __name__ == "__main__":
    main()
