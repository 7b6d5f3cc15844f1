"""`tcpstack sim`: real connections over the simulated bottleneck; the same seed repeats a run byte
for byte (files and printed summary), another seed does not."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from stack.plot import read_pcap, time_sequence
from stack.sim.engine import LinkConfig, Simulation
from stack.sim.report import FlowResult, LinkResult, Report, jain_index, percentile
from stack.sim.units import FlowSpec, QueueLimit, rate, seconds, size
from stack.trace import read_events

HEAD_TO_HEAD = ["--flow", "cubic:400KB@0s", "--flow", "bbr:400KB@0.1s", "--rate", "5Mbit", "--delay", "10ms"]


def tcpstack(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stack.cli", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_sim_two_controllers_head_to_head_deliver_everything(tmp_path):
    """Both flows complete over the shared bottleneck, every byte is read by the receiver, and each
    flow leaves a pcap (the sender's view) and an event log naming its controller."""
    flows = [FlowSpec.parse("cubic:400KB@0s"), FlowSpec.parse("bbr:400KB@0.1s")]
    report = Simulation(LinkConfig(rate=5e6, delay=0.01), flows, seed=4, out_dir=str(tmp_path)).run()
    assert [f.delivered for f in report.flows] == [400_000, 400_000]
    assert all(f.completed is not None and f.failure is None for f in report.flows)
    assert 0.5 <= report.fairness <= 1.0
    assert 0.5 < report.link.utilization <= 1.0
    for f in report.flows:
        assert min(f.rtt) >= 0.02  # never faster than the 20 ms base RTT
    for stem, controller in (("flow1-cubic", "cubic"), ("flow2-bbr", "bbr")):
        ts = time_sequence(read_pcap(str(tmp_path / f"{stem}.pcap")))
        assert max(d.end for d in ts.data) == 400_000
        events = list(read_events(str(tmp_path / f"{stem}.jsonl")))
        assert {e["controller"] for e in events if e["ev"] == "cc"} == {controller}
        states = [e["to"] for e in events if e["ev"] == "state"]
        assert states[:2] == ["SYN_SENT", "ESTABLISHED"] and states[-1] == "TIME_WAIT"
    assert "Jain's fairness index" in report.table()


def _run(tmp_path, name: str, *extra: str) -> tuple[str, dict[str, bytes]]:
    out = tmp_path / name
    result = tcpstack("sim", *HEAD_TO_HEAD, "--loss", "1%", "--jitter", "1ms", "--out", str(out), *extra)
    assert result.returncode == 0, result.stderr
    return result.stdout, {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_sim_same_seed_gives_identical_bytes(tmp_path):
    """Two processes, the same seed: the printed summary and every file are the same bytes (the ISNs,
    timestamp offsets, BBR's draws and the link's losses all come from the seed; times are virtual)."""
    first_out, first_files = _run(tmp_path, "a", "--seed", "7")
    again_out, again_files = _run(tmp_path, "b", "--seed", "7")
    assert sorted(first_files) == ["flow1-cubic.jsonl", "flow1-cubic.pcap", "flow2-bbr.jsonl", "flow2-bbr.pcap"]
    assert first_out == again_out
    assert first_files == again_files
    other_out, other_files = _run(tmp_path, "c", "--seed", "8")
    assert other_out != first_out
    assert all(other_files[name] != first_files[name] for name in first_files)


def test_sim_json_summary_and_package_class_controller(tmp_path):
    """--json prints the same numbers for programs; a controller loads as package.module:Class."""
    result = tcpstack(
        "sim", "--flow", "stack.tcp.congestion.reno:Reno:200KB", "--rate", "2Mbit", "--json", "--out", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    (flow,) = data["flows"]
    assert flow["controller"] == "stack.tcp.congestion.reno:Reno" and flow["delivered"] == 200_000
    assert (tmp_path / "flow1-stack.tcp.congestion.reno_Reno.pcap").exists()


def test_sim_unlimited_flow_runs_for_the_duration_in_virtual_time(tmp_path):
    """A flow without a size sends until --duration: a minute of simulated time."""
    link = LinkConfig(rate=5e5, queue=QueueLimit(20, "pkt"))
    report = Simulation(link, [FlowSpec.parse("cubic")], duration=60.0).run()
    (flow,) = report.flows
    assert report.link.end == 60.0 and flow.completed is None
    assert 0.9 * 5e5 < flow.goodput < 5e5  # headers take their share of the link


def test_sim_codel_keeps_the_queue_short(tmp_path):
    """RFC 8289: with CoDel the flow's packets wait near the 5 ms target, not a whole 4-BDP buffer."""
    link = dict(rate=5e6, delay=0.01, queue=QueueLimit(4, "bdp"))
    flows = [FlowSpec.parse("cubic:1MB")]
    tail = Simulation(LinkConfig(**link), flows).run().flows[0]
    codel = Simulation(LinkConfig(**link, aqm="codel"), flows).run().flows[0]
    assert percentile(codel.qdelay, 50) < 0.5 * percentile(tail.qdelay, 50)
    assert codel.drops.get("codel", 0) > 0 and "codel" not in tail.drops


@pytest.mark.parametrize(
    "args, message",
    [
        (["--flow", "nosuch:1MB"], "unknown congestion control 'nosuch'"),
        (["--flow", "cubic:1XB"], "size '1XB'"),
        (["--flow", "cubic:abc"], "'abc' is not a size"),
        (["--flow", "cubic", "--queue", "-3pkt"], "queue"),
        (["--flow", "cubic", "--burst-loss", "1%"], "expected P,R"),
        (["--flow", "cubic", "--burst-loss", "1%,0%"], "R must be above 0"),
        (["--flow", "cubic", "--aqm", "red"], "choose droptail or codel"),
    ],
)
def test_sim_cli_bad_option_gives_one_line_and_exit_2(args, message):
    result = tcpstack("sim", *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_sim_burst_loss_loses_in_bursts(tmp_path):
    """--burst-loss drives the Gilbert-Elliott chain on the wire: a flow through it loses packets
    (counted as wire loss, not queue drops) and still delivers everything."""
    result = tcpstack(
        "sim", "--flow", "cubic:300KB", "--burst-loss", "2%,40%,90%,0.1%", "--json", "--out", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    (flow,) = json.loads(result.stdout)["flows"]
    assert flow["delivered"] == 300_000 and flow["drops"].get("loss", 0) > 0 and "queue" not in flow["drops"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("cubic:20MB@2s", FlowSpec("cubic", 20_000_000, 2.0)),
        ("bbr", FlowSpec("bbr", None, 0.0)),
        ("reno@500ms", FlowSpec("reno", None, 0.5)),
        ("my.pkg:MyCC:1MiB", FlowSpec("my.pkg:MyCC", 1 << 20, 0.0)),
        ("my.pkg:MyCC", FlowSpec("my.pkg:MyCC", None, 0.0)),
    ],
)
def test_sim_flow_spec_parses(text, expected):
    assert FlowSpec.parse(text) == expected


def test_sim_units_parse():
    assert rate("10Mbit") == 10e6 and rate("1.5gbit/s") == 1.5e9 and rate("500kbit") == 500e3
    assert seconds("40ms") == pytest.approx(0.04) and seconds("2") == 2.0 and seconds("1min") == 60.0
    assert size("64KB") == 64_000 and size("1KiB") == 1024
    assert QueueLimit.parse("1bdp").resolve(10e6, 0.04, 1500) == (33, False)
    assert QueueLimit.parse("100pkt").resolve(10e6, 0.04, 1500) == (100, False)
    assert QueueLimit.parse("150KB").resolve(10e6, 0.04, 1500) == (150_000, True)


def test_sim_report_jain_index_and_percentiles():
    """Jain's index is 1 for equal shares and 1/n when one flow takes everything."""
    assert jain_index([5.0, 5.0]) == pytest.approx(1.0)
    assert jain_index([10.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    assert jain_index([]) is None
    values = sorted(range(1, 101))
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50, 99, 100)


def _flow(index: int, start: float, completed: float, progress: list[tuple[float, int]]) -> FlowResult:
    return FlowResult(index, "cubic", start, None, progress[-1][1], progress, completed, completed, 0, 0, 0, [], [],
                      {}, None)  # fmt: skip


def test_sim_report_fairness_while_all_flows_ran():
    """Over their lives two flows may look fair while one starved the other when both ran: the
    second index looks only at the time they shared (from the last start to the first end)."""
    early = _flow(1, 0.0, 10.0, [(1.0, 2_000_000), (2.0, 4_000_000), (10.0, 10_000_000)])
    late = _flow(2, 2.0, 4.0, [(3.0, 1_000_000), (4.0, 2_000_000)])
    report = Report(1, LinkResult(1e7, 0.02, 33, False, "droptail", 5.0, 10.0), [early, late])
    assert report.shared == (2.0, 4.0)
    assert early.goodput_between(2.0, 4.0) == pytest.approx(0.0)  # it read nothing new from 2 s to 4 s
    assert report.shared_fairness == pytest.approx(0.5)
    assert report.fairness == pytest.approx(1.0)  # 8 Mbit/s each, over their lives
    assert "while all ran (2.00-4.00 s): Jain's index 0.500" in report.table()


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed (tools/setup installs it)")
def test_sim_pcap_reads_in_tcpdump_with_virtual_times(tmp_path):
    """The capture is an ordinary pcap: tcpdump reads it, and its clock starts at 0 (1970-01-01)."""
    Simulation(LinkConfig(), [FlowSpec.parse("cubic:20KB")], out_dir=str(tmp_path)).run()
    result = subprocess.run(
        ["tcpdump", "-r", str(tmp_path / "flow1-cubic.pcap"), "-nn", "-tt"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("0.000000 IP 10.0.1.1.50000 > 10.0.2.1.5001: Flags [S]")
    assert "mss 1460" in lines[0] and lines[1].startswith("0.040")  # the SYN,ACK after one 40 ms round trip


def test_sim_rtt_samples_one_per_ack_and_none_for_data_sent_twice():
    """tcptrace's RTT: from sending new data to the ACK covering it, from the newest segment the ACK
    covers; a segment sent again gives no sample (Karn, RFC 6298 §3)."""
    from stack.sim.engine import _RttSampler
    from stack.wire.segment import Flags, Segment

    def data(seq: int) -> Segment:
        return Segment(1, 2, seq, 0, Flags.ACK, 0, bytes(100))

    rtt = _RttSampler()
    for i in range(4):
        rtt.sent(data(1000 + 100 * i), 0.01 * i)
    rtt.acked(1200, 0.5)  # covers the first two: one sample, from the second (sent at 0.01)
    assert list(rtt.samples) == [pytest.approx(0.49)]
    rtt.sent(data(1200), 0.6)  # the third again
    rtt.acked(1300, 0.7)
    assert len(rtt.samples) == 1
    rtt.acked(1400, 0.8)  # the fourth was sent once
    assert rtt.samples[-1] == pytest.approx(0.77)
