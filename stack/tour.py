"""`tcpstack tour`: every TCP state on demand, against the kernel, each shown in netstat as it happens.

A private network namespace holds the kernel's sockets (the peer) and five `tcpstack nc` stacks, each on
its own TUN device with its own control socket in /run/tcpstack (so `tcpstack netstat` and `tcpstack
top` in another terminal see them too). Targeted `--fault drop=...` rules lose exactly the segment a
state needs: no iptables, no crafted packets. Every step waits for a condition (a state in netstat),
never for a fixed time; `--pause` only lets a person watch a held state.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stack import control
from stack.netns import NetNs, wait_for
from stack.netstat import format_rows

STATES = (
    "LISTEN",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "CLOSE_WAIT",
    "CLOSING",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",  # CLOSED, by Linux's name
)
MSL = 1.0  # TIME_WAIT lasts 2*MSL
FIN_TIMEOUT = 2.0
STEP_TIMEOUT = 20.0


def _say(text: str = "") -> None:
    print(text, flush=True)


@dataclass
class Nc:
    """One `tcpstack nc` in the namespace: its own TUN, subnet, control socket and stdin."""

    proc: subprocess.Popen
    control: str
    addr: str
    peer: str

    def rows(self, closed: bool = False) -> list[dict]:
        try:
            return control.request(self.control, "netstat", closed=closed)
        except OSError:  # not answering yet, or already gone
            return []

    def close_stdin(self) -> None:
        self.proc.stdin.close()


@dataclass
class Tour:
    ns: NetNs
    pause: float
    start: float = field(default_factory=time.monotonic)
    seen: set[str] = field(default_factory=set)
    stacks: list[Nc] = field(default_factory=list)
    kernel: list[socket.socket] = field(default_factory=list)
    log_dir: str = "/tmp"

    # ------------------------------------------------------------ the pieces

    def nc(self, index: int, *args: str) -> Nc:
        """`tcpstack nc` on tun<index>, 10.77.<index>.2, the kernel at 10.77.<index>.1."""
        addr, peer = f"10.77.{index}.2", f"10.77.{index}.1"
        path = os.path.join(control.CONTROL_DIR, f"tour-{os.getpid()}-{index}.sock")
        argv = [sys.executable, "-m", "stack.cli", "nc", "--tun", f"tun{index}", "--addr", addr]
        argv += ["--peer", f"{peer}/24", "--control", path, "--msl", str(MSL), "--fin-timeout", str(FIN_TIMEOUT)]
        with open(os.path.join(self.log_dir, f"nc{index}.log"), "w") as log:
            proc = self.ns.popen([*argv, *args], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        nc = Nc(proc, path, addr, peer)
        self.stacks.append(nc)
        return nc

    def listen(self, port: int) -> socket.socket:
        """A kernel listener in the namespace (any address: the stacks' TUNs come and go)."""
        with self.ns.entered():
            s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(4)
        self.kernel.append(s)
        return s

    def connect(self, addr: str, port: int) -> socket.socket:
        with self.ns.entered():
            s = socket.socket()
        self.kernel.append(s)
        s.settimeout(STEP_TIMEOUT)
        s.connect((addr, port))
        return s

    def accept(self, listener: socket.socket) -> socket.socket:
        listener.settimeout(STEP_TIMEOUT)
        conn, _ = listener.accept()
        self.kernel.append(conn)
        return conn

    def show(self, nc: Nc, state: str, note: str = "", closed: bool = False) -> dict:
        """Wait until `nc`'s netstat has a row in `state`, print it, let a watching person see it."""

        def found() -> dict | None:
            if nc.proc.poll() is not None and not closed:
                raise RuntimeError(f"tcpstack nc exited with {nc.proc.returncode} before {state}")
            return next((r for r in nc.rows(closed) if r["state"] == state), None)

        row = wait_for(found, STEP_TIMEOUT, f"{state} in netstat")
        self.seen.add(state)
        line = format_rows([row]).splitlines()[1]
        _say(f"  {time.monotonic() - self.start:5.1f}s  {line}")
        if note:
            _say(f"          {note}")
        time.sleep(self.pause)  # for the person watching, not for the stack: the next step waits on a state
        return row

    # ------------------------------------------------------------ the scenarios

    def passive(self) -> None:
        _say("\n1. Passive open, and the close the peer starts (tcpstack nc -l -k 5000 on tun1)")
        _say("   fault: drop=ack,dir=in,count=1 (the handshake's last ACK) and drop=ack,dir=in,skip=2,count=1")
        _say("   (the kernel's ACK of our FIN)")
        nc = self.nc(1, "--fault", "drop=ack,dir=in,count=1,drop=ack,dir=in,skip=2,count=1", "-l", "-k", "5000")
        self.show(nc, "LISTEN", "waiting for a SYN")
        kernel = self.connect(nc.addr, 5000)
        self.show(nc, "SYN_RECV", "SYN,ACK sent; the kernel's ACK was lost, so the SYN,ACK is retransmitted")
        self.show(nc, "ESTABLISHED", "the kernel ACKed the retransmitted SYN,ACK")
        kernel.shutdown(socket.SHUT_WR)
        self.show(nc, "CLOSE_WAIT", "the kernel half-closed; nc's stdin is still open, so we have not closed")
        nc.close_stdin()
        self.show(nc, "LAST_ACK", "our FIN is out, its ACK was lost: the FIN is retransmitted")
        self.show(nc, "CLOSE", "the ACK of the retransmitted FIN arrived: the connection is gone", closed=True)
        self.show(nc, "LISTEN", "nc -k listens again")
        kernel.close()

    def active(self) -> None:
        _say("\n2. Active open, and the close we start (tcpstack nc 10.77.2.1 5002 on tun2)")
        _say("   fault: drop=synack,dir=in,count=1 (the first SYN,ACK)")
        listener = self.listen(5002)
        nc = self.nc(2, "--linger-time-wait", "--fault", "drop=synack,dir=in,count=1", "10.77.2.1", "5002")
        self.show(nc, "SYN_SENT", "SYN sent; the SYN,ACK was lost, the SYN is retransmitted after 1 s")
        kernel = self.accept(listener)
        self.show(nc, "ESTABLISHED")
        nc.close_stdin()
        self.show(nc, "FIN_WAIT2", "our FIN was ACKed; the kernel has not closed yet (nc still reads)")
        kernel.close()
        row = self.show(nc, "TIME_WAIT", f"the kernel's FIN arrived: TIME_WAIT lasts 2*MSL = {2 * MSL:g} s")
        entered = row["history"][-1]["time"]
        nc.proc.wait(timeout=STEP_TIMEOUT)  # --linger-time-wait: nc leaves when TIME_WAIT ends
        _say(f"          TIME_WAIT ended {time.time() - entered:.1f} s later; nc exited")

    def fin_ack_in_fin_wait_1(self) -> None:
        _say("\n3. FIN_WAIT1 straight to TIME_WAIT: the kernel's FIN carries the ACK of ours (nc on tun3)")
        _say("   fault: drop=ack,dir=in,count=6 (the kernel's ACKs of our FIN, for a while)")
        listener = self.listen(5003)
        nc = self.nc(3, "--linger-time-wait", "--fault", "drop=ack,dir=in,count=6", "10.77.3.1", "5003")
        kernel = self.accept(listener)
        self.show(nc, "ESTABLISHED")
        nc.close_stdin()
        self.show(nc, "FIN_WAIT1", "our FIN is out; its ACK was lost")
        kernel.close()
        row = self.show(nc, "TIME_WAIT", "the kernel's FIN,ACK acknowledged our FIN too: no FIN_WAIT2")
        _say(f"          history: {' | '.join(h['text'] for h in row['history'][-2:])}")

    def simultaneous_close(self) -> None:
        _say("\n4. Simultaneous close through CLOSING (nc on tun4)")
        _say("   fault: drop=fin,dir=out,count=4 (our FIN and its first three retransmissions)")
        listener = self.listen(5004)
        nc = self.nc(4, "--linger-time-wait", "--fault", "drop=fin,dir=out,count=4", "10.77.4.1", "5004")
        kernel = self.accept(listener)
        self.show(nc, "ESTABLISHED")
        nc.close_stdin()
        self.show(nc, "FIN_WAIT1", "our FIN was lost on the way: the kernel does not know we closed")
        kernel.close()
        self.show(nc, "CLOSING", "the kernel's FIN crossed ours: both sides closed, ours not yet ACKed")
        self.show(nc, "TIME_WAIT", "our retransmitted FIN got through and was ACKed")

    def orphan(self) -> None:
        _say("\n5. An orphaned FIN_WAIT2 times out (nc -q 0 on tun5: it lets go after EOF on stdin)")
        listener = self.listen(5005)
        nc = self.nc(5, "--linger-time-wait", "-q", "0", "10.77.5.1", "5005")
        kernel = self.accept(listener)
        self.show(nc, "ESTABLISHED")
        nc.close_stdin()
        row = self.show(nc, "FIN_WAIT2", f"nobody reads any more and the kernel never closes: {FIN_TIMEOUT:g} s left")
        entered = row["history"][-1]["time"]
        nc.proc.wait(timeout=STEP_TIMEOUT)
        _say(f"          the FIN_WAIT2 timer ran out {time.time() - entered:.1f} s later; the connection is gone")
        kernel.close()

    def close(self) -> None:
        for s in self.kernel:
            s.close()


def run_tour(pause: float = 0.5) -> int:
    if os.geteuid() != 0:
        print("tcpstack tour: needs root to create a network namespace and TUN devices", file=sys.stderr)
        return 1
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tcpstack-tour-") as logs, NetNs("tcpstack-tour") as ns:
        tour = Tour(ns, pause, log_dir=logs)
        _say(f"The eleven TCP states against the kernel, in network namespace {ns.name}.")
        _say("Watch along in another terminal:  tcpstack top   (or: watch -n 0.2 tcpstack netstat)")
        steps: list[Callable[[], None]] = [
            tour.passive,
            tour.active,
            tour.fin_ack_in_fin_wait_1,
            tour.simultaneous_close,
            tour.orphan,
        ]
        try:
            for step in steps:
                step()
        except (OSError, RuntimeError, TimeoutError, subprocess.TimeoutExpired) as exc:
            _say(f"\ntour FAILED: {exc}")
            for name in sorted(os.listdir(logs)):
                with open(os.path.join(logs, name)) as f:
                    text = f.read().strip()
                if text:
                    _say(f"--- {name}\n{text}")
            return 1
        finally:
            tour.close()
            for nc in tour.stacks:  # those still lingering in TIME_WAIT: stop them cleanly
                if nc.proc.poll() is None:
                    nc.proc.send_signal(signal.SIGTERM)
        missing = [s for s in STATES if s not in tour.seen]
        _say(f"\nSeen: {' '.join(s for s in STATES if s in tour.seen)}")
        _say("tour OK: all 11 states" if not missing else f"tour FAILED: never saw {' '.join(missing)}")
        return 0 if not missing else 1
