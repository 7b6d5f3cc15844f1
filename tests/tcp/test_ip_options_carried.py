"""A passive connection whose SYN carried IPv4 options that it sends back in every segment (RFC 1122
§4.2.3.8; Linux keeps them as the socket's inet_opt, their size as icsk_ext_hdr_len): its segments
shrink by as much, so that each still fits the path MTU, and leave one by one, in virtual time."""

from __future__ import annotations

from dataclasses import replace

from stack.tcp.connection import Connection
from stack.tcp.icmp_input import IcmpError, Outcome, icmp_error
from stack.wire.segment import TcpOptions
from tests.tcp.conftest import CONFIG, IRS, ISS, LOCAL, REMOTE, IssDraws, events, seg

OPTIONS = 16  # a record route with room for three addresses, padded


def _established(carried: int, **changes) -> Connection:
    """ESTABLISHED from a SYN offering MSS 1460; `carried` bytes of IP options taken on as it was made."""
    config = replace(CONFIG, rng=IssDraws(ISS), **changes)
    c = Connection.from_syn(config, LOCAL, REMOTE, seg("S", IRS, options=TcpOptions(mss=1460)), 0.0)
    if carried:
        c.carry_ip_options(carried)
    c.segments_to_send(0.0)
    c.receive_segment(seg(".", IRS + 1, ISS + 1), 0.0)
    c.segments_to_send(0.0)
    events(c)
    return c


def test_established_carrying_ip_options_sends_segments_smaller_by_their_size():
    """RFC 1122 §4.2.3.8, Linux's tcp_mtu_to_mss: the peer's MSS of 1460 less 16 bytes of IP options."""
    c = _established(OPTIONS)
    c.send(bytes(4000), 0.0)
    assert [len(s.payload) for s in c.segments_to_send(0.0)] == [1444, 1444, 1112]


def test_established_carrying_ip_options_sends_no_super_segments():
    """Each segment is built with the options (the device's TSO would copy them into every piece, but the
    stack builds such segments itself): runs of full segments leave as separate segments."""
    assert _tso_pieces(_established(0, tso_max_bytes=65536)) == [2, 1]  # without options: one run of two
    assert _tso_pieces(_established(OPTIONS, tso_max_bytes=65536)) == [1, 1, 1]


def _tso_pieces(c: Connection) -> list[int]:
    c.send(bytes(4000), 0.0)
    return [(len(s.payload) - 1) // s.gso + 1 if s.gso else 1 for s in c.segments_to_send(0.0)]


def test_established_carrying_ip_options_frag_needed_fits_segment_and_options_in_the_mtu():
    """RFC 1191 §6.3: a next-hop MTU of 1000 leaves 1000 - 40 - 16 bytes for a segment's data."""
    c = _established(OPTIONS)
    c.send(bytes(4000), 0.0)
    c.segments_to_send(0.0)
    assert icmp_error(c, IcmpError(3, 4, ISS + 1, 1000), 0.1) is Outcome.PMTU_REDUCED
    assert c.tcb.snd_mss == 944
