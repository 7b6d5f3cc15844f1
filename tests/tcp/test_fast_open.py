"""TCP Fast Open's server side (RFC 7413 §4.2): the cookie, a SYN's data taken by a listener's child."""

from dataclasses import replace

import pytest

from stack.tcp import fast_open
from stack.tcp.events import Connected, DataAvailable, Reset
from stack.tcp.listener import Listener
from stack.tcp.state import State
from stack.tcp.tcp_info import TCPI_OPT_SYN_DATA, tcp_info
from stack.wire.addr import parse
from stack.wire.segment import TcpOptions
from tests.tcp.conftest import CONFIG, IRS, ISS, LOCAL, REMOTE, seg

KEY = fast_open.parse_keys("a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4")[0]
SERVER = replace(CONFIG, fast_open=fast_open.SERVER_ENABLE, fast_open_keys=(KEY,))
GOOD = fast_open.cookie(KEY, REMOTE[0], LOCAL[0])


def listener(config=SERVER, queue: int = 4) -> Listener:
    lst = Listener(config, LOCAL)
    lst.fast_open_queue = queue
    return lst


def events(conn) -> list:
    found = []
    while (event := conn.next_event()) is not None:
        found.append(type(event))
    return found


def test_cookie_is_linux_siphash_of_both_addresses():
    """Linux's cookie (__tcp_fastopen_cookie_gen_cipher): the values packetdrill's runner gives its
    scripts as TFO_COOKIE for the key its defaults set, over IPv4 and IPv6."""
    assert fast_open.cookie(KEY, parse("192.0.2.1"), parse("192.168.0.1")).hex() == "3021b9d889017eeb"
    assert fast_open.cookie(KEY, parse("fd3d:fa7b:d17d::1"), parse("fd3d:a0b:17d6::1")).hex() == "c1d1e9742a47a9bc"


def test_keys_parse_and_format_as_the_sysctl_shows_them():
    text = "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4,00000001-00000002-00000003-00000004"
    assert fast_open.format_keys(fast_open.parse_keys(text)) == text
    for bad in ("a1a1a1a1-b2b2b2b2-c3c3c3c3", "xyz-1-2-3", "1-2-3-4,1-2-3-4,1-2-3-4", "123456789-1-2-3"):
        with pytest.raises(ValueError):
            fast_open.parse_keys(bad)


def test_listen_syn_requesting_cookie_gets_it_on_synack():
    """RFC 7413 §4.2.1: a SYN with an empty cookie option gets the cookie in the SYN,ACK, in the same form."""
    for exp in (False, True):
        lst = listener()
        child = lst.on_syn(REMOTE, seg("S", IRS, options=TcpOptions(mss=1400, fast_open=b"", fast_open_exp=exp)), 0.0)
        (synack,) = child.segments_to_send(0.0)
        assert (synack.options.fast_open, synack.options.fast_open_exp) == (GOOD, exp)
        assert not child.fast_open and lst.counters["TCPFastOpenCookieReqd"] == 1


def test_listen_syn_with_valid_cookie_and_data_child_has_data_before_handshake():
    """RFC 7413 §4.2.2: a valid cookie: the SYN's data is acknowledged by the SYN,ACK, and the child is
    ready for its application (Connected, then its data) while still in SYN_RECEIVED."""
    lst = listener()
    syn = seg("S", IRS, data=b"hello", options=TcpOptions(mss=1400, fast_open=GOOD))
    child = lst.on_syn(REMOTE, syn, 0.0)
    (synack,) = child.segments_to_send(0.0)
    assert (synack.flags, synack.ack, synack.options.fast_open) == (0x12, IRS + 1 + 5, None)
    assert child.state is State.SYN_RECEIVED and events(child) == [Connected, DataAvailable]
    assert child.read() == b"hello"
    assert tcp_info(child, 0.0)["tcpi_options"] & TCPI_OPT_SYN_DATA
    assert lst.counters["TCPFastOpenPassive"] == 1


def test_syn_received_fast_open_child_sends_data_before_final_ack():
    """Linux sends a fast open child's data in SYN_RECEIVED, right behind its SYN,ACK."""
    child = listener().on_syn(REMOTE, seg("S", IRS, data=b"q", options=TcpOptions(mss=1400, fast_open=GOOD)), 0.0)
    child.segments_to_send(0.0)
    child.send(b"answer", 0.0)
    (data,) = child.segments_to_send(0.0)
    assert (data.seq, data.ack, bytes(data.payload)) == (ISS + 1, IRS + 2, b"answer")
    child.receive_segment(seg(".", IRS + 2, ISS + 7), 0.01)
    assert child.state is State.ESTABLISHED and child.tcb.snd_una == ISS + 7
    assert Connected not in events(child)[2:]  # not reported twice


def test_listen_syn_with_invalid_cookie_takes_no_data_and_hands_out_valid_one():
    """RFC 7413 §4.2.2: a cookie that does not check out: an ordinary handshake, the SYN's data unacknowledged,
    the valid cookie on the SYN,ACK."""
    lst = listener()
    child = lst.on_syn(REMOTE, seg("S", IRS, data=b"hello", options=TcpOptions(fast_open=bytes(8))), 0.0)
    (synack,) = child.segments_to_send(0.0)
    assert (synack.ack, synack.options.fast_open) == (IRS + 1, GOOD)
    assert not child.fast_open and events(child) == [] and lst.counters["TCPFastOpenPassiveFail"] == 1


def test_listen_syn_with_backup_key_cookie_is_taken_and_primary_handed_out():
    """Linux's key rotation: a cookie of the backup key is good, the SYN,ACK carries the primary's."""
    backup = bytes(range(16))
    lst = listener(replace(SERVER, fast_open_keys=(KEY, backup)))
    old = fast_open.cookie(backup, REMOTE[0], LOCAL[0])
    child = lst.on_syn(REMOTE, seg("S", IRS, data=b"x", options=TcpOptions(fast_open=old)), 0.0)
    (synack,) = child.segments_to_send(0.0)
    assert child.fast_open and (synack.ack, synack.options.fast_open) == (IRS + 2, GOOD)
    assert lst.counters["TCPFastOpenPassiveAltKey"] == 1


def test_listen_without_queue_takes_no_fast_open():
    """A listener without TCP_FASTOPEN's queue (or with the sysctl's server bit off) ignores the option."""
    for config, queue in ((SERVER, 0), (replace(SERVER, fast_open=fast_open.CLIENT_ENABLE), 4)):
        syn = seg("S", IRS, data=b"x", options=TcpOptions(fast_open=GOOD))
        child = listener(config, queue).on_syn(REMOTE, syn, 0.0)
        (synack,) = child.segments_to_send(0.0)
        assert (synack.ack, synack.options.fast_open, child.fast_open) == (IRS + 1, None, 0)


def test_listen_every_listener_gets_queue_of_its_backlog_with_0x400():
    """net.ipv4.tcp_fastopen 0x400 (with 0x2): every listener takes fast open, its queue its backlog."""
    lst = Listener(replace(SERVER, fast_open=0x402), LOCAL, backlog=7)
    assert lst.fast_open_queue == 7


def test_listen_cookie_not_required_takes_data_without_cookie():
    """0x200 (TFO_SERVER_COOKIE_NOT_REQD): data in a SYN without the option is taken; no cookie handed out."""
    lst = listener(replace(SERVER, fast_open=0x202))
    child = lst.on_syn(REMOTE, seg("S", IRS, data=b"data"), 0.0)
    (synack,) = child.segments_to_send(0.0)
    assert child.fast_open and (synack.ack, synack.options.fast_open) == (IRS + 5, None)
    plain = lst.on_syn((REMOTE[0], 2), seg("S", IRS), 0.0)  # no data, no option: ordinary
    assert not plain.fast_open


def test_listen_full_fast_open_queue_falls_back_to_ordinary_handshake():
    """Linux tcp_fastopen_queue_check: beyond the queue's children in SYN_RECEIVED, no fast open
    (TCPFastOpenListenOverflow); a child that completed its handshake frees its place."""
    lst = listener(queue=1)
    first = lst.on_syn((REMOTE[0], 1), seg("S", IRS, data=b"a", options=TcpOptions(fast_open=GOOD)), 0.0)
    second = lst.on_syn((REMOTE[0], 2), seg("S", IRS, data=b"b", options=TcpOptions(fast_open=GOOD)), 0.0)
    assert first.fast_open and not second.fast_open and lst.counters["TCPFastOpenListenOverflow"] == 1
    first.segments_to_send(0.0)
    first.receive_segment(seg(".", IRS + 2, ISS + 1), 0.01)
    third = lst.on_syn((REMOTE[0], 3), seg("S", IRS, data=b"c", options=TcpOptions(fast_open=GOOD)), 0.02)
    assert third.fast_open


def test_syn_received_fast_open_child_reset_is_reported_to_application():
    """A RST ends a fast open child as Linux's tcp_reset ends a full socket: ECONNRESET, not refused, and
    it does not return to LISTEN."""
    child = listener().on_syn(REMOTE, seg("S", IRS, data=b"q", options=TcpOptions(fast_open=GOOD)), 0.0)
    child.segments_to_send(0.0)
    events(child)
    child.receive_segment(seg("R", IRS + 2), 0.01)
    assert child.state is State.CLOSED
    reset = [e for e in iter(child.next_event, None) if isinstance(e, Reset)]
    assert reset and not reset[0].refused


def test_syn_received_fast_open_synack_retransmission_carries_no_cookie_keeps_data_sent():
    """Linux retransmits a fast open child's SYN,ACK without a cookie option (inet_rtx_syn_ack), and what
    the child sent after it stays sent."""
    lst = listener()
    child = lst.on_syn(REMOTE, seg("S", IRS, data=b"q", options=TcpOptions(fast_open=b"", fast_open_exp=True)), 0.0)
    (first,) = child.segments_to_send(0.0)
    assert first.options.fast_open == GOOD
    deadline = child.next_deadline()
    child.handle_timer(deadline)
    (again,) = child.segments_to_send(deadline)
    assert again.flags == 0x12 and again.options.fast_open is None
    opened = lst.on_syn((REMOTE[0], 9), seg("S", IRS, data=b"q", options=TcpOptions(fast_open=GOOD)), 0.0)
    opened.segments_to_send(0.0)
    opened.send(b"reply", 0.0)
    opened.segments_to_send(0.0)
    deadline = opened.next_deadline()
    opened.handle_timer(deadline)
    (synack,) = opened.segments_to_send(deadline)
    assert synack.flags == 0x12 and opened.tcb.snd_max == ISS + 6


def test_syn_received_fast_open_final_ack_timestamp_becomes_ts_recent():
    """RFC 7323 §4.3: the final ACK is at the left edge of the window the SYN,ACK offered (Linux sets
    rcv_wup after the SYN's data), so its TSval is the one echoed next."""
    config = replace(SERVER, timestamps=True)
    options = TcpOptions(mss=1400, timestamps=(100, 0), fast_open=GOOD)
    child = listener(config).on_syn(REMOTE, seg("S", IRS, data=b"query", options=options), 0.0)
    (synack,) = child.segments_to_send(0.0)
    ack = seg(".", IRS + 6, ISS + 1, options=TcpOptions(timestamps=(101, synack.options.timestamps[0])))
    child.receive_segment(ack, 0.01)
    child.send(b"answer", 0.02)
    (data,) = child.segments_to_send(0.02)
    assert data.options.timestamps[1] == 101
