"""tools/linux-check --packets: the capture in a script's namespace sees what tcpdump would there."""

from __future__ import annotations

import sys

from stack.netns import NetNs
from tests.tool_module import load_tool

REFUSED = """
import socket
with socket.socket() as s:
    try:
        s.connect(("127.0.0.1", 9))
    except ConnectionRefusedError:
        pass
"""


def test_linux_check_capture_holds_every_packet_of_the_namespace_once_the_run_is_over():
    """A connection refused over the namespace's loopback: the SYN and the RST, each seen leaving and
    arriving, all waiting in the capture when the program is done (no packet is still on its way)."""
    tool = load_tool("linux-check")
    with NetNs("lxcap") as namespace:
        capture = tool.Capture(namespace)
        namespace.run([sys.executable, "-c", REFUSED], check=True)
        lines = tool.capture_lines(capture.packets())
    assert len(lines) == 4
    assert lines[0].startswith("0.000000 > S 0:0(0) win ")
    assert lines[1].split()[1:3] == ["<", "S"]
    assert [line.split()[1:3] for line in lines[2:]] == [[">", "R."], ["<", "R."]]
