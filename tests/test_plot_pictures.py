"""`tcpstack plot --overlay / --ladder / --states`, drawn from a real (simulated) run of the stack:
two controllers head to head, with their pcaps and event logs."""

from __future__ import annotations

import io
import ipaddress
import subprocess
import sys

import pytest

from stack.plot import PlotError
from stack.plot_ladder import Gap, Note, Seg, _duration, add_syn_options, fold, from_pcap, from_trace, label, ladder
from stack.plot_overlay import overlay, read_series
from stack.plot_states import observe, states
from stack.sim.engine import LinkConfig, Simulation
from stack.sim.units import FlowSpec

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    flows = [FlowSpec.parse("cubic:300KB"), FlowSpec.parse("bbr:300KB@0.2s")]
    Simulation(LinkConfig(rate=5e6, delay=0.01, loss=0.01), flows, seed=2, out_dir=str(out)).run()
    return out


def assert_picture(path) -> None:
    """A real PNG or SVG: the right header, some size, and (PNG) many colours."""
    data = path.read_bytes()
    if path.suffix == ".png":
        from matplotlib.image import imread

        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
        pixels = imread(io.BytesIO(data))[:, :, :3]
        assert len({tuple(p) for p in pixels.reshape(-1, 3)[::11]}) > 20
    else:
        text = data.decode()
        assert text.lstrip().startswith("<?xml") and "<svg" in text and len(data) > 20_000


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_overlay_labels_each_flow_by_its_controller(run, tmp_path, suffix):
    """Two flows in one figure, told apart by the controller their event logs name."""
    logs = [str(run / "flow1-cubic.jsonl"), str(run / "flow2-bbr.jsonl")]
    out = tmp_path / f"overlay{suffix}"
    summary = overlay(logs, str(out))
    assert "cubic (flow1-cubic)" in summary and "bbr (flow2-bbr)" in summary
    assert_picture(out)


def test_plot_overlay_series_follow_the_acknowledged_data(run):
    """The acked-data curve ends at the flow's size and starts when the flow does (virtual time)."""
    (cubic,) = read_series(str(run / "flow1-cubic.jsonl"))
    (bbr,) = read_series(str(run / "flow2-bbr.jsonl"))
    assert (cubic.controller, bbr.controller) == ("cubic", "bbr")
    assert cubic.acked[-1] == bbr.acked[-1] == 300_000
    assert bbr.acked_t[0] > 0.2 > cubic.acked_t[0]


def test_plot_ladder_from_trace_has_handshake_states_and_close(run):
    """The textbook picture: SYN, SYN-ACK, data; the states entered between them; the close."""
    diagram = from_trace(str(run / "flow1-cubic.jsonl"))
    rows = fold(diagram.rows)
    segs = [r for r in rows if isinstance(r, Seg)]
    assert [(s.outgoing, s.flags) for s in segs[:2]] == [(True, "S"), (False, "S.")]
    assert (segs[0].seq, segs[1].seq, segs[1].ack) == (0, 0, 1)  # relative to each side's ISN
    state_names = [r.text for r in rows if isinstance(r, Note) and r.kind == "state"]
    assert state_names[:2] == ["SYN_SENT", "ESTABLISHED"] and state_names[-1] == "TIME_WAIT"
    assert any(isinstance(r, Gap) and r.segments > 50 for r in rows)
    assert any("F" in s.flags and s.outgoing for s in segs) and any("F" in s.flags and not s.outgoing for s in segs)
    assert any(isinstance(r, Note) and r.text == "retransmit timer set (1 s)" for r in rows)


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_ladder_renders(run, tmp_path, suffix):
    out = tmp_path / f"ladder{suffix}"
    summary = ladder(str(out), trace=str(run / "flow1-cubic.jsonl"))
    assert "states SYN_SENT ESTABLISHED" in summary
    assert_picture(out)


def test_plot_ladder_trace_with_pcap_labels_the_syns_with_their_options(run):
    """The event log has no options: the capture of the same run gives the SYNs' (MSS 1460 for a
    1500-byte MTU, SACK permitted, timestamps, window scaling), as tcpdump prints them."""
    diagram = from_trace(str(run / "flow1-cubic.jsonl"))
    add_syn_options(diagram, str(run / "flow1-cubic.pcap"))
    syn, synack = [r for r in diagram.rows if isinstance(r, Seg)][:2]
    assert syn.options.startswith("<mss 1460,sackOK,TS,wscale ") and synack.options.startswith("<mss 1460,")
    assert label(syn).startswith("SYN seq=0 win=") and label(syn).endswith(syn.options)


def test_plot_ladder_from_pcap_puts_the_client_left(run, tmp_path):
    """Without an event log: the packets only, the side that sent the first SYN on the left."""
    diagram = from_pcap(str(run / "flow2-bbr.pcap"))
    assert diagram.left == "10.0.1.2:50001" and not diagram.states
    assert diagram.rows[0].flags == "S" and diagram.rows[0].outgoing


def test_plot_ladder_from_an_ipv6_pcap_names_the_ends_as_the_log_does(tmp_path):
    """IPv6 ends read [fd00::1]:40000, as the event log and ss write them (it raised AddressValueError)."""
    from stack.pcap import PcapWriter
    from stack.wire.addr import from_ipaddress
    from stack.wire.codec import encode_tcp
    from stack.wire.segment import Flags, Segment, TcpOptions

    client, server = (from_ipaddress(ipaddress.ip_address(a)) for a in ("fd00::1", "fd00::2"))
    syn_options = TcpOptions(mss=1440, wscale=7, sack_permitted=True)
    writer = PcapWriter(str(tmp_path / "v6.pcap"))
    for t, (src, dst, sport, dport, seq, ack, flags, options) in enumerate(
        [
            (client, server, 40000, 80, 100, 0, Flags.SYN, syn_options),
            (server, client, 80, 40000, 500, 101, Flags.SYN | Flags.ACK, syn_options),
            (client, server, 40000, 80, 101, 501, Flags.ACK, TcpOptions()),
        ]
    ):
        writer.write(encode_tcp(src, dst, Segment(sport, dport, seq, ack, flags, 500, b"", options)), 1.0 + t / 1000)
    writer.close()
    diagram = from_pcap(str(tmp_path / "v6.pcap"))
    assert (diagram.left, diagram.right) == ("[fd00::1]:40000", "[fd00::2]:80")
    assert [row.flags for row in diagram.rows] == ["S", "S.", "."]
    summary = ladder(str(tmp_path / "v6.png"), pcap=str(tmp_path / "v6.pcap"))
    assert "[fd00::1]:40000 - [fd00::2]:80, 3 segments drawn" in summary
    assert_picture(tmp_path / "v6.png")


def test_plot_ladder_fold_keeps_syn_fin_and_context():
    """A run of plain segments between the handshake and the close becomes one Gap; short runs stay."""
    rows = [Seg(0, True, "S", 0, 0, 0, 1), Seg(0.1, False, "S.", 0, 1, 0, 1)]
    rows += [Seg(0.2 + i / 100, True, ".", 1 + i, 1, 1, 1) for i in range(20)]
    rows += [Seg(0.5, True, "F.", 21, 1, 0, 1), Seg(0.6, False, "F.", 1, 22, 0, 1)]
    folded = fold(rows)
    (gap,) = [r for r in folded if isinstance(r, Gap)]
    assert gap.segments == 20 - 2 - 2 - 1  # 2 after the first data (which is kept), 2 before the FIN
    assert fold(rows[:6]) == rows[:6]


def test_plot_states_counts_each_observed_transition(run):
    seen = observe([str(run / "flow1-cubic.jsonl"), str(run / "flow2-bbr.jsonl")])
    assert seen.connections == 2
    assert seen.edges["CLOSE", "SYN_SENT", "active open"] == 2
    assert seen.edges["SYN_SENT", "ESTABLISHED", "SYN,ACK"] == 2


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_states_renders(run, tmp_path, suffix):
    out = tmp_path / f"states{suffix}"
    summary = states([str(run / "flow1-cubic.jsonl")], str(out))
    assert "in 1 connections" in summary
    assert_picture(out)


def test_plot_states_dot_text(run, tmp_path):
    out = tmp_path / "states.dot"
    states([str(run / "flow1-cubic.jsonl")], str(out))
    dot = out.read_text()
    assert dot.startswith("digraph") and '"CLOSE" -> "SYN_SENT" [label="active open \u00d71"];' in dot


def test_plot_states_without_transitions_is_an_error(tmp_path):
    log = tmp_path / "empty.jsonl"
    log.write_text('{"t":0,"ev":"log","schema":1}\n')
    with pytest.raises(PlotError, match="no state transitions"):
        states([str(log)], str(tmp_path / "s.png"))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stack.cli", "plot", *args], capture_output=True, text=True, timeout=120
    )


def test_plot_cli_overlay_and_states(run, tmp_path):
    logs = [str(run / "flow1-cubic.jsonl"), str(run / "flow2-bbr.jsonl")]
    result = _cli("--overlay", *logs, "-o", str(tmp_path / "o.png"))
    assert result.returncode == 0, result.stderr
    result = _cli("--states", *logs, "-o", str(tmp_path / "s.svg"))
    assert result.returncode == 0, result.stderr
    assert_picture(tmp_path / "o.png")
    assert_picture(tmp_path / "s.svg")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--overlay", "a.jsonl", "--trace", "b.jsonl"], "read event logs only"),
        (["--ladder"], "needs an event log (--trace LOG) or a capture (PCAP)"),
        ([], "give a PCAP to draw"),
    ],
)
def test_plot_cli_picture_misuse_gives_one_line(tmp_path, args, message):
    result = _cli(*args, "-o", str(tmp_path / "x.png"))
    assert result.returncode == 1 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_plot_overlay_wall_clock_logs_start_at_their_first_event(run, tmp_path):
    """A real run's log carries wall-clock times: its curves start at 0 like a simulated one's."""
    import json

    shifted = tmp_path / "real.jsonl"
    with open(run / "flow1-cubic.jsonl") as src, open(shifted, "w") as dst:
        for line in src:
            event = json.loads(line)
            event["t"] += 1_764_000_000.0
            dst.write(json.dumps(event) + "\n")
    (real,) = read_series(str(shifted))
    (sim,) = read_series(str(run / "flow1-cubic.jsonl"))
    assert real.acked_t[0] == pytest.approx(sim.acked_t[0], abs=1e-3) and real.acked_t[0] < 1.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.9999996, "1 s"), (0.2, "200 ms"), (0.00195, "1.95 ms"), (0.04, "40 ms"), (75.3, "75.3 s"), (1234.5, "1230 s")],
)
def test_ladder_timer_durations_read_in_ms_below_a_second_and_in_s_above(seconds, text):
    """The timers' notes ("retransmit timer set (1 s)"): three digits, never an exponent."""
    assert _duration(seconds) == text
