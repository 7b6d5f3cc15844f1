"""Differential tests: scapy (an independent implementation) and our C codec must agree field by field."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, IPOption_RR, fragment

from stack.wire.codec import BatchEncoder, IpPacket, TcpPacket, decode, encode_tcp
from stack.wire.segment import Flags, Segment, TcpOptions

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
addr = st.integers(1, 0xFFFFFFFE)

option = st.one_of(
    st.tuples(st.just("MSS"), u16),
    st.tuples(st.just("WScale"), st.integers(0, 14)),
    st.tuples(st.just("SAckOK"), st.just(b"")),
    st.tuples(st.just("Timestamp"), st.tuples(u32, u32)),
    st.tuples(st.just("SAck"), st.lists(st.tuples(u32, u32), min_size=1, max_size=4)),
    st.tuples(st.just("NOP"), st.none()),
    st.tuples(st.sampled_from([6, 7, 30, 200, 254]), st.binary(max_size=6)),
    st.tuples(st.just(34), st.binary(max_size=18)),  # fast open: a cookie, a request, or a bad length
    st.tuples(st.just(254), st.binary(max_size=18).map(lambda cookie: b"\xf9\x89" + cookie)),
)
_LENGTHS = {"MSS": 4, "WScale": 3, "SAckOK": 2, "Timestamp": 10, "NOP": 1}


def _option_len(opt) -> int:
    kind, value = opt
    if kind == "SAck":
        return 2 + 8 * len(value)
    return _LENGTHS.get(kind, 2 + len(value) if isinstance(value, bytes) else 0)


def _expected_options(opts, syn: bool) -> TcpOptions:
    values: dict = {"sack_blocks": ()}
    for kind, value in opts:
        if syn and (kind == 34 or (kind == 254 and value[:2] == b"\xf9\x89")):
            # Linux's tcp_parse_fastopen_option: odd lengths ignored, other bad ones undo what came before
            cookie = value if kind == 34 else value[2:]
            if len(cookie) % 2 == 0:
                good = len(cookie) == 0 or 4 <= len(cookie) <= 16
                values["fast_open"] = cookie if good else None
                values["fast_open_exp"] = good and kind == 254
        elif kind == "MSS":
            values["mss"] = value
        elif kind == "WScale":
            values["wscale"] = value
        elif kind == "SAckOK":
            values["sack_permitted"] = True
        elif kind == "Timestamp":
            values["timestamps"] = value
        elif kind == "SAck":
            values["sack_blocks"] = tuple(value)
    return TcpOptions(**values)


def _to_scapy(opts):
    out = []
    for kind, value in opts:
        if kind == "SAck":
            out.append(("SAck", tuple(x for block in value for x in block)))
        else:
            out.append((kind, value))
    return out


@settings(max_examples=200, deadline=None)
@given(
    src=addr,
    dst=addr,
    sport=u16,
    dport=u16,
    seq=u32,
    ack=u32,
    flags=st.integers(0, 255),
    window=u16,
    urgent=u16,
    ttl=st.integers(1, 255),
    ident=u16,
    opts=st.lists(option, max_size=6).filter(lambda o: sum(map(_option_len, o)) <= 40),
    payload=st.binary(max_size=300),
)
def test_decode_agrees_with_scapy(src, dst, sport, dport, seq, ack, flags, window, urgent, ttl, ident, opts, payload):
    pkt = (
        IP(src=_dotted(src), dst=_dotted(dst), ttl=ttl, id=ident)
        / TCP(
            sport=sport,
            dport=dport,
            seq=seq,
            ack=ack,
            flags=flags,
            window=window,
            urgptr=urgent,
            options=_to_scapy(opts),
        )
        / payload
    )
    got = decode(bytes(pkt))
    assert isinstance(got, TcpPacket)
    assert (got.src, got.dst, got.ttl) == (src, dst, ttl)
    seg = got.segment
    assert (seg.src_port, seg.dst_port, seg.seq, seg.ack) == (sport, dport, seq, ack)
    assert (int(seg.flags), seg.window, seg.urgent, seg.payload) == (flags, window, urgent, payload)
    assert seg.options == _expected_options(opts, bool(flags & Flags.SYN))


syn_options = st.builds(
    TcpOptions,
    mss=st.one_of(st.none(), u16),
    wscale=st.one_of(st.none(), st.integers(0, 14)),
    sack_permitted=st.booleans(),
    timestamps=st.one_of(st.none(), st.tuples(u32, u32)),
)
data_options = st.builds(
    TcpOptions,
    timestamps=st.one_of(st.none(), st.tuples(u32, u32)),
    sack_blocks=st.lists(st.tuples(u32, u32), max_size=3).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(
    src=addr,
    dst=addr,
    sport=u16,
    dport=u16,
    seq=u32,
    ack=u32,
    window=u16,
    syn=st.booleans(),
    data=st.data(),
    payload=st.binary(max_size=1400),
)
def test_encode_dissects_in_scapy_with_valid_checksums(src, dst, sport, dport, seq, ack, window, syn, data, payload):
    options = data.draw(syn_options if syn else data_options)
    flags = Flags.SYN | Flags.ACK if syn else Flags.ACK | Flags.PSH
    raw = encode_tcp(src, dst, Segment(sport, dport, seq, ack, flags, window, payload, options), ttl=64, ident=7)
    pkt = IP(raw)
    tcp = pkt[TCP]
    assert (pkt.src, pkt.dst) == (_dotted(src), _dotted(dst))
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, int(tcp.flags), tcp.window) == (
        sport,
        dport,
        seq,
        ack,
        flags,
        window,
    )
    assert bytes(tcp.payload) == payload
    ip_sum, tcp_sum = pkt.chksum, tcp.chksum
    del pkt.chksum
    del pkt[TCP].chksum
    rebuilt = IP(bytes(pkt))
    assert (rebuilt.chksum, rebuilt[TCP].chksum) == (ip_sum, tcp_sum)
    decoded = dict(tcp.options)
    if options.mss is not None:
        assert decoded["MSS"] == options.mss
    if options.wscale is not None:
        assert decoded["WScale"] == options.wscale
    assert ("SAckOK" in decoded) == options.sack_permitted
    if options.timestamps is not None:
        assert decoded["Timestamp"] == options.timestamps
    if options.sack_blocks:
        flat = tuple(x for block in options.sack_blocks for x in block)
        assert decoded["SAck"] == flat


def _dotted(n: int) -> str:
    return ".".join(str((n >> s) & 0xFF) for s in (24, 16, 8, 0))


def test_syn_options_use_linux_layout_without_timestamps():
    """mss,nop,nop,sackOK,nop,wscale like Linux."""
    seg = Segment(1, 2, 0, 0, Flags.SYN, 65535, b"", TcpOptions(mss=1460, wscale=7, sack_permitted=True))
    names = [name for name, _ in IP(encode_tcp(1, 2, seg))[TCP].options]
    assert names == ["MSS", "NOP", "NOP", "SAckOK", "NOP", "WScale"]


def test_syn_options_use_linux_layout_with_timestamps():
    """mss,sackOK,TS,nop,wscale like Linux."""
    opts = TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamps=(1, 0))
    seg = Segment(1, 2, 0, 0, Flags.SYN, 65535, b"", opts)
    names = [name for name, _ in IP(encode_tcp(1, 2, seg))[TCP].options]
    assert names == ["MSS", "SAckOK", "Timestamp", "NOP", "WScale"]


def test_encode_df_and_tos_as_the_segment_asks():
    """RFC 1191 §3: DF by default; IP_MTU_DISCOVER DONT clears it. The TOS byte is the socket's DSCP and
    TCP's ECN field (RFC 3168 §5)."""
    seg = Segment(1, 2, 0, 0, Flags.ACK, 100, b"x")
    default = IP(encode_tcp(1, 2, seg))
    assert default.flags.DF and default.tos == 0
    raw = encode_tcp(1, 2, Segment(1, 2, 0, 0, Flags.ACK, 100, b"x", ecn=2, tos=0x28, df=False))
    marked = IP(raw)
    assert not marked.flags.DF and marked.tos == 0x2A
    del marked.chksum
    assert bytes(marked) == raw  # the header checksum covers the new bytes


def test_encode_batch_numbers_packets_without_df_and_each_cut_piece():
    """RFC 6864 §4.1: a datagram that routers may fragment (no DF, IP_MTU_DISCOVER DONT) needs an IPv4 ID
    of its own among those in flight; the pieces software GSO cuts from a super-segment take the next
    ones, as Linux's GSO numbers them. With DF the ID means nothing (an atomic datagram)."""
    enc = BatchEncoder()
    enc.tcp(1, 2, Segment(1, 2, 0, 0, Flags.ACK, 100, b"a" * 100, df=False))
    enc.tcp(1, 2, Segment(1, 2, 100, 0, Flags.ACK, 100, b"b" * 3000, df=False, gso=1000))  # three pieces
    enc.tcp(1, 2, Segment(1, 2, 3100, 0, Flags.ACK, 100, b"c" * 100))  # DF
    first = [IP(bytes(p)).id for p in enc.build().packets()]
    enc.tcp(1, 2, Segment(1, 2, 3200, 0, Flags.ACK, 100, b"d" * 100, df=False))
    later = [IP(bytes(p)).id for p in enc.build().packets()]
    assert first == [0, 1, 2, 3, 0] and later == [4]


def test_encode_with_ip_options_dissects_in_scapy_with_valid_checksums():
    """RFC 791 §3.1: options after the 20-byte header, IHL and total length counting them, the header
    checksum over them; the TCP checksum (RFC 9293 §3.1) does not cover the IP header."""
    record_route = bytes.fromhex("070b0c0a0800010a08000100")  # two addresses recorded, padded to 12 bytes
    enc = BatchEncoder()
    enc.tcp_with_options(0x0A080001, 0x0A080002, Segment(80, 4000, 7, 9, Flags.ACK, 100, b"data"), record_route)
    enc.tcp_with_options(
        0x0A080001, 0x0A080002, Segment(80, 4000, 11, 9, Flags.ACK, 100, b"more", df=False), record_route
    )
    first, second = (IP(bytes(p)) for p in enc.build().packets())
    assert (first.ihl, first.len, bytes(first)[20:32], bytes(first[TCP].payload)) == (8, 56, record_route, b"data")
    assert first.flags.DF and not second.flags.DF and second.id == 0
    for pkt in (first, second):
        checksums = pkt.chksum, pkt[TCP].chksum
        del pkt.chksum, pkt[TCP].chksum
        assert (IP(bytes(pkt)).chksum, IP(bytes(pkt))[TCP].chksum) == checksums


def test_tcp_decodes_with_its_ipv4_header_only_when_it_has_options():
    """What TCP may send back (RFC 1122 §4.2.3.8) comes with the segment: its header, options and all."""
    with_options = IP(src="10.0.0.1", dst="10.0.0.2", options=[IPOption_RR(routers=["0.0.0.0"])]) / TCP(flags="S")
    got = decode(bytes(with_options))
    plain = decode(bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="S")))
    assert isinstance(got, TcpPacket) and isinstance(plain, TcpPacket)
    assert (got.ip_header, plain.ip_header) == (bytes(with_options)[:28], b"")


def test_icmp_decodes_as_ip_packet():
    raw = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8, id=5, seq=1) / b"ping")
    got = decode(raw)
    assert isinstance(got, IpPacket)
    assert got.proto == 1 and got.payload[0] == 8 and got.payload.endswith(b"ping") and len(got.header) == 20


@settings(max_examples=200, deadline=None)
@given(
    src=addr,
    dst=addr,
    ident=u16,
    ttl=st.integers(1, 255),
    proto=st.sampled_from([1, 6, 17, 132]),
    payload=st.binary(min_size=9, max_size=3000),
    size=st.sampled_from([8, 24, 512, 1480]),
)
def test_fragments_decode_agrees_with_scapy(src, dst, ident, ttl, proto, payload, size):
    """RFC 791 §3.2: each fragment decodes to its IP fields, offset in bytes, MF and raw payload piece."""
    datagram = IP(src=_dotted(src), dst=_dotted(dst), id=ident, ttl=ttl, proto=proto) / payload
    pieces = fragment(datagram, size)
    if len(pieces) < 2:
        return
    for built in pieces:
        raw = bytes(built)
        piece = IP(raw)  # dissected, so that ihl and len are filled in
        got = decode(raw)
        assert isinstance(got, IpPacket) and got.is_fragment
        assert (got.src, got.dst, got.ident, got.ttl, got.proto) == (src, dst, ident, ttl, proto)
        assert got.frag_offset == piece.frag * 8
        assert got.more_fragments == bool(piece.flags.MF)
        assert got.header == raw[: piece.ihl * 4] and got.payload == raw[piece.ihl * 4 : piece.len]


def _tcp_options_bytes(raw: bytes) -> bytes:
    ihl = (raw[0] & 0xF) * 4
    return raw[ihl + 20 : ihl + (raw[ihl + 12] >> 4) * 4]


def test_syn_ack_fast_open_cookie_goes_last_in_linux_layout():
    """Linux's tcp_options_write puts the cookie last: kind 34 padded with NOPs to a word, or the
    experimental kind 254 with its magic 0xF989 (RFC 7413 §4.1.1), as packetdrill's scripts expect them."""
    cookie = bytes.fromhex("00abaaabe8e954c2")
    base = dict(mss=1460, sack_permitted=True, timestamps=(10000, 1), wscale=8)
    for exp, tail in ((False, b"\x22\x0a" + cookie + b"\x01\x01"), (True, b"\xfe\x0c\xf9\x89" + cookie)):
        options = TcpOptions(**base, fast_open=cookie, fast_open_exp=exp)
        raw = encode_tcp(1, 2, Segment(80, 40000, 0, 1, Flags.SYN | Flags.ACK, 100, b"", options))
        assert _tcp_options_bytes(raw) == bytes.fromhex("020405b4 0402080a 00002710 00000001 01030308") + tail
        assert decode(raw).segment.options == options


def test_fast_open_option_counts_on_syn_only():
    """Linux parses the cookie on a SYN (or SYN,ACK) only; on any other segment the option is skipped."""
    options = TcpOptions(timestamps=(1, 2), fast_open=b"\x01\x02\x03\x04")
    syn = decode(encode_tcp(1, 2, Segment(80, 40000, 0, 0, Flags.SYN, 100, b"", options)))
    assert syn.segment.options.fast_open == b"\x01\x02\x03\x04"
    raw = bytearray(encode_tcp(1, 2, Segment(80, 40000, 0, 0, Flags.SYN, 100, b"", options)))
    raw[20 + 13] = Flags.ACK  # the same header as a plain ACK (the checksum left unchecked)
    assert decode(bytes(raw), tcp_checksum=False).segment.options == TcpOptions(timestamps=(1, 2))
