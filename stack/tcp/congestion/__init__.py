"""Congestion controllers, chosen by name from an explicit registry or loaded as "package.module:Class".

`create(name, mss, iw)` builds the controller itself; `attach(name, mss, iw)` wraps it for a
connection (containment and the delivery-rate estimator, see contained.py).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from random import Random

from stack.core_build import extend_path

extend_path(__path__, "tcp/congestion")  # the compiled build, when current

from stack.tcp.congestion.base import HOOKS, AckSample, CongestionController  # noqa: E402
from stack.tcp.congestion.bbr import Bbr  # noqa: E402
from stack.tcp.congestion.contained import Contained  # noqa: E402
from stack.tcp.congestion.cubic import Cubic  # noqa: E402
from stack.tcp.congestion.hystart import HyStartParams  # noqa: E402
from stack.tcp.congestion.reno import Reno  # noqa: E402

__all__ = ["REGISTRY", "AckSample", "CongestionController", "Contained", "HyStartParams", "attach", "create", "load"]

REGISTRY: dict[str, type] = {"reno": Reno, "cubic": Cubic, "bbr": Bbr}


def load(spec: str) -> type:
    """The class a name stands for: a registry name, or "package.module:Class" from an importable module."""
    if spec in REGISTRY:
        return REGISTRY[spec]
    known = ", ".join(sorted(REGISTRY))
    module_name, sep, attr = spec.partition(":")
    if not sep:
        raise ValueError(f"unknown congestion control {spec!r}; known: {known}, or package.module:Class")
    if not module_name or not attr or not all(part.isidentifier() for part in (*module_name.split("."), attr)):
        raise ValueError(f"bad congestion control {spec!r}: expected package.module:Class")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an import error, or any error raised while the module runs
        raise ValueError(f"congestion control {spec!r}: cannot import {module_name}: {exc}") from exc
    cls = getattr(module, attr, None)
    if not isinstance(cls, type):
        raise ValueError(f"congestion control {spec!r}: {module_name} has no class {attr}")
    missing = [hook for hook in HOOKS if not callable(getattr(cls, hook, None))]
    if missing:
        raise ValueError(f"congestion control {spec!r}: {attr} lacks {', '.join(missing)}")
    return cls


def create(
    name: str,
    mss: int,
    initial_window_segments: int,
    rng: Random | None = None,
    hystart: HyStartParams | None = None,
) -> CongestionController:
    """A new controller for one connection (ValueError for an unknown name or an unusable class). A
    controller whose constructor takes `rng` draws its random choices from the one given, if any; one
    that takes `hystart` (CUBIC) leaves slow start by Linux's HyStart when its parameters are given."""
    cls = load(name)
    extra: dict[str, object] = {}
    if rng is not None and _takes(cls, "rng"):
        extra["rng"] = rng
    if hystart is not None and _takes(cls, "hystart"):
        extra["hystart"] = hystart
    try:
        controller = cls(mss, initial_window_segments, **extra)
    except Exception as exc:
        raise ValueError(
            f"congestion control {name!r}: {cls.__name__}({mss}, {initial_window_segments}) failed: {exc}"
        ) from exc
    for attr in ("cwnd", "ssthresh"):
        if not hasattr(controller, attr):
            raise ValueError(f"congestion control {name!r}: {cls.__name__} has no {attr} attribute")
    return controller


@functools.cache  # read once per class, not for every new connection
def _takes(cls: type, parameter: str) -> bool:
    try:
        return parameter in inspect.signature(cls).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin, say)
        return False


def attach(
    name: str,
    mss: int,
    initial_window_segments: int,
    rng: Random | None = None,
    hystart: HyStartParams | None = None,
) -> Contained:
    """The controller a connection uses: contained and fed by a delivery-rate estimator."""
    controller = create(name, mss, initial_window_segments, rng, hystart)
    return Contained(controller, name, mss, initial_window_segments)
