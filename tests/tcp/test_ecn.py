"""ECN (RFC 3168 §6.1): negotiation, the receiver's echo and the sender's reduction."""

from dataclasses import replace

from stack.tcp.config import TcpConfig
from stack.tcp.connection import Connection
from stack.tcp.ecn import CE, ECT0
from stack.tcp.state import State
from stack.wire.segment import Flags
from tests.tcp.conftest import IRS, ISS, LOCAL, REMOTE, IssDraws, seg

MSS = 1460
CONFIG = TcpConfig(ecn=True, timestamps=False, congestion="reno", rng=IssDraws(ISS))


def _established(ecn_ok: bool = True) -> Connection:
    syn = replace(seg("S", IRS), flags=Flags.SYN | Flags.ECE | Flags.CWR) if ecn_ok else seg("S", IRS)
    c = Connection.from_syn(CONFIG, LOCAL, REMOTE, syn, 0.0)
    (synack,) = c.segments_to_send(0.0)
    c.receive_segment(seg(".", IRS + 1, synack.seq + 1), 0.01)
    assert c.state is State.ESTABLISHED
    return c


def test_listen_ecn_setup_syn_gets_synack_with_ece_only():
    """§6.1.1: an ECN-setup SYN (ECE+CWR) is answered by a SYN,ACK with ECE and without CWR."""
    c = Connection.from_syn(CONFIG, LOCAL, REMOTE, replace(seg("S", IRS), flags=Flags.SYN | Flags.ECE | Flags.CWR), 0.0)
    (synack,) = c.segments_to_send(0.0)
    assert synack.flags & (Flags.ECE | Flags.CWR) == Flags.ECE
    assert c.ecn.ok


def test_listen_plain_syn_no_ecn():
    c = Connection.from_syn(CONFIG, LOCAL, REMOTE, seg("S", IRS), 0.0)
    (synack,) = c.segments_to_send(0.0)
    assert not synack.flags & (Flags.ECE | Flags.CWR) and not c.ecn.ok


def test_syn_sent_setup_syn_then_synack_with_ece_agrees():
    c = Connection.connect(CONFIG, LOCAL, REMOTE, 0.0)
    (syn,) = c.segments_to_send(0.0)
    assert syn.flags & (Flags.ECE | Flags.CWR) == Flags.ECE | Flags.CWR
    c.receive_segment(replace(seg("S.", IRS, syn.seq + 1), flags=Flags.SYN | Flags.ACK | Flags.ECE), 0.01)
    assert c.ecn.ok


def test_established_ecn_new_data_is_ect0_acks_are_not():
    """§6.1.1, §6.1.4: data packets are ECN-capable; pure ACKs are not."""
    c = _established()
    c.send(b"x" * 100, 0.1)
    (data,) = c.segments_to_send(0.1)
    assert data.ecn == ECT0
    c.receive_segment(seg("P.", IRS + 1, ISS + 101, b"y" * 10), 0.2)
    (ack,) = c.segments_to_send(0.2)
    assert ack.ecn == 0


def test_established_ce_mark_is_echoed_until_cwr():
    """§6.1.3: ECE on every ACK after a CE mark, until a segment with CWR arrives."""
    c = _established()
    c.receive_segment(replace(seg("P.", IRS + 1, ISS + 1, b"a" * 10), ecn=CE), 0.1)
    (ack,) = c.segments_to_send(0.1)
    assert ack.flags & Flags.ECE and c.counters.events().ce_received == 1
    c.receive_segment(seg("P.", IRS + 11, ISS + 1, b"b" * 10), 0.2)
    c.handle_timer(0.3)
    assert all(s.flags & Flags.ECE for s in c.segments_to_send(0.3))
    c.receive_segment(replace(seg("P.", IRS + 21, ISS + 1, b"c" * 10), flags=Flags.ACK | Flags.PSH | Flags.CWR), 0.4)
    c.handle_timer(0.5)
    assert not any(s.flags & Flags.ECE for s in c.segments_to_send(0.5))


def test_established_ece_halves_cwnd_once_per_window_and_sets_cwr():
    """§6.1.2: the sender reduces as for a loss, once per window of data, and marks the next new
    data segment with CWR."""
    c = _established()
    c.send(b"d" * (10 * MSS), 0.1)
    c.segments_to_send(0.1)
    cwnd = c.cc.cwnd
    ece = replace(seg(".", IRS + 1, ISS + 1 + MSS), flags=Flags.ACK | Flags.ECE)
    c.receive_segment(ece, 0.2)
    assert c.cc.cwnd == c.cc.ssthresh < cwnd and c.counters.events().ecn_reductions == 1
    c.receive_segment(replace(ece, ack=ISS + 1 + 2 * MSS), 0.2)  # same window: no second reduction
    assert c.counters.events().ecn_reductions == 1
    new = [s for s in c.segments_to_send(0.2) if s.payload]  # PRR may let new data go at once
    c.receive_segment(seg(".", IRS + 1, c.tcb.snd_max), 0.3)  # all acknowledged: room to send
    c.send(b"e" * 100, 0.3)
    new += [s for s in c.segments_to_send(0.3) if s.payload]
    assert new and new[0].flags & Flags.CWR and not any(s.flags & Flags.CWR for s in new[1:])


def test_established_ece_reduction_ends_when_its_window_is_acked_then_cwnd_grows():
    """§6.1.2: the reduction answers one window of data; once data sent after that window is
    acknowledged, so that our CWR reached the receiver, the sender leaves it (Linux's CWR state, held
    until something above high_seq is acknowledged, ends with cwnd = ssthresh) and the window grows again."""
    c = _established()
    c.send(b"d" * (40 * MSS), 0.1)
    c.segments_to_send(0.1)
    c.receive_segment(replace(seg(".", IRS + 1, ISS + 1 + MSS), flags=Flags.ACK | Flags.ECE), 0.2)
    reduced_until, ssthresh = c.ecn.reduced_until, c.cc.ssthresh
    assert c.cc.in_recovery
    now = 0.2
    while c.tcb.snd_una != reduced_until:
        now += 0.01
        c.segments_to_send(now)
        c.receive_segment(seg(".", IRS + 1, min(c.tcb.snd_una + 2 * MSS, reduced_until)), now)
    assert c.cc.in_recovery  # the whole window, and nothing above it
    now += 0.01
    c.segments_to_send(now)
    c.receive_segment(seg(".", IRS + 1, c.tcb.snd_una + MSS), now)
    assert not c.cc.in_recovery and c.cc.cwnd == ssthresh
    for _ in range(5):
        now += 0.01
        c.segments_to_send(now)
        c.receive_segment(seg(".", IRS + 1, c.tcb.snd_max), now)
    assert c.cc.cwnd > ssthresh


def test_established_ece_reduction_is_paced_by_prr_from_the_window_before_the_ack():
    """§6.1.2 with RFC 6937, as Linux's CWR state: the ACK carrying the ECE does not grow the window, the
    controller reduces from the window before it (CUBIC: 0.7 of it), and PRR lets the flight down
    gradually: with all but one segment still out, one more may go (ceil(1 * ssthresh / cwnd)), not none."""
    c = _established()
    c.set_congestion_control("cubic")
    mss = c.tcb.snd_mss
    c.send(b"d" * (20 * mss), 0.1)
    c.segments_to_send(0.1)
    cwnd = c.cc.cwnd
    c.receive_segment(replace(seg(".", IRS + 1, ISS + 1 + mss), flags=Flags.ACK | Flags.ECE), 0.2)
    assert c.cc.ssthresh == int(cwnd * 0.7)
    assert c.recovery.send_window == (c.recovery.board.pipe_packets + 1) * mss == cwnd
    assert len([s for s in c.segments_to_send(0.2) if s.payload]) == 1


def test_established_congestion_control_changed_during_ece_reduction_still_ends_it():
    """§6.1.2 with TCP_CONGESTION set meanwhile (Linux keeps its CWR state across the change): the new
    controller goes on from the reduced window, and the reduction still ends when data sent after its
    window is acknowledged, so the window grows again instead of staying under PRR for good."""
    c = _established()
    c.send(b"d" * (40 * MSS), 0.1)
    c.segments_to_send(0.1)
    c.receive_segment(replace(seg(".", IRS + 1, ISS + 1 + MSS), flags=Flags.ACK | Flags.ECE), 0.2)
    reduced_until = c.ecn.reduced_until
    c.set_congestion_control("cubic")
    now = 0.2
    while c.tcb.snd_una != reduced_until:
        now += 0.01
        c.segments_to_send(now)
        c.receive_segment(seg(".", IRS + 1, min(c.tcb.snd_una + 2 * MSS, reduced_until)), now)
    now += 0.01
    c.segments_to_send(now)
    c.receive_segment(seg(".", IRS + 1, c.tcb.snd_una + MSS), now)
    assert not c.recovery.ecn_reducing


def test_established_ece_on_the_ack_of_the_whole_window_does_not_reduce_again():
    """RFC 3168 §6.1.2: at most one reduction per window of data. The receiver echoes ECE until our CWR,
    sent after that window, reaches it, so the ACK of the whole window still carries ECE: Linux, in CWR
    until something above high_seq is acknowledged, ignores it (tcp_fastretrans_alert)."""
    c = _established()
    c.send(b"d" * (3 * MSS), 0.1)
    c.segments_to_send(0.1)
    c.receive_segment(replace(seg(".", IRS + 1, ISS + 1 + MSS), flags=Flags.ACK | Flags.ECE), 0.2)
    ssthresh = c.cc.ssthresh
    c.receive_segment(replace(seg(".", IRS + 1, ISS + 1 + 3 * MSS), flags=Flags.ACK | Flags.ECE), 0.21)
    assert c.cc.ssthresh == ssthresh and c.counters.events().ecn_reductions == 1
