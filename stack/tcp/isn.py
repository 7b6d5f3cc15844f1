"""RFC 6528 initial sequence numbers: ISN = M + F(localip, localport, remoteip, remoteport, secretkey)."""

from __future__ import annotations

import hashlib
import os
import struct
from random import Random
from typing import Final

from stack.wire.addr import packed

_SECRET: Final = os.urandom(16)


def initial_sequence_number(
    local: tuple[int, int], remote: tuple[int, int], now: float, rng: Random | None = None
) -> int:
    """M is a 4-microsecond timer (RFC 6528 §3); F is a keyed hash of the 4-tuple, or a draw from `rng`
    when the config gives one (a repeatable run)."""
    m = int(now * 250_000)
    if rng is not None:
        return (m + rng.getrandbits(32)) & 0xFFFFFFFF
    if remote[0] > 0xFFFFFFFF:  # IPv6 (stack/wire/addr.py)
        tuple_bytes = packed(local[0]) + packed(remote[0]) + struct.pack("!HH", local[1], remote[1])
    else:
        tuple_bytes = struct.pack("!IHIH", local[0], local[1], remote[0], remote[1])
    f = int.from_bytes(hashlib.blake2s(tuple_bytes, key=_SECRET, digest_size=4).digest(), "big")
    return (m + f) & 0xFFFFFFFF
