"""The packetdrill-format parser: every construct of the notation, and errors that name file and line."""

from __future__ import annotations

import pytest

from stack.script.ast import (
    ANY,
    AddressOf,
    Array,
    BitOr,
    Call,
    IcmpLine,
    Name,
    PacketLine,
    PythonLine,
    ShellLine,
    Sizeof,
    Struct,
    SyscallLine,
    TimeKind,
    TimeSpec,
)
from stack.script.parser import ScriptSyntaxError, parse, parse_file


def one(text: str):
    (event,) = parse(text, "t.pkt").events
    return event


# ---------------------------------------------------------------- times


@pytest.mark.parametrize(
    ("text", "time"),
    [
        ("0", TimeSpec(TimeKind.ABSOLUTE, 0.0)),
        ("0.100", TimeSpec(TimeKind.ABSOLUTE, 0.1)),
        ("1.", TimeSpec(TimeKind.ABSOLUTE, 1.0)),
        ("+.1", TimeSpec(TimeKind.RELATIVE, 0.1)),
        ("+0", TimeSpec(TimeKind.RELATIVE, 0.0)),
        ("*", TimeSpec(TimeKind.ANY)),
        ("0.1~0.2", TimeSpec(TimeKind.ABSOLUTE, 0.1, end=0.2)),
        ("+0.1~+0.3", TimeSpec(TimeKind.RELATIVE, 0.1, end=0.3)),
        ("0.1...0.25", TimeSpec(TimeKind.ABSOLUTE, 0.1, blocking_end=0.25)),
        ("+0...0.3", TimeSpec(TimeKind.RELATIVE, 0.0, blocking_end=0.3)),
    ],
)
def test_time_spec_forms_parse(text, time):
    assert one(f"{text} close(3) = 0").time == time


def test_time_spec_prints_as_written():
    assert str(one("+0...0.3 close(3) = 0").time) == "+0...0.3"
    assert str(one("0.1~0.2 close(3) = 0").time) == "0.1~0.2"


# ---------------------------------------------------------------- packets


def test_packet_inbound_syn_with_linux_options():
    p = one("+0.1 < S 0:0(0) win 32792 <mss 1000,sackOK,TS val 100 ecr 0,nop,wscale 7>")
    assert p == PacketLine(
        1,
        p.text,
        TimeSpec(TimeKind.RELATIVE, 0.1),
        True,
        "S",
        0,
        0,
        None,
        32792,
        (("mss", (1000,)), ("sackOK", ()), ("TS", (100, 0)), ("nop", ()), ("wscale", (7,))),
    )


def test_packet_outbound_sack_blocks_eol_and_any_time():
    p = one("* > . 1:1(0) ack 1001 <nop,nop,sack 501:1001 2001:3001,eol>")
    assert p.time.kind is TimeKind.ANY and not p.inbound and p.ack == 1001 and p.win is None
    assert p.options == (("nop", ()), ("nop", ()), ("sack", (501, 1001, 2001, 3001)), ("eol", ()))


@pytest.mark.parametrize("flags", ["S", "S.", ".", "P.", "F.", "FP.", "R", "R.", "SEW", "U."])
def test_packet_flag_letters_are_kept(flags):
    assert one(f"0 > {flags} 0:0(0)").flags == flags


def test_packet_data_range_and_ack():
    p = one("0 < P. 1:1001(1000) ack 1 win 257")
    assert (p.start, p.end, p.ack, p.win) == (1, 1001, 1, 257)


@pytest.mark.parametrize("mark", ["noecn", "ect0", "ect1", "ce"])
def test_packet_ip_ecn_field_in_brackets(mark):
    """packetdrill's `[ce]` etc. after the direction: the IP header's ECN field (RFC 3168 §5)."""
    assert one(f"0 < [{mark}] P. 1:1001(1000) ack 1 win 257").ecn == mark


@pytest.mark.parametrize("text", ["> [tos 0x2a] . 1:1(0) ack 1", "> (tos 0x2a) . 1:1(0) ack 1"])
def test_packet_tos_byte_in_brackets_or_parentheses(text):
    """packetdrill's `[tos 0x..]` (its tos_spec, hexadecimal): the whole TOS / traffic class byte."""
    assert one("0 " + text).tos == 0x2A


def test_packet_without_options_has_none():
    p = one("0 > . 1:1(0) ack 1")
    assert p.options is None and not p.any_options


def test_packet_any_options():
    p = one("0 > S. 0:0(0) ack 1 <...>")
    assert p.any_options and p.options is None


def test_packet_ack_before_win_or_after_is_the_same():
    assert one("0 < . 1:1(0) win 5 ack 7").ack == one("0 < . 1:1(0) ack 7 win 5").ack == 7


def test_packet_port_info_names_source_and_destination():
    """packetdrill's opt_port_info: `src>dst` before the flags picks one connection among several."""
    inbound = one("0 < 40001>8080 S 0:0(0) win 32792 <mss 1000>")
    assert (inbound.src_port, inbound.dst_port, inbound.flags) == (40001, 8080, "S")
    outbound = one("0 > 8080>40001 S. 0:0(0) ack 1 <...>")
    assert (outbound.src_port, outbound.dst_port, outbound.ack) == (8080, 40001, 1)
    assert one("0 < S 0:0(0)").src_port is None


def test_packet_urgent_pointer():
    p = one("0 < P.U 1:11(10) ack 1 win 257 urg 5")
    assert (p.flags, p.urg, p.win) == ("P.U", 5, 257)
    assert one("0 < P. 1:11(10) ack 1").urg is None


# ---------------------------------------------------------------- system calls


def test_syscall_socket_with_ellipsis_and_constants():
    s = one("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3")
    assert s == SyscallLine(
        1, s.text, TimeSpec(TimeKind.ABSOLUTE, 0.0), "socket", (ANY, Name("SOCK_STREAM"), Name("IPPROTO_TCP")), 3
    )


def test_syscall_errno_and_its_text():
    s = one("+0 connect(3, ..., ...) = -1 ECONNREFUSED (Connection refused)")
    assert (s.result, s.errno, s.errno_text) == (-1, "ECONNREFUSED", "Connection refused")


def test_syscall_numbers_read_as_packetdrill_reads_them():
    """packetdrill's lexer: decimal with leading zeros (atoll: 010 is 10), or 0x and hex digits."""
    s = one("+0 write(010, ..., 0x10) = 016")
    assert (s.args[0], s.args[2], s.result) == (10, 16, 16)
    assert one("+0 close(-0x1) = -01 EBADF").result == -1


def test_syscall_struct_and_sizeof():
    s = one("0.5 setsockopt(3, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}, sizeof(struct linger)) = 0")
    assert s.args[3] == Struct((("l_onoff", 1), ("l_linger", 0)))
    assert s.args[3].get("l_linger") == 0
    assert s.args[4] == Sizeof("struct linger")


def test_syscall_arrays_hold_values_or_names():
    s = one("0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [sizeof(int)]) = 0")
    assert s.args[3:] == (Array((Name("ECONNREFUSED"),)), Array((Sizeof("int"),)))


def test_syscall_bit_or_of_flags():
    s = one("0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0")
    assert s.args[2] == BitOr((Name("O_RDWR"), Name("O_NONBLOCK")))


def test_syscall_address_of_and_any_result():
    s = one("0 accept(3, &addr, &addrlen) = ...")
    assert s.args[1:] == (AddressOf(Name("addr")), AddressOf(Name("addrlen"))) and s.result is ANY


def test_syscall_strings_keep_commas_parentheses_and_escapes():
    s = one(r'0 write(4, "a, (b) \"c\"", 11) = 11')
    assert s.args[1] == 'a, (b) "c"'


def test_syscall_nested_struct_with_helper_calls():
    s = one('0 bind(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.0.2.1")}, 16) = 0')
    address = s.args[1]
    assert address.get("sin_port") == Call("htons", (8080,))
    assert address.get("sin_addr") == Call("inet_addr", ("192.0.2.1",))


def test_syscall_empty_struct_and_hex_numbers():
    s = one("0 sendmsg(3, {}, 0x40) = 0")
    assert s.args[1:] == (Struct(()), 0x40)


def test_syscall_without_arguments():
    assert one("0 getpid() = ...").args == ()


def test_syscall_result_text_without_errno():
    s = one("0 fcntl(3, F_GETFL) = 2050 (flags O_RDWR|O_NONBLOCK)")
    assert (s.result, s.errno, s.errno_text) == (2050, None, "flags O_RDWR|O_NONBLOCK")


# ---------------------------------------------------------------- lines, comments, options, shell


def test_comments_keep_line_numbers():
    script = parse("// a comment\n/* block\ncomment */ 0 close(3) = 0 // trailing\n\n+0 close(4) = 0", "t.pkt")
    assert [e.line for e in script.events] == [3, 5]


def test_comment_markers_inside_strings_are_text():
    assert one('0 write(4, "a//b/*c", 7) = 7').args[1] == "a//b/*c"


def test_option_lines_are_collected_and_the_last_wins():
    script = parse("--tolerance_usecs=10000\n--ip_version=ipv4\n--tolerance_usecs=5000\n0 close(3) = 0")
    assert script.option("tolerance_usecs") == "5000" and script.option("ip_version") == "ipv4"
    assert script.option("missing", "x") == "x"


def test_shell_lines_become_shell_events_even_across_lines():
    script = parse("`sysctl -q net.ipv4.tcp_sack=0\n sysctl -q x=1`\n0 close(3) = 0\n+0 `echo hi`")
    first, _, last = script.events
    assert isinstance(first, ShellLine) and first.line == 1 and "tcp_sack=0" in first.command
    assert isinstance(last, ShellLine) and last.command == "echo hi" and last.line == 4


def test_script_is_immutable():
    script = parse("0 close(3) = 0")
    with pytest.raises(AttributeError):
        script.path = "x"  # type: ignore[misc]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 < S 0:10(5) win 1", "length does not match"),
        ("0 < S 0:0(0) win 1 <mss 1000", "must end with"),
        ("0 < S 0:0(0) <bogus 3>", "unknown TCP option 'bogus'"),
        ("0 < S 0:0(0) <mss>", "bad TCP option 'mss'"),
        ("0 < S 0:0(0) <TS val 1>", "bad TCP option"),
        ("0 < S 0:0(0) <sack 1-2>", "bad TCP option"),
        ("0 < S 0:0(0) <mss 1,,nop>", "empty TCP option"),
        ("0 < S 0:0(0) <mss 70000>", "out of its field's range"),
        ("0 < S 0:0(0) <wscale -1>", r"out of its field's range \(0 to 255\)"),
        ("0 < S 0:0(0) <TS val 1 ecr 4294967296>", "out of its field's range"),
        ("0 < . 1:1(0) ack 1 <sack -5:10>", "out of its field's range"),
        ("0 < S 0:0(0) frob 3", "unexpected 'frob'"),
        ("0 < S 0:0(0) win x", "win needs a number"),
        ("0 < S 0:0(0) win 70000", "16-bit"),
        ("0 < P.U 1:2(1) urg 70000", "16-bit urg"),
        ("0 < P.U 1:2(1) urg x", "urg needs a number"),
        ("0 < 0>8080 S 0:0(0)", "port 0>8080 is out of range"),
        ("0 < 40001>70000 S 0:0(0)", "out of range"),
        ("0 < S", "expected FLAGS start:end"),
        ("0...1 < S 0:0(0)", "only for system calls"),
        ("hello world", "an event starts with a time"),
        ("0 close(3", "unbalanced parentheses"),
        ("0 close(3)", "expected '= result'"),
        ("0 close(3) = 0 EBADF", "goes with the result -1"),
        ("0 close(3,) = 0", r"unexpected '\)'"),
        ("0 setsockopt(3, {a=1 b=2}) = 0", "expected ',' or '}'"),
        ("0 write(3, ?) = 0", "cannot parse argument"),
        ("--", "bad option line"),
        ("0 `ls", "unterminated `"),
        ('0 write(3, "abc, 3) = 3', 'unterminated "'),
        ("/* never closed\n0 close(3) = 0", "unterminated /*"),
    ],
)
def test_errors_name_file_line_and_cause(text, message):
    with pytest.raises(ScriptSyntaxError, match=message) as exc:
        parse(text, "x.pkt")
    assert str(exc.value).startswith("x.pkt:1:")


def test_error_on_a_later_line_names_that_line():
    with pytest.raises(ScriptSyntaxError) as exc:
        parse("0 close(3) = 0\n\n// c\n+0 > S 0:0(1)", "x.pkt")
    assert exc.value.line == 4 and str(exc.value).startswith("x.pkt:4:")


# ---------------------------------------------------------------- the published scripts' dialect


def test_syscall_spanning_lines_is_one_event_numbered_by_its_first_line():
    text = (
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
        "+0 sendmsg(3, {msg_name(...)=...,\n   msg_iov(1)=[{..., 40}], msg_flags=0}, MSG_MORE) = 40\n"
    )
    _, call = parse(text, "t.pkt").events
    assert isinstance(call, SyscallLine) and call.line == 2 and call.name == "sendmsg"
    msg = call.args[1]
    assert isinstance(msg, Struct) and msg.get("msg_iov") == Array((Struct(((None, ANY), (None, 40))),))
    assert msg.get("msg_flags") == 0 and call.args[2] == Name("MSG_MORE") and call.result == 40


def test_blocking_time_with_spaces_around_the_ellipsis():
    event = one("+.002 ... 0.052 connect(3, ..., ...) = 0")
    assert event.time == TimeSpec(TimeKind.RELATIVE, 0.002, None, 0.052)


def test_python_block_across_lines_keeps_its_code():
    event = one("+0 %{\nassert tcpi_snd_cwnd == 10\nassert tcpi_ca_state == 0\n}%")
    assert isinstance(event, PythonLine) and event.line == 1
    assert "tcpi_snd_cwnd == 10" in event.code and "tcpi_ca_state" in event.code


def test_packet_without_flags_and_ae_letter_parse():
    assert one("+0 < - 1:1001(1000) win 20000").flags == "-"
    assert one("+0 < SEWA 0:0(0) win 100").flags == "SEWA"


@pytest.mark.parametrize(
    ("text", "kind", "code", "mtu", "quoted"),
    [
        ("+0 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]", "unreachable", "frag_needed", 1200, (1, 1461)),
        ("+0 < icmp unreachable [1:1001(1000)]", "unreachable", None, None, (1, 1001)),
        ("+0 < icmp time_exceeded", "time_exceeded", None, None, (None, None)),
    ],
)
def test_icmp_lines(text, kind, code, mtu, quoted):
    event = one(text)
    assert isinstance(event, IcmpLine)
    assert (event.kind, event.code, event.mtu, (event.start, event.end)) == (kind, code, mtu, quoted)


def test_parse_file_that_is_not_text_is_a_syntax_error_naming_the_line(tmp_path):
    """A binary file given as a script (a pcap, say) is refused like any unreadable script: FAIL with the
    path and the line where the text stops being UTF-8, not a traceback."""
    path = tmp_path / "capture.pkt"
    path.write_bytes(b"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 \xa1\xb2\xc3\xd4\n")
    with pytest.raises(ScriptSyntaxError, match=r"capture\.pkt:2: not a script: not UTF-8 text"):
        parse_file(str(path))
