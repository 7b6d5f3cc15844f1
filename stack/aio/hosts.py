"""Host strings as asyncio's create_connection/create_server take them: IP literals of either family.

The stack has no resolver of its own (a name would be resolved by the kernel's network, not this one), so
a name fails the way getaddrinfo fails for an unknown one: socket.gaierror. The one exception is
"localhost" (and names under it), which RFC 6761 §6.3 has every resolver answer with the loopback itself.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
LOCALHOST4: IpAddress = ipaddress.IPv4Address("127.0.0.1")
LOCALHOST6: IpAddress = ipaddress.IPv6Address("::1")


def parse_host(host: str, family: int = socket.AF_UNSPEC) -> IpAddress:
    """An IPv4 or IPv6 literal ("10.7.0.2", "fd00::2", "[fd00::2]") of `family` (AF_UNSPEC: either);
    getaddrinfo's gaierror for anything else."""
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if is_localhost(text):
        return LOCALHOST6 if family == socket.AF_INET6 else LOCALHOST4
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise socket.gaierror(socket.EAI_NONAME, f"{host!r} is not an IP address (no names)") from None
    if not family_matches(text, family):
        raise socket.gaierror(socket.EAI_ADDRFAMILY, f"Address family for hostname not supported: {host}")
    return ip


def is_localhost(name: str) -> bool:
    """Whether a name is "localhost" or under it ("LocalHost.", "db.localhost"): the host itself (RFC 6761 §6.3)."""
    name = name.lower().removesuffix(".")
    return name == "localhost" or name.endswith(".localhost")


def family_matches(literal: str, family: int) -> bool:
    if family == socket.AF_UNSPEC:
        return True
    return family == (socket.AF_INET6 if ":" in literal else socket.AF_INET)


def unreachable(addr: IpAddress) -> OSError:
    """What connect() says for a family the stack has no address in (Linux: no route)."""
    return OSError(errno.ENETUNREACH, f"Network is unreachable: the stack has no IPv{addr.version} address")


def not_available(host: str) -> OSError:
    """What bind() says for an address that is not the stack's."""
    return OSError(errno.EADDRNOTAVAIL, f"Cannot assign requested address: {host} is not the stack's address")


def sockaddr(addr: IpAddress, port: int) -> tuple:
    """getsockname()'s shape: (host, port) for IPv4, (host, port, flowinfo, scope_id) for IPv6."""
    if addr.version == 6:
        return str(addr), port, 0, 0
    return str(addr), port
