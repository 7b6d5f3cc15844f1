"""stack.netns: the namespaces that the demo, the tools and the tests make are removed, also when the
program that made them is stopped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stack.netns import wait_for

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from stack.netns import NetNs
with NetNs("tcpstack-holder") as ns:
    print(ns.name, flush=True)
    time.sleep(3600)
"""


def _namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def test_netns_program_stopped_by_sigterm_removes_its_namespace():
    """A tool stopped by SIGTERM (a timeout, kill) unwinds its `with NetNs` blocks: no namespace is left."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(ROOT)], stdout=subprocess.PIPE, text=True)
    try:
        name = holder.stdout.readline().strip()
        assert name in _namespaces()
        holder.terminate()
        assert holder.wait(timeout=30) == 128 + 15
        wait_for(lambda: name not in _namespaces(), 10, f"namespace {name} removed")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
