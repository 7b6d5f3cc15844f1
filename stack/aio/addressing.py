"""What connect() and bind() make of a host on a stack, by Linux's rules: the address a connection comes
from, where 0.0.0.0 and :: lead, which addresses a server may bind. Besides the addresses it was given,
every stack has the loopback, 127.0.0.0/8 and ::1, as a host has its `lo` (RFC 1122 §3.2.1.3 (g),
RFC 4291 §2.5.3)."""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Sequence

from stack import martians
from stack.aio.hosts import (
    LOCALHOST4,
    LOCALHOST6,
    IpAddress,
    family_matches,
    is_localhost,
    not_available,
    parse_host,
    unreachable,
)
from stack.wire import addr


class Addressing:
    """The rules for a stack at `addrs` (ints, stack/wire/addr.py) whose kernel side is `network` (its IPv4
    prefix, e.g. 10.7.0.1/24, whose directed broadcast is then martian)."""

    __slots__ = ("addr", "addr6", "addrs", "sources")

    def __init__(self, addrs: Sequence[int], network: str | None = None) -> None:
        if not addrs:
            raise ValueError("a stack needs at least one address")
        # the first IPv4 address (else the first IPv6 one) answers for the stack; `addrs` holds all
        self.addr = next((a for a in addrs if not addr.is_v6(a)), addrs[0])
        self.addr6 = next((a for a in addrs if addr.is_v6(a)), None)
        self.addrs = frozenset(addrs)
        self.sources = martians.SourceCheck(self.addr, network, others=addrs)

    def local_ip(self, version: int) -> int | None:
        """The stack's address in that IP version, if it has one."""
        if version == 6:
            return self.addr6
        return None if addr.is_v6(self.addr) else self.addr

    def is_ours(self, ip: IpAddress) -> bool:
        """Whether bind() takes `ip`: the stack's address in its family, or a loopback address."""
        value = addr.from_ipaddress(ip)
        return value == self.local_ip(ip.version) or addr.is_loopback(value)

    def destination(self, ip: int, bound_ip: int | None) -> int:
        """Where connect() sends: `ip`, or for 0.0.0.0 and :: the host itself, as Linux takes them (the
        bound address, else the loopback: ip_route_output_key_hash_rcu, tcp_v6_connect); a broadcast or
        multicast address is refused with ENETUNREACH, as Linux's tcp_v4_connect and tcp_v6_connect do."""
        if ip == addr.ANY4 or ip == addr.ANY6:
            return bound_ip if bound_ip is not None else addr.loopback_of(ip)
        if self.sources.martian(ip) and self.sources.reason(ip) in (martians.BROADCAST, martians.MULTICAST):
            raise OSError(
                errno.ENETUNREACH, f"Network is unreachable: {addr.fmt(ip)} is a broadcast or multicast address"
            )
        return ip

    def source(self, destination: int, bound_ip: int | None) -> int:
        """The address a connection to `destination` comes from: the one bound, else the stack's own in that
        family, or 127.0.0.1 / ::1 for the loopback (Linux's route to 127/8 names 127.0.0.1 as its source)."""
        if bound_ip is not None:
            if addr.is_loopback(bound_ip) and not addr.is_loopback(destination) and destination not in self.addrs:
                # Linux: a loopback source cannot leave the host (ip_route_output_key_hash_rcu)
                raise OSError(
                    errno.EINVAL, f"Invalid argument: {addr.fmt(bound_ip)} cannot reach {addr.fmt(destination)}"
                )
            return bound_ip
        if addr.is_loopback(destination):
            return addr.loopback_of(destination)
        local_ip = self.local_ip(6 if addr.is_v6(destination) else 4)
        if local_ip is None:
            raise unreachable(addr.to_ipaddress(destination))
        return local_ip

    def bound_ip(self, host: str | None, version: int, v4_mapped: bool = False) -> int | None:
        """The address of a connection's local_addr (None: unspecified, the source is chosen); with
        `v4_mapped` an IPv6 socket's towards an IPv4-mapped address, which Linux takes as IPv4's."""
        if host in (None, ""):
            return None
        ip = parse_host(host)
        if v4_mapped and isinstance(ip, ipaddress.IPv6Address):
            ip = ip.ipv4_mapped or (ipaddress.IPv4Address(0) if ip.is_unspecified else ip)
        if ip.version != version or not (ip.is_unspecified or self.is_ours(ip)):
            raise not_available(host)
        return None if ip.is_unspecified else addr.from_ipaddress(ip)

    def listen_hosts(self, host: str | Sequence[str] | None, family: int) -> list[IpAddress]:
        """What a server binds for create_server's `host`: None or "" is every family the stack has, as
        asyncio makes a socket for each; bind()'s errors for an address that is not the stack's."""
        if host is None or host == "":
            wildcards = (("0.0.0.0", self.local_ip(4)), ("::", self.addr6))
            hosts = [parse_host(any_) for any_, ours in wildcards if ours is not None and family_matches(any_, family)]
            if not hosts:
                raise socket.gaierror(socket.EAI_ADDRFAMILY, "Address family for hostname not supported")
            return hosts
        if isinstance(host, str) and is_localhost(host) and family == socket.AF_UNSPEC:
            return [LOCALHOST4, LOCALHOST6]  # as getaddrinfo gives asyncio's create_server a socket for each
        hosts = [parse_host(host, family)] if isinstance(host, str) else [parse_host(h, family) for h in host]
        if not hosts:
            raise ValueError("host is an empty sequence: no address to listen on")
        if len(hosts) > 1 and any(ip.is_loopback for ip in hosts) and set(hosts) != {LOCALHOST4, LOCALHOST6}:
            # a listener takes one address, both loopback ones, or all of them (listener_address)
            raise OSError(
                errno.EADDRNOTAVAIL, "Cannot assign requested address: a loopback address is bound alone or with ::1"
            )
        for ip in hosts:
            if ip.is_loopback:
                continue  # the host itself: every stack has it, in both families
            if self.local_ip(ip.version) is None:
                raise OSError(
                    errno.EAFNOSUPPORT, f"Address family not supported by protocol: the stack has no IPv{ip.version}"
                )
            if not ip.is_unspecified and not self.is_ours(ip):
                raise not_available(str(ip))
        return hosts


def listener_address(names: list[str]) -> int:
    """What a listener bound to `names` (its sockets' addresses, as listen_hosts allows them) takes
    (stack/wire/addr.py): sockets of both families take both (ANY), or both loopback addresses
    (LOOPBACKS) if those are what they are bound to; one socket takes its address, or its whole family if
    the address is 0.0.0.0 or ::."""
    if len(names) > 1:
        if {addr.parse(name) for name in names} == {addr.LOOPBACK4, addr.LOOPBACK6}:
            return addr.LOOPBACKS
        return addr.ANY  # the stack has one address per family: one of each is all of them
    return addr.parse(names[0])


def unmapped(ip: IpAddress) -> tuple[IpAddress, bool]:
    """Where a connection to `ip` goes, and whether `ip` was IPv4-mapped (::ffff:a.b.c.d): an AF_INET6
    socket reaches such an address over IPv4 (Linux: tcp_v6_connect hands it to tcp_v4_connect)."""
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return (ip, False) if mapped is None else (mapped, True)
