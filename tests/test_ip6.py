"""IPv6 input (RFC 8200, RFC 4443, RFC 6946, RFC 8201) through the Ip6Layer and the demux, scapy as the oracle."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import (
    HBHOptUnknown,
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6MLReport2,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RS,
    ICMPv6PacketTooBig,
    ICMPv6ParamProblem,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    RouterAlert,
    defragment6,
    fragment6,
)

from stack import martians
from stack.demux import Demux
from stack.fragments import DATAGRAM_OVERHEAD, FRAGMENT_OVERHEAD
from stack.ip import IpLayer
from stack.ip6 import Ip6Layer, flow_label
from stack.ip6 import fragment6 as our_fragment6
from stack.tcp.config import TcpConfig
from stack.tcp.state import State
from stack.wire import addr
from stack.wire.codec import IpPacket, TcpPacket, decode, encode_tcp
from stack.wire.segment import Flags, Segment, TcpOptions

US, PEER = "fd3d:fa7b:d17d::2", "fd3d:fa7b:d17d::1"
US6, PEER6 = addr.parse(US), addr.parse(PEER)


def _layer() -> tuple[Ip6Layer, Demux]:
    demux = Demux(TcpConfig())
    demux.listen((addr.ANY, 80))
    return Ip6Layer(demux, frozenset({US6}), IpLayer(demux, 0x0A070002)), demux


def _receive(layer: Ip6Layer, pkt, now: float = 0.0):
    got = decode(bytes(pkt))
    assert isinstance(got, IpPacket), got
    return layer.receive(got, now)


def _syn(sport: int = 40000):
    return TCP(sport=sport, dport=80, seq=1000, flags="S", options=[("MSS", 1440)])


def test_any_echo_request_gets_reply_with_same_id_seq_data():
    """RFC 4443 §4.2: the reply carries the request's identifier, sequence number and data."""
    layer, _ = _layer()
    _, reply = _receive(layer, IPv6(src=PEER, dst=US) / ICMPv6EchoRequest(id=0x1234, seq=7, data=b"ping data"))
    got = IPv6(reply)
    assert (got.src, got.dst, got.payload.type, got.payload.id, got.payload.seq) == (US, PEER, 129, 0x1234, 7)
    assert got.payload.data == b"ping data"
    sent = got.payload.cksum
    del got.payload.cksum
    assert IPv6(bytes(got)).payload.cksum == sent


def test_any_echo_reply_keeps_the_code_and_traffic_class():
    """Linux's icmpv6_echo_reply answers with the request's code and traffic class (RFC 4443 §4.2 names
    code 0 only)."""
    layer, _ = _layer()
    request = IPv6(src=PEER, dst=US, tc=0x10) / ICMPv6EchoRequest(code=1, id=3, seq=4, data=b"x")
    got = IPv6(_receive(layer, request)[1])
    assert (got.tc, got.payload.type, got.payload.code) == (0x10, 129, 1)


def test_any_icmp6_message_carries_a_flow_label():
    """RFC 6437 §3: a flow label from the addresses, never 0, as Linux labels its ICMPv6 messages."""
    layer, _ = _layer()
    reply = IPv6(_receive(layer, IPv6(src=PEER, dst=US) / ICMPv6EchoRequest())[1])
    problem = IPv6(_receive(layer, IPv6(src=PEER, dst=US, nh=253) / b"12345678")[1])
    assert reply.fl == problem.fl == flow_label((US6, 0), (PEER6, 0)) != 0


def test_any_echo_to_all_nodes_answered_from_our_address():
    """RFC 4443 §4.2: an echo request to a group we are in is answered, from a unicast address of ours."""
    layer, _ = _layer()
    got = IPv6(_receive(layer, IPv6(src=PEER, dst="ff02::1") / ICMPv6EchoRequest(id=9, seq=1))[1])
    assert (got.src, got.dst, got.payload.type, got.payload.id) == (US, PEER, 129, 9)


def test_any_echo_to_a_group_we_are_not_in_not_answered():
    """On a TUN link we are in the all-nodes groups only, as Linux joins no solicited-node group there."""
    layer, _ = _layer()
    for group in ("ff02::1:ff00:2", "ff02::2", "ff05::1"):
        assert _receive(layer, IPv6(src=PEER, dst=group) / ICMPv6EchoRequest()) == (None, None)


def test_any_neighbour_solicitation_for_our_address_gets_solicited_advertisement():
    """RFC 4861 §7.2.4: Solicited set, to the soliciting node, hop limit 255; Override clear for a
    solicitation to our own address, as Linux's ndisc_recv_ns; no link-layer option (TUN has none)."""
    layer, _ = _layer()
    ns = IPv6(src=PEER, dst=US, hlim=255) / ICMPv6ND_NS(tgt=US)
    got = IPv6(_receive(layer, ns)[1])
    na = got[ICMPv6ND_NA]
    assert (got.src, got.dst, got.hlim, got.fl) == (US, PEER, 255, 0)
    assert (na.S, na.O, na.R, na.tgt, bytes(na.payload)) == (1, 0, 0, US, b"")
    assert layer.counters["Icmp6OutNeighborAdvertisements"] == 1


def test_any_neighbour_solicitation_to_all_nodes_gets_advertisement_with_override():
    """RFC 4861 §7.2.4, as Linux: a solicitation sent to a group is answered with Override set."""
    layer, _ = _layer()
    got = IPv6(_receive(layer, IPv6(src=PEER, dst="ff02::1", hlim=255) / ICMPv6ND_NS(tgt=US))[1])
    assert (got[ICMPv6ND_NA].S, got[ICMPv6ND_NA].O) == (1, 1)


def test_any_neighbour_solicitation_invalid_or_not_ours_not_answered():
    """RFC 4861 §7.1.1: hop limit 255 or it came from off the link; a target of someone else's is theirs."""
    layer, _ = _layer()
    assert _receive(layer, IPv6(src=PEER, dst=US, hlim=64) / ICMPv6ND_NS(tgt=US)) == (None, None)
    assert _receive(layer, IPv6(src=PEER, dst=US, hlim=255) / ICMPv6ND_NS(tgt="fd00::9")) == (None, None)
    assert layer.counters["Icmp6OutNeighborAdvertisements"] == 0


def test_any_icmp6_bad_checksum_dropped_and_counted():
    """RFC 4443 §2.4: a message with a bad checksum is discarded."""
    layer, _ = _layer()
    assert _receive(layer, IPv6(src=PEER, dst=US) / ICMPv6EchoRequest(cksum=0x1111)) == (None, None)
    assert layer.counters["Icmp6InCsumErrors"] == 1


def test_link_router_solicitation_and_mld_report_counted_without_reply():
    """RFC 4861 §6.3.7 and RFC 3810 §5.2: the kernel's link chatter to multicast groups is counted as such."""
    layer, _ = _layer()
    rs = IPv6(src="fe80::1", dst="ff02::2", hlim=255) / ICMPv6ND_RS()
    mld = IPv6(src="fe80::1", dst="ff02::16", hlim=1) / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport2()
    assert _receive(layer, rs) == (None, None)
    assert _receive(layer, mld) == (None, None)
    counters = layer.counters
    assert (counters["Icmp6InRouterSolicits"], counters["Icmp6InMLDv2Reports"], counters["Icmp6InErrors"]) == (1, 1, 0)


def test_any_unknown_next_header_gets_parameter_problem_code_1():
    """RFC 8200 §4: an unrecognized next header -> Parameter Problem code 1 pointing at its field."""
    layer, _ = _layer()
    pkt = IPv6(src=PEER, dst=US) / UDP(sport=5, dport=53) / b"query"
    _, reply = _receive(layer, pkt)
    problem = IPv6(reply)[ICMPv6ParamProblem]
    assert (problem.code, problem.ptr) == (1, 6)
    assert bytes(problem.payload) == bytes(pkt)


def test_any_unknown_next_header_to_multicast_is_not_answered():
    """RFC 4443 §2.4 (e.3): no error to a packet sent to a multicast address."""
    layer, _ = _layer()
    assert _receive(layer, IPv6(src=PEER, dst="ff02::fb") / UDP(sport=5353, dport=5353)) == (None, None)


def test_listen_destination_option_skip_action_delivers_syn():
    """RFC 8200 §4.2: an unknown option whose top bits are 00 is skipped; the SYN behind it reaches TCP."""
    layer, demux = _layer()
    opts = IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x1E, optdata=b"ab")])
    conn, reply = _receive(layer, IPv6(src=PEER, dst=US) / opts / _syn())
    assert reply is None and conn is not None and conn.state is State.SYN_RECEIVED
    assert conn.local == (US6, 80) and conn.remote == (PEER6, 40000)


def test_any_unknown_option_action_10_gets_parameter_problem_code_2():
    """RFC 8200 §4.2: action 10 discards the packet and points a Parameter Problem (code 2) at the option."""
    layer, demux = _layer()
    opts = IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x9E, optdata=b"ab")])
    conn, reply = _receive(layer, IPv6(src=PEER, dst=US) / opts / _syn())
    problem = IPv6(reply)[ICMPv6ParamProblem]
    assert conn is None and not demux.connections
    assert (problem.code, problem.ptr) == (2, 42)


def test_any_routing_header_with_segments_left_gets_parameter_problem_code_0():
    """RFC 8200 §4.4: we route for nobody; segments left > 0 -> Parameter Problem at the routing type."""
    layer, _ = _layer()
    routing = IPv6ExtHdrRouting(addresses=["fd00::9"], segleft=1)
    _, reply = _receive(layer, IPv6(src=PEER, dst=US) / routing / _syn())
    problem = IPv6(reply)[ICMPv6ParamProblem]
    assert (problem.code, problem.ptr) == (0, 42)


@pytest.mark.parametrize("segments_left", [0, 1])
def test_any_segment_routing_header_dropped_unanswered(segments_left):
    """RFC 8754: a node without segment routing, as Linux by default (seg6_enabled = 0), drops a packet with
    a segment routing header, segments left or not, and answers nothing."""
    layer, demux = _layer()
    routing = IPv6ExtHdrRouting(type=4, addresses=["fd00::9"], segleft=segments_left)
    assert _receive(layer, IPv6(src=PEER, dst=US) / routing / _syn()) == (None, None)
    assert not demux.connections and layer.counters["Ip6InDiscards"] == 1


def test_listen_routing_header_with_no_segments_left_is_ignored():
    """RFC 8200 §4.4: segments left 0 -> ignore the header and go on to the next one."""
    layer, _ = _layer()
    conn, _ = _receive(layer, IPv6(src=PEER, dst=US) / IPv6ExtHdrRouting(addresses=["fd00::9"], segleft=0) / _syn())
    assert conn is not None and conn.state is State.SYN_RECEIVED


def test_any_hop_by_hop_not_first_gets_parameter_problem_code_1():
    """RFC 8200 §4.3: Hop-by-Hop only immediately after the IPv6 header."""
    layer, _ = _layer()
    pkt = IPv6(src=PEER, dst=US) / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / _syn()
    _, reply = _receive(layer, pkt)
    problem = IPv6(reply)[ICMPv6ParamProblem]
    assert (problem.code, problem.ptr) == (1, 40)


def test_any_too_long_header_chain_dropped():
    layer, _ = _layer()
    pkt = IPv6(src=PEER, dst=US)
    for _ in range(20):
        pkt = pkt / IPv6ExtHdrDestOpt()
    assert _receive(layer, pkt / _syn()) == (None, None)
    assert layer.counters["Ip6InHdrErrors"] == 1


def test_listen_fragmented_syn_reassembled_and_answered():
    """RFC 8200 §4.5: the fragments of a SYN with data are put back together before TCP sees them."""
    layer, _ = _layer()
    whole = IPv6(src=PEER, dst=US) / IPv6ExtHdrFragment(id=77) / _syn() / (b"x" * 2000)
    pieces = fragment6(whole, 1280)
    assert len(pieces) == 2
    assert _receive(layer, pieces[1]) == (None, None)
    conn, _ = _receive(layer, pieces[0])
    assert conn is not None and conn.state is State.SYN_RECEIVED
    assert layer.counters["ReasmOKs"] == 1


def test_any_overlapping_fragments_discard_datagram():
    """RFC 5722: overlapping fragments discard the whole datagram."""
    layer, _ = _layer()
    head = IPv6(src=PEER, dst=US) / IPv6ExtHdrFragment(id=5, nh=6, offset=0, m=1) / (b"a" * 64)
    overlap = IPv6(src=PEER, dst=US) / IPv6ExtHdrFragment(id=5, nh=6, offset=4, m=0) / (b"b" * 64)
    _receive(layer, head)
    assert _receive(layer, overlap) == (None, None)
    assert layer.counters["ReasmOverlaps"] == 1


def test_listen_atomic_fragment_processed_alone():
    """RFC 6946 §4: a fragment header with offset 0 and M=0 is a whole packet, even while fragments with
    the same identification wait for reassembly."""
    layer, _ = _layer()
    pending = IPv6(src=PEER, dst=US) / IPv6ExtHdrFragment(id=9, nh=6, offset=0, m=1) / (b"a" * 64)
    _receive(layer, pending)
    conn, _ = _receive(layer, IPv6(src=PEER, dst=US) / IPv6ExtHdrFragment(id=9, offset=0, m=0) / _syn())
    assert conn is not None and conn.state is State.SYN_RECEIVED
    assert layer.counters["Ip6AtomicFragments"] == 1 and len(layer.fragments) == 1


def _established(layer: Ip6Layer, demux: Demux):
    """An active open over IPv6 to PEER:80, ESTABLISHED, with two full segments in flight."""
    conn = demux.connect(US6, (PEER6, 80), 0.0)
    (syn,) = conn.segments_to_send(0.0)
    assert syn.options.mss == 1440  # RFC 8200 §8.3: MTU 1500 - 60
    synack = Segment(80, conn.local[1], 5000, syn.seq + 1, Flags.SYN | Flags.ACK, 65535, b"", syn.options)
    demux.segment_arrives(PEER6, US6, synack, 0.01)
    assert conn.state is State.ESTABLISHED
    conn.send(b"z" * 4000, 0.02)
    flight = conn.segments_to_send(0.02)
    return conn, flight


def _too_big_about_echo_reply(layer: Ip6Layer, mtu: int, reply_from: str = US):
    reply = IPv6(src=reply_from, dst=PEER) / ICMPv6EchoReply(data=b"r" * 1452)
    return _receive(layer, IPv6(src="fd3d:fa7b:d17d::fe", dst=US) / ICMPv6PacketTooBig(mtu=mtu) / bytes(reply)[:1232])


def test_any_packet_too_big_about_an_echo_reply_lowers_the_path_mtu_to_its_destination():
    """RFC 8201 §4: the MTU holds for the next packets there (never below 1280); as Linux's icmpv6_err, only
    ever lower, and shared with TCP's new connections there (the route's, in Linux)."""
    layer, demux = _layer()
    assert _too_big_about_echo_reply(layer, 1400) == (None, None)
    assert demux.learned_mtu(PEER6, 0.0) == 1400
    _too_big_about_echo_reply(layer, 1480)
    assert demux.learned_mtu(PEER6, 0.0) == 1400
    _too_big_about_echo_reply(layer, 600)
    assert demux.learned_mtu(PEER6, 0.0) == 1280
    assert demux.learned_mtu(PEER6, 600.0) == 0  # ten minutes later the link's MTU is tried again


def test_any_packet_too_big_about_someone_elses_packet_ignored():
    """A Packet Too Big quoting a packet we did not send teaches nothing."""
    layer, demux = _layer()
    _too_big_about_echo_reply(layer, 1280, reply_from="fd3d:fa7b:d17d::9")
    assert demux.learned_mtu(PEER6, 0.0) == 0


def test_established_packet_too_big_lowers_mss_to_mtu_minus_60():
    """RFC 8201 §4/§5.4: a Packet Too Big quoting our segment lowers the MSS to MTU - 60 (less options)."""
    layer, demux = _layer()
    conn, flight = _established(layer, demux)
    quoted = encode_tcp(US6, PEER6, flight[0])
    ptb = IPv6(src="fd00::99", dst=US) / ICMPv6PacketTooBig(mtu=1400) / quoted
    touched, _ = _receive(layer, ptb, 0.03)
    assert touched is conn
    assert conn.tcb.snd_mss == 1400 - 60 - 12
    assert demux.counters["TCPPmtuReductions"] == 1


def test_established_packet_too_big_below_1280_stops_at_1280():
    """RFC 8201 §4: never reduce the path MTU below the IPv6 minimum of 1280 (no atomic fragments, RFC 8021)."""
    layer, demux = _layer()
    conn, flight = _established(layer, demux)
    ptb = IPv6(src="fd00::99", dst=US) / ICMPv6PacketTooBig(mtu=600) / encode_tcp(US6, PEER6, flight[0])
    _receive(layer, ptb, 0.03)
    assert conn.tcb.snd_mss == 1280 - 60 - 12


def test_established_packet_too_big_out_of_window_ignored():
    """RFC 5927 §4.1: the quoted sequence number must lie in SND.UNA..SND.MAX."""
    layer, demux = _layer()
    conn, flight = _established(layer, demux)
    stale = Segment(flight[0].src_port, 80, flight[0].seq - 100000, 0, Flags.ACK, 1000, b"x" * 1200)
    ptb = IPv6(src="fd00::99", dst=US) / ICMPv6PacketTooBig(mtu=1300) / encode_tcp(US6, PEER6, stale)
    _receive(layer, ptb, 0.03)
    assert conn.tcb.snd_mss == 1440 - 12 and demux.counters["OutOfWindowIcmps"] == 1


@pytest.mark.parametrize(("code", "err", "reverts"), [(0, errno.ENETUNREACH, True), (3, errno.EHOSTUNREACH, False)])
def test_established_destination_unreachable_as_linux_takes_it(code, err, reverts):
    """Linux icmpv6_err_convert and tcp_v6_err: no route (0) is ENETUNREACH and reverts one RTO backoff
    (RFC 6069 §4); address unreachable (3) is EHOSTUNREACH and reverts nothing."""
    layer, demux = _layer()
    conn, flight = _established(layer, demux)
    now = 0.03
    while conn.rto.backoff < 2:  # (a loss probe first) two retransmission timeouts back the timer off twice
        now = conn.next_deadline()
        conn.handle_timer(now)
        conn.segments_to_send(now)
    error = IPv6(src="fd00::99", dst=US) / ICMPv6DestUnreach(code=code) / encode_tcp(US6, PEER6, flight[0])
    _receive(layer, error, now + 0.01)
    assert (conn.soft_error, conn.rto.backoff) == (err, 1 if reverts else 2)


def test_syn_sent_port_unreachable_refuses_connection():
    """RFC 4443 §3.1 code 4 is ICMPv4 port unreachable (RFC 7915 §5.2): a hard error in SYN-SENT."""
    layer, demux = _layer()
    conn = demux.connect(US6, (PEER6, 81), 0.0)
    (syn,) = conn.segments_to_send(0.0)
    error = IPv6(src=PEER, dst=US) / ICMPv6DestUnreach(code=4) / encode_tcp(US6, PEER6, syn)
    _receive(layer, error, 0.01)
    assert conn.state is State.CLOSED


def test_syn_sent_icmp6_quoting_another_source_unmatched():
    layer, demux = _layer()
    conn = demux.connect(US6, (PEER6, 81), 0.0)
    (syn,) = conn.segments_to_send(0.0)
    error = IPv6(src=PEER, dst=US) / ICMPv6DestUnreach(code=4) / encode_tcp(PEER6, US6, syn)
    _receive(layer, error, 0.01)
    assert conn.state is State.SYN_SENT and layer.counters["IcmpUnmatched"] == 1


def test_flow_label_stable_per_connection_nonzero_and_differs_across_connections():
    """RFC 6437 §3: the same label on every packet of a flow, from a hash, never 0 for a labelled flow."""
    a = flow_label((US6, 80), (PEER6, 40000))
    assert a == flow_label((US6, 80), (PEER6, 40000)) and 0 < a <= 0xFFFFF
    labels = {flow_label((US6, 80), (PEER6, port)) for port in range(40000, 40064)}
    assert len(labels) > 60


def test_listen_synack_over_ipv6_carries_mss_1440():
    """RFC 8200 §8.3: a child over IPv6 offers MTU - 60."""
    _, demux = _layer()
    syn = decode(bytes(IPv6(src=PEER, dst=US) / _syn()))
    assert isinstance(syn, TcpPacket)
    child, _ = demux.segment_arrives(syn.src, syn.dst, syn.segment, 0.0)
    (synack,) = child.segments_to_send(0.0)
    assert synack.options.mss == 1440


def test_listen_bound_to_one_family_refuses_the_other_with_rst():
    """A listener bound to 0.0.0.0 takes IPv4 only, one bound to :: IPv6 only (asyncio's V6ONLY listeners)."""
    demux = Demux(TcpConfig())
    demux.listen((addr.ANY4, 80))
    demux.listen((addr.ANY6, 81))
    syn = Segment(40000, 80, 1000, 0, Flags.SYN, 65535)
    conn, rst = demux.segment_arrives(PEER6, US6, syn, 0.0)
    assert conn is None and rst is not None and rst.flags & Flags.RST
    conn, _ = demux.segment_arrives(0x0A070001, 0x0A070002, syn, 0.0)
    assert conn is not None
    conn, _ = demux.segment_arrives(PEER6, US6, Segment(40000, 81, 1000, 0, Flags.SYN, 65535), 0.0)
    assert conn is not None and conn.local == (US6, 81)
    conn, rst = demux.segment_arrives(0x0A070001, 0x0A070002, Segment(40001, 81, 1000, 0, Flags.SYN, 65535), 0.0)
    assert conn is None and rst is not None


def test_listen_syn_cookie_over_ipv6_keeps_minimum_mtu_mss():
    """SYN cookies over IPv6 carry the MSS from Linux's IPv6 table: a peer at the 1280-byte minimum MTU
    (MSS 1220) keeps 1220, where the IPv4 table would round it down to 536."""
    demux = Demux(TcpConfig(syncookies=2, timestamps=False))
    demux.listen((addr.ANY, 80))
    syn = Segment(40000, 80, 1000, 0, Flags.SYN, 65535, b"", TcpOptions(mss=1220))
    conn, synack = demux.segment_arrives(PEER6, US6, syn, 0.0)
    assert conn is None and synack is not None and synack.flags == Flags.SYN | Flags.ACK
    assert synack.options.mss == 1440
    ack = Segment(40000, 80, 1001, synack.seq + 1, Flags.ACK, 65535)
    child, _ = demux.segment_arrives(PEER6, US6, ack, 0.1)
    assert child is not None and child.state is State.ESTABLISHED
    assert child.tcb.snd_mss == 1220


def test_any_martian_ipv6_sources_dropped_by_kind():
    """RFC 4291 §2.5.2, §2.5.3, §2.7: ::, ::1 and multicast are never sources; our own address as the
    source is the LAND attack. A unicast peer and link-local sources pass."""
    check = martians.SourceCheck(0x0A070002, "10.7.0.1/24", others=[US6])
    cases = {
        "::": martians.ZERONET,
        "::1": martians.LOOPBACK,
        "ff02::1": martians.MULTICAST,
        "ff0e::5": martians.MULTICAST,
        US: martians.OWN_ADDRESS,
    }
    for text, kind in cases.items():
        src = addr.parse(text)
        assert check.martian(src) and check.reason(src) == kind, text
    for text in (PEER, "fe80::1", "2001:db8::7"):
        assert not check.martian(addr.parse(text)), text
    assert check.martian(0x0A070002) and not check.martian(0x0A070001)  # IPv4 unchanged


@settings(max_examples=400, deadline=None)
@given(
    next_header=st.sampled_from([0, 6, 17, 43, 44, 50, 58, 59, 60, 135, 255]),
    body=st.binary(max_size=200),
    multicast=st.booleans(),
)
def test_any_garbled_header_chain_never_raises(next_header, body, multicast):
    """Bad input never crashes: any chain of bytes after a valid fixed header is walked within bounds."""
    layer, _ = _layer()
    header = IPv6(src=PEER, dst="ff02::1" if multicast else US, nh=next_header, plen=len(body))
    got = decode(bytes(header) + body)
    if isinstance(got, IpPacket):
        conn, reply = layer.receive(got, 0.0)
        assert reply is None or IPv6(reply).dst == PEER


def test_any_fragment_not_last_with_odd_length_gets_parameter_problem_at_payload_length():
    """RFC 8200 §4.5: a fragment with M=1 whose length is not a multiple of 8 -> Parameter Problem code 0
    pointing at the Payload Length field."""
    layer, _ = _layer()
    piece = IPv6(src=PEER, dst=US) / IPv6ExtHdrFragment(id=3, nh=6, offset=0, m=1) / (b"a" * 61)
    _, reply = _receive(layer, piece)
    problem = IPv6(reply)[ICMPv6ParamProblem]
    assert (problem.code, problem.ptr) == (0, 4) and len(layer.fragments) == 0


def test_any_fragment_past_65535_gets_parameter_problem_at_fragment_offset():
    """RFC 8200 §4.5: a fragment whose offset and length reach past 65535 -> code 0 at the Fragment Offset."""
    layer, _ = _layer()
    piece = IPv6(src=PEER, dst=US) / IPv6ExtHdrFragment(id=3, nh=6, offset=8190, m=0) / (b"a" * 64)
    _, reply = _receive(layer, piece)
    problem = IPv6(reply)[ICMPv6ParamProblem]
    assert (problem.code, problem.ptr) == (0, 42)


def test_any_first_fragment_without_whole_header_chain_gets_parameter_problem_code_3():
    """RFC 7112 §5: the first fragment must hold every header through the upper-layer one."""
    layer, _ = _layer()
    first = IPv6(src=PEER, dst=US) / IPv6ExtHdrFragment(id=4, nh=60, offset=0, m=1) / (bytes([6, 1]) + b"\0" * 6)
    _, reply = _receive(layer, first)
    problem = IPv6(reply)[ICMPv6ParamProblem]
    assert (problem.code, problem.ptr) == (3, 0) and len(layer.fragments) == 0


def test_any_reassembly_timed_out_sends_time_exceeded_quoting_first_fragment():
    """RFC 8200 §4.5: Time Exceeded, code 1, to the source of a packet whose first fragment came but not
    the rest, quoting that fragment as it came (fixed header, fragment header, payload), as Linux does."""
    layer, _ = _layer()
    whole = IPv6(src=PEER, dst=US) / IPv6ExtHdrFragment(id=77) / ICMPv6EchoRequest(data=b"e" * 1500)
    first = bytes(fragment6(whole, 1280)[0])
    assert _receive(layer, IPv6(first)) == (None, None)
    [(key, header, payload)] = layer.fragments.take_timed_out(1000.0)
    error = IPv6(layer.reassembly_timed_out(key, header, payload, 1000.0))
    assert (error.src, error.dst, error.payload.type, error.payload.code) == (US, PEER, 3, 1)
    assert bytes(error)[48:] == first[: 1280 - 48] and layer.counters["Icmp6OutTimeExcds"] == 1


def test_any_reassembly_timed_out_quotes_extension_headers_before_the_fragment_header():
    """RFC 8200 §4.5: the first fragment is quoted as it came, its unfragmentable part included (here a
    destination options header before the fragment header), as Linux's ip6_expire_frag_queue quotes it;
    the reassembler charges what it keeps of those headers to its memory."""
    layer, _ = _layer()
    whole = (
        IPv6(src=PEER, dst=US) / IPv6ExtHdrDestOpt() / IPv6ExtHdrFragment(id=78) / ICMPv6EchoRequest(data=b"e" * 1500)
    )
    first = bytes(fragment6(whole, 1280)[0])
    assert _receive(layer, IPv6(first)) == (None, None)
    # the payload, and the two extension headers kept beside the fixed header
    assert layer.fragments.bytes_held == DATAGRAM_OVERHEAD + FRAGMENT_OVERHEAD + len(first) - 40
    [(key, headers, payload)] = layer.fragments.take_timed_out(1000.0)
    error = IPv6(layer.reassembly_timed_out(key, headers, payload, 1000.0))
    assert bytes(error)[48:] == first[: 1280 - 48]


def test_any_fragment6_pieces_fit_the_mtu_and_reassemble_to_the_packet():
    """RFC 8200 §4.5: fragments of at most the MTU, 8-byte multiples but the last, one identification;
    scapy's defragment6 and our own reassembly both give back the packet."""
    layer, _ = _layer()
    request = IPv6(src=PEER, dst=US) / ICMPv6EchoRequest(id=1, seq=2, data=bytes(range(256)) * 12)
    _, reply = _receive(layer, request)
    pieces = our_fragment6(reply, 1280)
    assert len(pieces) == 3 and all(len(p) <= 1280 for p in pieces)
    frags = [IPv6(p) for p in pieces]
    assert len({f[IPv6ExtHdrFragment].id for f in frags}) == 1
    assert all(len(f[IPv6ExtHdrFragment].payload) % 8 == 0 for f in frags[:-1])
    assert bytes(defragment6(frags)[ICMPv6EchoReply]) == bytes(IPv6(reply)[ICMPv6EchoReply])
    back = Ip6Layer(Demux(TcpConfig()), frozenset({PEER6}), IpLayer(Demux(TcpConfig()), 0x0A070001))
    results = [back.receive(decode(p), 0.0) for p in pieces]
    assert back.counters["ReasmOKs"] == 1 and back.counters["Icmp6InEchoReplies"] == 1
    assert all(reply is None for _, reply in results)
