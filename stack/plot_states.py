"""`tcpstack plot --states`: the TCP state diagram with the transitions event logs actually show,
each edge labelled with its cause and how often it was taken; the rest of RFC 9293's diagram
(stack/tcp/state.py) stays faint underneath. Drawn with matplotlib (no Graphviz), or written as
Graphviz DOT text when the output ends in .dot.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from stack.plot import FORMATS, PlotError, figure_class

# Where each state sits, after RFC 793's figure 6: opening at the top, closing below; CLOSED is drawn
# twice, above (opens start there) and below (closes of synchronized states end there)
_POSITION = {
    "CLOSE": (2.0, 7.0),
    "LISTEN": (0.7, 6.1),
    "SYN_SENT": (3.6, 5.6),
    "SYN_RECV": (0.2, 4.9),
    "ESTABLISHED": (2.0, 4.0),
    "FIN_WAIT1": (0.2, 2.9),
    "CLOSE_WAIT": (3.8, 2.9),
    "FIN_WAIT2": (0.2, 1.5),
    "CLOSING": (2.0, 2.1),
    "LAST_ACK": (3.8, 1.5),
    "TIME_WAIT": (1.3, 0.6),
    "CLOSE ": (2.6, -0.3),  # the lower CLOSED
}
_OPENING = {"CLOSE", "LISTEN", "SYN_SENT", "SYN_RECV"}
_SEEN, _UNSEEN = "#6a3d9a", "#bbbbbb"


@dataclass(frozen=True, slots=True)
class Observed:
    edges: Counter  # (from, to, reason) -> times taken, Linux state names
    connections: int

    @property
    def nodes(self) -> set[str]:
        """The drawn nodes the observed transitions touch (either copy of CLOSED counted apart)."""
        return {node for old, new, _ in self.edges for node in (_node(old, new), _node(new, old))}


def observe(logs: list[str], port: int | None = None) -> Observed:
    """Count the state transitions in event logs (those of connections using `port`, if given)."""
    from stack.trace import read_events

    edges: Counter = Counter()
    conns: set[tuple[str, str, str]] = set()
    for path in logs:
        try:
            for e in read_events(path):
                if e["ev"] != "state":
                    continue
                if port is not None and not any(k.rsplit(":", 1)[1] == str(port) for k in (e["local"], e["remote"])):
                    continue
                conns.add((path, e["local"], e["remote"]))
                edges[e["from"], e["to"], e["reason"]] += 1
        except ValueError as exc:
            raise PlotError(str(exc)) from None
        except (KeyError, TypeError, AttributeError) as exc:
            raise PlotError(f"{path}: a state event lacks a field or has one of the wrong type ({exc})") from None
    if not edges:
        raise PlotError(f"no state transitions in {', '.join(logs)}")
    return Observed(edges, len(conns))


def _node(state: str, other: str) -> str:
    """The drawn node: transitions into CLOSED from a synchronized state end at the lower copy."""
    return "CLOSE " if state == "CLOSE" and other not in _OPENING else state


def _all_edges() -> set[tuple[str, str]]:
    from stack.tcp.state import TRANSITIONS

    return {(old.linux_name, new.linux_name) for (old, _), new in TRANSITIONS.items()}


def to_dot(seen: Observed) -> str:
    lines = ["digraph tcp_states {", '  node [shape=box, style=rounded, fontname="Helvetica"];']
    grouped: dict[tuple[str, str], list[str]] = {}
    for (old, new, reason), n in sorted(seen.edges.items()):
        grouped.setdefault((old, new), []).append(f"{reason} \u00d7{n}")
    for (old, new), labels in grouped.items():
        label = "\\n".join(labels)  # DOT's line break inside a label
        lines.append(f'  "{old}" -> "{new}" [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(seen: Observed, out: str) -> None:
    Figure = figure_class()
    from matplotlib.patches import FancyArrowPatch

    fig = Figure(figsize=(10, 11), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_xlim(-0.9, 4.7)
    ax.set_ylim(-0.9, 7.6)
    nodes = seen.nodes
    for name, (x, y) in _POSITION.items():
        real = name.strip()
        on = name in nodes
        ax.text(
            x,
            y,
            "CLOSED" if real == "CLOSE" else real,
            ha="center",
            va="center",
            fontsize=10,
            weight="bold" if on else "normal",
            color=_SEEN if on else "#999999",
            zorder=3,
            bbox={
                "boxstyle": "round,pad=0.4",
                "facecolor": "#f2ecf7" if on else "white",
                "edgecolor": _SEEN if on else _UNSEEN,
                "linestyle": "-" if on else "--",
            },
        )
    observed = {(old, new) for old, new, _ in seen.edges}
    for old, new in sorted(_all_edges() - observed):
        _arrow(ax, FancyArrowPatch, _node(old, new), _node(new, old), _UNSEEN, 0.6, None)
    grouped: dict[tuple[str, str], list[str]] = {}
    for (old, new, reason), n in sorted(seen.edges.items()):
        grouped.setdefault((old, new), []).append(f"{reason} \u00d7{n}")
    for (old, new), labels in grouped.items():
        _arrow(ax, FancyArrowPatch, _node(old, new), _node(new, old), _SEEN, 1.6, "\n".join(labels))
    total = sum(seen.edges.values())
    ax.set_title(
        f"TCP states: {total} transitions observed in {seen.connections} connections "
        "(grey: in RFC 9293's diagram, not observed)",
        fontsize=10,
    )
    fig.savefig(out)


def _arrow(ax, arrow_class, a: str, b: str, color: str, width: float, text: str | None) -> None:
    (x1, y1), (x2, y2) = _POSITION[a], _POSITION[b]
    rad = 0.18
    ax.add_patch(
        arrow_class(
            (x1, y1),
            (x2, y2),
            connectionstyle=f"arc3,rad={rad}",
            arrowstyle="-|>",
            mutation_scale=14,
            shrinkA=20,
            shrinkB=20,
            color=color,
            lw=width,
            zorder=1 if text is None else 2,
        )
    )
    if text is not None:
        # the middle of matplotlib's arc3 curve: half the control point's offset from the chord's middle
        mx, my = (x1 + x2) / 2 + 0.5 * rad * (y2 - y1), (y1 + y2) / 2 - 0.5 * rad * (x2 - x1)
        ax.text(mx, my, text, ha="center", va="center", fontsize=8, color=color, zorder=4,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.9})  # fmt: skip


def states(logs: list[str], out: str, port: int | None = None) -> str:
    """Draw (or write as DOT) the observed transitions; returns a one-line summary."""
    if not out.lower().endswith((*FORMATS, ".dot")):
        raise PlotError(f"{out}: the output must end in .png, .svg or .dot")
    if not out.lower().endswith(".dot"):
        figure_class()
    seen = observe(logs, port)
    if out.lower().endswith(".dot"):
        with open(out, "w") as f:
            f.write(to_dot(seen))
    else:
        render(seen, out)
    edges = len({(old, new) for old, new, _ in seen.edges})
    return f"{out}: {sum(seen.edges.values())} transitions over {edges} edges in {seen.connections} connections"
