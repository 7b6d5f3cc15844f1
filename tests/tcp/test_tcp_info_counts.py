"""tcp_info's byte counts are 64-bit in Linux (tcpi_bytes_received, tcpi_bytes_acked): they keep counting
where sequence numbers wrap."""

from __future__ import annotations

from dataclasses import replace

from stack.tcp.connection import Connection
from stack.tcp.state import State
from stack.tcp.tcp_info import tcp_info
from stack.wire.segment import TcpOptions

from .conftest import CONFIG, IRS, ISS, LOCAL, REMOTE, IssDraws, seg

CHUNK = 60_000
PAST_HALF_THE_SEQUENCE_SPACE = (1 << 31) // CHUNK + 2  # where a signed 32-bit sequence difference fails


def test_established_bytes_received_keeps_counting_past_2_gib(conn_in):
    """RFC 4898 (tcpEStatsAppHCThruOctetsReceived) and Linux: a count, not RCV.NXT - IRS."""
    c = conn_in(State.ESTABLISHED, receive_buffer=1 << 20, receive_buffer_max=1 << 20)
    data = bytes(CHUNK)
    seq = IRS + 1
    for _ in range(PAST_HALF_THE_SEQUENCE_SPACE):
        c.receive_segment(seg(".", seq, ISS + 1, data), 0.0)
        assert len(c.read(-1)) == CHUNK
        c.segments_to_send(0.0)
        seq += CHUNK
    assert tcp_info(c, 0.0)["tcpi_bytes_received"] == PAST_HALF_THE_SEQUENCE_SPACE * CHUNK


def test_established_bytes_acked_keeps_counting_past_2_gib():
    """Linux tcp_snd_una_update: SND.UNA's advance is summed, so a long transfer never reads as 0."""
    config = replace(CONFIG, send_buffer=1 << 22, mss=65_000, window_scaling=True, rng=IssDraws(ISS))
    syn = seg("S", IRS, options=TcpOptions(mss=65_000, wscale=7))
    c = Connection.from_syn(config, LOCAL, REMOTE, syn, 0.0)
    c.segments_to_send(0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1, win=1 << 15), 0.0)  # 4 MB, scaled by 2**7
    data = bytes(1 << 20)
    written = 0
    while written < 1 << 31:
        written += c.send(data, 0.0)
        c.segments_to_send(0.0)
        c.receive_segment(seg(".", IRS + 1, c.tcb.snd_max, win=1 << 15), 0.0)  # everything sent, at once
    while c.tcb.snd_una != (ISS + 1 + written) & 0xFFFFFFFF:  # the rest of the send buffer
        c.segments_to_send(0.0)
        c.receive_segment(seg(".", IRS + 1, c.tcb.snd_max, win=1 << 15), 0.0)
    assert tcp_info(c, 0.0)["tcpi_bytes_acked"] == written
