"""Receive memory under small segments in any order: whatever the receiver collapses, prunes or refuses to
make room (Linux tcp_prune_queue), the application reads the peer's bytes exactly, once the peer sends
again what was not acknowledged (RFC 2018 §8: the sender keeps all of it), and the memory charged is
always what the packets held cost. TCPSTACK_FUZZ_EXAMPLES raises the number of examples."""

from __future__ import annotations

import os
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tcp.conftest import CONFIG, IRS, ISS, check_receive_memory, seg
from tests.tcp.test_header_prediction import established

EXAMPLES = int(os.environ.get("TCPSTACK_FUZZ_EXAMPLES", "150"))
STREAM = bytes((i * 7 + i // 251) % 256 for i in range(4000))
RESEND = 500  # the peer's resends of what is not acknowledged, in order


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    receive_buffer=st.sampled_from([1000, 2000, 4000]),
    segments=st.lists(
        st.tuples(st.integers(0, 3000), st.integers(1, 300), st.booleans()),
        max_size=60,
    ),
)
def test_established_small_segments_in_any_order_lose_no_byte(
    receive_buffer: int, segments: list[tuple[int, int, bool]]
) -> None:
    """RFC 9293 §3.10.7.4: the text reaches the application in order and whole, whatever was dropped to
    make room; RFC 2018 §8: what was held and then dropped comes again from the sender."""
    c = established(replace(CONFIG, receive_buffer=receive_buffer, receive_buffer_locked=True), ts=False, wscale=False)
    read = bytearray()
    for offset, length, read_now in segments:
        c.receive_segment(seg(".", IRS + 1 + offset, ISS + 1, STREAM[offset : offset + length]), 0.0)
        c.segments_to_send(0.0)
        check_receive_memory(c)
        if read_now:
            read += c.read(-1)
            c.segments_to_send(0.0)
    for _ in range(4 * len(STREAM) // RESEND):
        read += c.read(-1)
        c.segments_to_send(0.0)
        if len(read) == len(STREAM):
            break
        offset = len(read)
        c.receive_segment(seg(".", IRS + 1 + offset, ISS + 1, STREAM[offset : offset + RESEND]), 0.0)
        check_receive_memory(c)
    assert bytes(read) == STREAM
