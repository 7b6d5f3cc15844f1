"""TIME_WAIT: 2*MSL before the connection's sequence space may be reused (RFC 9293 §3.4.2, §3.6)."""

from dataclasses import replace

import pytest

from stack.demux import Demux
from stack.tcp.connection import Connection
from stack.tcp.errors import LocalProtocolError
from stack.tcp.segment_arrives import syn_ends_time_wait
from stack.tcp.state import State
from stack.wire.segment import TcpOptions
from tests.tcp.conftest import CONFIG, IRS, ISS, LOCAL, REMOTE, seg, sent


def test_time_wait_lasts_2msl(conn_in):
    """§3.4.2: TIME-WAIT holds the TCB for 2*MSL (MSL = 1 s in these tests)."""
    c = conn_in(State.TIME_WAIT)
    assert c.next_deadline() == 2.0
    assert c.running_timer(0.5) == ("timewait", 1.5)
    c.handle_timer(1.99)
    assert c.state is State.TIME_WAIT
    c.handle_timer(2.0)
    assert c.state is State.CLOSED


def test_time_wait_retransmitted_fin_reacked_and_timer_restarts(conn_in):
    """§3.10.7.4 eighth check: a retransmitted FIN is acknowledged and 2*MSL restarts."""
    c = conn_in(State.TIME_WAIT)
    c.receive_segment(seg("F.", IRS + 1, ISS + 2), 1.5)
    assert sent(c, 1.5) == [(".", ISS + 2, IRS + 2, b"")]
    assert c.next_deadline() == 3.5


def test_time_wait_bare_ack_restarts_the_timer_unanswered(conn_in):
    """Linux tcp_timewait_state_process: a bare ACK at RCV.NXT restarts 2*MSL and gets no answer."""
    c = conn_in(State.TIME_WAIT)
    c.receive_segment(seg(".", IRS + 2, ISS + 2), 1.5)
    assert sent(c, 1.5) == []
    assert c.next_deadline() == 3.5


def test_time_wait_old_segment_with_ack_restarts_the_timer(conn_in):
    """Linux tcp_timewait_state_process: any segment with an ACK restarts 2*MSL, an old one too."""
    c = conn_in(State.TIME_WAIT)
    c.receive_segment(seg("P.", IRS, ISS + 2, b"o"), 1.5)
    assert sent(c, 1.5) == [(".", ISS + 2, IRS + 2, b"")]
    assert c.next_deadline() == 3.5


def test_time_wait_old_syn_does_not_restart_the_timer(conn_in):
    """Linux tcp_timewait_state_process: a SYN without ACK that opens nothing leaves 2*MSL alone."""
    c = conn_in(State.TIME_WAIT)
    c.receive_segment(seg("S", IRS - 100), 1.5)
    assert c.next_deadline() == 2.0


def test_time_wait_rst_closes(conn_in):
    c = conn_in(State.TIME_WAIT)
    c.receive_segment(seg("R", IRS + 2), 0.5)
    assert c.state is State.CLOSED


def test_time_wait_abort_closes_without_rst(conn_in):
    """§3.10.5: ABORT in TIME-WAIT responds "ok" and deletes the TCB."""
    c = conn_in(State.TIME_WAIT)
    c.abort(0.5)
    assert sent(c, 0.5) == [] and c.state is State.CLOSED


def test_time_wait_data_segment_answered_by_ack(conn_in):
    """§3.10.7.4 first check: an old segment is unacceptable and is answered by an ACK."""
    c = conn_in(State.TIME_WAIT)
    c.receive_segment(seg("P.", IRS, ISS + 2, b"o"), 0.5)  # a byte from before the FIN
    assert sent(c, 0.5) == [(".", ISS + 2, IRS + 2, b"")]
    assert c.read() == b""


def test_time_wait_close_raises_local_protocol_error(conn_in):
    """§3.10.4: CLOSE in TIME-WAIT -> "error: connection closing"."""
    c = conn_in(State.TIME_WAIT)
    with pytest.raises(LocalProtocolError, match="closing"):
        c.close(0.5)


def test_time_wait_rst_kills_and_counts(conn_in):
    """RFC 9293 §3.10.7.4 second check: RST in TIME-WAIT closes it (RFC 1337's assassination, as Linux)."""
    c = conn_in(State.TIME_WAIT)
    c.receive_segment(seg("R", c.tcb.rcv_nxt), 1.0)
    assert c.state is State.CLOSED
    assert c.counters.events().time_wait_killed == 1


def test_time_wait_newer_syn_ends_it_and_counts(conn_in):
    """RFC 1122 §4.2.2.13 / RFC 6191: a SYN beyond RCV.NXT ends TIME-WAIT for a new incarnation."""
    c = conn_in(State.TIME_WAIT)
    assert syn_ends_time_wait(c, seg("S", c.tcb.rcv_nxt + 100_000), 1.0)
    assert c.state is State.CLOSED
    assert c.counters.events().time_wait_recycled == 1


def test_time_wait_old_syn_leaves_it_alone(conn_in):
    c = conn_in(State.TIME_WAIT)
    assert not syn_ends_time_wait(c, seg("S", c.tcb.rcv_nxt - 1), 1.0)
    assert c.state is State.TIME_WAIT
    assert c.counters.events().time_wait_recycled == 0


def _time_wait_through_demux(demux: Demux) -> Connection:
    """A passive connection that closed first and sits in TIME_WAIT in the demultiplexer's table."""
    demux.listen(LOCAL)
    child, synack = demux.segment_arrives(REMOTE[0], LOCAL[0], seg("S", IRS, options=TcpOptions(mss=1460)), 0.0)
    iss = child.tcb.iss if child is not None else synack.seq  # (a SYN cookie's child comes with the ACK)
    child = demux.segment_arrives(REMOTE[0], LOCAL[0], seg(".", IRS + 1, iss + 1), 0.01)[0] or child
    assert child is not None
    child.close(0.02)
    child.segments_to_send(0.02)  # (our FIN goes out)
    demux.segment_arrives(REMOTE[0], LOCAL[0], seg("F.", IRS + 1, iss + 2), 0.03)
    assert child.state is State.TIME_WAIT
    return child


@pytest.mark.parametrize("cookies", [1, 2])
def test_time_wait_new_syn_opens_a_connection_whose_isn_lies_beyond_the_old_one(cookies):
    """RFC 1122 §4.2.2.13: the new incarnation's ISN is larger than any sequence number the old one used;
    Linux takes the old SND.NXT + 65537 (tcp_timewait_state_process), and answers without a SYN cookie."""
    demux = Demux(replace(CONFIG, syncookies=cookies))
    old = _time_wait_through_demux(demux)
    new, reply = demux.segment_arrives(REMOTE[0], LOCAL[0], seg("S", IRS + 100_000, options=TcpOptions(mss=1460)), 1.0)
    assert reply is None and new is not None and new is not old
    assert new.state is State.SYN_RECEIVED
    assert new.tcb.iss == (old.tcb.snd_max + 65537) & 0xFFFFFFFF


def test_time_wait_in_window_rst_not_at_rcv_nxt_dropped_without_a_challenge(conn_in):
    """Linux's time-wait sock takes a RST only at RCV.NXT and answers no other: no RFC 5961 §3.2
    challenge ACK, and TIME-WAIT stays."""
    c = conn_in(State.TIME_WAIT)
    c.receive_segment(seg("R", c.tcb.rcv_nxt + 10), 0.5)
    assert sent(c, 0.5) == [] and c.state is State.TIME_WAIT
    assert c.counters.events_seen().challenge_acks == 0


def test_time_wait_old_syns_answered_by_acks_limited_not_challenged(conn_in):
    """Linux tcp_timewait_state_process: an old SYN gets an ACK, at most one per 500 ms, counted as
    TCPACKSkippedTimeWait when held back; no RFC 5961 §4.2 challenge is counted."""
    c = conn_in(State.TIME_WAIT)
    c.receive_segment(seg("S", IRS - 100), 0.5)
    c.receive_segment(seg("S", IRS - 100), 0.6)
    assert sent(c, 0.6) == [(".", ISS + 2, IRS + 2, b"")]
    names = c.counters.by_linux_name()
    assert (names["TCPACKSkippedTimeWait"], names["TCPSYNChallenge"], names["TCPChallengeACK"]) == (1, 0, 0)


def test_time_wait_syn_failing_paws_restarts_the_timer_and_counts(conn_in):
    """RFC 7323 §5.3 R1 in TIME-WAIT: a SYN whose TSval is older than TS.Recent is dropped and answered;
    Linux starts 2*MSL again for it, as for any segment PAWS drops there, and counts it as PAWSTimewait."""
    c = conn_in(State.TIME_WAIT, timestamps=True)
    c.tcb.ts_ok = True
    c.receiver.ts_recent = 500
    c.receive_segment(seg("S", IRS - 100, options=TcpOptions(timestamps=(400, 0))), 1.5)
    assert [s[0] for s in sent(c, 1.5)] == ["."]
    assert c.next_deadline() == 3.5
    assert c.counters.by_linux_name()["PAWSTimewait"] == 1


def test_time_wait_syn_beyond_rcv_nxt_with_an_older_timestamp_leaves_it_alone(conn_in):
    """Linux tcp_timewait_state_process: a SYN whose TSval is older than TS.Recent fails PAWS (RFC 7323
    §5.3) and opens nothing, though its sequence number lies beyond RCV.NXT."""
    c = conn_in(State.TIME_WAIT, timestamps=True)
    c.tcb.ts_ok = True
    c.receiver.ts_recent = 500
    syn = seg("S", c.tcb.rcv_nxt + 100_000, options=TcpOptions(timestamps=(499, 0)))
    assert not syn_ends_time_wait(c, syn, 1.0)
    assert c.state is State.TIME_WAIT


def test_time_wait_rst_failing_paws_dropped_and_time_wait_kept(conn_in):
    """RFC 7323 §5.3 R1 as Linux's time-wait sock applies it (tcp_paws_reject rejects a RST too): a RST at
    RCV.NXT whose TSval is older than TS.Recent is dropped unanswered and counted as PAWSTimewait;
    TIME-WAIT goes on."""
    c = conn_in(State.TIME_WAIT, timestamps=True)
    c.tcb.ts_ok = True
    c.receiver.ts_recent = 500
    c.receive_segment(seg("R", c.tcb.rcv_nxt, options=TcpOptions(timestamps=(400, 0))), 1.0)
    assert sent(c, 1.0) == []
    assert c.state is State.TIME_WAIT
    assert c.counters.by_linux_name()["PAWSTimewait"] == 1
