"""Congestion controllers, chosen by name from an explicit registry."""

from __future__ import annotations

from stack.tcp.congestion.base import CongestionController
from stack.tcp.congestion.reno import Reno

REGISTRY: dict[str, type] = {"reno": Reno}


def create(name: str, mss: int, initial_window_segments: int) -> CongestionController:
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown congestion control {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
    return cls(mss, initial_window_segments)
