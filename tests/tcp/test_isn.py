"""RFC 6528 initial sequence numbers: ISN = M + F(4-tuple, secret), M a 4-microsecond clock."""

from random import Random

from stack.tcp.config import TcpConfig
from stack.tcp.connection import Connection
from stack.tcp.isn import initial_sequence_number

A = (0x0A000001, 40000)
B = (0x0A000002, 80)


def test_isn_same_tuple_advances_with_the_4_microsecond_clock():
    """RFC 6528 §3: M is incremented every 4 microseconds, so one second adds 250000."""
    first = initial_sequence_number(A, B, 10.0)
    assert (initial_sequence_number(A, B, 11.0) - first) % 2**32 == 250_000


def test_isn_different_tuples_get_unrelated_offsets():
    """RFC 6528 §3: F hashes the 4-tuple, so another connection's ISN reveals nothing about ours."""
    isns = {initial_sequence_number(A, (B[0], port), 0.0) for port in range(80, 90)}
    assert len(isns) == 10


def test_isn_fits_in_32_bits():
    assert 0 <= initial_sequence_number(A, B, 1e9) < 2**32


def _syn_tsval(seed: int) -> int:
    config = TcpConfig(rng=Random(seed))
    return Connection.connect(config, A, B, 5.0).segments_to_send(5.0)[0].options.timestamps[0]


def test_isn_seeded_rng_gives_the_same_draws_every_time():
    """A seeded rng in the config stands for the secret (F) and the timestamp offset: a repeatable run;
    another seed draws others."""
    assert initial_sequence_number(A, B, 5.0, Random(7)) == initial_sequence_number(A, B, 5.0, Random(7))
    assert initial_sequence_number(A, B, 5.0, Random(7)) != initial_sequence_number(A, B, 5.0, Random(8))
    assert _syn_tsval(7) == _syn_tsval(7) != _syn_tsval(8)


def test_isn_seeded_draw_still_advances_with_the_clock():
    """RFC 6528 §3: M is added to the draw as it is to the keyed hash."""
    later = initial_sequence_number(A, B, 11.0, Random(3))
    assert (later - initial_sequence_number(A, B, 10.0, Random(3))) % 2**32 == 250_000
