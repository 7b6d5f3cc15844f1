"""The runner fails scripts the stack does not honour, and skips what it cannot run — never passes them."""

from __future__ import annotations

import pytest

from stack.script.parser import parse
from stack.script.runner import Runner, ScriptFailure, ScriptSkip

LISTEN = """
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
"""


def run(text: str) -> None:
    Runner(parse(text, "t.pkt")).run()


def test_runner_wrong_expected_flags_fail_with_both_packets_shown():
    with pytest.raises(ScriptFailure) as exc:
        run(LISTEN + "+0 > S 0:0(0) <mss 1460,nop,wscale 5>\n")
    text = str(exc.value)
    assert "t.pkt:6:" in text and "expected: > S 0:0(0)" in text and "actual:   > S. 0:0(0) ack 1" in text


def test_runner_packet_at_the_wrong_time_fails():
    with pytest.raises(ScriptFailure, match="expected 0.500 s"):
        run(LISTEN + "+.5 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 5>\n")


def test_runner_unexpected_packet_fails():
    with pytest.raises(ScriptFailure, match="unexpected outbound packet"):
        run(LISTEN)


def test_runner_wrong_syscall_result_fails():
    with pytest.raises(ScriptFailure, match="expected: = 7"):
        run("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 7\n")


def test_runner_unsupported_syscall_skips():
    with pytest.raises(ScriptSkip, match="sendmsg"):
        run("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 sendmsg(3, {}, 0) = 0\n")


def test_runner_unsupported_socket_option_skips():
    with pytest.raises(ScriptSkip, match="SO_BROADCAST"):
        run("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 setsockopt(3, SOL_SOCKET, SO_BROADCAST, [1], 4) = 0\n")
