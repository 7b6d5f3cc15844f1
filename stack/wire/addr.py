"""IP addresses inside the stack: plain ints, so that the IPv4 hot path stays an int compare.

An IPv4 address is its 32-bit value (0 .. 2**32-1). An IPv6 address is its 128-bit value with bit 128
set (`V6 | value`), so the two families never collide (:: is not 0.0.0.0, ::a.b.c.d is not a.b.c.d)
and the family of any address is `addr > MAX4`. `ipaddress` objects appear only at the edges.
"""

from __future__ import annotations

import ipaddress
from typing import Final, TypeAlias

MAX4: Final = 0xFFFFFFFF
V6: Final = 1 << 128
_MASK6: Final = V6 - 1
ANY4: Final = 0  # 0.0.0.0: a listener bound to it takes IPv4 only
ANY6: Final = V6  # ::, IPv6 only
ANY: Final = -1  # a listener bound to no address takes both families (asyncio's host=None)
LOOPBACK4: Final = 0x7F000001  # 127.0.0.1: what a host's connections to 127/8 come from (Linux's lo route)
LOOPBACK6: Final = V6 | 1  # ::1
LOOPBACKS: Final = -2  # a listener bound to 127.0.0.1 and ::1 both ("localhost"): the loopback of either family

IpAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_v6(addr: int) -> bool:
    return addr > MAX4


def is_loopback(addr: int) -> bool:
    """127.0.0.0/8 or ::1: the host itself, reached through no network (RFC 1122 §3.2.1.3 (g), RFC 4291 §2.5.3)."""
    return addr >> 24 == 127 if addr <= MAX4 else addr == LOOPBACK6


def over_loopback(local: int, remote: int) -> bool:
    """A connection of a host with itself, which Linux routes over lo: one end on the loopback (no other host
    reaches those), or both ends on its own address."""
    return local == remote or is_loopback(remote) or is_loopback(local)


def loopback_of(addr: int) -> int:
    """The loopback address of `addr`'s family."""
    return LOOPBACK6 if addr > MAX4 else LOOPBACK4


def from_ipaddress(ip: IpAddress) -> int:
    return int(ip) if ip.version == 4 else V6 | int(ip)


def parse(text: str) -> int:
    """'10.7.0.2' or 'fd3d:fa7b:d17d::1' (brackets allowed) -> the stack's int; ValueError otherwise."""
    return from_ipaddress(ipaddress.ip_address(text.strip("[]")))


def to_ipaddress(addr: int) -> IpAddress:
    return ipaddress.IPv6Address(addr & _MASK6) if addr > MAX4 else ipaddress.IPv4Address(addr)


def packed(addr: int) -> bytes:
    """4 bytes for IPv4, 16 for IPv6 (network order)."""
    return (addr & _MASK6).to_bytes(16, "big") if addr > MAX4 else addr.to_bytes(4, "big")


def from_packed6(data: bytes) -> int:
    return V6 | int.from_bytes(data, "big")


def fmt(addr: int) -> str:
    if addr == ANY:
        return "*"
    if addr == LOOPBACKS:
        return "localhost"
    return str(to_ipaddress(addr))


def fmt_endpoint(addr: int, port: int | str) -> str:
    """'10.7.0.2:80' or '[fd3d::1]:80', as ss and curl write them."""
    return f"[{fmt(addr)}]:{port}" if addr > MAX4 else f"{fmt(addr)}:{port}"


def accepts(bound: int, dst: int) -> bool:
    """Whether a listener bound to `bound` takes a segment addressed to `dst`."""
    if bound == ANY or bound == dst:
        return True
    if bound == LOOPBACKS:
        return dst == LOOPBACK4 or dst == LOOPBACK6
    return bound == ANY4 and dst <= MAX4 or bound == ANY6 and dst > MAX4
