"""connect()'s and bind()'s address rules, as Linux has them, without a stack: the loopback belongs to every
stack (RFC 1122 §3.2.1.3 (g), RFC 4291 §2.5.3), 0.0.0.0 and :: as a destination are the host itself, and a
server binds the stack's own addresses or the loopback."""

from __future__ import annotations

import errno
import ipaddress
import socket

import pytest

from stack.aio.addressing import Addressing, listener_address, unmapped
from stack.wire import addr

OURS = addr.parse("10.7.0.2")
OURS6 = addr.parse("fd00::2")
PEER = addr.parse("10.7.0.1")
DUAL = Addressing([OURS, OURS6], "10.7.0.1/24")
V4_ONLY = Addressing([OURS], "10.7.0.1/24")


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    "destination, source",
    [
        ("10.7.0.1", "10.7.0.2"),
        ("fd00::1", "fd00::2"),
        ("127.0.0.1", "127.0.0.1"),
        ("127.9.9.9", "127.0.0.1"),  # Linux's route to 127/8 names 127.0.0.1 as the source
        ("::1", "::1"),
        ("10.7.0.2", "10.7.0.2"),  # to ourselves: from ourselves
    ],
)
def test_source_of_an_unbound_connection_is_the_stacks_address_or_the_loopback(destination, source):
    assert DUAL.source(addr.parse(destination), None) == addr.parse(source)


def test_source_is_the_bound_address_when_there_is_one():
    """bind() before connect(): the bound address stays, also towards the loopback (Linux sends it via lo)."""
    assert DUAL.source(addr.LOOPBACK4, OURS) == OURS


def test_source_bound_to_loopback_towards_another_host_is_einval():
    """A loopback source cannot leave the host (Linux: ip_route_output_key_hash_rcu's EINVAL)."""
    with pytest.raises(OSError) as info:
        DUAL.source(PEER, addr.LOOPBACK4)
    assert info.value.errno == errno.EINVAL


def test_source_in_a_family_the_stack_lacks_is_enetunreach():
    with pytest.raises(OSError) as info:
        V4_ONLY.source(addr.parse("fd00::1"), None)
    assert info.value.errno == errno.ENETUNREACH


def test_source_of_ipv6_loopback_on_an_ipv4_only_stack_is_ipv6_loopback():
    """::1 is there without an IPv6 address, as on a host whose only interface has IPv4."""
    assert V4_ONLY.source(addr.LOOPBACK6, None) == addr.LOOPBACK6


@pytest.mark.parametrize(
    "unspecified, bound, destination",
    [(addr.ANY4, None, addr.LOOPBACK4), (addr.ANY6, None, addr.LOOPBACK6), (addr.ANY4, OURS, OURS)],
)
def test_destination_unspecified_is_the_loopback_or_the_bound_address(unspecified, bound, destination):
    """connect(0.0.0.0) and connect(::) reach the host itself: the bound address, else the loopback."""
    assert DUAL.destination(unspecified, bound) == destination


@pytest.mark.parametrize("host", ["255.255.255.255", "10.7.0.255", "224.0.0.1", "ff02::1"])
def test_destination_broadcast_or_multicast_is_enetunreach(host):
    with pytest.raises(OSError) as info:
        DUAL.destination(addr.parse(host), None)
    assert info.value.errno == errno.ENETUNREACH


@pytest.mark.parametrize("host", ["10.7.0.2", "127.0.0.1", "127.3.2.1", "::1", "0.0.0.0", ""])
def test_bound_ip_takes_the_stacks_address_the_loopback_or_none(host):
    expected = None if host in ("0.0.0.0", "") else addr.parse(host)
    assert DUAL.bound_ip(host, 6 if ":" in host else 4) == expected


@pytest.mark.parametrize("host, version", [("10.7.0.9", 4), ("10.7.0.2", 6)])
def test_bound_ip_of_another_address_or_family_is_eaddrnotavail(host, version):
    with pytest.raises(OSError) as info:
        DUAL.bound_ip(host, version)
    assert info.value.errno == errno.EADDRNOTAVAIL


@pytest.mark.parametrize(
    "host, family, hosts",
    [
        (None, socket.AF_UNSPEC, ["0.0.0.0", "::"]),
        ("", socket.AF_INET6, ["::"]),
        ("127.0.0.1", socket.AF_UNSPEC, ["127.0.0.1"]),
        ("localhost", socket.AF_INET6, ["::1"]),
        ("localhost", socket.AF_UNSPEC, ["127.0.0.1", "::1"]),  # one socket for each, as asyncio's
        (["127.0.0.1", "::1"], socket.AF_UNSPEC, ["127.0.0.1", "::1"]),
        (["10.7.0.2", "fd00::2"], socket.AF_UNSPEC, ["10.7.0.2", "fd00::2"]),
    ],
)
def test_listen_hosts_are_what_bind_takes(host, family, hosts):
    assert DUAL.listen_hosts(host, family) == [_ip(h) for h in hosts]


@pytest.mark.parametrize(
    "host, code",
    [
        ("10.7.0.9", errno.EADDRNOTAVAIL),  # not ours
        (["127.0.0.1", "10.7.0.2"], errno.EADDRNOTAVAIL),  # the loopback is bound alone, or with ::1
        (["127.0.0.2", "::1"], errno.EADDRNOTAVAIL),
        ("fd00::2", errno.EAFNOSUPPORT),  # no IPv6 address on this stack
    ],
)
def test_listen_hosts_refused_as_bind_refuses_them(host, code):
    with pytest.raises(OSError) as info:
        V4_ONLY.listen_hosts(host, socket.AF_UNSPEC)
    assert info.value.errno == code


def test_listen_hosts_ipv6_loopback_on_an_ipv4_only_stack_is_taken():
    assert V4_ONLY.listen_hosts("::1", socket.AF_UNSPEC) == [_ip("::1")]


@pytest.mark.parametrize("host, bound", [("::ffff:10.7.0.2", OURS), ("::", None), ("10.7.0.2", OURS)])
def test_bound_ip_of_an_ipv6_socket_towards_an_ipv4_mapped_address_is_ipv4(host, bound):
    """An IPv6 socket connecting to ::ffff:a.b.c.d binds as IPv4 does: ::ffff:ours is ours, :: unspecified."""
    assert DUAL.bound_ip(host, 4, v4_mapped=True) == bound


def test_listen_hosts_of_an_empty_list_is_a_clear_valueerror():
    with pytest.raises(ValueError, match="empty"):
        DUAL.listen_hosts([], socket.AF_UNSPEC)


@pytest.mark.parametrize(
    "host, target, mapped",
    [("::ffff:10.7.0.1", "10.7.0.1", True), ("10.7.0.1", "10.7.0.1", False), ("fd00::1", "fd00::1", False)],
)
def test_unmapped_ipv4_mapped_address_is_reached_over_ipv4(host, target, mapped):
    assert unmapped(_ip(host)) == (_ip(target), mapped)


@pytest.mark.parametrize(
    "dst, taken", [("127.0.0.1", True), ("::1", True), ("127.0.0.2", False), ("10.7.0.2", False), ("fd00::2", False)]
)
def test_listener_on_both_loopback_addresses_takes_those_two_only(dst, taken):
    """start_server("localhost"): the listener takes 127.0.0.1 and ::1, as Linux's two sockets would."""
    assert addr.accepts(addr.LOOPBACKS, addr.parse(dst)) is taken


@pytest.mark.parametrize(
    "names, bound",
    [
        (["10.7.0.2"], OURS),
        (["0.0.0.0"], addr.ANY4),
        (["0.0.0.0", "::"], addr.ANY),
        (["127.0.0.1", "::1"], addr.LOOPBACKS),
    ],
)
def test_listener_address_is_one_address_both_loopback_ones_or_all(names, bound):
    assert listener_address(names) == bound
