"""Software GRO: where the device hands over wire-sized packets, adjacent segments of one flow that Linux's
GRO (inet_gro_receive, tcp_gro_receive) would coalesce reach the core as one super-segment with its
segment size, as a device with offloads hands them over.

The packets are built by scapy; a model of the merge rules written here in Python from Linux's
description is the oracle of a differential test.
"""

from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6

from stack.aio.batchio import BatchReader, write_batch
from stack.wire.batch import PacketBatch
from stack.wire.codec import BatchDecoder, Rejected, TcpPacket

MSS = 1448


def _pkt(
    seq: int,
    n: int = MSS,
    flags: str = "A",
    ident: int | None = None,
    ack: int = 9000,
    window: int = 501,
    ts: int = 77,
    ttl: int = 64,
    tos: int = 0,
    df: bool = True,
    sport: int = 40000,
    ip_options: bytes = b"",
) -> bytes:
    ip = IP(src="10.7.0.1", dst="10.7.0.2", id=seq // MSS if ident is None else ident, ttl=ttl, tos=tos)
    ip.flags = "DF" if df else 0
    if ip_options:
        ip.options = ip_options
    tcp = TCP(sport=sport, dport=80, seq=seq, ack=ack, flags=flags, window=window)
    tcp.options = [("NOP", None), ("NOP", None), ("Timestamp", (ts, 5))]
    return bytes(ip / tcp / bytes((seq + i) & 0xFF for i in range(n)))


def _pkt6(seq: int, n: int = MSS, flags: str = "A", fl: int = 3) -> bytes:
    tcp = TCP(sport=40000, dport=80, seq=seq, ack=9000, flags=flags, window=501)
    return bytes(IPv6(src="fd3d::1", dst="fd3d::2", fl=fl) / tcp / bytes((seq + i) & 0xFF for i in range(n)))


def _segments(packets: list[bytes]) -> list[tuple[int, bytes, int, int] | str]:
    """What the core gets: (seq, payload, flags, gso) per TCP segment, 'rejected' for a dropped packet."""
    out: list[tuple[int, bytes, int, int] | str] = []
    for p in BatchDecoder(gro=True).decode(PacketBatch.of(packets)):
        if type(p) is TcpPacket:
            s = p.segment
            out.append((s.seq, bytes(s.payload), s.flags, s.gso))
        else:
            assert type(p) is Rejected
            out.append("rejected")
    return out


def _whole(packets: list[bytes], flags: int) -> tuple[int, bytes, int, int]:
    first = IP(packets[0])[TCP]
    payload = b"".join(bytes(IP(p)[TCP].payload) for p in packets)
    return (first.seq, payload, flags, len(first.payload) if len(packets) > 1 else 0)


ACK, PSH, FIN = 0x10, 0x08, 0x01


def test_gro_run_of_full_segments_and_a_shorter_last_is_one_segment_with_its_size():
    run = [_pkt(1), _pkt(1 + MSS), _pkt(1 + 2 * MSS, 100, "PA")]
    assert _segments(run) == [_whole(run, ACK | PSH)]


def test_gro_ipv6_run_is_one_segment():
    run = [_pkt6(1), _pkt6(1 + MSS), _pkt6(1 + 2 * MSS)]
    got = _segments(run)
    assert len(got) == 1 and got[0][0] == 1 and got[0][3] == MSS
    assert got[0][1] == b"".join(bytes(IPv6(p)[TCP].payload) for p in run)


def test_gro_dropped_packet_ends_a_run_and_stays_dropped():
    bad = bytearray(_pkt(1 + 2 * MSS))
    bad[-1] ^= 0xFF  # the TCP checksum no longer holds
    got = _segments([_pkt(1), _pkt(1 + MSS), bytes(bad), _pkt(1 + 3 * MSS)])
    assert [g if isinstance(g, str) else (g[0], len(g[1]), g[3]) for g in got] == [
        (1, 2 * MSS, MSS),
        "rejected",
        (1 + 3 * MSS, MSS, 0),
    ]


@pytest.mark.parametrize(
    "second",
    [
        pytest.param(_pkt(1 + MSS, ack=9001), id="another ACK"),
        pytest.param(_pkt(1 + MSS, window=502), id="another window"),
        pytest.param(_pkt(1 + MSS, ts=78), id="another timestamp (options differ)"),
        pytest.param(_pkt(1 + MSS, ttl=63), id="another TTL"),
        pytest.param(_pkt(1 + MSS, tos=2), id="another TOS (ECN field)"),
        pytest.param(_pkt(1 + MSS, df=False, ident=1), id="DF differs"),
        pytest.param(_pkt(1 + MSS, ident=7), id="IP ID neither next nor fixed"),
        pytest.param(_pkt(2 + MSS), id="a gap in sequence"),
        pytest.param(_pkt(1 + MSS, MSS + 1), id="larger than the first"),
        pytest.param(_pkt(1 + MSS, sport=40001), id="another connection"),
        pytest.param(_pkt(1 + MSS, flags="AF"), id="FIN"),
        pytest.param(_pkt(1 + MSS, flags="AC"), id="CWR"),
        pytest.param(_pkt(1 + MSS, flags="AE"), id="ECE"),
        pytest.param(_pkt(1 + MSS, flags="AU"), id="URG"),
        pytest.param(_pkt(1 + MSS, flags="AR"), id="RST"),
        pytest.param(_pkt(1 + MSS, 0), id="a pure ACK"),
    ],
)
def test_gro_does_not_merge_what_linux_would_not(second):
    assert len(_segments([_pkt(1), second])) == 2


def test_gro_ip_id_fixed_merges_only_with_df():
    """inet_gro_receive: the IP ID must count up per segment, except for atomic datagrams (DF, RFC 6864)
    whose ID may stay fixed."""
    assert len(_segments([_pkt(1, ident=5), _pkt(1 + MSS, ident=5)])) == 1
    assert len(_segments([_pkt(1, ident=5, df=False), _pkt(1 + MSS, ident=5, df=False)])) == 2
    assert len(_segments([_pkt(1, ident=5, df=False), _pkt(1 + MSS, ident=6, df=False)])) == 1


def test_gro_packets_with_ip_options_are_not_merged():
    opts = b"\x01\x01\x01\x00"  # NOP NOP NOP EOL: four bytes of options
    assert len(_segments([_pkt(1, ip_options=opts), _pkt(1 + MSS, ip_options=opts)])) == 2


def test_gro_psh_or_a_short_segment_ends_a_run_and_the_next_starts_another():
    run1 = [_pkt(1), _pkt(1 + MSS, flags="PA")]
    run2 = [_pkt(1 + 2 * MSS), _pkt(1 + 3 * MSS, 10)]
    run3 = [_pkt(11 + 3 * MSS), _pkt(11 + 4 * MSS)]
    assert _segments(run1 + run2 + run3) == [_whole(run1, ACK | PSH), _whole(run2, ACK), _whole(run3, ACK)]


def test_gro_a_segment_with_psh_is_delivered_alone():
    """tcp_gro_receive flushes a packet with PSH at once: nothing merges behind it."""
    assert len(_segments([_pkt(1, flags="PA"), _pkt(1 + MSS)])) == 2


def test_gro_stays_within_one_64k_ip_packet():
    run = [_pkt(1 + k * MSS) for k in range(60)]
    got = _segments(run)
    assert len(got) == 2
    assert all(20 + 32 + len(g[1]) <= 65535 for g in got)
    assert b"".join(g[1] for g in got) == b"".join(bytes(IP(p)[TCP].payload) for p in run)


def test_gro_interleaved_flows_merge_only_where_adjacent():
    a = [_pkt(1 + k * MSS) for k in range(4)]
    b = [_pkt(1 + k * MSS, sport=40001) for k in range(4)]
    got = _segments([a[0], a[1], b[0], b[1], a[2], a[3], b[2], b[3]])
    assert [(g[0], len(g[1])) for g in got] == [(1, 2 * MSS)] * 2 + [(1 + 2 * MSS, 2 * MSS)] * 2


def test_gro_off_leaves_every_segment_alone():
    run = [_pkt(1), _pkt(1 + MSS)]
    assert len(BatchDecoder().decode(PacketBatch.of(run))) == 2


def _ack(ack: int, ts: int = 77, flags: str = "A", window: int = 501, sack: tuple[int, int] | None = None) -> bytes:
    tcp = TCP(sport=40000, dport=80, seq=1, ack=ack, flags=flags, window=window)
    tcp.options = [("NOP", None), ("NOP", None), ("Timestamp", (ts, 5))]
    if sack is not None:
        tcp.options += [("NOP", None), ("NOP", None), ("SAck", sack)]
    return bytes(IP(src="10.7.0.1", dst="10.7.0.2") / tcp)


def _acks_seen(packets: list[bytes]) -> list[int]:
    return [p.segment.ack for p in BatchDecoder(gro=True).decode(PacketBatch.of(packets))]


def test_acks_a_later_cumulative_ack_of_the_batch_supersedes_an_earlier_pure_one():
    """RFC 3449 §5.2.2 (ACK filtering): a pure ACK that a later one of the same batch covers says nothing
    the later one does not (its window is older too), so only the later one reaches the core."""
    decoder = BatchDecoder(gro=True)
    got = decoder.decode(PacketBatch.of([_ack(1000), _ack(3000, window=9), _ack(5000, ts=78)]))
    assert [(p.segment.ack, p.segment.window) for p in got] == [(5000, 501)]
    assert decoder.acks_superseded == 2 and decoder.gro_segments == 0


@pytest.mark.parametrize(
    "later",
    [
        pytest.param(_ack(1000), id="a duplicate ACK (RFC 5681 counts each)"),
        pytest.param(_ack(900), id="an older ACK"),
        pytest.param(_ack(2000, ts=76), id="an older timestamp (PAWS)"),
        pytest.param(_ack(2000, sack=(3000, 4000)), id="SACK blocks"),
        pytest.param(_ack(2000, flags="AE"), id="ECE"),
        pytest.param(_ack(2000, flags="AF"), id="FIN"),
        pytest.param(_ack(2000, flags="PA"), id="PSH"),
        pytest.param(_pkt(1, 10, ack=2000), id="data"),
    ],
)
def test_acks_only_a_pure_cumulative_ack_that_moves_forward_supersedes(later):
    assert len(_acks_seen([_ack(1000), later])) == 2


def test_acks_an_earlier_ack_with_sack_blocks_is_never_superseded():
    assert _acks_seen([_ack(1000, sack=(3000, 4000)), _ack(2000)]) == [1000, 2000]


@pytest.fixture
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_gro_payload_is_a_view_of_the_read_arena_and_earlier_batches_stay_intact(pair):
    """Copies per payload byte: a merged payload is moved once inside the arena the kernel read into
    (all but a run's first segment), no further copy to the core, and a later batch's merging never
    writes where an earlier batch's payloads still point."""
    a, b = pair
    reader, decoder = BatchReader(max_packets=8, max_size=1600), BatchDecoder(gro=True)
    first = [_pkt(1 + k * MSS) for k in range(8)]
    write_batch(a.fileno(), first)
    batch = reader.read(b.fileno())
    (kept,) = [p.segment.payload for p in decoder.decode(batch)]
    assert type(kept) is memoryview and kept.obj is batch.view.obj
    for _ in range(300):  # enough to fill the arena and start another (where a read may stop short)
        write_batch(a.fileno(), [_pkt(1 + k * MSS, ts=99) for k in range(8)])
        while decoder.decode(reader.read(b.fileno())):
            pass
    assert bytes(kept) == b"".join(bytes(IP(p)[TCP].payload) for p in first)
    assert decoder.gro_segments > 6 * 301


# ---------------------------------------------------------------- differential: a model of the rules


def _model(packets: list[bytes]) -> list[tuple[int, bytes, int, int]]:
    """Linux's GRO decisions for a batch of valid IPv4 TCP packets, restricted as ours to adjacent
    segments that start with ACK alone and take ACK or ACK+PSH."""
    out: list[list] = []
    last = None  # (ip, tcp) of the last packet delivered alone, if a pure ACK
    head = None  # (ip, tcp) of the open run's first packet
    count = 0
    for raw in packets:
        ip = IP(raw)
        tcp = ip[TCP]
        payload = bytes(tcp.payload)
        flags = int(tcp.flags)
        if last is not None and _supersedes((ip, tcp), last):
            out[-1] = [tcp.seq, payload, flags, 0]
            last = (ip, tcp)
            continue
        last = None
        if head is not None:
            hip, htcp = head
            run = out[-1]
            size = run[3] or len(run[1])
            same_id = ip.id == (hip.id + count) & 0xFFFF or (ip.flags.DF and ip.id == hip.id)
            ip_fields = [(p.src, p.dst, p.ttl, p.tos, p.flags.DF) for p in (ip, hip)]
            tcp_fields = [
                (t.sport, t.dport, t.ack, t.window, t.dataofs, bytes(t)[20 : t.dataofs * 4]) for t in (tcp, htcp)
            ]
            joins = (
                ip_fields[0] == ip_fields[1]
                and same_id
                and tcp_fields[0] == tcp_fields[1]
                and flags & ~PSH == ACK
                and 0 < len(payload) <= size
                and tcp.seq == (htcp.seq + len(run[1])) & 0xFFFFFFFF
                and 20 + tcp.dataofs * 4 + len(run[1]) + len(payload) <= 65535
            )  # fmt: skip
            if joins:
                run[1] += payload
                run[3] = size
                count += 1
                if flags & PSH or len(payload) < size:
                    run[2] |= flags
                    head = None
                continue
            head = None
        out.append([tcp.seq, payload, flags, 0])
        if flags == ACK and payload:
            head, count = (ip, tcp), 1
        elif _pure_ack(tcp):
            last = (ip, tcp)
    return [(s, bytes(p), f, g) for s, p, f, g in out]


def _pure_ack(tcp) -> bool:
    return int(tcp.flags) == ACK and not bytes(tcp.payload) and {k for k, _ in tcp.options} <= {"NOP", "Timestamp"}


def _supersedes(later, earlier) -> bool:
    """RFC 3449 §5.2.2 ACK filtering: a pure cumulative ACK makes an earlier one of the same connection
    redundant when it acknowledges more and is not older."""
    (ip, tcp), (eip, etcp) = later, earlier
    ts, ets = dict(tcp.options).get("Timestamp"), dict(etcp.options).get("Timestamp")
    return (
        _pure_ack(tcp)
        and (ip.src, ip.dst, ip.ttl, ip.tos, tcp.sport, tcp.dport, tcp.seq)
        == (eip.src, eip.dst, eip.ttl, eip.tos, etcp.sport, etcp.dport, etcp.seq)
        and 0 < (tcp.ack - etcp.ack) % 2**32 < 2**31
        and (ts is None) == (ets is None)
        and (ts is None or (ts[0] - ets[0]) % 2**32 < 2**31)
    )


_CHANGES = st.sampled_from(
    [
        {},
        {},
        {},
        {"ack": 9001},
        {"window": 7},
        {"ts": 78},
        {"ttl": 9},
        {"tos": 1},
        {"df": False},
        {"ident": 0},
        {"flags": "PA"},
        {"flags": "FA"},
        {"flags": "CA"},
        {"flags": "EA"},
        {"flags": "UA"},
        {"sport": 40001},
        {"n": 0},
        {"n": 0, "ack": 9001},
        {"n": 0, "ack": 8999},
        {"n": 0, "ts": 76},
        {"n": 700},
        {"gap": 1},
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 1448), st.integers(0, 0xFFFFFFFF), st.lists(_CHANGES, min_size=1, max_size=24))
def test_gro_merge_decisions_match_the_model(size, seq, changes):
    packets = []
    for k, change in enumerate(changes):
        change = dict(change)
        seq += change.pop("gap", 0)
        n = change.pop("n", size)
        packets.append(_pkt(seq & 0xFFFFFFFF, n, ident=change.pop("ident", k), **change))
        seq += n
    assert _segments(packets) == _model(packets)
