"""Internet checksum (RFC 1071) and its incremental update (RFC 1624), computed by the C fast path."""

from __future__ import annotations

import struct

from stack._fast import lib


def internet_checksum(data: bytes, initial: int = 0) -> int:
    return lib.fast_checksum(data, len(data), initial)


def fill_ipv4_checksum(header: bytearray) -> None:
    """An IPv4 header's checksum field computed anew over the header (RFC 791 §3.1) after it changed."""
    struct.pack_into("!H", header, 10, 0)
    struct.pack_into("!H", header, 10, internet_checksum(bytes(header)))


def checksum_update16(checksum: int, old_word: int, new_word: int) -> int:
    """The checksum after one 16-bit word changed from old_word to new_word (RFC 1624 eqn. 3)."""
    return lib.fast_checksum_update16(checksum, old_word, new_word)


def tcp_checksum(src: int, dst: int, tcp: bytes) -> int:
    """Checksum over the TCP pseudo-header (RFC 9293 §3.1) and the segment; 0 when verifying a valid one."""
    return lib.fast_tcp_checksum(src, dst, tcp, len(tcp))
