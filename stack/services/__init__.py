"""Services on the asyncio streams API (they run unchanged on the kernel's TCP): echo, discard, chargen, http."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from stack.services.chargen import chargen
from stack.services.discard import discard
from stack.services.echo import echo
from stack.services.http import http

Handler = Callable[..., Awaitable[None]]

SERVICES: dict[str, Handler] = {"echo": echo, "discard": discard, "chargen": chargen, "http": http}
DEFAULT_PORTS = {"echo": 7, "discard": 9, "chargen": 19, "http": 80}


def parse_services(text: str) -> list[tuple[str, int]]:
    """'echo:7,http:80' (a bare name takes its well-known port) -> [('echo', 7), ('http', 80)]."""
    result: list[tuple[str, int]] = []
    ports: set[int] = set()
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, port_text = item.partition(":")
        if name not in SERVICES:
            raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
        try:
            port = int(port_text) if port_text else DEFAULT_PORTS[name]
        except ValueError:
            raise ValueError(f"service {item!r}: port must be a number") from None
        if not 1 <= port <= 65535:
            raise ValueError(f"service {item!r}: port must be in 1..65535")
        if port in ports:
            raise ValueError(f"port {port} given twice")
        ports.add(port)
        result.append((name, port))
    if not result:
        raise ValueError("no services given")
    return result
