"""IPv4 fragment reassembly (RFC 791 §3.2; overlaps fatal as RFC 5722), in virtual time, scapy as the oracle."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP, fragment

from stack.demux import Demux
from stack.fragments import FragmentLimits, Reassembler
from stack.ip import IpLayer
from stack.tcp.config import TcpConfig
from stack.wire.codec import IpPacket, TcpPacket, decode
from stack.wire.segment import Flags

SRC, DST = "10.7.0.1", "10.7.0.2"


def _datagram(payload: bytes = bytes(range(256)) * 12, ident: int = 7, src: str = SRC) -> IP:
    return IP(src=src, dst=DST, id=ident) / TCP(sport=40000, dport=80, seq=1000, ack=1, flags="PA") / payload


def _fragments(datagram: IP, size: int = 1000) -> list[IpPacket]:
    pieces = [decode(bytes(f)) for f in fragment(datagram, size)]
    assert all(isinstance(p, IpPacket) and p.is_fragment for p in pieces)
    return pieces


def _feed(r: Reassembler, pieces: list[IpPacket], now: float = 0.0) -> list[bytes]:
    return [whole for p in pieces if (whole := r.add(p, now)) is not None]


def _piece(pkt: IpPacket, offset: int, payload: bytes, more: bool) -> IpPacket:
    return IpPacket(pkt.src, pkt.dst, pkt.proto, pkt.ttl, pkt.ident, pkt.header, payload, offset, more)


def test_in_order_fragments_reassemble_to_the_original_datagram():
    """RFC 791 §3.2: the whole datagram once every piece up to the last (MF=0) is in."""
    original = _datagram()
    r = Reassembler()
    pieces = _fragments(original)
    assert len(pieces) == 4
    assert [r.add(p, 0.0) for p in pieces[:-1]] == [None, None, None]
    whole = r.add(pieces[-1], 0.0)
    assert decode(whole) == decode(bytes(original))
    assert (r.counters["ReasmReqds"], r.counters["ReasmOKs"], r.counters["ReasmFails"]) == (4, 1, 0)
    assert len(r) == 0 and r.bytes_held == 0


def test_reassembled_header_has_length_flags_and_checksum_right():
    """RFC 791 §3.2: total length recomputed, MF and offset cleared; scapy recomputes the same checksum."""
    original = _datagram()
    [whole] = _feed(Reassembler(), _fragments(original))
    header = IP(whole)
    assert (header.len, header.flags, header.frag, header.id) == (len(bytes(original)), 0, 0, 7)
    checksum = header.chksum
    del header.chksum
    assert IP(bytes(header)).chksum == checksum


def test_out_of_order_fragments_reassemble():
    """RFC 791 §3.2: fragments may arrive in any order, the last one first."""
    original = _datagram()
    pieces = _fragments(original, 400)
    [whole] = _feed(Reassembler(), pieces[::-1])
    assert decode(whole) == decode(bytes(original))


@settings(max_examples=100, deadline=None)
@given(
    payload=st.binary(min_size=1, max_size=4000),
    size=st.sampled_from([8, 16, 64, 552, 1480]),
    seed=st.integers(0, 2**32 - 1),
    duplicates=st.integers(0, 5),
)
def test_any_order_with_duplicates_agrees_with_scapy(payload, size, seed, duplicates):
    """Differential: scapy fragments, we reassemble in a random order with exact duplicates (RFC 5722 §4
    lets those be dropped alone); the result decodes exactly as the unfragmented datagram."""
    original = _datagram(payload)
    pieces = _fragments(original, size) if len(bytes(original)) - 20 > size else []
    if not pieces:
        return
    rng = random.Random(seed)
    pieces += [rng.choice(pieces) for _ in range(duplicates)]
    rng.shuffle(pieces)
    r = Reassembler()
    wholes = _feed(r, pieces)
    assert wholes  # copies arriving after completion may complete it again, never differently
    assert all(decode(w) == decode(bytes(original)) for w in wholes)
    assert r.counters["ReasmOverlaps"] == 0


def test_exact_duplicate_fragment_ignored():
    """RFC 5722 §4: an exact duplicate MAY be dropped silently instead of being treated as an overlap."""
    pieces = _fragments(_datagram())
    r = Reassembler()
    wholes = _feed(r, [pieces[0], pieces[1], pieces[1], *pieces[2:]])
    assert len(wholes) == 1
    assert r.counters["ReasmOverlaps"] == 0 and r.counters["ReasmFails"] == 0


def test_overlapping_fragment_drops_whole_datagram():
    """RFC 5722 §4 (applied to IPv4 as Linux does): any overlap discards the datagram."""
    pieces = _fragments(_datagram())
    second = pieces[1]
    overlapping = _piece(second, second.frag_offset - 8, b"\0" * 8 + second.payload, True)
    r = Reassembler()
    assert _feed(r, [pieces[0], overlapping, *pieces[1:]]) == []
    assert (r.counters["ReasmOverlaps"], r.counters["ReasmFails"], r.counters["ReasmOKs"]) == (1, 1, 0)


def test_same_range_with_other_data_is_an_overlap():
    """RFC 5722: a fragment covering the same bytes with different content is not a duplicate."""
    pieces = _fragments(_datagram())
    forged = _piece(pieces[1], pieces[1].frag_offset, bytes(len(pieces[1].payload)), True)
    r = Reassembler()
    assert _feed(r, [pieces[0], pieces[1], forged, *pieces[2:]]) == []
    assert r.counters["ReasmOverlaps"] == 1


def test_fragments_after_overlap_are_absorbed_until_the_timeout():
    """RFC 5722 §4: later fragments of a discarded datagram are dropped too; the entry ends with its timer."""
    pieces = _fragments(_datagram())
    r = Reassembler(FragmentLimits(timeout=30.0))
    overlapping = _piece(pieces[1], 0, pieces[1].payload, True)
    assert _feed(r, [pieces[1], overlapping], 0.0) == []
    assert _feed(r, pieces, 10.0) == []  # a complete retransmission of the datagram, too soon
    assert r.bytes_held < 1024 and len(r) == 1  # nothing of it is kept, only the marker
    assert _feed(r, pieces, 30.0) != []  # the marker expired: a fresh datagram reassembles
    assert r.counters["ReasmTimeout"] == 0  # a discarded datagram does not time out a second time


def test_incomplete_datagram_times_out_and_frees_memory():
    """RFC 791 §3.2 / Linux ipfrag_time: a datagram still incomplete after the timeout is discarded."""
    pieces = _fragments(_datagram())
    r = Reassembler(FragmentLimits(timeout=30.0))
    _feed(r, pieces[:-1], 0.0)
    assert r.bytes_held > 3000 and r.next_deadline() == 30.0
    assert r.expire(29.999) == 0
    assert r.expire(30.0) == 1
    assert len(r) == 0 and r.bytes_held == 0
    assert (r.counters["ReasmTimeout"], r.counters["ReasmFails"]) == (1, 1)
    assert _feed(r, pieces[-1:], 30.0) == []  # the last piece starts a new datagram that lacks the rest


def test_last_fragment_just_before_timeout_completes():
    """The timer runs from the first fragment; until it fires the datagram can complete."""
    pieces = _fragments(_datagram())
    r = Reassembler(FragmentLimits(timeout=30.0))
    _feed(r, pieces[:-1], 0.0)
    assert len(_feed(r, pieces[-1:], 29.9)) == 1


def test_datagrams_with_same_ident_from_other_sources_do_not_mix():
    """RFC 791 §3.2: a datagram is identified by source, destination, protocol and identification."""
    a = _fragments(_datagram(b"a" * 3000, src="10.7.0.1"))
    b = _fragments(_datagram(b"b" * 3000, src="10.7.0.3"))
    r = Reassembler()
    wholes = _feed(r, [x for pair in zip(a, b, strict=True) for x in pair])
    assert sorted(decode(w).segment.payload for w in wholes) == [b"a" * 3000, b"b" * 3000]


def test_fragment_not_a_multiple_of_eight_dropped():
    """RFC 791 §3.2: every fragment but the last carries a multiple of 8 bytes."""
    pieces = _fragments(_datagram())
    odd = _piece(pieces[0], 0, pieces[0].payload[:-3], True)
    r = Reassembler()
    assert r.add(odd, 0.0) is None and len(r) == 0
    assert r.counters["ReasmFails"] == 1


def test_datagram_beyond_65535_bytes_dropped():
    """RFC 791 §3.1: total length is 16 bits; a fragment ending past it is the "ping of death"."""
    pieces = _fragments(_datagram())
    huge = _piece(pieces[-1], 65528, b"x" * 16, False)
    r = Reassembler()
    assert _feed(r, [pieces[0], huge, *pieces[1:]]) == []
    assert r.counters["ReasmFails"] == 1


def test_datagram_beyond_65535_bytes_with_first_fragment_options_dropped():
    """RFC 791 §3.1: the limit counts the first fragment's header, options included, not the last one's."""
    first = decode(bytes(IP(src=SRC, dst=DST, id=5, flags="MF", options=[IPOption_NOP()] * 40) / bytes(8)))
    last = decode(bytes(IP(src=SRC, dst=DST, id=5, frag=65488 // 8) / bytes(27)))
    middle = _piece(last, 8, bytes(65480), True)  # each piece fits with its own header, the whole does not
    assert len(first.header) == 60 and len(last.header) + 65488 + 27 == 65535
    r = Reassembler()
    assert _feed(r, [last, middle, first]) == []
    assert r.counters["ReasmFails"] == 1 and r.counters["ReasmOKs"] == 0


def test_conflicting_last_fragments_drop_datagram():
    """Two different ends (MF=0 at different offsets) cannot both be right (Linux ip_frag_queue)."""
    pieces = _fragments(_datagram())
    early_end = _piece(pieces[1], pieces[1].frag_offset, pieces[1].payload, False)
    r = Reassembler()
    assert _feed(r, [pieces[-1], pieces[0], early_end, *pieces[1:]]) == []
    assert r.counters["ReasmFails"] == 1


def test_flood_of_first_fragments_stays_within_memory_bound():
    """A flood of never-completed datagrams evicts the oldest (ReasmFails) and never exceeds the limits."""
    limits = FragmentLimits(high_thresh=256 * 1024, max_datagrams=100_000)
    r = Reassembler(limits)
    first = _fragments(_datagram(bytes(2960)), 1480)[0]
    for ident in range(20_000):
        r.add(IpPacket(first.src, first.dst, 6, 64, ident, first.header, first.payload, 0, True), 0.0)
        assert r.bytes_held <= limits.high_thresh
    assert r.counters["ReasmFails"] > 19_000
    assert 100 < len(r) < 200


def test_flood_bounded_by_number_of_datagrams():
    """FragmentLimits.max_datagrams caps the datagrams in progress, whatever their size."""
    limits = FragmentLimits(max_datagrams=50)
    r = Reassembler(limits)
    tiny = _fragments(_datagram(bytes(64)), 8)[0]
    for ident in range(5000):
        r.add(IpPacket(tiny.src, tiny.dst, 6, 64, ident, tiny.header, tiny.payload, 0, True), 0.0)
        assert len(r) <= 50


def test_legitimate_datagram_completes_during_flood():
    """Evicting the oldest: with the store already full of flood, a new datagram still gets in and completes
    if its fragments arrive close together (Linux since 4.17 would drop it until the flood times out)."""
    limits = FragmentLimits(high_thresh=256 * 1024)
    r = Reassembler(limits)
    first = _fragments(_datagram(bytes(2960)), 1480)[0]
    legit = _fragments(_datagram(b"legit" * 600, ident=0xBEEF), 1480)

    def flood(start: int, n: int) -> None:
        for ident in range(start, start + n):
            r.add(IpPacket(first.src, first.dst, 6, 64, ident, first.header, first.payload, 0, True), 0.0)

    flood(0, 500)
    assert r.bytes_held > limits.high_thresh - 3000  # full
    assert r.add(legit[0], 0.0) is None
    flood(500, 50)
    assert _feed(r, legit[1:], 0.0)[0] == bytes(_datagram(b"legit" * 600, ident=0xBEEF))


# ---------------------------------------------------------------- through the IP layer


def test_ip_layer_delivers_reassembled_tcp_segment_to_demux():
    """A TCP segment split into fragments arrives whole at the listener (a SYN with data, RFC 9293 §3.10.7.2)."""
    demux = Demux(TcpConfig())
    demux.listen((0x0A070002, 80))
    ip = IpLayer(demux, 0x0A070002)
    syn = IP(src=SRC, dst=DST, id=9) / TCP(sport=40000, dport=80, seq=5, flags="S", options=[("MSS", 1460)])
    results = [ip.receive(p, 0.0) for p in _fragments(syn / bytes(100), 24)]
    assert [r[0] is not None for r in results] == [False] * (len(results) - 1) + [True]
    conn = results[-1][0]
    assert conn.remote == (0x0A070001, 40000) and conn.tcb.irs == 5
    assert demux.counters["PassiveOpens"] == 1 and ip.counters["ReasmOKs"] == 1


def test_ip_layer_reassembled_segment_with_bad_checksum_counted():
    """The TCP checksum covers the whole reassembled segment (RFC 9293 §3.1)."""
    ip = IpLayer(Demux(TcpConfig()), 0x0A070002)
    pieces = _fragments(_datagram(), 1000)
    last = pieces[-1]
    corrupted = _piece(last, last.frag_offset, last.payload[:-1] + bytes([last.payload[-1] ^ 1]), False)
    for p in [*pieces[:-1], corrupted]:
        assert ip.receive(p, 0.0) == (None, None)
    assert ip.counters["InCsumErrors"] == 1 and ip.counters["DropBAD_TCP_CHECKSUM"] == 1


def test_ip_layer_reassembled_udp_gets_protocol_unreachable():
    """RFC 1122 §3.2.2.1, after reassembly: the quote is of the whole datagram's header."""
    ip = IpLayer(Demux(TcpConfig()), 0x0A070002)
    udp = IP(src=SRC, dst=DST, id=3) / UDP(sport=5, dport=53) / bytes(3000)
    replies = [ip.receive(p, 0.0)[1] for p in _fragments(udp, 1480)]
    assert replies[:-1] == [None] * (len(replies) - 1)
    assert IP(replies[-1])[1].type == 3 and IP(replies[-1])[1].code == 2


def test_ip_layer_reassembled_segment_for_closed_port_gets_rst():
    """RFC 9293 §3.10.7.1 applies to a reassembled segment like any other."""
    ip = IpLayer(Demux(TcpConfig()), 0x0A070002)
    replies = [ip.receive(p, 0.0)[1] for p in _fragments(_datagram(), 1000)]
    rst = decode(replies[-1])
    assert isinstance(rst, TcpPacket) and rst.segment.flags & Flags.RST


def test_timed_out_datagram_hands_over_its_first_fragment_once():
    """RFC 792 / RFC 8200 §4.5: the first fragment of a datagram that timed out incomplete is what a time
    exceeded quotes; handed over once, and only where it came."""
    pieces = _fragments(_datagram())
    r = Reassembler(FragmentLimits(timeout=30.0))
    _feed(r, pieces[:2], 0.0)
    _feed(r, _fragments(_datagram(ident=8))[1:2], 0.0)  # a datagram whose first fragment never came
    assert r.take_timed_out(29.0) == []
    [(key, header, first)] = r.take_timed_out(30.0)
    assert key == (pieces[0].src, pieces[0].dst, 6, 7) and header + first == bytes(fragment(_datagram(), 1000)[0])
    assert r.take_timed_out(31.0) == [] and r.counters["ReasmTimeout"] == 2


def test_timed_out_first_fragments_kept_for_no_more_than_max_datagrams():
    """Memory stays bounded when nobody takes them: at most max_datagrams first fragments wait."""
    r = Reassembler(FragmentLimits(timeout=1.0, max_datagrams=4))
    for i in range(10):
        _feed(r, _fragments(_datagram(ident=i))[:1], float(i))
        r.expire(float(i) + 1.0)
    assert len(r.take_timed_out(100.0)) == 4


def test_ip_layer_reassembly_timed_out_sends_time_exceeded_quoting_first_fragment():
    """RFC 792, RFC 1122 §3.3.2: time exceeded, code 1 (fragment reassembly time exceeded), to the source,
    quoting the first fragment as much as fits in 576 bytes, as Linux's ip_expire."""
    ip = IpLayer(Demux(TcpConfig()), 0x0A070002)
    first = bytes(fragment(_datagram(), 1000)[0])
    error = IP(ip.reassembly_timed_out(first[:20], first[20:], 0.0))
    assert (error.src, error.dst, error[ICMP].type, error[ICMP].code, error.len) == (DST, SRC, 11, 1, 576)
    assert bytes(error)[28:] == first[:548] and ip.counters["IcmpOutTimeExcds"] == 1


def test_ip_layer_protocol_unreachable_rate_limited():
    """Linux icmp_msgs_per_sec/icmp_msgs_burst: a flood of unknown-protocol packets from many sources gets
    a burst of answers, then one per millisecond."""
    ip = IpLayer(Demux(TcpConfig()), 0x0A070002)
    udp = [decode(bytes(IP(src=f"10.9.{i // 200}.{i % 200}", dst=DST) / UDP(sport=5, dport=53))) for i in range(400)]
    answered = sum(ip.receive(pkt, 100.0)[1] is not None for pkt in udp[:200])
    assert answered == 50 and ip.counters["IcmpOutRateLimitGlobal"] == 150
    answered = sum(ip.receive(pkt, 100.01)[1] is not None for pkt in udp[200:])
    assert answered == 10


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.integers(0, 255), st.integers(0, 255))
def test_ip_layer_any_icmp_message_never_raises(body, icmp_type, code):
    """Garbled ICMP (bad quotes, odd lengths, any type) is dropped and counted, never a crash."""
    demux = Demux(TcpConfig())
    demux.connect(0x0A070002, (0x0A070001, 80), 0.0)
    ip = IpLayer(demux, 0x0A070002)
    raw = bytes(IP(src=SRC, dst=DST) / ICMP(type=icmp_type, code=code) / body)
    packet = decode(raw)
    assert isinstance(packet, IpPacket)
    ip.receive(packet, 0.0)


fragment_spec = st.tuples(st.integers(0, 3), st.integers(0, 8191), st.integers(0, 200), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.lists(fragment_spec, max_size=60), st.integers(2000, 20000))
def test_any_fragment_sequence_stays_bounded_and_drains(specs, high_thresh):
    """Whatever fragments arrive, memory stays under the limit and every byte is freed by the timeout."""
    r = Reassembler(FragmentLimits(high_thresh=high_thresh, max_datagrams=3, timeout=30.0))
    header = bytes(IP(src=SRC, dst=DST, proto=17))[:20]
    for i, (ident, unit, length, more) in enumerate(specs):
        packet = IpPacket(1, 2, 17, 64, ident, header, bytes(length), unit * 8, more)
        r.add(packet, i * 0.5)
        assert r.bytes_held <= high_thresh and len(r) <= 3
    r.expire(10_000.0)
    assert r.bytes_held == 0 and len(r) == 0
