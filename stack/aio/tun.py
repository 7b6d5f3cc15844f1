"""Packet devices: the TUN device (python-pytun) and a socketpair device for tests without TUN."""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import socket
import subprocess
from collections.abc import Sequence
from typing import TypeAlias

from stack.aio.batchio import BatchReader, write_batch, write_flush
from stack.wire.batch import VNET_HDR_LEN, PacketBatch
from stack.wire.codec import BatchEncoder

TUNSETOFFLOAD = 0x400454D0  # _IOW('T', 208, unsigned int), linux/if_tun.h
TUN_F_CSUM = 0x01  # we take packets whose checksum is still partial
TUN_F_TSO4 = 0x02  # and IPv4 TCP super-segments (up to 64 KB) for the kernel's to cut into MSS-sized ones
TUN_F_TSO6 = 0x04  # and IPv6 ones
TUN_F_TSO_ECN = 0x08  # ... with CWR on the first segment
OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN


class _PacketWriter:
    """The devices' writes to their fd. A write the fd refuses loses its packets, as a wire would: a TUN
    device whose link is down answers EIO, a socketpair whose other end is gone EPIPE; retransmission
    resends once the way is open again."""

    vnet: int

    def fileno(self) -> int:
        raise NotImplementedError

    def write_batch(self, batch: PacketBatch | list[bytes]) -> None:
        try:
            write_batch(self.fileno(), batch, self.vnet)
        except OSError:
            pass

    def write_encoded(self, out: BatchEncoder) -> None:
        """Writes a flush: with offloads each record straight from the payloads (writev; a SOCK_SEQPACKET
        socket keeps a writev one record too), else built."""
        try:
            write_flush(self.fileno(), out)
        except OSError:
            pass


IpInterface: TypeAlias = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def _networks(peers: str | Sequence[str]) -> list[IpInterface]:
    """The kernel side's addresses with their prefixes (ValueError for one that is not)."""
    return [ipaddress.ip_interface(p) for p in ([peers] if isinstance(peers, str) else peers)]


class TunDevice(_PacketWriter):
    """A layer-3 TUN device (IFF_TUN | IFF_NO_PI): each read/write is one raw IPv4 or IPv6 packet.

    `peers` are the kernel side's addresses with their prefixes (10.7.0.1/24, fd3d:fa7b:d17d::1/64), one
    per family; `addrs` ours. The IPv6 one is added without duplicate address detection (nodad): on a
    point-to-point TUN there is nobody to collide with, and DAD would hold the address back a second.

    With `offload` (IFF_VNET_HDR + TUNSETOFFLOAD) each read/write starts with a virtio_net_hdr: the kernel
    hands over coalesced super-segments with partial checksums and takes super-segments to cut to MSS.
    Where the kernel refuses, the device opens without and says why in `offload_note`.
    """

    def __init__(
        self,
        name: str,
        addrs: str | Sequence[str],
        peers: str | Sequence[str],
        mtu: int = 1500,
        offload: bool = True,
    ) -> None:
        self.offload_note: str | None = None
        nets = _networks(peers)  # before the device exists: a bad argument leaves nothing behind
        self._attach(name, mtu, offload, multi_queue=False)
        self._configure(name, addrs, nets, mtu)

    @classmethod
    def queues(
        cls, name: str, addrs: str | Sequence[str], peers: str | Sequence[str], mtu: int, count: int, offload: bool
    ) -> list[TunDevice]:
        """`count` queues of one IFF_MULTI_QUEUE device: the kernel spreads flows over them by hash, each
        queue read by its own process (`--workers`). The device lives while any queue is open."""
        nets = _networks(peers)
        first = cls.__new__(cls)
        first.offload_note = None
        first._attach(name, mtu, offload, multi_queue=True)
        devices = [first]
        try:
            first._configure(name, addrs, nets, mtu)
            for _ in range(count - 1):
                queue = cls.__new__(cls)
                queue.offload_note = None
                queue._attach(first.name, mtu, first.vnet != 0, multi_queue=True)
                devices.append(queue)
        except BaseException:
            for device in devices:
                device.close()
            raise
        return devices

    def _attach(self, name: str, mtu: int, offload: bool, multi_queue: bool) -> None:
        self._tun = self._open(name, offload, multi_queue)
        if offload and self._tun is None:
            self._tun = self._open(name, False, multi_queue)
        self.vnet = VNET_HDR_LEN if offload and self.offload_note is None else 0
        self.gso = self.vnet != 0
        self.name = self._tun.name
        self.mtu = mtu
        self._fd = self._tun.fileno()
        os.set_blocking(self._fd, False)
        self._reader = BatchReader(max_size=65535 if self.vnet else max(mtu, 1500) + 64, vnet=self.vnet)

    def _configure(self, name: str, addrs: str | Sequence[str], nets: list[IpInterface], mtu: int) -> None:
        addrs = [addrs] if isinstance(addrs, str) else addrs
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

    def _open(self, name: str, offload: bool, multi_queue: bool):
        import pytun  # imported here so that tests and tools without TUN never need it

        flags = pytun.IFF_TUN | pytun.IFF_NO_PI | (pytun.IFF_VNET_HDR if offload else 0)
        if multi_queue:
            flags |= pytun.IFF_MULTI_QUEUE
        try:
            tun = pytun.TunTapDevice(name=name, flags=flags)
        except OSError as exc:  # EBUSY: another process holds it; EINVAL: a device of another kind
            busy = " (another program, such as a running tcpstack, has it open: choose another name)"
            reason = f"{exc.strerror or exc}{busy if exc.errno == errno.EBUSY else ''}"
            # (pytun's own refusals, such as a name over 15 characters, carry no errno: EINVAL, as the kernel's)
            raise OSError(exc.errno or errno.EINVAL, f"cannot create TUN device {name}: {reason}") from None
        if offload:
            try:
                fcntl.ioctl(tun.fileno(), TUNSETOFFLOAD, OFFLOADS)
            except OSError as exc:
                tun.close()
                self.offload_note = f"offloads off: the kernel refused TUNSETOFFLOAD ({exc.strerror})"
                return None
        return tun

    def fileno(self) -> int:
        return self._fd

    def read_batch(self) -> PacketBatch:
        return self._reader.read(self._fd)

    def close(self) -> None:
        # the last close of a non-persistent TUN removes the device (with queues: of its last queue, in
        # any process; closing a queue in a process that shares it with a worker only drops this handle)
        self._tun.close()


class SocketPairDevice(_PacketWriter):
    """One end of an AF_UNIX SOCK_SEQPACKET pair: keeps packet boundaries, like TUN."""

    def __init__(self, sock: socket.socket, mtu: int = 1500, offload: bool = False) -> None:
        sock.setblocking(False)
        self._sock = sock
        self.mtu = mtu
        self.name = f"socketpair{sock.fileno()}"
        # with `offload` both ends speak as a TUN with offloads does: virtio_net_hdr first, super-segments
        self.vnet = VNET_HDR_LEN if offload else 0
        self.gso = offload
        self._reader = BatchReader(max_size=65535, vnet=self.vnet)

    @classmethod
    def pair(cls, mtu: int = 1500, offload: bool = False) -> tuple[SocketPairDevice, SocketPairDevice]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for s in (a, b):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        return cls(a, mtu, offload), cls(b, mtu, offload)

    def fileno(self) -> int:
        return self._sock.fileno()

    def read_batch(self) -> PacketBatch:
        return self._reader.read(self._sock.fileno())

    def close(self) -> None:
        self._sock.close()
