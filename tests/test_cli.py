"""The command line: one-line errors with exit code 2, clear environment errors, fast netstat."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

BASE = ["serve", "--tun", "tun9", "--addr", "10.9.0.2", "--peer", "10.9.0.1/24"]


def tcpstack(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stack.cli", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["serve"],
        [*BASE[:-2], "--peer", "10.9.0.1"],
        [*BASE, "--mtu", "12"],
        [*BASE, "--msl", "-1"],
        [*BASE, "--services", "gopher:70"],
        [*BASE, "--fault", "loss=200%"],
        [*BASE, "--cc", "vegas"],
        [*BASE, "--cc", "no.such.module:Controller"],
        [*BASE, "--timestamps", "maybe"],
        [*BASE, "--offload", "maybe"],
        [*BASE, "--workers", "0"],
        [*BASE, "--fast-open", "-1"],
        [*BASE, "--fast-open", "8", "--fast-open-key", "a1a1a1a1-b2b2b2b2"],
        [*BASE, "--fast-open-key", "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4"],
        ["serve", "--tun", "tun9", "--addr", "10.9.0", "--peer", "10.9.0.1/24"],
        ["nc", "--tun", "t", "--addr", "10.9.0.2", "--peer", "10.9.0.1/24", "10.9.0.1", "99999"],
        ["nc", "--tun", "t", "--addr", "10.9.0.2", "--peer", "10.9.0.1/24", "10.9.0.1", "no-such-service"],
        ["nc", "--tun", "t", "--addr", "10.9.0.2", "--peer", "10.9.0.1/24", "5000"],
        ["nc", "--tun", "t", "--addr", "10.9.0.2", "--peer", "10.9.0.1/24", "-l", "10.9.0.1", "5000"],
        ["nc", "--tun", "t", "--addr", "10.9.0.2", "--peer", "10.9.0.1/24", "--pcap", "-", "10.9.0.1", "7"],
        [*BASE, "--workers", "2", "--pcap", "-"],
        ["nc", "--tun", "t", "--addr", "10.9.0.2", "--peer", "10.9.0.1/24", "-z", "-l", "5000"],
        ["nc", "--tun", "t", "--addr", "10.9.0.2", "--peer", "10.9.0.1/24", "-w", "0", "10.9.0.1", "7"],
    ],
)
def test_cli_bad_arguments_give_one_line_and_exit_2(args):
    result = tcpstack(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_cli_nc_port_takes_a_service_name_as_openbsd_nc_does():
    """nc's PORT is a number or a name from /etc/services, as getaddrinfo resolves it for OpenBSD nc."""
    from stack.cli import build_parser

    nc = ["nc", "--tun", "t", "--addr", "10.9.0.2", "--peer", "10.9.0.1/24"]
    assert build_parser().parse_args([*nc, "10.9.0.1", "http"]).port == 80
    assert build_parser().parse_args([*nc, "-l", "echo"]).port == 7


def test_cli_unknown_argument_error_names_the_command():
    result = tcpstack("netstat", "--bogus")
    assert result.returncode == 2
    assert result.stderr == "tcpstack netstat: error: unrecognized arguments: --bogus\n"


def test_cli_netstat_without_a_running_stack_explains():
    result = tcpstack("netstat", "--control", "/nonexistent/tcpstack.sock")
    assert result.returncode == 1
    assert (
        result.stderr
        == "tcpstack: netstat: no tcpstack answers at /nonexistent/tcpstack.sock (No such file or directory)\n"
    )


def test_cli_output_to_a_reader_that_went_away_stops_quietly():
    """`tcpstack netstat | head`: a reader that closes its end stops the command as SIGPIPE stops one
    (status 141), with nothing on stderr: no traceback, no error from the flush at exit."""
    script = sorted((Path(__file__).parent / "scripts" / "handshake").glob("*.pkt"))[0]
    proc = subprocess.Popen(
        [sys.executable, "-m", "stack.cli", "script", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # gone before the command writes its result
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert stderr == ""


def test_cli_top_without_a_terminal_explains_and_exits():
    """`top` draws a screen: with its output in a pipe or a file it says so instead of drawing into it."""
    result = subprocess.run(
        [sys.executable, "-m", "stack.cli", "top"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("tcpstack top: needs a terminal")


def test_cli_netstat_imports_stay_light():
    """netstat must answer in well under 0.3 s: importing the CLI may not pull in uvloop, cffi or pytun."""
    code = (
        "import sys, stack.cli, stack.control; print(sorted(m for m in ('uvloop','cffi','pytun') if m in sys.modules))"
    )
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"
    assert time.monotonic() - start < 2.0


def test_cli_serve_without_privileges_explains_in_one_line():
    setpriv = subprocess.run(["which", "setpriv"], capture_output=True, text=True).stdout.strip()
    if not setpriv:
        pytest.skip("setpriv not installed")
    result = subprocess.run(
        [
            setpriv,
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            sys.executable,
            "-m",
            "stack.cli",
            *BASE,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs root (CAP_NET_ADMIN)" in lines[0], result.stderr


def test_cli_serve_congestion_timestamps_and_ecn_options_reach_the_config():
    from stack.cli import build_parser
    from stack.serve import config_from_args

    args = build_parser().parse_args([*BASE, "--cc", "reno", "--timestamps", "off", "--ecn"])
    config = config_from_args(args)
    assert (config.congestion, config.timestamps, config.ecn) == ("reno", False, True)
    default = config_from_args(build_parser().parse_args(BASE))
    assert (default.timestamps, default.ecn) == (True, False)


def test_cli_serve_fast_open_enables_the_server_side_with_the_key_given():
    from stack.cli import build_parser
    from stack.serve import config_from_args
    from stack.tcp import fast_open

    key = "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4"
    config = config_from_args(build_parser().parse_args([*BASE, "--fast-open", "8", "--fast-open-key", key]))
    assert config.fast_open & fast_open.SERVER_ENABLE and config.fast_open_keys == fast_open.parse_keys(key)
    default = config_from_args(build_parser().parse_args(BASE))
    assert not default.fast_open & fast_open.SERVER_ENABLE


@pytest.mark.parametrize(
    ("addr", "words"),
    [
        ("10.9.0.1", "kernel side's address"),
        ("10.9.0.255", "broadcast address"),
        ("10.9.0.0", "network or broadcast"),
        ("127.0.0.1", "cannot be a host's address"),
        ("224.0.0.5", "cannot be a host's address"),
    ],
)
def test_cli_serve_addr_the_kernel_side_or_no_host_address_is_refused(addr, words):
    """--addr equal to --peer's address would start a stack nobody can reach: one line, exit 2."""
    result = tcpstack("serve", "--tun", "tun9", "--addr", addr, "--peer", "10.9.0.1/24")
    assert result.returncode == 2
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and f"--addr {addr}" in line and words in line, line


@pytest.mark.parametrize(
    "tool",
    [
        ["tools/profile-sender", "--size", "0"],
        ["tools/profile-receive", "--rounds", "0"],
        ["tools/profile-roundtrip", "--round-trips", "0"],
        ["tools/profile-connections", "--connections", "-3"],
        ["tools/profile-download", "--size", "lots"],
        ["tools/bench", "--rounds", "0"],
    ],
)
def test_tools_bad_counts_give_one_line_and_exit_2(tool):
    """A count of zero or less would divide by zero at the end of a long run: argparse refuses it first."""
    script = Path(__file__).resolve().parent.parent / tool[0]
    result = subprocess.run([sys.executable, str(script), *tool[1:]], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "is not 1 or more" in result.stderr or "is not a whole number" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--rows", "rtt,latency"], "unknown rows ['latency']"),
        (["--server-cpus", "4096"], "names CPUs outside"),
        (["--client-cpus", "one"], "not a CPU list"),
        (["--client-cpus", "1-"], "not a CPU list"),
    ],
)
def test_tools_bench_unknown_rows_or_cpus_give_one_line_and_exit_2(args, words):
    """A row or CPU the bench cannot measure on is refused before any namespace is made."""
    script = Path(__file__).resolve().parent.parent / "tools" / "bench"
    result = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert words in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr


def test_tools_profile_roundtrip_repeats_its_digest_and_refuses_a_reply_of_two_segments():
    """The round-trip harness is deterministic (the same segments in every round: the digest that shows a
    change made only for speed changed nothing on the wire), and a size beyond one segment is refused."""
    script = Path(__file__).resolve().parent.parent / "tools" / "profile-roundtrip"
    run = [sys.executable, str(script), "--round-trips", "30", "--rounds", "2"]
    first = subprocess.run(run, capture_output=True, text=True, timeout=120)
    second = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    digests = [line.split()[-1] for line in first.stdout.splitlines() if line.startswith("server's segments digest")]
    assert len(digests) == 1 and len(digests[0]) == 16  # one digest for both rounds
    assert digests[0] in second.stdout
    too_big = subprocess.run([*run, "--size", "1449"], capture_output=True, text=True, timeout=60)
    assert too_big.returncode == 2 and "--size must fit one segment" in too_big.stderr


def test_tools_profile_roundtrip_connections_closes_each_one_and_repeats_its_digest():
    """--connections: every short connection ends CLOSED on the server's side (the tool checks it), and
    the server's segments are the same in every round."""
    script = Path(__file__).resolve().parent.parent / "tools" / "profile-roundtrip"
    result = subprocess.run(
        [sys.executable, str(script), "--connections", "--round-trips", "30", "--rounds", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "| handshake (SYN in, SYN,ACK out, ACK in) |" in result.stdout
    digests = [line.split()[3:] for line in result.stdout.splitlines() if line.startswith("server's segments digest")]
    assert len(digests) == 1 and len(digests[0]) == 1
