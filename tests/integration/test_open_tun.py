"""Stack.open_tun with arguments it refuses: the error is the caller's (an OSError with an errno), and no
TUN device is left open behind it, so the same name opens at once on the next try (it stayed held: EBUSY,
"another program")."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = """
import asyncio, errno, socket, sys
sys.path.insert(0, sys.argv[1])
from stack import Stack

def device_exists() -> bool:
    try:
        socket.if_nametoindex("tun0")
        return True
    except OSError:
        return False

async def main() -> None:
    refused = [
        ("10.7.0.2", "bogus/24", None),
        ("300.7.0.2", "10.7.0.1/24", None),
        ("10.7.0.2", "10.7.0.1/24", "/no/such/directory/capture.pcap"),
    ]
    for addrs, peers, pcap in refused:
        try:
            await Stack.open_tun("tun0", addrs, peers, pcap=pcap)
        except (ValueError, OSError) as exc:
            print(type(exc).__name__, device_exists())
    try:
        await Stack.open_tun("tun0-name-too-long", "10.7.0.2", "10.7.0.1/24")
    except OSError as exc:
        print(errno.errorcode[exc.errno], "too long" in str(exc))
    stack = await Stack.open_tun("tun0", "10.7.0.2", "10.7.0.1/24")
    print("opened", device_exists())
    await stack.close()

asyncio.run(main())
"""


def test_open_tun_refused_arguments_leave_no_device_and_the_name_opens_again(netns):
    result = netns.run([sys.executable, "-c", PROGRAM, str(ROOT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ValueError False",
        "ValueError False",
        "FileNotFoundError False",
        "EINVAL True",
        "opened True",
    ], result.stdout
