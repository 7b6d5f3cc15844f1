"""Software GSO: for a device without offloads the batch builder cuts a super-segment of the core into
wire-sized packets, as Linux's tcp_gso_segment and inet_gso_segment cut one for a device without TSO.

scapy is the oracle: it reads every piece, and rebuilt from its own fields with the lengths and checksums
recomputed it must give the same bytes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6

from stack.wire.codec import BatchEncoder
from stack.wire.segment import Flags, Segment, TcpOptions

SRC, DST = 0x0A070002, 0x0A070001
SRC6, DST6 = int(ipaddress.IPv6Address("fd3d::2")), int(ipaddress.IPv6Address("fd3d::1"))
MSS = 1448
TS = TcpOptions(timestamps=(1000, 2000))


def _super(seq: int, n: int, gso: int, flags: int = Flags.ACK | Flags.PSH) -> Segment:
    payload = bytes((seq + i) * 7 & 0xFF for i in range(n))
    return Segment(80, 40000, seq, 5000, flags, 500, payload, TS, gso=gso)


def _pieces(segments: list[Segment], src: int = SRC, dst: int = DST) -> list[bytes]:
    enc = BatchEncoder(vnet=0)
    for seg in segments:
        enc.tcp(src, dst, seg, flow=9)
    batch = enc.build()
    return [bytes(p) for p in batch.packets()]


def _scapy_agrees(piece: bytes, v6: bool = False) -> TCP:
    """The piece as scapy reads it, after checking that scapy, recomputing every length and checksum from
    the fields it read, builds the very same bytes."""
    ip = IPv6(piece) if v6 else IP(piece)
    rebuilt = ip.copy()
    if v6:
        del rebuilt.plen
    else:
        del rebuilt.len, rebuilt.chksum
    del rebuilt[TCP].chksum
    assert bytes(rebuilt) == piece
    return ip[TCP]


def test_gso_cut_super_segment_gives_wire_packets_with_their_own_seq_id_lengths_and_checksums():
    """tcp_gso_segment: each piece gso_size long (the last the rest), SEQ advanced by each; the IPv4 ID
    incremented per piece (inet_gso_segment); PSH only on the last piece."""
    seg = _super(1000, 3 * MSS + 100, MSS)
    pieces = _pieces([seg])
    assert len(pieces) == 4
    for k, piece in enumerate(pieces):
        assert len(piece) <= 1500
        tcp = _scapy_agrees(piece)
        ip = IP(piece)
        assert ip.id == k and ip.flags == "DF" and ip.ttl == 64
        assert tcp.seq == 1000 + k * MSS and tcp.ack == 5000 and tcp.window == 500
        assert str(tcp.flags) == ("PA" if k == 3 else "A")
        assert dict(tcp.options)["Timestamp"] == (1000, 2000)
        assert bytes(tcp.payload) == seg.payload[k * MSS : (k + 1) * MSS]


def test_gso_cut_keeps_cwr_for_the_first_piece_and_fin_for_the_last():
    """RFC 3168 §6.1.2: CWR once, on the first piece (tcp_gso_segment clears it after the first); FIN
    closes the last one."""
    seg = _super(1, 3 * MSS, MSS, Flags.ACK | Flags.CWR | Flags.FIN | Flags.PSH)
    flags = [str(_scapy_agrees(p).flags) for p in _pieces([seg])]
    assert flags == ["AC", "A", "FPA"]


def test_gso_cut_ipv6_super_segment_with_pseudo_header_checksums():
    """TSO6 in software: RFC 8200 §8.1 pseudo-header checksum per piece, the flow label on each."""
    seg = _super(7, 2 * MSS + 1, MSS)
    pieces = _pieces([seg], SRC6, DST6)
    assert len(pieces) == 3
    for k, piece in enumerate(pieces):
        tcp = _scapy_agrees(piece, v6=True)
        assert IPv6(piece).fl == 9 and IPv6(piece).plen == len(piece) - 40
        assert tcp.seq == 7 + k * MSS


def test_gso_cut_sequence_wraps():
    seg = _super(0xFFFFFFFF - 100, 2 * MSS, MSS)
    assert [_scapy_agrees(p).seq for p in _pieces([seg])] == [0xFFFFFFFF - 100, (0xFFFFFFFF - 100 + MSS) & 0xFFFFFFFF]


def test_gso_segment_no_longer_than_its_size_goes_out_whole_beside_other_items():
    """A super-segment of one piece, a plain segment and a raw packet: one record each, in order."""
    one = _super(1, MSS, MSS)
    plain = replace(_super(1 + MSS, 10, 0), flags=Flags.ACK)
    enc = BatchEncoder(vnet=0)
    enc.tcp(SRC, DST, one)
    enc.tcp(SRC, DST, plain)
    raw = bytes(IP(src="10.7.0.2", dst="10.7.0.1") / TCP(sport=80, dport=40000, flags="R"))
    enc.packet(raw)
    enc.tcp(SRC, DST, _super(11 + MSS, 2 * MSS, MSS))
    pieces = [bytes(p) for p in enc.build().packets()]
    assert len(pieces) == 5 and pieces[2] == raw
    assert [_scapy_agrees(p).seq for i, p in enumerate(pieces) if i != 2] == [1, 1 + MSS, 11 + MSS, 11 + 2 * MSS]


def test_gso_counts_the_pieces_cut_beyond_the_first():
    enc = BatchEncoder(vnet=0)
    enc.tcp(SRC, DST, _super(1, 5 * MSS, MSS))
    enc.tcp(SRC, DST, _super(1 + 5 * MSS, 10, 0))
    assert enc.build().n == 6
    assert (enc.cut_segments, enc.merged_segments) == (4, 0)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 65535 - 120),
    st.integers(88, 9000),
    st.integers(0, 0xFFFFFFFF),
    st.sampled_from([Flags.ACK, Flags.ACK | Flags.PSH, Flags.ACK | Flags.FIN, Flags.ACK | Flags.CWR | Flags.ECE]),
)
def test_gso_cut_pieces_rejoin_to_the_super_segment(size, gso, seq, flags):
    """Whatever the sizes: the pieces are contiguous, each at most gso bytes, all but the last exactly gso,
    valid to scapy, and their payloads joined give back the super-segment's."""
    seg = _super(seq, size, gso, flags)
    tcps = [_scapy_agrees(p) for p in _pieces([seg])]
    assert len(tcps) == -(-size // gso)
    assert b"".join(bytes(t.payload) for t in tcps) == seg.payload
    assert [t.seq for t in tcps] == [(seq + k * gso) & 0xFFFFFFFF for k in range(len(tcps))]
    assert all(len(t.payload) == gso for t in tcps[:-1])
    for k, t in enumerate(tcps):
        want = int(flags)
        if k:
            want &= ~int(Flags.CWR)
        if k < len(tcps) - 1:
            want &= ~int(Flags.PSH | Flags.FIN)
        assert int(t.flags) == want
