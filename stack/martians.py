"""Source addresses no host may answer (RFC 1122 §3.2.1.3; Linux calls them martian sources and drops
them in ip_route_input_slow and fib_validate_source): a reply would go to a broadcast or multicast
group, to nobody, or back to ourselves (the LAND attack), and a SYN would leave a half-open connection.

The check runs once per packet before anything else looks at it, so it is one shift and two set lookups.
IPv6 sources (RFC 4291 §2.5.2, §2.5.3, §2.7) are martian when unspecified (::), loopback (::1),
multicast (ff00::/8) or our own; they count under the same names.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from stack.wire.addr import ANY6, MAX4, V6

# counter name for each kind of martian source; `tcpstack stats` shows them all, also at 0
BROADCAST = "DropSrcBroadcast"  # 255.255.255.255 or the subnet's directed broadcast, RFC 1122 §3.2.1.3 (c)(d)
MULTICAST = "DropSrcMulticast"  # 224.0.0.0/4, RFC 1122 §3.2.1.3: never a source
ZERONET = "DropSrcZeronet"  # 0.0.0.0/8, "this host on this network": only while booting, never to us
LOOPBACK = "DropSrcLoopback"  # 127.0.0.0/8 must not appear outside a host, RFC 1122 §3.2.1.3 (g)
CLASS_E = "DropSrcClassE"  # 240.0.0.0/4, reserved (RFC 1112 §4)
OWN_ADDRESS = "DropSrcOwnAddress"  # our own address as the source: the LAND attack
TOTAL = "InMartianSrc"  # Linux's in_martian_src (/proc/net/stat/rt_cache)
COUNTERS = (TOTAL, BROADCAST, MULTICAST, ZERONET, LOOPBACK, CLASS_E, OWN_ADDRESS)

_LIMITED_BROADCAST = 0xFFFFFFFF
_FIRST_OCTETS = {0: ZERONET, 127: LOOPBACK, **dict.fromkeys(range(224, 240), MULTICAST)}
_FIRST_OCTETS.update(dict.fromkeys(range(240, 256), CLASS_E))
_MULTICAST6 = (V6 | 0xFF << 120) >> 120  # the top byte of an IPv6 multicast address, with the family bit
_SPECIAL6 = {ANY6: ZERONET, V6 | 1: LOOPBACK}


class SourceCheck:
    """Which source addresses are martian for a stack at `own` whose kernel side is `network`."""

    __slots__ = ("_octets", "_addresses")

    def __init__(self, own: int, network: str | None = None, others: Iterable[int] = ()) -> None:
        self._octets = frozenset(_FIRST_OCTETS)
        addresses = {**_SPECIAL6, own: OWN_ADDRESS, **dict.fromkeys(others, OWN_ADDRESS)}
        if network is not None:
            net = ipaddress.IPv4Interface(network).network
            if net.prefixlen < 31:  # a /31 or /32 has no broadcast address (RFC 3021)
                addresses[int(net.broadcast_address)] = BROADCAST
        self._addresses = addresses

    def martian(self, src: int) -> bool:
        if src > MAX4:
            return src >> 120 == _MULTICAST6 or src in self._addresses
        return src >> 24 in self._octets or src in self._addresses

    def reason(self, src: int) -> str:
        """The counter for a martian source (call only when `martian(src)`)."""
        if src == _LIMITED_BROADCAST:
            return BROADCAST
        if src > MAX4 and src not in self._addresses:
            return MULTICAST
        return self._addresses.get(src) or _FIRST_OCTETS[src >> 24]
