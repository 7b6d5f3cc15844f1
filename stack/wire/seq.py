"""Sequence-number arithmetic modulo 2**32 (RFC 9293 §3.4).

These are the only sequence comparisons in the stack: never compare raw ints with < or >.
"""

from typing import Final

MOD: Final = 1 << 32
_HALF: Final = 1 << 31
_MASK: Final = MOD - 1


def seq_add(a: int, n: int) -> int:
    return (a + n) & _MASK


def seq_sub(a: int, b: int) -> int:
    """Signed distance a - b, in [-2**31, 2**31)."""
    d = (a - b) & _MASK
    return d - MOD if d >= _HALF else d


# Each comparison works on d = (a - b) mod 2**32 itself, without calling seq_sub: they run for nearly every
# segment in and out, and a Python call costs more than the arithmetic.
def seq_lt(a: int, b: int) -> bool:
    return (a - b) & _MASK >= _HALF


def seq_le(a: int, b: int) -> bool:
    d = (a - b) & _MASK
    return d == 0 or d >= _HALF


def seq_gt(a: int, b: int) -> bool:
    return 0 < (a - b) & _MASK < _HALF


def seq_ge(a: int, b: int) -> bool:
    return (a - b) & _MASK < _HALF


def seq_max(a: int, b: int) -> int:
    return a if seq_ge(a, b) else b


def seq_min(a: int, b: int) -> int:
    return a if seq_le(a, b) else b


def in_window(x: int, start: int, length: int) -> bool:
    """start <= x < start + length, modulo 2**32."""
    return 0 <= ((x - start) & _MASK) < length
