"""Packet devices: the TUN device (python-pytun) and a socketpair device for tests without TUN."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
from collections.abc import Sequence

from stack.aio.batchio import BatchReader, write_batch


class TunDevice:
    """A layer-3 TUN device (IFF_TUN | IFF_NO_PI): each read/write is one raw IPv4 or IPv6 packet.

    `peers` are the kernel side's addresses with their prefixes (10.7.0.1/24, fd3d:fa7b:d17d::1/64), one
    per family; `addrs` ours. The IPv6 one is added without duplicate address detection (nodad): on a
    point-to-point TUN there is nobody to collide with, and DAD would hold the address back a second."""

    def __init__(self, name: str, addrs: str | Sequence[str], peers: str | Sequence[str], mtu: int = 1500) -> None:
        import pytun  # imported here so that tests and tools without TUN never need it

        addrs = [addrs] if isinstance(addrs, str) else addrs
        nets = [ipaddress.ip_interface(p) for p in ([peers] if isinstance(peers, str) else peers)]
        try:
            self._tun = pytun.TunTapDevice(name=name, flags=pytun.IFF_TUN | pytun.IFF_NO_PI)
        except OSError as exc:  # EBUSY: another process holds it; EINVAL: a device of another kind
            raise OSError(exc.errno, f"cannot create TUN device {name}: {exc.strerror or exc}") from None
        try:
            self._tun.mtu = mtu
            for net in nets:
                if net.version == 4:
                    self._tun.addr = str(net.ip)  # the kernel's side
                    self._tun.dstaddr = next(a for a in addrs if ipaddress.ip_address(a).version == 4)  # ours
                    self._tun.netmask = str(net.netmask)
            self._tun.up()
            for net in nets:
                if net.version == 6:
                    ip6 = ["ip", "-6", "addr", "add", str(net), "dev", self._tun.name, "nodad"]
                    subprocess.run(ip6, check=True, capture_output=True)
        except OSError as exc:
            self._tun.close()
            raise OSError(exc.errno, f"cannot configure TUN device {name}: {exc.strerror or exc}") from None
        except Exception:
            self._tun.close()
            raise
        self.name = self._tun.name
        self.mtu = mtu
        self._fd = self._tun.fileno()
        os.set_blocking(self._fd, False)
        self._reader = BatchReader(max_size=max(mtu, 1500) + 64)

    def fileno(self) -> int:
        return self._fd

    def read_batch(self) -> list[bytes]:
        return self._reader.read(self._fd)

    def write_batch(self, packets: list[bytes]) -> None:
        write_batch(self._fd, packets)

    def close(self) -> None:
        self._tun.close()  # closing a non-persistent TUN removes the device


class SocketPairDevice:
    """One end of an AF_UNIX SOCK_SEQPACKET pair: keeps packet boundaries, like TUN."""

    def __init__(self, sock: socket.socket, mtu: int = 1500) -> None:
        sock.setblocking(False)
        self._sock = sock
        self.mtu = mtu
        self.name = f"socketpair{sock.fileno()}"
        self._reader = BatchReader(max_size=65535)

    @classmethod
    def pair(cls, mtu: int = 1500) -> tuple[SocketPairDevice, SocketPairDevice]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for s in (a, b):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        return cls(a, mtu), cls(b, mtu)

    def fileno(self) -> int:
        return self._sock.fileno()

    def read_batch(self) -> list[bytes]:
        return self._reader.read(self._sock.fileno())

    def write_batch(self, packets: list[bytes]) -> None:
        try:
            write_batch(self._sock.fileno(), packets)
        except OSError:
            pass  # the other end is gone: packets are lost, as on a wire

    def close(self) -> None:
        self._sock.close()
