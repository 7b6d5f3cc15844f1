"""The kernel's ping, curl and nc against `tcpstack serve` over a TUN device in a private namespace."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from stack.netns import wait_for
from stack.services.http import pattern_sha256
from tests.integration.conftest import ADDR, start_serve


def test_ping_gets_echo_replies(served):
    result = served.ns.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", ADDR], text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 received" in result.stdout


def test_ping_record_route_shows_the_stack_on_the_way_back(served):
    """RFC 1122 §3.2.2.6: ping -R's record route comes back in each reply, with the stack's address recorded
    where the request ended and where the reply left (the kernel's own entries around them)."""
    result = served.ns.run(["ping", "-R", "-c", "2", "-i", "0.2", "-W", "2", ADDR], text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 received" in result.stdout and "RR:" in result.stdout, result.stdout
    route = result.stdout.split("RR:", 1)[1].split("\n\n", 1)[0].split()
    assert route.count(ADDR) == 2, result.stdout


def test_ping_timestamps_come_back_stamped(served):
    """RFC 791 §3.1: ping -T tsonly's timestamp option comes back with four times: the kernel's as the
    request leaves, the stack's as it arrives and as the reply leaves, the kernel's as the reply arrives."""
    result = served.ns.run(["ping", "-T", "tsonly", "-c", "2", "-i", "0.2", "-W", "2", ADDR], text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 received" in result.stdout and "TS:" in result.stdout, result.stdout
    times = result.stdout.split("TS:", 1)[1].split("\n\n", 1)[0].split("\n")
    assert len(times) == 4, result.stdout


def test_curl_index_page(served):
    result = served.ns.run(["curl", "-sS", "-m", "20", f"{served.url}/"], text=True)
    assert result.returncode == 0, result.stderr
    assert "Hello from tcpstack" in result.stdout


def test_curl_download_10mb_matches_its_sha256(served):
    body = served.ns.run(["curl", "-sS", "-m", "120", f"{served.url}/bytes/10000000"])
    assert body.returncode == 0, body.stderr
    advertised = served.ns.run(["curl", "-sS", "-m", "60", f"{served.url}/bytes/10000000.sha256"], text=True)
    assert len(body.stdout) == 10_000_000
    assert hashlib.sha256(body.stdout).hexdigest() == advertised.stdout.strip() == pattern_sha256(10_000_000)


def test_curl_upload_10mb_to_sha256(served, tmp_path):
    data = os.urandom(10_000_000)
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    result = served.ns.run(["curl", "-sS", "-m", "120", "--data-binary", f"@{path}", f"{served.url}/sha256"], text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == hashlib.sha256(data).hexdigest()


def test_nc_echo_1mb_comes_back_identical(served):
    data = os.urandom(1_000_000)
    result = served.ns.run(["nc", "-N", "-w", "30", ADDR, "7"], input=data, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data


def test_nc_10mb_to_discard(served, tmp_path):
    path = tmp_path / "discard.bin"
    path.write_bytes(os.urandom(10_000_000))
    with open(path, "rb") as f:
        result = served.ns.run(["nc", "-N", "-w", "30", ADDR, "9"], stdin=f, timeout=180)
    assert result.returncode == 0, result.stderr
    assert served.stats()["InSegs"] >= 10_000_000 // 1460


def test_chargen_streams_rfc864_lines(served):
    # read a little of the endless stream, then close
    result = served.ns.run(["bash", "-c", f"nc -d -w 10 {ADDR} 19 | head -c 7400"], timeout=60)
    lines = result.stdout.split(b"\r\n")
    assert len(lines[0]) == 72 and lines[0][:1] == b" " and lines[1][:1] == b"!"


def test_50_concurrent_curls_all_succeed(served):
    procs = [
        subprocess.Popen(
            served.ns.cmd(["curl", "-sS", "-m", "120", f"{served.url}/bytes/200000"]),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(50)
    ]
    expected = pattern_sha256(200_000)
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        assert hashlib.sha256(out).hexdigest() == expected


def test_http_keepalive_serves_two_requests_on_one_connection(served):
    result = served.ns.run(
        ["curl", "-sS", "-m", "20", "-w", "%{num_connects}\\n", f"{served.url}/", f"{served.url}/bytes/10.sha256"],
        text=True,
    )
    assert result.returncode == 0, result.stderr
    connects = [line for line in result.stdout.splitlines() if line.isdigit()]
    assert connects == ["1", "0"]  # the second request reused the connection


def test_5mb_transfer_under_5_percent_loss_both_ways(netns, tmp_path):
    served = start_serve(netns, tmp_path, "--fault", "loss=5%,seed=7")
    body = netns.run(["curl", "-sS", "-m", "400", f"{served.url}/bytes/5000000"], timeout=420)
    assert body.returncode == 0, body.stderr
    assert hashlib.sha256(body.stdout).hexdigest() == pattern_sha256(5_000_000)
    data = os.urandom(5_000_000)
    path = tmp_path / "lossy.bin"
    path.write_bytes(data)
    up = netns.run(
        ["curl", "-sS", "-m", "400", "--data-binary", f"@{path}", f"{served.url}/sha256"], text=True, timeout=420
    )
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == hashlib.sha256(data).hexdigest()
    assert served.stats()["RetransSegs"] > 0


def test_netstat_shows_established_while_a_connection_is_open(served):
    nc = served.ns.popen(["nc", "-N", ADDR, "9"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        row = wait_for(
            lambda: next(
                (r for r in served.netstat() if r["state"] == "ESTABLISHED" and r["local"] == f"{ADDR}:9"), None
            ),
            20,
            "an ESTABLISHED row",
        )
        assert row["remote"].startswith("10.7.0.1:")
    finally:
        nc.stdin.close()
        nc.wait(timeout=20)


def test_netstat_shows_time_wait_for_2msl_after_the_stack_closes_first(netns, tmp_path):
    served = start_serve(netns, tmp_path, "--msl", "1")
    result = netns.run(["curl", "-sS", "-m", "20", "-H", "Connection: close", f"{served.url}/"], text=True)
    assert result.returncode == 0, result.stderr

    def time_wait_row():
        return next((r for r in served.netstat() if r["state"] == "TIME_WAIT"), None)

    row = wait_for(time_wait_row, 10, "a TIME_WAIT row")
    assert row["timer"] == "timewait" and 0 < row["timer_left"] <= 2.0
    import time

    seen = time.monotonic()
    wait_for(lambda: time_wait_row() is None, 10, "TIME_WAIT to end")
    lasted = time.monotonic() - seen + (2.0 - row["timer_left"])
    assert 1.5 <= lasted <= 4.0  # 2*MSL = 2 s, with wide margins


def test_netstat_json_answers_fast(served):
    import time

    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "stack.cli", "netstat", "--json", "--control", served.control],
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert elapsed < 1.0  # the budget is 0.3 s; a loaded CI machine gets a wide margin


def test_netstat_takes_net_tools_letters_and_l_shows_only_listeners(served):
    """`tcpstack netstat -nat`, as fingers type net-tools' netstat, shows what it always shows; `-l` (with
    `-nlt` as one word) only the listeners, while a connection is open."""
    import socket

    def netstat(*flags: str) -> str:
        argv = [sys.executable, "-m", "stack.cli", "netstat", "--control", served.control, *flags]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        return result.stdout

    with served.ns.entered():
        sock = socket.create_connection((ADDR, 7), timeout=10)
    with sock:
        wait_for(lambda: any(r["state"] == "ESTABLISHED" for r in served.netstat()), 10, "the connection")
        assert netstat("-nat") == netstat()
        assert "ESTABLISHED" in netstat()
        listening = netstat("-nlt").splitlines()
        assert len(listening) == 1 + 4 and all(line.split()[5] == "LISTEN" for line in listening[1:]), listening


def test_pcap_is_readable_by_tcpdump(netns, tmp_path):
    import shutil

    import pytest

    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump not installed")
    pcap = tmp_path / "capture.pcap"
    served = start_serve(netns, tmp_path, "--pcap", str(pcap))
    assert netns.run(["curl", "-sS", "-m", "20", f"{served.url}/"]).returncode == 0
    assert served.stop() == 0
    result = subprocess.run(["tcpdump", "-nn", "-r", str(pcap)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr.lower()
    assert f"{ADDR}.80" in result.stdout and "Flags [S.]" in result.stdout


def test_sigterm_removes_the_tun_device(served):
    assert served.ns.run(["ip", "link", "show", "tun0"]).returncode == 0
    assert served.stop() == 0
    assert served.ns.run(["ip", "link", "show", "tun0"]).returncode != 0


def test_sighup_stops_serve_cleanly_as_sigterm_does(served):
    """A terminal that closes hangs up what runs in it: serve stops as on SIGTERM (as tcpdump takes a
    hang-up), its device removed and its control socket unlinked, with status 0."""
    import signal

    served.proc.send_signal(signal.SIGHUP)
    assert served.proc.wait(timeout=15) == 0
    assert served.ns.run(["ip", "link", "show", "tun0"]).returncode != 0
    assert not os.path.exists(served.control)


def test_sighup_under_nohup_leaves_serve_serving(netns, tmp_path):
    """`nohup tcpstack serve`: a hang-up ignored when it started stays ignored."""
    import signal

    from stack import control

    control_path = str(tmp_path / "control.sock")
    argv = ["nohup", sys.executable, "-m", "stack.cli", "serve", "--tun", "tun0", "--addr", ADDR]
    argv += ["--peer", "10.7.0.1/24", "--control", control_path]
    with open(tmp_path / "serve.log", "w") as log:
        proc = netns.popen(argv, stdout=log, stderr=log)

    def answers() -> bool:
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        try:
            return control.request(control_path, "netstat") is not None
        except OSError:
            return False

    wait_for(answers, 30, "serve to answer on its control socket")
    proc.send_signal(signal.SIGHUP)  # (nohup execs: this is serve's own process)
    curl = netns.run(["curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", f"http://{ADDR}/"])
    assert curl.stdout == b"200" and proc.poll() is None
    proc.terminate()
    assert proc.wait(timeout=15) == 0


def test_connection_to_a_closed_port_is_refused(served):
    result = served.ns.run(["nc", "-z", "-w", "5", ADDR, "4444"])
    assert result.returncode != 0
    assert served.stats()["OutRsts"] >= 1


def test_serve_pcap_to_standard_output_streams_into_tcpdump(netns, tmp_path):
    """`serve --pcap - | tcpdump -r -`, as tcpdump's own `-w -`: each packet shows in the reader while the
    stack runs, and what serve prints goes to stderr, not into the capture."""
    import shutil
    import threading

    import pytest

    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump not installed")
    served = start_serve(netns, tmp_path, "--pcap", "-", stdout=subprocess.PIPE)
    reader = subprocess.Popen(
        ["tcpdump", "-l", "-nn", "-r", "-"], stdin=served.proc.stdout, stdout=subprocess.PIPE, text=True
    )
    served.proc.stdout.close()  # the reader's now
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(reader.stdout), daemon=True).start()
    try:
        assert netns.run(["curl", "-sS", "-m", "20", f"{served.url}/"]).returncode == 0
        wait_for(lambda: any(f"{ADDR}.80 > " in line and "Flags [F.]" in line for line in lines), 20, "our FIN")
        assert served.proc.poll() is None  # shown while it runs, not when it stops
        assert "tcpstack: serving" in served.log()
    finally:
        served.stop()
        assert reader.wait(timeout=15) == 0  # the capture ends cleanly with the stack


def test_serve_pcap_to_a_reader_that_went_away_serves_on(netns, tmp_path):
    """`serve --pcap - | tcpdump -c 3 -r -`: once the reader has gone, the recording stops (one logged
    line) and the stack serves on."""
    served = start_serve(netns, tmp_path, "--pcap", "-", stdout=subprocess.PIPE)
    served.proc.stdout.close()  # gone before the first packet
    for _ in range(3):
        curl = netns.run(["curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", f"http://{ADDR}/"])
        assert curl.stdout == b"200"
    assert served.stop() == 0
    assert served.log().count("standard output: Broken pipe: recording stopped") == 1


def test_keepalive_probes_appear_in_the_pcap(netns, tmp_path):
    """SO_KEEPALIVE for served connections: after the idle time, ACKs with SEG.SEQ = SND.NXT - 1 go out."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import rdpcap

    pcap = tmp_path / "keepalive.pcap"
    served = start_serve(netns, tmp_path, "--keepalive", "0.5,0.5,20", "--pcap", str(pcap))
    idle = served.ns.popen(["nc", "-N", ADDR, "9"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: served.stats().get("TCPKeepAlive", 0) >= 2, 30, "two keepalive probes")
    finally:
        idle.stdin.close()
        idle.wait(timeout=20)
    assert served.stop() == 0
    packets = [p for p in rdpcap(str(pcap)) if p.haslayer(TCP) and p[TCP].dport != 80]
    acked = {}
    probes = 0
    for p in packets:
        tcp = p[TCP]
        if p[IP].dst == ADDR and tcp.flags & 0x10:
            acked[tcp.sport] = tcp.ack
        elif p[IP].src == ADDR and tcp.flags == "A" and not bytes(tcp.payload).strip(b"\0"):
            if acked.get(tcp.dport) is not None and tcp.seq == (acked[tcp.dport] - 1) % 2**32:
                probes += 1
    assert probes >= 2


def test_stats_json_counts_segments_and_resets(served):
    assert served.ns.run(["curl", "-sS", "-m", "20", f"{served.url}/"]).returncode == 0
    served.ns.run(["nc", "-z", "-w", "5", ADDR, "4444"])
    result = subprocess.run(
        [sys.executable, "-m", "stack.cli", "stats", "--json", "--control", served.control],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    stats = __import__("json").loads(result.stdout)
    assert stats["InSegs"] > 0 and stats["OutSegs"] > 0 and stats["PassiveOpens"] >= 1 and stats["OutRsts"] >= 1


def test_serve_leaves_its_start_up_heap_out_of_the_collector(served):
    """Once serving, what start-up made (modules, classes, the stack) is frozen: no full collection walks it.
    The full collection that freezing takes is start-up's, not counted as serving's."""
    stats = served.stats()
    assert stats["GcFrozenObjects"] > 10000
    assert stats["GcFullCollections"] == 0


def test_new_syn_on_a_time_wait_tuple_opens_a_new_connection(served):
    """RFC 6191: the kernel reconnects from the same port while our side is in TIME_WAIT (we closed
    first); its SYN carries a newer timestamp, so TIME_WAIT gives way at once (TWRecycled)."""
    curl = ["curl", "-sS", "-m", "20", "--local-port", "40123", "-H", "Connection: close", f"{served.url}/"]
    first = served.ns.run(curl, text=True, capture_output=True)
    assert first.returncode == 0, first.stderr
    wait_for(lambda: any(r["state"] == "TIME_WAIT" for r in served.netstat()), 10, "our TIME_WAIT")
    second = served.ns.run(curl, text=True, capture_output=True)
    assert second.returncode == 0, second.stderr
    assert served.stats()["TWRecycled"] == 1


def test_link_down_then_up_download_resumes_and_nothing_fails(served):
    """A TUN device whose link is down refuses writes (EIO): what the stack sends meanwhile is lost, as on
    a NIC whose link is down, and retransmission (RFC 6298 §5) delivers it once the link is up again."""
    size = 4_000_000
    curl = served.ns.popen(
        ["curl", "-sS", "-m", "120", "--limit-rate", "1M", "-o", "/dev/null", "-w", "%{size_download}",
         f"{served.url}/bytes/{size}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for(lambda: served.stats().get("OutSegs", 0) > 200, 30, "the download to start")
    served.ns.run(["ip", "link", "set", "tun0", "down"], check=True)
    before = served.stats().get("RetransSegs", 0)
    # a retransmission timeout fires while the link is down: its segment cannot be written
    wait_for(lambda: served.stats().get("RetransSegs", 0) > before, 30, "a retransmission while the link is down")
    served.ns.run(["ip", "link", "set", "tun0", "up"], check=True)
    out, err = curl.communicate(timeout=150)
    assert curl.returncode == 0, err
    assert out == str(size)
    assert "Traceback" not in served.log()


def test_serve_trace_whose_reader_goes_away_serves_on(netns, tmp_path):
    """`tcpstack serve --trace 2>&1 | head`: once head has exited, transitions can no longer be printed;
    the stack serves on untraced (a failed print raised inside the stack and reset every connection)."""
    from stack import control

    control_path = str(tmp_path / "control.sock")
    argv = [sys.executable, "-m", "stack.cli", "serve", "--tun", "tun0", "--addr", ADDR, "--peer", "10.7.0.1/24"]
    serve = netns.popen(
        [*argv, "--control", control_path, "--trace"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )

    def answers() -> bool:
        try:
            return control.request(control_path, "netstat") is not None
        except OSError:
            return False

    wait_for(answers, 30, "the stack to answer on its control socket")
    serve.stderr.close()  # the reader goes away before the first transition is printed
    for _ in range(3):
        curl = netns.run(["curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", f"http://{ADDR}/"])
        assert curl.stdout == b"200"
    assert control.request(control_path, "stats")["InternalErrors"] == 0


def test_serve_whose_pcap_cannot_be_written_serves_on(netns, tmp_path):
    """A capture on a full disk (/dev/full: ENOSPC) stops recording with one logged error; the stack serves
    on (the failed write raised inside the device read, and every packet that came in was dropped)."""
    served = start_serve(netns, tmp_path, "--pcap", "/dev/full")
    for _ in range(3):
        curl = netns.run(["curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", f"http://{ADDR}/"])
        assert curl.stdout == b"200"
    assert served.log().count("/dev/full: No space left on device: recording stopped") == 1
