"""The packetdrill-format parser."""

from __future__ import annotations

import pytest

from stack.script.ast import PacketLine, SyscallLine, TimeSpec
from stack.script.parser import ScriptSyntaxError, parse


def test_parse_inbound_packet_with_options():
    (p,) = parse("+0.1 < S 0:0(0) win 32792 <mss 1000,sackOK,TS val 100 ecr 0,nop,wscale 7>").events
    assert p == PacketLine(
        1,
        p.text,
        TimeSpec(0.1, relative=True),
        True,
        "S",
        0,
        0,
        None,
        32792,
        (("mss", (1000,)), ("sackOK", ()), ("TS", (100, 0)), ("nop", ()), ("wscale", (7,))),
    )


def test_parse_outbound_packet_with_sack_blocks_and_any_time():
    (p,) = parse("* > . 1:1(0) ack 1001 <nop,nop,sack 501:1001 2001:3001>").events
    assert p.time == TimeSpec(None) and not p.inbound and p.ack == 1001
    assert p.options == (("nop", ()), ("nop", ()), ("sack", (501, 1001, 2001, 3001)))


def test_parse_syscall_with_errno_and_nested_arguments():
    (s,) = parse("0.5 setsockopt(3, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}, 8) = -1 EINVAL (x)").events
    assert s == SyscallLine(
        1,
        s.text,
        TimeSpec(0.5),
        "setsockopt",
        ("3", "SOL_SOCKET", "SO_LINGER", "{l_onoff=1, l_linger=0}", "8"),
        "-1",
        "EINVAL",
    )


def test_parse_comments_and_option_lines():
    script = parse("--tolerance_usecs=10000\n// a comment\n/* block\ncomment */ 0 close(3) = 0 // trailing\n")
    assert script.options == {"tolerance_usecs": "10000"}
    assert [e.line for e in script.events] == [4]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 < S 0:10(5) win 1", "length does not match"),
        ("0 < S 0:0(0) win 1 <mss 1000", "must end with"),
        ("0 < S 0:0(0) <bogus 3>", "unknown TCP option"),
        ("0 < S 0:0(0) frob 3", "unexpected 'frob'"),
        ("hello world", "cannot parse"),
        ("`ip link`", "shell commands"),
    ],
)
def test_parse_errors_name_file_and_line(text, message):
    with pytest.raises(ScriptSyntaxError, match=message) as exc:
        parse(text, "x.pkt")
    assert str(exc.value).startswith("x.pkt:1:")
