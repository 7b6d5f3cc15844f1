"""SYN cookies (RFC 4987 §3.6): a SYN,ACK whose ISN carries what the listener needs, so that a full
SYN queue costs no memory. Pure functions; the secret comes from the caller (one per stack).

The layout follows the scheme Linux uses (net/ipv4/syncookies.c), written here from its description,
with one change: the 24 low bits are a MAC over every field rather than Linux's sum of a MAC and the
MSS index, so that an ACK whose sequence or acknowledgment number is off by a little does not pass too.

    ISN = H(K, tuple, SEG.SEQ of the SYN) + (count << 24 | MAC(K, tuple, SEG.SEQ, count, index) << 2 | index)

`count` is a minute counter (8 bits on the wire). The returning ACK (SEG.ACK - 1 = ISN, SEG.SEQ - 1 =
the SYN's SEG.SEQ) is valid when its counter is at most one step old (so a cookie lives under 2 minutes)
and the 22-bit MAC matches; the 2-bit index picks one of the four entries of MSS_TABLE. H makes the
ISN as unpredictable as any other (RFC 6528).

The ISN has no room for window scale or SACK-permitted. When both sides use timestamps (RFC 7323), the
low 6 bits of our TSval carry them, and the peer echoes them in TSecr: 4 bits of the peer's window
shift (15: no window scaling), one bit SACK-permitted, one bit ECN.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from random import Random
from typing import Final, TypeAlias

from stack.wire.addr import packed

MSS_TABLE: Final = (536, 1300, 1440, 1460)  # Linux's IPv4 table: the MSS values peers actually send
MSS_TABLE6: Final = (1220, 1420, 1440, 8940)  # Linux's IPv6 table: MTUs 1280, 1480, 1500 and 9000, less 60
COUNT_SHIFT: Final = 24
INDEX_BITS: Final = 2
MAC_MASK: Final = (1 << (COUNT_SHIFT - INDEX_BITS)) - 1
PERIOD: Final = 60.0  # seconds per counter step
MAX_AGE: Final = 2  # counter steps: a cookie is accepted in the minute it was made and the next one
VALID_FOR: Final = MAX_AGE * PERIOD  # how long after the last cookie sent an ACK is checked as one

TS_BITS: Final = 6
TS_MASK: Final = (1 << TS_BITS) - 1
TS_WSCALE_MASK: Final = 0xF
TS_NO_WSCALE: Final = 0xF  # the peer sent no window scale option
TS_SACK: Final = 1 << 4
TS_ECN: Final = 1 << 5
MAX_WSCALE: Final = 14  # RFC 7323 §2.3

Tuple4: TypeAlias = tuple[int, int, int, int]  # (local ip, local port, remote ip, remote port)


def new_secret(rng: Random | None = None) -> bytes:
    """A stack's cookie key, drawn once when the stack starts (from `rng` when the config gives one)."""
    return rng.randbytes(32) if rng is not None else os.urandom(32)


def _hash(secret: bytes, tuple4: Tuple4, peer_seq: int, *fields: int) -> int:
    """32 bits of a keyed BLAKE2s over the 4-tuple, the peer's ISN and any further fields."""
    rest = struct.pack(f"!I{len(fields)}I", peer_seq, *(f & 0xFFFFFFFF for f in fields))
    if tuple4[2] > 0xFFFFFFFF:  # IPv6 (stack/wire/addr.py)
        local, lport, remote, rport = tuple4
        data = packed(local) + packed(remote) + struct.pack("!HH", lport, rport) + rest
    else:
        data = struct.pack("!IHIH", *tuple4) + rest
    return int.from_bytes(hashlib.blake2s(data, key=secret, digest_size=4).digest(), "big")


def counter(now: float) -> int:
    return int(now // PERIOD)


def mss_index(peer_mss: int | None, table: tuple[int, ...] = MSS_TABLE) -> int:
    """The largest table entry not above the peer's MSS (536 without the option, RFC 9293 §3.7.1)."""
    mss = 536 if peer_mss is None else peer_mss
    index = 0
    for i, value in enumerate(table):
        if value <= mss:
            index = i
    return index


def make_cookie(secret: bytes, tuple4: Tuple4, peer_seq: int, index: int, now: float) -> int:
    """Our ISN for a SYN answered without state; `peer_seq` is the SYN's SEG.SEQ."""
    count = counter(now)
    mac = _hash(secret, tuple4, peer_seq, count, index) & MAC_MASK
    fields = (count & 0xFF) << COUNT_SHIFT | mac << INDEX_BITS | index
    return (_hash(secret, tuple4, peer_seq) + fields) & 0xFFFFFFFF


def check_cookie(secret: bytes, tuple4: Tuple4, peer_seq: int, cookie: int, now: float) -> int | None:
    """The MSS index a cookie carries if it is ours and fresh, else None.

    `cookie` is SEG.ACK - 1 of the returning ACK and `peer_seq` its SEG.SEQ - 1.
    """
    fields = (cookie - _hash(secret, tuple4, peer_seq)) & 0xFFFFFFFF
    count = counter(now)
    age = (count - (fields >> COUNT_SHIFT)) & 0xFF
    if age >= MAX_AGE:
        return None
    index = fields & ((1 << INDEX_BITS) - 1)
    if (fields >> INDEX_BITS) & MAC_MASK != _hash(secret, tuple4, peer_seq, count - age, index) & MAC_MASK:
        return None
    return index


@dataclass(frozen=True, slots=True)
class CookieOptions:
    """What the low bits of a cookie's TSval say about the peer's SYN."""

    wscale: int | None  # the peer's window shift, None without the option
    sack_permitted: bool
    ecn: bool = False


def ts_options(options: CookieOptions) -> int:
    bits = TS_NO_WSCALE if options.wscale is None else options.wscale & TS_WSCALE_MASK
    if options.sack_permitted:
        bits |= TS_SACK
    if options.ecn:
        bits |= TS_ECN
    return bits


def stamp_tsval(ts_now: int, options: CookieOptions) -> int:
    """The latest TSval not after `ts_now` whose low bits are the options (so the clock never runs ahead)."""
    return (ts_now - ((ts_now - ts_options(options)) & TS_MASK)) & 0xFFFFFFFF


def read_tsecr(tsecr: int) -> CookieOptions:
    """The options a returning TSecr carries (stamp_tsval's inverse)."""
    bits = tsecr & TS_MASK
    wscale = bits & TS_WSCALE_MASK
    return CookieOptions(None if wscale == TS_NO_WSCALE else wscale, bool(bits & TS_SACK), bool(bits & TS_ECN))


def ts_offset(secret: bytes, local_ip: int, remote_ip: int) -> int:
    """The timestamp clock offset for a cookie connection: derived, not random, so the ACK can recompute
    the clock the SYN,ACK was stamped with (as Linux derives it from the address pair)."""
    data = packed(local_ip) + packed(remote_ip)
    return int.from_bytes(hashlib.blake2s(data, key=secret, digest_size=4, person=b"tsoff").digest(), "big")
