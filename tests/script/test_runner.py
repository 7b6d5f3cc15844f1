"""The runner fails scripts the stack does not honour, and skips what it cannot run — never passes them."""

from __future__ import annotations

import pytest

from stack.script.cli import run_scripts
from stack.script.errors import ScriptFailure, ScriptSkip
from stack.script.parser import ScriptSyntaxError, parse
from stack.script.runner import Runner
from stack.tcp.congestion import HyStartParams
from stack.wire import addr
from stack.wire.seq import seq_sub

SYNACK = "> S. 0:0(0) ack 1 <mss 1460,nop,wscale 7>"
LISTEN = """
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
"""
ESTABLISHED = (
    LISTEN
    + f"""
+0    {SYNACK}
+.1   < . 1:1(0) ack 1 win 257
+0    accept(3, ..., ...) = 4
"""
)
CONNECT = """
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0...0.1 connect(3, ..., ...) = {result}
+0    > S 0:0(0) <mss 1460,sackOK,TS val 0 ecr 0,nop,wscale 7>
"""


def run(text: str) -> Runner:
    runner = Runner(parse(text, "t.pkt"))
    runner.run()
    return runner


# ---------------------------------------------------------------- packets


def test_packet_wrong_flags_fail_with_both_packets_in_script_notation():
    with pytest.raises(ScriptFailure) as exc:
        run(LISTEN + "+0 > S 0:0(0) <mss 1460,nop,wscale 7>\n")
    text = str(exc.value)
    assert "t.pkt:6:" in text and "expected: > S 0:0(0)" in text
    assert "actual:   > S. 0:0(0) ack 1 win " in text and "<mss 1460,nop,wscale 7>" in text and "flags differ" in text


def test_packet_at_the_wrong_time_fails():
    with pytest.raises(ScriptFailure, match="expected 0.500 s"):
        run(LISTEN + f"+.5 {SYNACK}\n")


def test_packet_within_tolerance_passes_and_outside_fails():
    run("--tolerance_usecs=20000\n" + LISTEN + f"+.015 {SYNACK}\n")
    with pytest.raises(ScriptFailure, match="expected 0.015 s"):
        run(LISTEN + f"+.015 {SYNACK}\n")


def test_packet_time_range_accepts_any_time_inside():
    run(LISTEN + f"+0~+0.5 {SYNACK}\n")


def test_packet_unexpected_extra_fails():
    with pytest.raises(ScriptFailure, match="unexpected outbound packet"):
        run(LISTEN)


def test_packet_unexpected_before_next_event_fails():
    with pytest.raises(ScriptFailure, match="t.pkt:6: unexpected outbound packet at 0.000 s, before this line"):
        run(LISTEN + "+1 close(3) = 0\n")


def test_packet_missing_options_fail_strictly():
    """An outbound line without <...> expects a packet without options, as packetdrill does."""
    with pytest.raises(ScriptFailure, match="options differ"):
        run(LISTEN + "+0 > S. 0:0(0) ack 1\n")


def test_packet_any_options_are_not_checked():
    run(LISTEN + "+0 > S. 0:0(0) ack 1 <...>\n")


def test_packet_wrong_ack_and_window_reported():
    with pytest.raises(ScriptFailure, match="ack differs; window differs"):
        run(LISTEN + "+0 > S. 0:0(0) ack 2 win 1 <mss 1460,nop,wscale 7>\n")


def test_packet_expected_but_nothing_sent_fails():
    with pytest.raises(ScriptFailure, match="no packet was sent"):
        run(ESTABLISHED + "+0 > . 1:1(0) ack 1\n")


def test_packet_from_a_timer_is_matched_at_its_time():
    """RFC 6298 (5.5): the SYN,ACK is retransmitted when the initial RTO of 1 s expires."""
    run(LISTEN + f"+0 {SYNACK}\n+1 {SYNACK}\n")


def test_packet_any_time_waits_for_the_next_timer():
    run(LISTEN + f"+0 {SYNACK}\n* {SYNACK}\n+0 close(3) = 0\n")


def test_relative_time_counts_from_when_the_packet_was_sent():
    """`*` matched the retransmission at 1 s, so `+1` after it means 2 s later, the backed-off RTO."""
    run(LISTEN + f"+0 {SYNACK}\n* {SYNACK}\n+2 {SYNACK}\n")


def test_inbound_ack_is_relative_to_our_isn():
    runner = run(ESTABLISHED)
    conn = runner.kernel.sockets[4].conn
    assert conn is not None and conn.state.name == "ESTABLISHED"
    assert conn.tcb.snd_una == (conn.tcb.iss + 1) & 0xFFFFFFFF


def test_inbound_sack_blocks_are_relative_to_our_isn():
    """RFC 2018 §3: SACK edges in the script are relative; the core's scoreboard holds the real ones."""
    text = LISTEN.replace("<mss 1000,nop,wscale 7>", "<mss 1000,sackOK,nop,nop,nop,wscale 7>")
    text += "+0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 7>\n+.1 < . 1:1(0) ack 1 win 257\n"
    text += "+0 accept(3, ..., ...) = 4\n+0 write(4, ..., 6000) = 6000\n"
    text += "+0 > . 1:5001(5000) ack 1\n"  # (Linux's GSO packets: PSH where each ends)
    text += "+0 > P. 5001:6001(1000) ack 1\n+.01 < . 1:1(0) ack 1 win 257 <nop,nop,sack 5001:6001>\n"
    runner = run(text)
    conn = runner.kernel.sockets[4].conn
    board = conn.recovery.board
    assert [(board.seq_of(rec.start) - conn.tcb.iss) & 0xFFFFFFFF for rec in board if rec.sacked] == [5001]


def test_packet_port_info_drives_a_second_connection():
    """Each `src>dst` names its own connection, with its own ISN for the relative numbers."""
    text = LISTEN.replace("< S 0:0(0)", "< 40001>8080 S 0:0(0)").replace("listen(3, 1)", "listen(3, 2)")
    text += "+0 > 8080>40001 S. 0:0(0) ack 1 <...>\n+0 < 40002>8080 S 300:300(0) win 100 <mss 1000>\n"
    text += "+0 > 8080>40002 S. 0:0(0) ack 301 <mss 1460>\n+0 < 40002>8080 . 301:301(0) ack 1 win 100\n"
    text += "+0 < 40001>8080 . 1:1(0) ack 1 win 257\n+0 accept(3, ..., ...) = 4\n+0 accept(3, ..., ...) = 5\n"
    runner = run(text)
    first, second = runner.kernel.sockets[4].conn, runner.kernel.sockets[5].conn
    assert (first.remote[1], second.remote[1]) == (40002, 40001)
    assert first.state.name == second.state.name == "ESTABLISHED" and first.tcb.iss != second.tcb.iss


def test_packet_new_incarnation_on_the_same_ports_is_numbered_from_the_first_ones_isn():
    """As packetdrill: a SYN on the ports of the socket under test goes to that socket, numbers and all."""
    text = ESTABLISHED.replace("+0    accept(3, ..., ...) = 4\n", "") + "+.01 < R 1:1(0) win 0\n"
    text += "+.01 < S 1000:1000(0) win 32792 <mss 1000,nop,wscale 7>\n+0 > S. 30000:30000(0) ack 1001 <...>\n"
    text += "+.01 < . 1001:1001(0) ack 30001 win 257\n+0 accept(3, ..., ...) = 4\n+0 accept(3, ..., ...) = 5\n"
    runner = run(text)  # (RFC 6528: the new ISN is 120 ms of the 4-microsecond clock later)
    # the first, reset before it was accepted, stays in the accept queue (Linux)
    assert runner.kernel.sockets[4].conn.state.name == "CLOSED"
    assert runner.kernel.sockets[5].conn.state.name == "ESTABLISHED"


def test_packet_connection_after_a_new_socket_is_numbered_from_its_own_isn():
    """packetdrill's socket under test is the newest socket(): its connections start their own numbers."""
    text = LISTEN + f"+0 {SYNACK}\n+.01 < R 1:1(0) win 0\n+0 close(3) = 0\n"
    text += LISTEN.replace("0     socket", "+.01  socket").replace("< S 0:0(0)", "< S 1000:1000(0)")
    text += "+0 > S. 0:0(0) ack 1001 <...>\n+.01 < . 1001:1001(0) ack 1 win 257\n+0 accept(3, ..., ...) = 4\n"
    runner = run(text)
    assert runner.kernel.sockets[4].conn.state.name == "ESTABLISHED"


def test_packet_port_info_checks_outbound_ports():
    text = LISTEN.replace("< S 0:0(0)", "< 40001>8080 S 0:0(0)")
    with pytest.raises(ScriptFailure, match=r"actual:   > 8080>40001 S\. .*ports differ"):
        run(text + "+0 > 8080>40002 S. 0:0(0) ack 1 <...>\n")


def test_packet_urgent_pointer_reaches_the_core_and_is_checked_outbound():
    runner = Runner(parse(ESTABLISHED + "+0 < P.U 1:11(10) ack 1 win 257 urg 5\n", "t.pkt"))
    with pytest.raises(ScriptFailure, match="unexpected outbound packet"):
        runner.run()  # the ACK of the data is not in the script
    (conn,) = runner.demux.connections.values()
    assert conn.urgent is not None  # the pointer names the fifth byte (RFC 9293 §3.8.5), which arrived: 0
    assert (seq_sub(conn.urgent.seq, conn.tcb.irs), conn.urgent.byte) == (5, 0)
    with pytest.raises(ScriptFailure, match="urgent pointer differs"):
        run(ESTABLISHED + "+0 < P. 1:11(10) ack 1 win 257\n+0 > . 1:1(0) ack 11 urg 3\n")


# ---------------------------------------------------------------- script options (sysctls)


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("--tcp_timestamps=1", "timestamps", True),
        ("--tcp_sack=0", "sack", False),
        ("--tcp_window_scaling=0", "window_scaling", False),
        ("--tcp_challenge_ack_limit=1", "challenge_ack_limit", 1),
        ("--tcp_invalid_ratelimit=100", "invalid_ratelimit", 0.1),
        ("--tcp_retries2=3", "max_retries", 3),
        ("--tcp_syn_retries=2", "syn_retries", 2),
        ("--tcp_synack_retries=1", "synack_retries", 1),
        ("--tcp_fin_timeout=5", "fin_timeout", 5),
    ],
)
def test_sysctl_option_sets_the_stack_setting(line, field, value):
    runner = Runner(parse(line + "\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "t.pkt"))
    assert getattr(runner.config, field) == value
    assert getattr(runner.demux.config, field) == value


def test_sysctl_option_with_a_bad_value_fails():
    with pytest.raises(ScriptFailure, match="sysctl tcp_retries2=many: the value must be an integer"):
        Runner(parse("--tcp_retries2=many\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "t.pkt"))


def test_sysctl_min_tso_segs_outside_linux_range_skips():
    """Linux's tcp_min_tso_segs takes 1 to 255: 0 is refused (a GSO packet of no segment)."""
    with pytest.raises(ScriptSkip, match="tcp_min_tso_segs"):
        Runner(parse("--tcp_min_tso_segs=0\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "t.pkt"))


def test_sysctl_challenge_ack_limit_changes_what_the_stack_answers():
    """RFC 5961 §7: with a limit of 1 per second the second in-window RST in that second is not answered
    (600 ms after the first, past the 500 ms that hold back any second answer)."""
    text = "--tcp_challenge_ack_limit=1\n" + ESTABLISHED + "+0 < R 100:100(0) win 0\n+0 > . 1:1(0) ack 1\n"
    run(text + "+.6 < R 100:100(0) win 0\n")
    with pytest.raises(ScriptFailure, match="unexpected outbound packet"):
        run(text.replace("--tcp_challenge_ack_limit=1\n", "") + "+.6 < R 100:100(0) win 0\n")


# ---------------------------------------------------------------- system calls


def test_syscall_wrong_result_fails_with_both_results():
    with pytest.raises(ScriptFailure, match="expected: = 7\n  actual:   = 0"):
        run("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 7\n")


def test_syscall_wrong_errno_fails():
    with pytest.raises(ScriptFailure, match="expected: = -1 EAGAIN\n  actual:   = -1 EINPROGRESS"):
        run(
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n"
            "+0 connect(3, ..., ...) = -1 EAGAIN (x)\n"
        )


def test_syscall_fds_are_reused_lowest_first():
    run(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 4\n"
        "+0 close(3) = 0\n+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(9) = -1 EBADF (Bad file descriptor)\n"
    )


def test_syscall_nonblocking_accept_without_connection_is_eagain():
    run(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n"
        "+0 fcntl(3, F_GETFL) = 0x802 (flags O_RDWR|O_NONBLOCK)\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n"
        "+0 accept(3, ..., ...) = -1 EAGAIN (Resource temporarily unavailable)\n"
    )


def test_syscall_blocking_accept_returns_when_the_handshake_completes():
    run(LISTEN + f"+0...0.1 accept(3, ..., ...) = 4\n+0 {SYNACK}\n+.1 < . 1:1(0) ack 1 win 257\n")


def test_syscall_blocking_accept_returning_late_fails():
    with pytest.raises(ScriptFailure, match="expected: to return at 0.050 s\n  actual:   still blocked at 0.054 s"):
        run(LISTEN + f"+0...0.05 accept(3, ..., ...) = 4\n+0 {SYNACK}\n+.1 < . 1:1(0) ack 1 win 257\n")


def test_syscall_blocking_call_that_never_returns_fails():
    with pytest.raises(ScriptFailure, match="the call blocks"):
        run(LISTEN + f"+0 {SYNACK}\n+0 accept(3, ..., ...) = 4\n+1 close(3) = 0\n")


def test_syscall_blocking_call_without_end_time_is_not_completed_by_later_lines():
    """packetdrill makes a call written without start...end in its only thread: while it blocks, the
    handshake written after it never comes (the script hangs on Linux), so here it fails at once."""
    handshake = f"+0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>\n+0 {SYNACK}\n+0 < . 1:1(0) ack 1 win 257\n"
    with pytest.raises(ScriptFailure, match="t.pkt:5: .*accept.*\n  the call blocks"):
        run(LISTEN.split("+0    <")[0] + "+0 accept(3, ..., ...) = 4\n" + handshake)


def test_syscall_blocking_call_with_end_time_is_completed_by_later_lines():
    handshake = f"+0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>\n+0 {SYNACK}\n+.1 < . 1:1(0) ack 1 win 257\n"
    run(LISTEN.split("+0    <")[0] + "+0...0.1 accept(3, ..., ...) = 4\n" + handshake)


def test_syscall_blocking_connect_returns_on_syn_ack():
    run(CONNECT.format(result="0") + "+.1 < S. 0:0(0) ack 1 win 5840 <mss 1460,nop,wscale 6>\n+0 > . 1:1(0) ack 1\n")


def test_syscall_blocking_connect_refused_by_rst():
    run(CONNECT.format(result="-1 ECONNREFUSED (Connection refused)") + "+.1 < R. 0:0(0) ack 1 win 0\n")


def test_syscall_blocking_read_returns_when_data_arrives():
    run(ESTABLISHED + "+0...0.2 read(4, ..., 1000) = 100\n+.2 < P. 1:101(100) ack 1 win 257\n* > . 1:1(0) ack 101\n")


def test_syscall_blocking_read_returns_zero_at_eof():
    run(ESTABLISHED + "+0...0.1 read(4, ..., 1000) = 0\n+.1 < F. 1:1(0) ack 1 win 257\n+0 > . 1:1(0) ack 2\n")


def test_syscall_blocking_connect_as_last_line_times_out():
    """RFC 6298 (5.5) as Linux 6.18: tcp_syn_retries = 6 and four linear timeouts, SYNs at 0, 1, 2, 3, 4, 5,
    7, ... 67 s, ETIMEDOUT at 131 s."""
    text = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n0...131 connect(3, ..., ...) = -1 ETIMEDOUT (x)\n"
    syns = (0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67)
    text += "".join(f"{t} > S 0:0(0) <mss 1460,sackOK,TS val 0 ecr 0,nop,wscale 7>\n" for t in syns)
    run(text)


def test_syscall_second_call_while_one_blocks_fails():
    with pytest.raises(ScriptFailure, match="a blocking call is still running"):
        run(ESTABLISHED + "+0...1 read(4, ..., 1000) = 0\n+0 close(3) = 0\n")


def test_syscall_getsockopt_checks_the_value():
    with pytest.raises(ScriptFailure, match=r"expected: TCP_NODELAY = \[1\]\n  actual:   TCP_NODELAY = \[0\]"):
        run("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 getsockopt(3, SOL_TCP, TCP_NODELAY, [1], [4]) = 0\n")


def test_syscall_setsockopt_then_getsockopt_round_trip():
    run(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
        "+0 setsockopt(3, IPPROTO_TCP, TCP_NODELAY, [1], 4) = 0\n"
        "+0 getsockopt(3, IPPROTO_TCP, TCP_NODELAY, [1], [4]) = 0\n"
        "+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0\n"
        "+0 getsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], [4]) = 0\n"
        "+0 setsockopt(3, SOL_SOCKET, SO_SNDBUF, [20000], 4) = 0\n"
        "+0 getsockopt(3, SOL_SOCKET, SO_SNDBUF, [40000], [4]) = 0\n"
        "+0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0\n"
        "+0 getsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, [8]) = 0\n"
        '+0 setsockopt(3, IPPROTO_TCP, TCP_CONGESTION, "reno", 4) = 0\n'
        '+0 getsockopt(3, IPPROTO_TCP, TCP_CONGESTION, "reno", [16]) = 0\n'
    )


def test_syscall_unknown_congestion_control_expected_to_fail_is_enoent():
    run('0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 setsockopt(3, SOL_TCP, TCP_CONGESTION, "x", 1) = -1 ENOENT\n')


# ---------------------------------------------------------------- skips


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "+0 setsockopt(3, SOL_SOCKET, SO_ZEROCOPY, [1], 4) = 0\n"
            "+0 recvmsg(3, {msg_iov(1)=[{..., 0}]}, MSG_ERRQUEUE) = 0",
            "zerocopy completions",
        ),
        ("+0 setsockopt(3, SOL_SOCKET, SO_BROADCAST, [1], 4) = 0", "SO_BROADCAST"),
        ('+0 setsockopt(3, SOL_TCP, TCP_CONGESTION, "vegas", 5) = 0', "'vegas' is not available"),
        ("+0 fcntl(3, F_SETOWN, 1234) = 0", "F_SETOWN"),
        ("+0 `ip addr add 10.0.0.1/24 dev tun0`", "not in the vocabulary"),
        ("+0 `dd bs=1 count=5 if=/dev/urandom of=/tmp/f`", "dd other than from /dev/zero"),
        ('+0 open("/etc/passwd", O_RDWR) = 4', "open\\(\\) other than O_RDONLY"),
        ("+0 `ip route change 192.0.2.1 dev tun0 rto_min 10ms`", "route attribute not modelled"),
        ("+0 `tc qdisc replace dev tun0 root fq maxrate 1mbit`", "qdisc not modelled"),
        ("+0 `tc qdisc add dev tun0 root pfifo limit 5`", "drops packets locally"),
        ("+0 `sysctl -q net.ipv4.tcp_mtu_probing=3`", "tcp_mtu_probing=3 is not a value tcpstack models"),
    ],
)
def test_skip_unsupported(text, reason):
    with pytest.raises(ScriptSkip, match=reason):
        run("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n" + text + "\n")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("--ip_version=ipv5\n0 close(3) = -1 EBADF (x)", "--ip_version=ipv5"),
        ("--mtu=100\n0 close(3) = -1 EBADF (x)", "--mtu=100"),
        ("0 < S 0:0(0) win 100 <mss 1000,md5>", "TCP option md5"),
    ],
)
def test_skip_unsupported_script_options_and_tcp_options(text, reason):
    with pytest.raises(ScriptSkip, match=reason):
        run(text)


def test_python_block_without_a_socket_fails():
    """packetdrill: "no socket to use for code" when no socket was connected or accepted (here the
    accept has not returned), not a SKIP for fields tcpstack would keep."""
    with pytest.raises(ScriptFailure, match="no socket to read tcp_info from"):
        run(LISTEN.split("+0    <")[0] + "+0...1 accept(3, ..., ...) = 4\n+0 %{ assert tcpi_snd_mss == 1448 }%\n")


def test_absolute_time_going_backward_fails():
    with pytest.raises(ScriptFailure, match="time goes backward, from 0.500 s to 0.100 s"):
        run("0.5 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n0.1 close(3) = 0\n")


@pytest.mark.parametrize("later", ["+99999999999999999999", "100000001", "+1~+200000000"])
def test_time_past_the_end_of_virtual_time_fails(later):
    """A time so large that a float no longer resolves the core's timers (which would then fire without
    moving time on, for ever) fails the script at once."""
    with pytest.raises(ScriptFailure, match="past the end of virtual time"):
        run(f"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n{later} close(3) = 0\n")


def test_late_packet_failure_shows_when_it_came():
    with pytest.raises(ScriptFailure, match=r"no packet was sent by 0.004 s; the next one came at 1.000 s: > S. 0:0"):
        run(LISTEN + f"+0 {SYNACK}\n+0 {SYNACK}\n")


def test_skip_ipv6_socket():
    with pytest.raises(ScriptSkip, match="AF_INET6"):
        run("0 socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP) = 3\n")


# ---------------------------------------------------------------- command line


def test_run_scripts_exit_code_and_lines(tmp_path, capsys):
    good = tmp_path / "good.pkt"
    good.write_text(LISTEN + f"+0 {SYNACK}\n")
    bad = tmp_path / "bad.pkt"
    bad.write_text(LISTEN + "+0 > S 0:0(0)\n")
    skipped = tmp_path / "skip.pkt"
    skipped.write_text("`ip addr add 10.0.0.1/24 dev tun0`\n")
    assert run_scripts([str(good), str(skipped)]) == 0
    assert run_scripts([str(good), str(bad), str(tmp_path / "missing.pkt")]) == 1
    out = capsys.readouterr().out
    assert f"PASS {good}" in out and f"SKIP {skipped}" in out and f"FAIL {bad}" in out and "missing.pkt" in out


def test_run_scripts_ip_version_ipv6_records_ipv6_packets(tmp_path):
    """`tcpstack script --ip_version=ipv6`: the script passes, and its capture holds IPv6 packets between
    fd3d:fa7b:d17d::2 and ::1 (RFC 8200 headers from the same codec as the TUN path)."""
    good = tmp_path / "good.pkt"
    good.write_text(LISTEN + f"+0 {SYNACK}\n")
    pcap = tmp_path / "six.pcap"
    assert run_scripts([str(good)], pcap=str(pcap), ip_version="ipv6") == 0
    data = pcap.read_bytes()
    packets, pos = [], 24
    while pos + 16 <= len(data):
        length = int.from_bytes(data[pos + 8 : pos + 12], "little")
        packets.append(data[pos + 16 : pos + 16 + length])
        pos += 16 + length
    assert len(packets) == 2 and all(p[0] >> 4 == 6 for p in packets)
    assert {addr.from_packed6(p[8:24]) for p in packets} == {
        addr.parse("fd3d:fa7b:d17d::1"),
        addr.parse("fd3d:fa7b:d17d::2"),
    }


# ---------------------------------------------------------------- the published scripts' dialect


def test_shell_defaults_sh_sets_linux_defaults_without_running_anything():
    """The corpora's defaults.sh is Linux's production setup: timestamps on, SYN retries 5, CUBIC."""
    runner = run("`../common/defaults.sh`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    assert (runner.config.timestamps, runner.config.syn_retries, runner.config.congestion) == (True, 5, "cubic")
    assert runner.config.receive_buffer_max == 15 * 1024 * 1024


def test_shell_defaults_sh_gives_cubic_linux_hystart():
    """A Linux host runs tcp_cubic with hystart_detect=3: both of HyStart's detectors."""
    runner = run("`../common/defaults.sh`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    assert runner.config.hystart == HyStartParams(detect=3)


def test_shell_ip_link_mtu_sets_the_mss_offered():
    """`ip link set dev tun0 mtu 9000`: the device's MTU less the IPv4 and TCP headers is offered."""
    run("`ip link set dev tun0 mtu 9000`\n" + LISTEN + "+0 > S. 0:0(0) ack 1 <mss 8960,nop,wscale 7>\n")


@pytest.mark.parametrize(
    ("command", "reason"),
    [("ip link set dev tun0 txqueuelen 10", "attribute not modelled"), ("ip link set tun0 mtu 100", "below what")],
)
def test_shell_ip_link_other_attribute_or_tiny_mtu_skips(command, reason):
    with pytest.raises(ScriptSkip, match=reason):
        run(f"`{command}`\n" + LISTEN)


def test_packet_syn_cookie_ack_is_numbered_from_the_cookie_synack():
    """With no connection yet, an ACK without ports acknowledges the ISN of the SYN cookie's SYN,ACK
    (without timestamps, a cookie keeps no window scale)."""
    cookie_synack = "> S. 0:0(0) ack 1 <mss 1460>"
    run(f"--tcp_syncookies=2\n{LISTEN}+0 {cookie_synack}\n+.01 < . 1:1(0) ack 1 win 257\n+0 accept(3, ..., ...) = 4\n")


def test_shell_cubic_module_parameters_set_hystart():
    """`echo V > /sys/module/tcp_cubic/parameters/NAME` sets Linux HyStart's parameters; the rest stay."""
    runner = run(
        "`echo 2 > /sys/module/tcp_cubic/parameters/hystart_detect\n"
        "echo 4000 > /sys/module/tcp_cubic/parameters/hystart_ack_delta_us`\n"
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
    )
    assert runner.config.hystart == HyStartParams(detect=2, ack_delta=0.004)


@pytest.mark.parametrize(
    ("line", "error", "reason"),
    [
        ("echo 1 > /sys/module/tcp_cubic/parameters/fast_convergence", ScriptSkip, "fast_convergence=1 is not"),
        ("echo 1 > /sys/module/tcp_bbr/parameters/x", ScriptSkip, "not in the vocabulary"),
        ("echo on > /sys/module/tcp_cubic/parameters/hystart", ScriptFailure, "must be an integer"),
    ],
)
def test_shell_cubic_module_parameter_not_modelled(line, error, reason):
    with pytest.raises(error, match=reason):
        run(f"`{line}`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")


def test_shell_fq_qdisc_turns_pacing_on_and_del_off():
    """`tc qdisc replace dev tun0 root fq`: Linux paces each flow at its pacing rate (pacing.py)."""
    runner = run("`tc qdisc replace dev tun0 root fq`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    assert runner.config.fq_pacing
    runner = run(
        "`tc qdisc replace dev tun0 root fq\ntc qdisc del dev tun0 root`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
    )
    assert not runner.config.fq_pacing


def test_shell_pfifo_of_no_room_drops_every_packet():
    """`pfifo limit 0`: every send fails locally (config.qdisc_drops); a long pfifo takes them again."""
    runner = run("`tc qdisc add dev tun0 root pfifo limit 0`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    assert runner.config.qdisc_drops and not runner.config.fq_pacing
    runner = run(
        "`tc qdisc add dev tun0 root pfifo limit 0\ntc qdisc replace dev tun0 root pfifo limit 1000`\n"
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
    )
    assert not runner.config.qdisc_drops


def test_shell_sysctl_changes_what_the_stack_offers():
    """`sysctl -q net.ipv4.tcp_timestamps=0`: the SYN carries no TS option."""
    run(
        "`sysctl -q net.ipv4.tcp_timestamps=0`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
        "+0...0.1 connect(3, ..., ...) = -1 ECONNREFUSED (x)\n+0 > S 0:0(0) <mss 1460,nop,nop,sackOK,nop,wscale 7>\n"
        "+.1 < R. 0:0(0) ack 1 win 0\n"
    )


def test_shell_nstat_grep_fails_when_the_counter_did_not_grow():
    with pytest.raises(ScriptFailure, match="TcpExtTCPTimeouts did not grow"):
        run(ESTABLISHED + "+0 `nstat > /dev/null`\n+0 `nstat | grep TcpExtTCPTimeouts`\n")


def test_shell_nstat_grep_passes_when_the_counter_grew():
    run(
        ESTABLISHED + "+0 `nstat -n`\n+0 write(4, ..., 1000) = 1000\n+0 > P. 1:1001(1000) ack 1\n"
        "+.3 > P. 1:1001(1000) ack 1\n+0 `nstat | grep TcpExtTCPTimeouts`\n"
    )


TIMEOUT_TWICE = (
    ESTABLISHED + "+0 `nstat -n`\n+0 write(4, ..., 1000) = 1000\n+0 > P. 1:1001(1000) ack 1\n"
    "+.3 > P. 1:1001(1000) ack 1\n+.6 > P. 1:1001(1000) ack 1\n"
)


def test_shell_nstat_grep_value_checks_how_much_the_counter_grew():
    """The selftests' `nstat -s | grep NAME | grep -q " N "`: NAME grew by exactly N since `nstat -n`;
    -s leaves the baseline where it was, so a second check counts from the same point."""
    run(TIMEOUT_TWICE + '+0 `nstat -s | grep TcpExtTCPTimeouts | grep -q " 2 "`\n+0 `nstat | grep TcpExtTCPTimeouts`\n')
    with pytest.raises(ScriptFailure, match="TcpExtTCPTimeouts grew by 2, not 1"):
        run(TIMEOUT_TWICE + '+0 `nstat | grep TcpExtTCPTimeouts | grep -q " 1 "`\n')


def test_shell_arithmetic_expands_before_the_sysctl_is_read():
    """`$((32*1024*1024))` in the selftests' tcp_rmem lines is the shell's integer arithmetic."""
    runner = run(
        '`sysctl -q net.ipv4.tcp_rmem="4096 131072 $((32*1024*1024))"`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n'
    )
    # tcp_rmem[1] is the receive memory, twice the receive_buffer (SO_RCVBUF) that gives it
    assert (runner.config.receive_buffer, runner.config.receive_buffer_max) == (65536, 32 * 1024 * 1024)
    with pytest.raises(ScriptSkip, match="arithmetic too long"):
        run('`sysctl -q net.ipv4.tcp_rmem="4096 1 $((' + "-" * 100000 + '1))"`\n')
    with pytest.raises(ScriptSkip, match="arithmetic not in the vocabulary"):
        run('`sysctl -q net.ipv4.tcp_rmem="4096 1 $((2**64))"`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n')


def test_shell_arithmetic_divides_toward_zero_as_the_shell():
    """POSIX shell arithmetic follows C: integer division truncates, so -7/2 is -3 (not Python's -4)."""
    runner = run(
        '`sysctl -q net.ipv4.tcp_rmem="4096 $((0 - -262145/2)) 6291456"`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n'
    )
    assert runner.config.receive_buffer == 131072 // 2  # -262145/2 is -131072: tcp_rmem[1], twice SO_RCVBUF


def test_python_block_asserts_on_tcp_info_and_keeps_names():
    text = ESTABLISHED + "+0 %{ TCP_WANTED = 10 }%\n+0 %{ assert tcpi_snd_cwnd == TCP_WANTED, tcpi_snd_cwnd }%\n"
    run(text)
    with pytest.raises(ScriptFailure, match="assertion failed: 10"):
        run(text.replace("TCP_WANTED = 10", "TCP_WANTED = 11"))


def test_python_block_continuation_before_its_end_is_ignored():
    """The selftests end a block's lines with `;\\` up to `}%`: nothing follows the last continuation."""
    run(ESTABLISHED + "+0 %{ assert tcpi_snd_cwnd == 10;\\\n  assert tcpi_rto > 0;\\\n}%\n")


def test_python_block_without_builtins_or_dunders():
    with pytest.raises(ScriptFailure, match="unknown name: open"):
        run(ESTABLISHED + "+0 %{ open('/etc/passwd') }%\n")
    with pytest.raises(ScriptFailure, match="dunder"):
        run(ESTABLISHED + "+0 %{ ().__class__ }%\n")


def test_python_block_with_a_field_not_kept_skips():
    with pytest.raises(ScriptSkip, match="tcpi_delivered_ce"):
        run(ESTABLISHED + "+0 %{ assert tcpi_delivered_ce > 0 }%\n")


def test_tso_merged_outbound_line_matches_back_to_back_segments():
    """packetdrill reads a TSO send as one packet: 1:3001(3000) is our three 1000-byte segments."""
    run(ESTABLISHED + "+0 write(4, ..., 3000) = 3000\n+0 > P. 1:3001(3000) ack 1\n")
    with pytest.raises(ScriptFailure, match="payload length differs"):
        run("--strict_segments\n" + ESTABLISHED + "+0 write(4, ..., 3000) = 3000\n+0 > P. 1:3001(3000) ack 1\n")


def test_shell_ethtool_tso_off_compares_segments_one_by_one():
    """`ethtool -K tun0 tso off`: packetdrill's device no longer merges, so a 3000-byte line fails."""
    with pytest.raises(ScriptFailure, match="payload length differs"):
        run("`ethtool -K tun0 tso off`\n" + ESTABLISHED + "+0 write(4, ..., 3000) = 3000\n+0 > P. 1:3001(3000) ack 1\n")


def test_shell_sysctl_rto_max_caps_the_backed_off_timeout():
    """`tcp_rto_max_ms=400`: the 300 ms RTO backs off to 400 ms, not 600, and stays there (Linux tcp_rto_max)."""
    resends = "+0 write(4, ..., 1000) = 1000\n+0 > P. 1:1001(1000) ack 1\n+.3 > P. 1:1001(1000) ack 1\n"
    run("`sysctl -q net.ipv4.tcp_rto_max_ms=400`\n" + ESTABLISHED + resends + "+.4 > P. 1:1001(1000) ack 1\n" * 2)
    with pytest.raises(ScriptFailure, match="expected"):
        run(ESTABLISHED + resends + "+.4 > P. 1:1001(1000) ack 1\n" * 2)


def test_socket_result_names_the_descriptor():
    run("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 5\n+0 close(5) = 0\n+0 close(3) = -1 EBADF (x)\n")


def test_no_flag_packet_is_dropped_in_established():
    """RFC 9293 §3.10.7.4 (fifth check): a segment without ACK is dropped, no answer."""
    run(ESTABLISHED + "+0 < - 1:1001(1000) win 20000\n+.5 close(4) = 0\n+0 > F. 1:1(0) ack 1\n")


def test_option_lines_local_and_remote_ip_are_the_connection_addresses():
    """packetdrill's --local_ip/--remote_ip (the selftests' runner passes them): the connection uses them."""
    options = "--local_ip=10.0.0.1\n--remote_ip=10.0.0.2\n--gateway_ip=10.0.0.1\n--netmask_ip=255.255.0.0\n"
    runner = run(options + "--tolerance_percent=0\n" + ESTABLISHED)
    (conn,) = runner.demux.connections.values()
    assert (conn.local[0], conn.remote[0]) == (addr.parse("10.0.0.1"), addr.parse("10.0.0.2"))


def test_option_lines_ipv6_local_ip_short_form_is_used():
    """gtests' mtu_probe scripts: --ip_version=ipv6 --local_ip=fd::1 with the default remote address."""
    runner = run("--ip_version=ipv6\n--local_ip=fd::1\n" + ESTABLISHED)
    (conn,) = runner.demux.connections.values()
    assert conn.local[0] == addr.parse("fd::1")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("--remote_ip=192.0.2.300\n", "not an IP address"),
        ("--local_ip=192.0.2.1\n", "the same address"),
    ],
)
def test_option_lines_bad_addresses_fail(options, message):
    with pytest.raises(ScriptFailure, match=message):
        run(options + "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")


def test_option_lines_address_of_the_other_ip_version_skips():
    """The selftests run every script over IPv4 and IPv6: an IPv4-only script's own --ip_version line and
    the runner's IPv6 addresses cannot meet, so the script does not run that way."""
    with pytest.raises(ScriptSkip, match="not an address of the script's --ip_version"):
        run("--local_ip=fd::1\n--ip_version=ipv4\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")


def test_shell_settings_reach_connections_over_ipv6():
    """defaults.sh's buffers (tcp_rmem[2] = 15 MB) set the window scale over IPv6 too: 8, as Linux offers."""
    run("--ip_version=ipv6\n`./defaults.sh`\n" + LISTEN + "+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>\n")


def test_ip_version_ipv4_mapped_ipv6_runs_over_ipv4():
    """--ip_version=ipv4-mapped-ipv6: an AF_INET6 socket talking IPv4, so the packets are IPv4."""
    runner = run("--ip_version=ipv4-mapped-ipv6\n" + ESTABLISHED)
    (conn,) = runner.demux.connections.values()
    assert conn.local[0] == addr.parse("192.168.0.1")


@pytest.mark.parametrize(("options", "mss"), [("--mtu=1200\n", 1160), ("--ip_version=ipv6\n--mtu=1520\n", 1460)])
def test_option_mtu_sets_the_mss_we_offer(options, mss):
    """The MSS option is the link's MTU less the IP and TCP headers (RFC 9293 §3.7.1, RFC 8200)."""
    run(options + LISTEN + f"+0 > S. 0:0(0) ack 1 <mss {mss},nop,wscale 7>\n")


def test_inbound_ack_without_its_number_acknowledges_relative_zero():
    """packetdrill fills an ACK written without `ack N` with relative 0, SND.UNA - 1: an old but acceptable
    ACK (RFC 5961 §5.2), so the data it carries is taken."""
    run(ESTABLISHED + "+0 < . 1:1001(1000) win 257\n+0 > . 1:1(0) ack 1001\n")


def test_read_on_a_listener_is_enotconn():
    """Linux's tcp_recvmsg refuses a listening socket with ENOTCONN (the selftests' tcp_inq_server)."""
    run(ESTABLISHED + "+0 read(3, ..., 2000) = -1 ENOTCONN (Transport endpoint is not connected)\n")


def test_blocked_write_sends_what_it_queued_at_once():
    """A blocking write that an ACK lets queue more (but not all) sends it at that ACK, as Linux's
    tcp_sendmsg pushes each chunk it copies: not at whatever event comes next."""
    run(  # a 4000-byte window: buffers of 2000 bytes, two of them (with their overhead) fill 6000
        LISTEN.replace("win 32792 <mss 1000,nop,wscale 7>", "win 4000 <mss 1000>")
        + "+0 > S. 0:0(0) ack 1 <mss 1460>\n+.1 < . 1:1(0) ack 1 win 4000\n+0 accept(3, ..., ...) = 4\n"
        + "+0 setsockopt(4, SOL_SOCKET, SO_SNDBUF, [3000], 4) = 0\n"
        + "+0...0.2 write(4, ..., 8000) = 8000\n+0 > . 1:2001(2000) ack 1\n+0 > P. 2001:4001(2000) ack 1\n"
        + "+.1 < . 1:1(0) ack 2001 win 4000\n+0 > . 4001:6001(2000) ack 1\n"
        + "+.1 < . 1:1(0) ack 4001 win 4000\n+0 > P. 6001:8001(2000) ack 1\n"
    )


def test_write_from_a_null_buffer_is_efault():
    run(ESTABLISHED + "+0 write(4, NULL, 1000) = -1 EFAULT (Bad address)\n")


def test_unknown_socket_option_skips_before_its_value_is_read():
    with pytest.raises(ScriptSkip, match="SO_TIMESTAMPING"):
        run(ESTABLISHED + "+0 setsockopt(4, SOL_SOCKET, SO_TIMESTAMPING, {val=1}, 8) = 0\n")


# ---------------------------------------------------------------- IP version


def test_ip_version_ipv6_runs_the_connection_over_ipv6_addresses():
    """packetdrill's --ip_version=ipv6: the stack is fd3d:fa7b:d17d::1, the script's end ::2, AF_INET as
    written; the link's MTU is 20 bytes larger, so the script's MSS values read the same."""
    runner = run("--ip_version=ipv6\n" + ESTABLISHED)
    (conn,) = runner.demux.connections.values()
    assert conn.local[0] == addr.parse("fd3d:fa7b:d17d::1")
    assert conn.remote[0] == addr.parse("fd3d:fa7b:d17d::2")
    assert conn.config.mss == 1460


def test_ip_version_ipv6_icmp_frag_needed_is_packet_too_big_with_1280_floor():
    """RFC 8201 §4: over IPv6 an MTU below 1280 is taken as 1280; the MSS is MTU - 60 less the options."""
    text = (
        "--ip_version=ipv6\n"
        + ESTABLISHED.replace("mss 1000", "mss 1460")
        + (
            "+0    write(4, ..., 1460) = 1460\n"
            "+0    > P. 1:1461(1460) ack 1\n"
            "+.01  < icmp unreachable frag_needed mtu 600 [1:1461(1460)]\n"
            "+0    > . 1:1221(1220) ack 1\n"
            "+0    > P. 1221:1461(240) ack 1\n"
        )
    )
    runner = run(text)
    (conn,) = runner.demux.connections.values()
    assert conn.tcb.snd_mss == 1280 - 60


def test_ip_version_ipv6_icmp_packet_too_big_lowers_the_mss():
    """ICMPv6 Packet Too Big, as the selftests write it (`< icmp packet_too_big mtu N`): RFC 8201 §4,
    the MSS becomes the MTU less 60 bytes of headers."""
    text = (
        "--ip_version=ipv6\n"
        + ESTABLISHED.replace("mss 1000", "mss 1460")
        + (
            "+0    write(4, ..., 1460) = 1460\n"
            "+0    > P. 1:1461(1460) ack 1\n"
            "+.01  < icmp packet_too_big mtu 1400 [1:1461(1460)]\n"
            "+0    > . 1:1341(1340) ack 1\n"
            "+0    > P. 1341:1461(120) ack 1\n"
        )
    )
    (conn,) = run(text).demux.connections.values()
    assert conn.tcb.snd_mss == 1400 - 60


def test_packetdrill_outbound_leaves_packets_after_the_last_line_unread():
    """packetdrill reads outbound packets only for outbound lines: a trailing ACK no line expects passes."""
    text = ESTABLISHED + "+0 < P. 1:1001(1000) ack 1 win 257\n"
    with pytest.raises(ScriptFailure, match="unexpected outbound packet"):
        run(text)
    run("--packetdrill_outbound\n" + text)
    with pytest.raises(ScriptFailure, match=r"actual:   > \. 1:1\(0\) ack 1001"):  # the next outbound line reads it
        run("--packetdrill_outbound\n" + text + "+.1 > F. 1:1(0) ack 1001\n")


def test_sendto_and_recvfrom_on_a_connected_socket_and_null_buffers():
    run(
        ESTABLISHED + "+0 sendto(4, NULL, 1000, 0, ..., ...) = -1 EFAULT (Bad address)\n"
        "+0 sendto(4, ..., 1000, 0, ..., ...) = 1000\n+0 > P. 1:1001(1000) ack 1\n"
        "+.01 < P. 1:1001(1000) ack 1001 win 257\n+0 > . 1001:1001(0) ack 1001\n"
        "+0 recvfrom(4, NULL, 1000, 0, ..., ...) = -1 EFAULT (Bad address)\n"
        "+0 recvfrom(4, ..., 1000, 0, ..., ...) = 1000\n"
    )


def test_fast_open_client_scripts_skip_rather_than_fail():
    """Fast open's client side is not a feature of tcpstack: sendto()'s MSG_FASTOPEN SKIPs the script."""
    with pytest.raises(ScriptSkip, match="MSG_FASTOPEN"):
        run("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 sendto(3, ..., 1000, MSG_FASTOPEN, ..., ...) = 1000\n")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("FO 123", "an even number of hex digits"),
        ("FO 00zz", "an even number of hex digits"),
        ("FOEXP " + "00" * 17, "16 bytes at most"),
        ("FO 0011 2233", "bad TCP option"),
    ],
)
def test_packet_fast_open_cookie_written_as_packetdrill_takes_it(option, message):
    """packetdrill's parser: a cookie is an even number of hex digits, 16 bytes at most."""
    with pytest.raises(ScriptSyntaxError, match=message):
        run(f"0 < S 0:0(0) win 100 <mss 1000,{option}>")


def test_packet_tfo_cookie_is_the_cookie_for_the_scripts_addresses():
    """`FO TFO_COOKIE` stands for the cookie of the stack's key for the run's addresses, as packetdrill's
    run_all.py defines it for Linux's (3021b9d889017eeb for its default key and addresses)."""
    text = (
        "--tcp_fastopen=0x403\n--tcp_fastopen_key=a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4\n"
        + LISTEN.replace("<mss 1000,nop,wscale 7>", "<mss 1000,FO>")
        + "+0 > S. 0:0(0) ack 1 <mss 1460,FO 3021b9d889017eeb,nop,nop>\n"
    )
    run(text)
    with pytest.raises(ScriptFailure, match="options differ"):
        run(text.replace("3021b9d889017eeb", "3021b9d889017eec"))


def test_packet_retransmitted_synack_counts_from_the_scripts_isn():
    """A later SYN,ACK of the socket is numbered from the ISN the script wrote on its first."""
    text = LISTEN + "+0 > S. 1234:1234(0) ack 1 <...>\n"
    run(text + "+1 > S. 1234:1234(0) ack 1 <...>\n+.1 < . 1:1(0) ack 1 win 257\n")
    with pytest.raises(ScriptFailure, match="sequence number differs"):
        run(text + "+1 > S. 0:0(0) ack 1 <...>\n")


def test_packet_icmp_code_is_run_alls_host_unreachable():
    """packetdrill's run_all.py runs its gtests with -D CODE=host_unreachable: `< icmp unreachable CODE`
    is a host unreachable, which ends our connect with EHOSTUNREACH (Linux tcp_v4_err)."""
    text = CONNECT.format(result="-1 EHOSTUNREACH (No route to host)").replace("+0...0.1", "+0...0.05")
    run(text + "+.05 < icmp unreachable CODE [0:0(0)]\n")


def test_syscall_failure_without_errno_written_matches_any_errno():
    """packetdrill checks a failing call's errno only where the script names one."""
    run("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(5) = -1\n")
    with pytest.raises(ScriptFailure, match="EBADF"):
        run("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(5) = -1 EINVAL (x)\n")


def test_packet_peer_sequence_numbers_count_from_its_syn():
    """packetdrill numbers the peer's segments after its SYN from the SYN's sequence number, and our
    ACKs of them too (run_packet.c, remote_isn); our SYN,ACK acknowledges the SYN as written."""
    text = LISTEN.replace("< S 0:0(0)", "< S 5000:5000(0)") + "+0 > S. 0:0(0) ack 5001 <...>\n"
    text += "+.1 < . 1:11(10) ack 1 win 257\n+0 > . 1:1(0) ack 11 <...>\n+0 accept(3, ..., ...) = 4\n"
    runner = run(text)
    assert runner.kernel.sockets[4].conn.tcb.rcv_nxt == 5011


def test_packet_our_synack_sequence_number_is_the_scripts_isn():
    """packetdrill takes the number written on our SYN,ACK as the script's ISN: any number matches, and
    later lines count from our real ISN."""
    runner = run(
        LISTEN + "+0 > S. 1234:1234(0) ack 1 <...>\n+.1 < . 1:1(0) ack 1 win 257\n+0 accept(3, ..., ...) = 4\n"
    )
    assert runner.kernel.sockets[4].conn.state.name == "ESTABLISHED"


def test_syscall_so_linger_takes_packetdrill_and_c_field_names():
    """packetdrill writes a struct linger {onoff=1, linger=0}; the C names l_onoff and l_linger are taken too."""
    run(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
        "+0 setsockopt(3, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=5}, 8) = 0\n"
        "+0 getsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=5}, [8]) = 0\n"
    )
    with pytest.raises(ScriptFailure, match=r"actual:   SO_LINGER = \[\{onoff=1, linger=5\}\]"):
        run(
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
            "+0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=5}, 8) = 0\n"
            "+0 getsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=0, linger=0}, [8]) = 0\n"
        )
