"""Helpers for the flood and exhaustion tests: sockets inside a test's namespace, the stack's memory,
and waiting on its counters.

`inside(ns)` moves the calling thread into the namespace only while sockets are created: a socket
belongs to the namespace it was created in, so the test process can then send raw packets and hold
thousands of kernel connections there without a helper process, and nothing it sends leaves the namespace.
"""

from __future__ import annotations

import ctypes
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from stack.netns import NetNs, wait_for

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
ETH_P_IP = 0x0800


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def inside(ns: NetNs) -> Iterator[None]:
    """Run the block with this thread in `ns`'s network namespace; back home afterwards, also on error."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns.name}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


def packet_socket(ns: NetNs, ifname: str = "tun0") -> socket.socket:
    """An AF_PACKET socket on the kernel side of the TUN: what it sends reaches the stack byte for byte,
    with no kernel checks on the way (bad checksums, bad lengths, any version)."""
    with inside(ns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        s.bind((ifname, ETH_P_IP))
    return s


def raw_ip_socket(ns: NetNs) -> socket.socket:
    """An IPPROTO_RAW socket (IP_HDRINCL): whole IPv4 packets routed by the namespace's kernel."""
    with inside(ns):
        return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)


def connect(ns: NetNs, addr: tuple[str, int], timeout: float = 10.0) -> socket.socket:
    with inside(ns):
        return socket.create_connection(addr, timeout=timeout)


def rss_kib(pid: int) -> int:
    """Resident set size of a process, in KiB (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def tun_tx_dropped(ns: NetNs) -> int:
    """Packets the kernel dropped because the TUN's queue towards the stack was full."""
    out = ns.run(["cat", "/sys/class/net/tun0/statistics/tx_dropped"], text=True)
    return int(out.stdout.strip() or 0)


def quiet_ipv6(ns: NetNs) -> None:
    """No IPv6 on the TUN: the kernel's router solicitations would be counted among the drops."""
    ns.run(["sysctl", "-q", "-w", "net.ipv6.conf.tun0.disable_ipv6=1"], check=True)


def wait_counters(stats, at_least: dict[str, int], timeout: float = 30.0) -> dict[str, int]:
    """Poll `stats()` until every named counter reaches its value; returns the last snapshot."""
    last: dict[str, int] = {}

    def reached() -> bool:
        nonlocal last
        last = stats()
        return all(last.get(k, 0) >= v for k, v in at_least.items())

    try:
        wait_for(reached, timeout, f"counters {at_least}", interval=0.002)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; last: { {k: last.get(k, 0) for k in at_least} }") from None
    return last


class RssSampler:
    """Peak and last RSS of the stack over a test, sampled when asked."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = rss_kib(pid)
        self.peak = self.baseline
        self.samples = 0
        self.started = time.monotonic()

    def sample(self) -> int:
        kib = rss_kib(self.pid)
        self.peak = max(self.peak, kib)
        self.samples += 1
        return kib
