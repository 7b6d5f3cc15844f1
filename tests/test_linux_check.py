"""tools/linux-check: a script as packetdrill gets it, to run against Linux with tcpstack's defaults."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from stack.wire.codec import encode_tcp
from stack.wire.flags import Flags
from stack.wire.segment import Segment, TcpOptions
from tests.tool_module import load_tool

TOOL = Path(__file__).resolve().parents[1] / "tools" / "linux-check"
SCRIPT = """// a comment
--tcp_timestamps=0
--ip_version=ipv4
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    close(3) = 0
"""


def dry_run(tmp_path: Path, text: str, *options: str) -> list[str]:
    path = tmp_path / "t.pkt"
    path.write_text(text)
    done = subprocess.run([sys.executable, str(TOOL), "--dry-run", *options, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_linux_check_sysctl_option_lines_become_sysctls_of_the_namespace(tmp_path):
    lines = dry_run(tmp_path, SCRIPT)
    assert "sysctl net.ipv4.tcp_timestamps=0" in lines
    assert "--tcp_timestamps=0" not in lines
    assert "--ip_version=ipv4" in lines  # packetdrill's own options stay


def test_linux_check_leaves_out_the_runners_own_option_line(tmp_path):
    """--packetdrill_outbound only tells tcpstack's runner to check as packetdrill does: packetdrill has no
    such option, and a blank line keeps the line numbers."""
    lines = dry_run(tmp_path, "--packetdrill_outbound\n--strict_segments\n" + SCRIPT)
    assert "--packetdrill_outbound" not in lines
    assert "--strict_segments" in lines  # packetdrill's own


def test_linux_check_namespace_gets_tcpstack_buffer_defaults(tmp_path):
    """tcp_rmem[1] is the receive memory, twice the core's SO_RCVBUF default (1 MB)."""
    lines = dry_run(tmp_path, SCRIPT)
    assert "sysctl net.ipv4.tcp_rmem=4096 2097152 6291456" in lines
    assert "sysctl net.ipv4.tcp_slow_start_after_idle=0" in lines


def test_linux_check_tso_goes_off_before_the_first_event(tmp_path):
    lines = dry_run(tmp_path, SCRIPT)
    first_event = lines.index("0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3")
    assert lines[first_event - 1] == "0 `ethtool -K tun0 tso off`"
    assert lines.index("// a comment") < first_event - 1


def test_linux_check_each_tcp_socket_gets_tcpstacks_congestion_control(tmp_path):
    """A namespace inherits the machine's default controller (BBR on some): each socket is set to CUBIC."""
    lines = dry_run(tmp_path, SCRIPT)
    socket_line = lines.index("0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3")
    assert lines[socket_line + 1] == '+0 setsockopt(3, SOL_TCP, TCP_CONGESTION, "cubic", 5) = 0'


def test_linux_check_script_congestion_option_names_the_controller(tmp_path):
    lines = dry_run(tmp_path, "--tcp_congestion_control=reno\n" + SCRIPT)
    assert '+0 setsockopt(3, SOL_TCP, TCP_CONGESTION, "reno", 4) = 0' in lines
    assert not any("tcp_congestion_control" in line for line in lines)


REMOTE_IP, LOCAL_IP = 0xC0000201, 0xC0A80001  # packetdrill's 192.0.2.1 and a local address


def _packet(t: float, outgoing: bool, seq: int, ack: int, flags: Flags, data: bytes = b"", **options) -> tuple:
    src, dst, sport, dport = (LOCAL_IP, REMOTE_IP, 8080, 40000) if outgoing else (REMOTE_IP, LOCAL_IP, 40000, 8080)
    seg = Segment(sport, dport, seq, ack, flags, 257, data, TcpOptions(**options))
    return t, outgoing, encode_tcp(src, dst, seg)


def test_linux_check_without_runner_checks_keeps_every_other_line_and_each_lines_time(tmp_path):
    """The ioctls packetdrill has no names for become commands that do nothing at their time; the
    %{ }% blocks, which packetdrill reads (tcp_info and SO_MEMINFO), stay, and so do the line numbers."""
    script = SCRIPT + (
        "+.1   %{ assert SK_MEMINFO_RMEM_ALLOC == 0 }%\n"
        "+0    %{ assert tcpi_snd_cwnd == 10 }%\n"
        "+.2   ioctl(3, SIOCOUTQ, [0]) = 0\n"
        "+0    ioctl(3, SIOCATMARK, [0]) = 0\n"
        "+0    ioctl(3, SIOCINQ, [0]) = 0\n"
    )
    lines = dry_run(tmp_path, script, "--without-runner-checks")
    assert lines[-6:] == [
        "+0    close(3) = 0",
        "+.1   %{ assert SK_MEMINFO_RMEM_ALLOC == 0 }%",
        "+0    %{ assert tcpi_snd_cwnd == 10 }%",
        "+.2 `true`",
        "+0 `true`",
        "+0    ioctl(3, SIOCINQ, [0]) = 0",
    ]


def test_linux_check_packets_are_numbered_as_the_script_numbers_them():
    """--packets: the peer's numbers as packetdrill injected them, Linux's from its ISN (here 7000), its
    timestamps from 1000 (here from 555), the peer's echoes of them and its SACK blocks in those terms."""
    syn, ack = Flags.SYN, Flags.ACK
    lines = load_tool("linux-check").capture_lines(
        [
            _packet(10.0, False, 0, 0, syn, mss=1000, sack_permitted=True, timestamps=(100, 0)),
            _packet(10.001, True, 7000, 1, syn | ack, mss=1460, sack_permitted=True, timestamps=(555, 100)),
            _packet(10.1, False, 1, 7001, ack, b"x" * 10, timestamps=(200, 555)),
            _packet(10.2, True, 7001, 11, ack, b"y" * 5, timestamps=(755, 200), sack_blocks=((21, 31),)),
            _packet(10.3, False, 11, 7006, ack, timestamps=(300, 755), sack_blocks=((7011, 7021),)),
        ]
    )
    assert lines == [
        "0.000000 < S 0:0(0) win 257 <mss 1000,sackOK,TS val 100 ecr 0>",
        "0.001000 > S. 0:0(0) ack 1 win 257 <mss 1460,sackOK,TS val 1000 ecr 100>",
        "0.100000 < . 1:11(10) ack 1 win 257 <nop,nop,TS val 200 ecr 1000>",
        "0.200000 > . 1:6(5) ack 11 win 257 <nop,nop,TS val 1200 ecr 200,nop,nop,sack 21:31>",
        "0.300000 < . 11:11(0) ack 6 win 257 <nop,nop,TS val 300 ecr 1200,nop,nop,sack 11:21>",
    ]


def test_linux_check_puts_back_module_parameters_a_script_changed(tmp_path):
    """tcp_cubic's parameters belong to the machine, not to a script's namespace: a run puts them back."""
    detect = tmp_path / "hystart_detect"
    detect.write_text("3\n")
    with load_tool("linux-check").module_parameters_kept(tmp_path):
        detect.write_text("1\n")
    assert detect.read_text() == "3\n"


def test_linux_check_removes_the_files_a_scripts_dd_lines_wrote(tmp_path):
    """packetdrill runs a script's `dd` for real: the file it wrote under /tmp goes once the run is over,
    also when the run fails; a file the script does not write stays."""
    written, other = (Path(f"/tmp/tcpstack-test-dd-{uuid.uuid4().hex}") for _ in range(2))
    script = tmp_path / "dd.pkt"
    script.write_text(f"`dd bs=1000 count=3 if=/dev/zero of={written} status=none`\n" + SCRIPT)
    try:
        with pytest.raises(RuntimeError), load_tool("linux-check").files_removed(script):
            written.write_text("as dd wrote it")
            other.write_text("not the script's")
            raise RuntimeError("the run failed")
        assert not written.exists() and other.exists()
    finally:
        written.unlink(missing_ok=True)
        other.unlink(missing_ok=True)


def test_linux_check_gives_a_script_twice_its_length_and_half_a_minute(tmp_path):
    """A run packetdrill cannot finish (a blocking call it never lets a packet end) stops soon: the limit
    follows the script's own length as the runner plays it, TIME_LIMIT where the runner does not."""
    tool = load_tool("linux-check")
    short = tmp_path / "short.pkt"
    short.write_text(SCRIPT.replace("+0    close(3) = 0", "+2    close(3) = 0"))
    assert tool.time_limit(short) == 2 * 2 + tool.TIME_SLACK
    failing = tmp_path / "failing.pkt"
    failing.write_text(SCRIPT + "+0    > S 0:0(0) <mss 1460>\n")  # a SYN the socket never sends
    assert tool.time_limit(failing) == tool.TIME_LIMIT


def test_linux_check_tfo_cookie_is_linux_cookie_for_the_runners_addresses():
    """A script that writes TFO_COOKIE gets the runner's addresses (packetdrill draws its local one) and the
    cookie for them under its --tcp_fastopen_key line: run_all.py's value for packetdrill's key."""
    tool = load_tool("linux-check")
    arguments = tool.fast_open_defines({"tcp_fastopen_key": "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4"}, ipv6=False)
    assert arguments == ["--local_ip=192.168.0.1", "--remote_ip=192.0.2.1", "-D", "TFO_COOKIE=3021b9d889017eeb"]
    with pytest.raises(SystemExit, match="tcp_fastopen_key"):
        tool.fast_open_defines({}, ipv6=False)
