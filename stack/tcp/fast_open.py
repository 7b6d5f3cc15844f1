"""TCP Fast Open's server side (RFC 7413) as Linux keeps it: the cookie, the settings and the checks.

The cookie is Linux's (tcp_fastopen.c, __tcp_fastopen_cookie_gen_cipher): SipHash-2-4 of the SYN's source
and destination addresses, keyed with 128 bits, its 64-bit value in little-endian byte order. A stack keeps
a primary key and optionally a backup one (a cookie made with the backup key is still good, and its SYN,ACK
hands out the primary's), as `net.ipv4.tcp_fastopen_key` sets them.
"""

from __future__ import annotations

import os
from random import Random
from typing import Final

from stack.wire.addr import V6

# net.ipv4.tcp_fastopen's bits (Linux include/net/tcp.h)
CLIENT_ENABLE: Final = 0x1
SERVER_ENABLE: Final = 0x2
SERVER_COOKIE_NOT_REQD: Final = 0x200  # data in a SYN is taken without a cookie
SERVER_WO_SOCKOPT1: Final = 0x400  # every listener takes fast open, its queue as long as its backlog

# Connection.fast_open's bits
CHILD: Final = 1  # a listener's child that took a fast open
SYN_DATA_ACKED: Final = 2  # its SYN,ACK acknowledged data of the SYN

KEY_SIZE: Final = 16
_MASK: Final = 0xFFFFFFFFFFFFFFFF


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _MASK


def siphash24(k0: int, k1: int, data: bytes) -> int:
    """SipHash-2-4 (Aumasson and Bernstein) of `data` under the key (k0, k1), as Linux's siphash()."""
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    tail = len(data) % 8
    words = [int.from_bytes(data[i : i + 8], "little") for i in range(0, len(data) - tail, 8)]
    words.append(((len(data) & 0xFF) << 56) | int.from_bytes(data[len(data) - tail :], "little"))

    def rounds(n: int) -> None:
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & _MASK
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & _MASK
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & _MASK
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & _MASK
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)

    for m in words:
        v3 ^= m
        rounds(2)
        v0 ^= m
    v2 ^= 0xFF
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def cookie(key: bytes, src: int, dst: int) -> bytes:
    """The cookie for a SYN from `src` to `dst` (addresses as stack/wire/addr.py holds them) under `key`."""
    if src > 0xFFFFFFFF:
        data = (src & ~V6).to_bytes(16, "big") + (dst & ~V6).to_bytes(16, "big")
    else:
        data = src.to_bytes(4, "big") + dst.to_bytes(4, "big")
    k0 = int.from_bytes(key[:8], "little")
    k1 = int.from_bytes(key[8:16], "little")
    return siphash24(k0, k1, data).to_bytes(8, "little")


class LazyKey:
    """A stack's random key where none is configured, made on first use as Linux's (tcp_fastopen_init_key_once):
    a seeded run (`rng`) draws from its randomness only once it uses fast open."""

    def __init__(self, rng: Random | None) -> None:
        self._rng = rng
        self._key: bytes | None = None

    def get(self) -> bytes:
        if self._key is None:
            rng = self._rng
            self._key = rng.randbytes(KEY_SIZE) if rng is not None else os.urandom(KEY_SIZE)
        return self._key


def parse_keys(text: str) -> tuple[bytes, ...]:
    """`net.ipv4.tcp_fastopen_key`'s form, a primary and optionally a backup key, each four 32-bit hex
    words joined by "-" ("a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4[,...]"): the keys as Linux stores them (each
    word little-endian). Raises ValueError for anything else."""
    keys = []
    for part in text.strip().split(","):
        words = part.split("-")
        if len(words) != 4 or not all(1 <= len(w) <= 8 for w in words):
            raise ValueError(f"not a fast open key: {part!r} (four hex words joined by '-')")
        keys.append(b"".join(int(w, 16).to_bytes(4, "little") for w in words))
    if not 1 <= len(keys) <= 2:
        raise ValueError("a primary fast open key and at most one backup")
    return tuple(keys)


def format_keys(keys: tuple[bytes, ...]) -> str:
    """The keys as the sysctl shows them (parse_keys' form)."""
    return ",".join(
        "-".join(f"{int.from_bytes(k[i : i + 4], 'little'):08x}" for i in range(0, KEY_SIZE, 4)) for k in keys
    )
