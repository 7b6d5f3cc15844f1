"""tcpstack: a userspace TCP/IP stack in Python over a Linux TUN device.

Heavy modules (uvloop, cffi, pytun) load lazily, so `tcpstack netstat` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stack.core_build import extend_path

extend_path(__path__, "")  # the compiled build of the demux, when current (stack/core_build.py)

if TYPE_CHECKING:
    from stack.aio.fault import FaultSpec
    from stack.aio.stack import Stack
    from stack.tcp.config import TcpConfig

__all__ = ["FaultSpec", "Stack", "TcpConfig"]

_EXPORTS = {"Stack": "stack.aio.stack", "FaultSpec": "stack.aio.fault", "TcpConfig": "stack.tcp.config"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stack' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
