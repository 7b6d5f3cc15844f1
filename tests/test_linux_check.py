"""tools/linux-check: a script as packetdrill gets it, to run against Linux with tcpstack's defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "linux-check"
SCRIPT = """// a comment
--tcp_timestamps=0
--ip_version=ipv4
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    close(3) = 0
"""


def dry_run(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "t.pkt"
    path.write_text(text)
    done = subprocess.run([sys.executable, str(TOOL), "--dry-run", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_linux_check_sysctl_option_lines_become_sysctls_of_the_namespace(tmp_path):
    lines = dry_run(tmp_path, SCRIPT)
    assert "sysctl net.ipv4.tcp_timestamps=0" in lines
    assert "--tcp_timestamps=0" not in lines
    assert "--ip_version=ipv4" in lines  # packetdrill's own options stay


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
