"""ICMP errors quoting our segments (RFC 5927 §4.1, RFC 1122 §4.2.3.9, RFC 1191), in virtual time.

The first part drives `icmp_input.icmp_error` on a connection; the second sends real ICMP packets
(built by scapy) through the IP layer and the demux to a connection.
"""

from __future__ import annotations

import errno

import pytest
from scapy.layers.inet import ICMP, IP, TCP

from stack.demux import Demux
from stack.ip import IpLayer
from stack.tcp.icmp_input import IcmpError, Outcome, icmp_error, path_mtu
from stack.tcp.state import State
from stack.wire.codec import IpPacket, decode, encode_tcp
from stack.wire.segment import TcpOptions
from tests.tcp.conftest import CONFIG, IRS, ISS, LOCAL, REMOTE, events, seg, sent

PORT_UNREACHABLE = IcmpError(3, 3, ISS)
HOST_UNREACHABLE = IcmpError(3, 1, ISS)


def _frag_needed(seq: int, mtu: int) -> IcmpError:
    return IcmpError(3, 4, seq, mtu)


def _in_flight(conn_in, segments: int = 3, **config_changes):
    """ESTABLISHED with `segments` full-sized (1460-byte) segments and a short one sent, unacknowledged."""
    c = conn_in(State.ESTABLISHED, **config_changes)
    c.send(bytes(range(256)) * 6 * segments, 0.0)  # 1536 * segments bytes: whole segments and a tail
    out = sent(c, 0.0)
    assert [len(p) for *_, p in out][:segments] == [1460] * segments
    return c, out


# ---------------------------------------------------------------- validation (RFC 5927 §4.1)


def test_established_port_unreachable_in_window_recorded_as_soft_error(conn_in):
    """RFC 1122 §4.2.3.9 / Linux tcp_v4_err: after the handshake even a hard error only sets the soft error."""
    c, _ = _in_flight(conn_in)
    assert icmp_error(c, IcmpError(3, 3, ISS + 1), 0.1) is Outcome.SOFT_ERROR
    assert c.soft_error == errno.ECONNREFUSED
    assert c.state is State.ESTABLISHED


@pytest.mark.parametrize("offset", [-1, 1536 * 3 + 1, 1 << 31])
def test_established_error_quoting_sequence_outside_flight_ignored(conn_in, offset):
    """RFC 5927 §4.1: only SND.UNA <= quoted SEG.SEQ <= SND.NXT is believable (blind injection otherwise)."""
    c, _ = _in_flight(conn_in)
    assert icmp_error(c, IcmpError(3, 1, ISS + 1 + offset), 0.1) is Outcome.OUT_OF_WINDOW
    assert c.soft_error == 0


def test_established_error_quoting_acknowledged_data_ignored(conn_in):
    """RFC 5927 §4.1: a segment below SND.UNA was already delivered; an error about it is stale or forged."""
    c, _ = _in_flight(conn_in)
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 1460), 0.1)
    assert icmp_error(c, IcmpError(3, 1, ISS + 1), 0.1) is Outcome.OUT_OF_WINDOW


def test_established_host_unreachable_sets_soft_error_reported_by_timeout(conn_in):
    """RFC 1122 §4.2.3.9: codes 0, 1, 5 MUST NOT abort; Linux reports sk_err_soft once retries run out."""
    c, _ = _in_flight(conn_in, max_retries=1)
    assert icmp_error(c, IcmpError(3, 1, ISS + 1), 0.1) is Outcome.SOFT_ERROR
    assert c.state is State.ESTABLISHED and c.soft_error == errno.EHOSTUNREACH
    while c.state is State.ESTABLISHED:
        c.handle_timer(c.next_deadline())
    assert c.state is State.CLOSED
    assert events(c) == ["TimedOut", "Closed"]
    assert c.soft_error == errno.EHOSTUNREACH


def _backed_off(conn_in):
    """ESTABLISHED, its first segment resent twice by the retransmission timer (backoff 2)."""
    c, _ = _in_flight(conn_in, segments=1)
    for _ in range(2):
        now = c.next_deadline()
        c.handle_timer(now)
        c.segments_to_send(now)
    assert c.rto.backoff == 2
    return c


def test_established_host_unreachable_for_snd_una_reverts_one_backoff(conn_in):
    """RFC 6069 §4 (Linux tcp_ld_RTO_revert): the timer runs one doubling shorter from the last resend."""
    c = _backed_off(conn_in)
    last_sent = c.recovery.board.first().xmit_ts
    icmp_error(c, IcmpError(3, 1, ISS + 1), last_sent + 0.01)
    assert c.rto.backoff == 1
    assert c.next_deadline() == pytest.approx(last_sent + c.rto.rto)


@pytest.mark.parametrize(
    ("error", "why"),
    [(IcmpError(3, 1, ISS + 1 + 1460), "not SND.UNA"), (IcmpError(3, 3, ISS + 1), "port unreachable")],
)
def test_established_other_unreachables_leave_the_backoff(conn_in, error, why):
    """RFC 6069 §4: only a net or host unreachable about the first unacknowledged segment reverts."""
    c = _backed_off(conn_in)
    deadline = c.next_deadline()
    icmp_error(c, error, deadline - 0.1)
    assert (c.rto.backoff, c.next_deadline()) == (2, deadline), why


def test_time_wait_error_ignored(conn_in):
    """Linux tcp_v4_err: nothing in flight in TIME-WAIT, so nothing an error could be about."""
    c = conn_in(State.TIME_WAIT)
    assert icmp_error(c, IcmpError(3, 3, ISS + 2), 0.1) is Outcome.IGNORED
    assert c.state is State.TIME_WAIT and c.soft_error == 0


def test_established_source_quench_ignored(conn_in):
    """RFC 6633 §3: TCP MUST silently discard ICMP source quench."""
    c, _ = _in_flight(conn_in)
    assert icmp_error(c, IcmpError(4, 0, ISS + 1), 0.1) is Outcome.IGNORED
    assert c.soft_error == 0


# ---------------------------------------------------------------- the handshake


def test_syn_sent_port_unreachable_refuses_connect(conn_in):
    """Linux tcp_v4_err: an error in SYN-SENT ends the connect with its errno, here ECONNREFUSED."""
    c = conn_in(State.SYN_SENT)
    assert icmp_error(c, PORT_UNREACHABLE, 0.1) is Outcome.ABORTED
    assert c.state is State.CLOSED
    assert events(c) == ["Unreachable", "Closed"]
    assert c.soft_error == errno.ECONNREFUSED
    assert sent(c, 0.1) == []  # no RST: the peer holds no TCB


def test_syn_sent_protocol_unreachable_refuses_connect(conn_in):
    """RFC 1122 §4.2.3.9: protocol unreachable is a hard error too."""
    c = conn_in(State.SYN_SENT)
    assert icmp_error(c, IcmpError(3, 2, ISS), 0.1) is Outcome.ABORTED
    assert c.state is State.CLOSED


def test_syn_sent_port_unreachable_with_wrong_sequence_ignored(conn_in):
    """RFC 5927 §4.1: the quoted SYN must carry our ISS; a blind guess does not abort the connect."""
    c = conn_in(State.SYN_SENT)
    assert icmp_error(c, IcmpError(3, 3, ISS + 1000), 0.1) is Outcome.OUT_OF_WINDOW
    assert c.state is State.SYN_SENT


def test_syn_sent_host_unreachable_ends_connect_as_linux(conn_in):
    """Linux tcp_v4_err (tcp_done_with_error): a soft error about our SYN ends the connect too, with its
    errno (RFC 1122 §4.2.3.9 would keep retrying); no SYN goes again."""
    c = conn_in(State.SYN_SENT, syn_retries=1)
    assert icmp_error(c, HOST_UNREACHABLE, 0.1) is Outcome.ABORTED
    assert c.state is State.CLOSED and events(c) == ["Unreachable", "Closed"]
    assert c.soft_error == errno.EHOSTUNREACH
    assert c.next_deadline() is None and sent(c, 1.0) == []


def test_syn_received_host_unreachable_drops_half_open_connection(conn_in):
    """Linux tcp_req_err: an unreachable peer frees its SYN-queue slot at once, silently."""
    c = conn_in(State.SYN_RECEIVED)
    assert icmp_error(c, HOST_UNREACHABLE, 0.1) is Outcome.ABORTED
    assert c.state is State.CLOSED and c.finished
    assert events(c) == ["Closed"]
    assert sent(c, 0.1) == []


def test_syn_received_port_unreachable_ignored(conn_in):
    """Linux tcp_req_err: only network/host unreachable, time exceeded and parameter problem end it."""
    c = conn_in(State.SYN_RECEIVED)
    assert icmp_error(c, PORT_UNREACHABLE, 0.1) is Outcome.IGNORED
    assert c.state is State.SYN_RECEIVED


# ---------------------------------------------------------------- path MTU discovery (RFC 1191)


def test_established_frag_needed_resends_flight_in_smaller_segments(conn_in):
    """RFC 1191 §6.4: MSS = next-hop MTU - 40; what was in flight is resent at once at the new size."""
    c, before = _in_flight(conn_in)
    cwnd = c.cc.cwnd
    assert icmp_error(c, _frag_needed(ISS + 1, 1000), 0.1) is Outcome.PMTU_REDUCED
    assert c.tcb.snd_mss == 960
    again = sent(c, 0.1)  # as much as the unchanged congestion window allows, from SND.UNA on
    assert again and all(len(p) <= 960 for *_, p in again)
    flight, resent = b"".join(p for *_, p in before), b"".join(p for *_, p in again)
    assert again[0][1] == ISS + 1 and resent == flight[: len(resent)]
    assert c.counters.retrans_segs == len(again)
    assert c.cc.cwnd == cwnd  # RFC 1191 §6.5 / Linux: not a congestion signal


def test_established_frag_needed_out_of_window_ignored(conn_in):
    """RFC 5927 §7.2: a forged frag-needed must not shrink the MSS."""
    c, _ = _in_flight(conn_in)
    assert icmp_error(c, _frag_needed(ISS - 5000, 600), 0.1) is Outcome.OUT_OF_WINDOW
    assert c.tcb.snd_mss == 1460
    assert sent(c, 0.1) == []


def test_established_frag_needed_later_segments_use_new_mss(conn_in):
    """RFC 1191 §6.3: the reduced MSS applies to everything sent afterwards."""
    c, _ = _in_flight(conn_in, segments=1)
    icmp_error(c, _frag_needed(ISS + 1, 1280), 0.1)
    sent(c, 0.1)
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 1536), 0.2)
    c.send(b"x" * 5000, 0.2)
    assert [len(p) for *_, p in sent(c, 0.2)] == [1240, 1240, 1240, 1240, 40]


def test_established_frag_needed_for_larger_mtu_ignored(conn_in):
    """RFC 1191 §6.3: an ICMP message never raises the estimate."""
    c, _ = _in_flight(conn_in)
    icmp_error(c, _frag_needed(ISS + 1, 1000), 0.1)
    assert icmp_error(c, _frag_needed(ISS + 1, 1400), 0.1) is Outcome.IGNORED
    assert c.tcb.snd_mss == 960


def test_syn_sent_frag_needed_ignored(conn_in):
    """A SYN fits any path; the MSS is settled by the handshake."""
    c = conn_in(State.SYN_SENT)
    assert icmp_error(c, _frag_needed(ISS, 600), 0.1) is Outcome.IGNORED


@pytest.mark.parametrize(
    ("mtu", "expected"),
    [
        (1000, 1000),
        (0, 552),  # no next-hop MTU (a router before RFC 1191): Linux's min_pmtu, no plateau search
        (300, 552),  # a tiny MTU goes no lower (RFC 5927 §7.3)
        (67, 552),  # below RFC 791's minimum too
        (9000, 9000),  # larger than the path: _path_mtu_reduced ignores it
    ],
)
def test_path_mtu_from_frag_needed_as_linux(mtu, expected):
    """RFC 1191 §4 as Linux's __ip_rt_update_pmtu: the next-hop MTU, at least ip_rt_min_pmtu (552)."""
    assert path_mtu(IcmpError(3, 4, 0, mtu)) == expected


# ---------------------------------------------------------------- through the IP layer and the demux

US, PEER = "10.7.0.2", "10.7.0.1"


def _ip_layer(now: float = 0.0):
    demux = Demux(CONFIG)
    conn = demux.connect(LOCAL[0], REMOTE, now)
    conn.segments_to_send(now)
    return IpLayer(demux, LOCAL[0]), demux, conn


def _icmp_quoting(conn, icmp: ICMP, seq: int | None = None, src: str = US) -> IpPacket:
    syn = IP(src=src, dst=PEER) / TCP(sport=conn.local[1], dport=REMOTE[1], seq=conn.tcb.iss if seq is None else seq)
    packet = decode(bytes(IP(src=PEER, dst=US) / icmp / bytes(syn)[:28]))
    assert isinstance(packet, IpPacket)
    return packet


def test_ip_layer_port_unreachable_for_our_syn_refuses_connect():
    """RFC 792 quote (IP header + 8 bytes) -> 4-tuple and SEG.SEQ -> the connection (RFC 5927 §4.1)."""
    ip, demux, conn = _ip_layer()
    touched, reply = ip.receive(_icmp_quoting(conn, ICMP(type=3, code=3)), 0.1)
    assert touched is conn and reply is None
    assert conn.state is State.CLOSED and events(conn) == ["Unreachable", "Closed"]
    assert demux.counters["TCPIcmpAborts"] == 1


def test_ip_layer_unreachable_with_guessed_sequence_counted_not_acted_on():
    """RFC 5927 §4.1: an error quoting a sequence number we did not send is dropped and counted."""
    ip, demux, conn = _ip_layer()
    ip.receive(_icmp_quoting(conn, ICMP(type=3, code=3), seq=conn.tcb.iss + 100_000), 0.1)
    assert conn.state is State.SYN_SENT
    assert demux.counters["OutOfWindowIcmps"] == 1


def test_ip_layer_error_for_unknown_connection_counted():
    """Linux counts an error matching no socket (Icmp InErrors); we count it as unmatched."""
    ip, demux, conn = _ip_layer()
    packet = _icmp_quoting(conn, ICMP(type=3, code=3), src="10.7.0.99")  # not sent by us
    assert ip.receive(packet, 0.1) == (None, None)
    assert ip.counters["IcmpUnmatched"] == 1 and conn.state is State.SYN_SENT


def test_ip_layer_source_quench_ignored_and_counted():
    """RFC 6633 §3."""
    ip, _, conn = _ip_layer()
    assert ip.receive(_icmp_quoting(conn, ICMP(type=4, code=0)), 0.1) == (None, None)
    assert ip.counters["IcmpInSrcQuenchs"] == 1 and conn.state is State.SYN_SENT


def test_ip_layer_truncated_quote_counted_as_error():
    """RFC 792: the quote must hold the IP header and 64 bits of data; less cannot name a connection."""
    ip, _, conn = _ip_layer()
    short = decode(bytes(IP(src=PEER, dst=US) / ICMP(type=3, code=3) / bytes(IP(src=US, dst=PEER) / TCP())[:24]))
    assert ip.receive(short, 0.1) == (None, None)
    assert ip.counters["IcmpInErrors"] == 1 and conn.state is State.SYN_SENT


def test_ip_layer_frag_needed_shrinks_established_segments():
    """RFC 1191 §4: the next-hop MTU in the second word of the ICMP header."""
    ip, demux, conn = _ip_layer()
    iss = conn.tcb.iss
    conn.receive_segment(seg("S.", IRS, iss + 1, options=TcpOptions(mss=1460)), 0.1)
    conn.segments_to_send(0.1)
    conn.send(b"z" * 3000, 0.1)
    first = conn.segments_to_send(0.1)[0]
    dropped = IP(encode_tcp(LOCAL[0], REMOTE[0], first))
    icmp = IP(src=PEER, dst=US) / ICMP(type=3, code=4, nexthopmtu=1200) / bytes(dropped)[:28]
    touched, _ = ip.receive(decode(bytes(icmp)), 0.2)
    assert touched is conn and conn.tcb.snd_mss == 1160
    # each too-big segment is resent cut to the new size, as Linux's tcp_fragment does: 1460 = 1160 + 300;
    # the last 300 take in the 80 after them, as Linux's tcp_retrans_try_collapse joins short resends
    assert [len(s.payload) for s in conn.segments_to_send(0.2)] == [1160, 300, 1160, 380]
    assert demux.counters["TCPPmtuReductions"] == 1


def test_ip_layer_learned_path_mtu_lowers_the_mss_the_next_connection_offers():
    """RFC 1191 §6.3: the estimate belongs to the destination for ten minutes; a new connection to it offers
    the MSS that MTU leaves, as Linux's route advmss (1200 - 40), and after ten minutes the link's again."""
    ip, demux, conn = _ip_layer()
    conn.receive_segment(seg("S.", IRS, conn.tcb.iss + 1, options=TcpOptions(mss=1460)), 0.1)
    conn.segments_to_send(0.1)
    conn.send(b"z" * 1460, 0.1)
    dropped = IP(encode_tcp(LOCAL[0], REMOTE[0], conn.segments_to_send(0.1)[0]))
    icmp = IP(src=PEER, dst=US) / ICMP(type=3, code=4, nexthopmtu=1200) / bytes(dropped)[:28]
    ip.receive(decode(bytes(icmp)), 0.2)
    (syn,) = demux.connect(LOCAL[0], REMOTE, 0.3).segments_to_send(0.3)
    assert syn.options.mss == 1160
    (later,) = demux.connect(LOCAL[0], REMOTE, 601.0).segments_to_send(601.0)
    assert later.options.mss == 1460
