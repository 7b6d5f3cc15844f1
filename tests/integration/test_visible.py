"""Client-side states in netstat: `tcpstack nc` answers on a control socket, lingers through TIME_WAIT,
and `--fault drop=...` rules produce states on demand; `netstat -i` reports ss-style fields."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from stack import control
from stack.netns import wait_for

NC_ARGS = ["--tun", "tun1", "--addr", "10.8.0.2", "--peer", "10.8.0.1/24"]

# A kernel TCP server on port 5000: echoes what it gets in upper case, then closes once the client has.
KERNEL_SERVER = r"""
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 5000)); srv.listen(1)
open(sys.argv[1], "w").close()
conn, _ = srv.accept()
while data := conn.recv(65536):
    conn.sendall(data.upper())
conn.close()
"""


def _kernel_server(netns, tmp_path) -> subprocess.Popen:
    ready = tmp_path / "server.ready"
    server = netns.popen([sys.executable, "-c", KERNEL_SERVER, str(ready)])
    wait_for(lambda: ready.exists() or server.poll() is not None, 20, "the kernel server")
    return server


def _netstat(path: str, *flags: str) -> list[dict]:
    """`tcpstack netstat --json` as a user runs it; [] while the stack is not (or no longer) answering."""
    out = subprocess.run(
        [sys.executable, "-m", "stack.cli", "netstat", "--control", path, "--json", *flags],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return json.loads(out.stdout) if out.returncode == 0 else []


def _watch(path: str, proc: subprocess.Popen, until) -> list[dict]:
    """Every connection row seen on `path` until `until(rows)` or the process ends."""
    seen: list[dict] = []

    def done() -> bool:
        try:
            rows = [r for r in control.request(path, "netstat") if r["state"] != "LISTEN"]
        except OSError:
            rows = []
        seen.extend(rows)
        return until(seen) or proc.poll() is not None

    wait_for(done, 30, "the nc connection's states", interval=0.01)
    return seen


def test_syn_sent_synack_dropped_once_retransmits_then_established(netns, tmp_path):
    """RFC 9293 §3.8.1 / RFC 6298 (5.7): a lost SYN,ACK leaves SYN_SENT until the SYN is retransmitted
    after the initial RTO of 1 s, and a later SYN,ACK makes the connection ESTABLISHED. nc's control
    socket shows both states and the retransmission. Two SYN,ACKs are dropped (`count=2`): the first, and
    the kernel's own retransmission of it, which its 1 s timer may send just before our SYN's RTO
    fires; the one after either comes after our retransmitted SYN."""
    server = _kernel_server(netns, tmp_path)
    sock = str(tmp_path / "nc.sock")
    argv = [sys.executable, "-m", "stack.cli", "nc", *NC_ARGS, "--control", sock]
    argv += ["--fault", "drop=synack,dir=in,count=2", "10.8.0.1", "5000", "--trace"]
    nc = netns.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = _watch(sock, nc, lambda rows: any(r["state"] == "ESTABLISHED" for r in rows))
        states = [r["state"] for r in seen]
        assert "SYN_SENT" in states and "ESTABLISHED" in states, states
        syn_sent = next(r for r in seen if r["state"] == "SYN_SENT")
        assert syn_sent["timer"] == "on" and 0 < syn_sent["timer_left"] <= 1.0
        established = next(r for r in seen if r["state"] == "ESTABLISHED")
        assert established["info"]["retrans"] >= 1  # the SYN (once, or twice if the timers raced again)
        (opened,) = [h for h in established["history"] if h["to"] == "ESTABLISHED"]
        assert opened["from"] == "SYN_SENT" and opened["elapsed"] >= 0.9  # waited for the RTO
        nc.stdin.write(b"hi\n")
        nc.stdin.close()
        assert nc.stdout.read() == b"HI\n"
        assert nc.wait(timeout=30) == 0
        trace = nc.stderr.read().decode()
        # each transition with its wall-clock time, like tcpdump's
        assert re.search(r"^trace: \d\d:\d\d:\d\d\.\d{6} 10\.8\.0\.1:5000 SYN_SENT -> ESTABLISHED", trace, re.M), trace
    finally:
        for proc in (nc, server):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_netstat_without_control_shows_every_running_stack(netns, tmp_path):
    """Like netstat on a host, `tcpstack netstat` with no --control lists the connections of every stack
    (here two `nc -l` stacks, each with its listener)."""
    paths = [os.path.join(control.CONTROL_DIR, f"test-{os.getpid()}-{i}.sock") for i in (1, 2)]
    procs = []
    try:
        for i, path in zip((1, 2), paths, strict=True):
            argv = [sys.executable, "-m", "stack.cli", "nc", "--tun", f"tun{i}", "--addr", f"10.8.{i}.2"]
            argv += ["--peer", f"10.8.{i}.1/24", "--control", path, "-l", str(6000 + i)]
            procs.append(netns.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL))
        for path in paths:
            wait_for(lambda path=path: _netstat(path), 30, "the nc stacks to answer")
        out = subprocess.run(
            [sys.executable, "-m", "stack.cli", "netstat", "--json"], capture_output=True, text=True, timeout=10
        )
        locals_ = {r["local"] for r in json.loads(out.stdout) if r["state"] == "LISTEN"}
        assert {"0.0.0.0:6001", "0.0.0.0:6002"} <= locals_, out.stdout + out.stderr
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        for path in paths:
            if os.path.exists(path):
                os.unlink(path)


def test_time_wait_nc_lingers_for_two_msl_and_netstat_shows_it(netns, tmp_path):
    """RFC 9293 §3.6: the side that closes first waits 2*MSL in TIME_WAIT. With --linger-time-wait,
    nc stays until it ends, and `tcpstack netstat` shows the client's SYN_SENT, ESTABLISHED and
    TIME_WAIT with net-tools' timer column and the history with its times."""
    server = _kernel_server(netns, tmp_path)
    sock = str(tmp_path / "nc.sock")
    argv = [sys.executable, "-m", "stack.cli", "nc", *NC_ARGS, "--control", sock, "--msl", "1"]
    argv += ["--linger-time-wait", "--fault", "drop=synack,count=1,delay=5ms", "10.8.0.1", "5000"]
    nc = netns.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: any(r["state"] == "SYN_SENT" for r in _netstat(sock)), 30, "SYN_SENT in netstat")
        wait_for(lambda: any(r["state"] == "ESTABLISHED" for r in _netstat(sock)), 30, "ESTABLISHED")
        nc.stdin.write(b"data\n")
        nc.stdin.flush()
        assert nc.stdout.readline() == b"DATA\n"
        (row,) = [r for r in _netstat(sock, "--info") if r["state"] == "ESTABLISHED"]
        info = row["info"]
        assert info["cwnd"] > 0 and info["srtt"] >= 0.009 and info["rto"] >= 0.2  # 5 ms of delay each way
        assert info["mss"] == 1448  # 1460 less 12 for the timestamps option
        assert info["cc"] == "cubic" and info["bytes_acked"] == 5 and info["bytes_received"] == 5
        assert info["sack"] and info["timestamps"] and info["rcv_wscale"] > 0
        text = subprocess.run(
            [sys.executable, "-m", "stack.cli", "netstat", "--control", sock, "-i"], capture_output=True, text=True
        ).stdout
        assert "ESTABLISHED off (0.00/0/0)" in " ".join(text.split()) and " cubic wscale:" in text, text
        nc.stdin.close()  # our FIN first: we are the side that waits in TIME_WAIT
        tw = wait_for(lambda: [r for r in _netstat(sock) if r["state"] == "TIME_WAIT"], 30, "TIME_WAIT")
        assert tw[0]["timer"] == "timewait" and 0 < tw[0]["timer_left"] <= 2.0
        path = [(h["from"], h["to"]) for h in tw[0]["history"]]
        # the kernel closes at once on EOF: its FIN may carry the ACK of ours (FIN_WAIT1 -> TIME_WAIT)
        assert path[:3] == [("CLOSE", "SYN_SENT"), ("SYN_SENT", "ESTABLISHED"), ("ESTABLISHED", "FIN_WAIT1")]
        assert path[-1][1] == "TIME_WAIT", path
        assert nc.wait(timeout=30) == 0, nc.stderr.read().decode()
        lasted = time.time() - tw[0]["history"][-1]["time"]
        assert 1.9 <= lasted <= 4.0, f"nc left {lasted:.2f} s after TIME_WAIT began; 2*MSL is 2 s"
    finally:
        for proc in (nc, server):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
