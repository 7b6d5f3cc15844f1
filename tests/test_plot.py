"""`tcpstack plot`: reading a pcap, classifying the data direction, drawing PNG and SVG."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys

import pytest

from stack.pcap import PcapWriter
from stack.plot import PlotError, congestion_series, plot, read_pcap, time_sequence
from stack.wire.codec import encode_tcp
from stack.wire.segment import NO_OPTIONS, Flags, Segment, TcpOptions

SERVER = (0x0A070002, 80)  # 10.7.0.2:80 sends the data
CLIENT = (0x0A070001, 40000)
T0 = 1_700_000_000.0
MSS = 1000


def _server(seq: int, ack: int, flags: Flags, data: bytes = b"", options: TcpOptions = NO_OPTIONS) -> bytes:
    seg = Segment(SERVER[1], CLIENT[1], seq & 0xFFFFFFFF, ack, flags, 512, data, options)
    return encode_tcp(SERVER[0], CLIENT[0], seg)


def _client(seq: int, ack: int, flags: Flags, window: int = 500, sack=(), options: TcpOptions | None = None) -> bytes:
    if options is None:
        options = TcpOptions(sack_blocks=tuple((a & 0xFFFFFFFF, b & 0xFFFFFFFF) for a, b in sack))
    seg = Segment(CLIENT[1], SERVER[1], seq, ack & 0xFFFFFFFF, flags, window, b"", options)
    return encode_tcp(CLIENT[0], SERVER[0], seg)


def lossy_transfer(iss: int = 1000) -> list[tuple[float, bytes]]:
    """Five segments; the second is lost, the client SACKs the rest, the server retransmits it."""
    a = Flags.ACK
    syn_opts = TcpOptions(mss=MSS, wscale=7, sack_permitted=True)
    pkts = [
        (0.000, _client(100, 0, Flags.SYN, 64240, options=syn_opts)),
        (0.001, _server(iss, 101, Flags.SYN | a, options=TcpOptions(mss=MSS, wscale=7, sack_permitted=True))),
        (0.002, _client(101, iss + 1, a)),
    ]
    data = iss + 1
    for i in range(5):
        pkts.append((0.010 + i * 0.001, _server(data + i * MSS, 101, a, bytes(MSS))))
    pkts.append((0.020, _client(101, data + MSS, a)))
    for i in range(3):  # duplicate ACKs, SACKing segments 3..5 as they arrive
        pkts.append((0.021 + i * 0.001, _client(101, data + MSS, a, sack=[(data + 2 * MSS, data + (3 + i) * MSS)])))
    pkts.append((0.030, _server(data + MSS, 101, a, bytes(MSS))))  # the retransmission
    pkts.append((0.040, _client(101, data + 5 * MSS, a)))
    return [(T0 + t, p) for t, p in pkts]


def write_pcap(path, packets) -> None:
    w = PcapWriter(str(path))
    for t, p in packets:
        w.write(p, t)
    w.close()


def test_plot_pcap_round_trips_timestamps_and_packets(tmp_path):
    """The reader gives back what PcapWriter wrote, microsecond timestamps included."""
    packets = lossy_transfer()
    write_pcap(tmp_path / "t.pcap", packets)
    read = read_pcap(str(tmp_path / "t.pcap"))
    assert [p for _, p in read] == [p for _, p in packets]
    assert [t for t, _ in read] == pytest.approx([t for t, _ in packets], abs=1e-6)


def test_plot_pcap_cut_off_last_record_is_ignored(tmp_path):
    """A capture killed mid-write ends in a partial record: everything before it is read."""
    path = tmp_path / "t.pcap"
    write_pcap(path, lossy_transfer())
    whole = path.read_bytes()
    path.write_bytes(whole[:-10])
    assert len(read_pcap(str(path))) == len(lossy_transfer()) - 1


@pytest.mark.parametrize(
    "head, message",
    [
        (b"\x0a\x0d\x0d\x0a" + bytes(40), "pcapng is not supported"),
        (b"GIF89a" + bytes(40), "not a pcap file"),
        (b"\xd4\xc3\xb2\xa1", "too short"),
        (struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 105), "link type 105"),
        (
            struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101) + struct.pack("<IIII", 0, 0, 1 << 30, 0),
            "corrupt",
        ),
    ],
)
def test_plot_bad_pcap_gives_one_clear_error(tmp_path, head, message):
    path = tmp_path / "bad.pcap"
    path.write_bytes(head)
    with pytest.raises(PlotError, match=message):
        read_pcap(str(path))


def test_plot_retransmitted_segment_is_classified_as_retransmission():
    """A data segment starting below the highest byte already sent is a retransmission (tcptrace's rule)."""
    ts = time_sequence(lossy_transfer())
    assert (ts.sender, ts.receiver) == ("10.7.0.2:80", "10.7.0.1:40000")
    assert [(d.start, d.end, d.rexmit) for d in ts.data] == [
        (0, 1000, False),
        (1000, 2000, False),
        (2000, 3000, False),
        (3000, 4000, False),
        (4000, 5000, False),
        (1000, 2000, True),
    ]


def test_plot_acks_carry_scaled_window_and_relative_sack_blocks():
    """RFC 7323 §2.2: the receiver's window is scaled by the shift its SYN offered; SACK edges are
    relative to the sender's ISN like the data."""
    ts = time_sequence(lossy_transfer())
    assert ts.window_scaled
    dup = ts.acks[-2]
    assert (dup.ack, dup.window, dup.sack) == (1000, 500 << 7, ((2000, 5000),))
    assert (ts.acks[0].ack, ts.acks[0].window) == (0, 500 << 7)  # the handshake's ACK of our SYN


def test_plot_sequence_numbers_wrapping_past_2_32_stay_increasing():
    """RFC 9293 §3.4: sequence space is modulo 2**32; the graph's axis is not."""
    ts = time_sequence(lossy_transfer(iss=0xFFFFFFFF - 2500))
    assert [d.start for d in ts.data] == [0, 1000, 2000, 3000, 4000, 1000]
    assert ts.acks[-1].ack == 5000


def test_plot_port_picks_the_connection():
    """Without --port the connection with most data is drawn; with it, the one using that port."""
    bigger = Segment(5555, 22, 1, 1, Flags.ACK, 100, bytes(20_000))
    packets = [*lossy_transfer(), (T0 + 0.05, encode_tcp(CLIENT[0], SERVER[0], bigger))]
    assert time_sequence(packets).sender == "10.7.0.1:5555"
    assert time_sequence(packets, port=80).sender == "10.7.0.2:80"
    with pytest.raises(PlotError, match="no TCP connection on port 9"):
        time_sequence(packets, port=9)


def _is_png(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_png_shows_the_retransmission_in_its_own_colour(tmp_path):
    """The PNG exists, is a real picture, and has pixels of the retransmission colour."""
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    write_pcap(tmp_path / "t.pcap", lossy_transfer())
    out = tmp_path / "t.png"
    summary = plot(str(tmp_path / "t.pcap"), str(out))
    assert "6 data segments, 1 retransmitted" in summary
    data = out.read_bytes()
    assert _is_png(data) and len(data) > 10_000
    pixels = imread(io.BytesIO(data))[:, :, :3]
    red = ((pixels[:, :, 0] > 0.75) & (pixels[:, :, 1] < 0.3) & (pixels[:, :, 2] < 0.3)).sum()
    assert red > 10
    assert len({tuple(p) for p in pixels.reshape(-1, 3)[::7]}) > 20


def _trace_file(path, events) -> None:
    lines = [{"t": T0, "ev": "log", "schema": 1}, *events]
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))


def _cc(t: float, cwnd: int, ssthresh: int = 1 << 30, recovery=None) -> dict:
    return {"t": T0 + t, "ev": "cc", "local": "10.7.0.2:80", "remote": "10.7.0.1:40000", "cwnd": cwnd,
            "ssthresh": ssthresh, "srtt": 0.001, "rttvar": 0.0005, "rto": 0.2, "flight": 3000,
            "recovery": recovery}  # fmt: skip


def _recovery(t: float, action: str) -> dict:
    return {"t": T0 + t, "ev": "recovery", "local": "10.7.0.2:80", "remote": "10.7.0.1:40000", "action": action,
            "kind": "fast", "cause": "segment"}  # fmt: skip


def test_plot_trace_gives_congestion_series_for_the_connection(tmp_path):
    """cc events of the plotted connection, on the pcap's time axis; ssthresh 'arbitrarily high' is not drawn."""
    from stack.trace import read_events

    stranger = {**_cc(0.01, 99), "remote": "10.7.0.9:1"}
    _trace_file(tmp_path / "t.jsonl", [_cc(0.002, 10_000), stranger, _recovery(0.023, "enter"),
                                       _cc(0.023, 5000, 4000, "fast"), _recovery(0.04, "exit")])  # fmt: skip
    cc = congestion_series(read_events(str(tmp_path / "t.jsonl")), time_sequence(lossy_transfer()))
    assert cc.t == pytest.approx([0.002, 0.023], abs=1e-6)
    assert cc.cwnd == [10_000, 5000]
    assert cc.ssthresh[0] != cc.ssthresh[0] and cc.ssthresh[1] == 4000  # NaN, then a value
    assert [(round(a, 3), round(b, 3), k) for a, b, k in cc.recoveries] == [(0.023, 0.04, "fast")]


def test_plot_svg_with_trace_has_both_panels(tmp_path):
    pytest.importorskip("matplotlib")
    write_pcap(tmp_path / "t.pcap", lossy_transfer())
    _trace_file(tmp_path / "t.jsonl", [_cc(0.002, 10_000), _recovery(0.023, "enter"), _cc(0.023, 5000, 4000, "fast")])
    out = tmp_path / "t.svg"
    summary = plot(str(tmp_path / "t.pcap"), str(out), trace=str(tmp_path / "t.jsonl"))
    assert "1 recoveries" in summary
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert svg.count('id="axes_') >= 3  # time-sequence, window panel and its RTT twin


def test_plot_time_span_keeps_the_step_entering_it():
    """--time zooms: what lies inside, plus the last step before it, sets the axis limits."""
    from stack.plot import _in_span

    times = [0.0, 0.01, 0.02, 0.03, 0.04]
    assert _in_span(times, (0.015, 0.03)) == [1, 2, 3]
    assert _in_span(times, None) == [0, 1, 2, 3, 4]
    assert _in_span(times, (0.05, 0.06)) == [4]


def test_plot_time_span_png(tmp_path):
    pytest.importorskip("matplotlib")
    write_pcap(tmp_path / "t.pcap", lossy_transfer())
    plot(str(tmp_path / "t.pcap"), str(tmp_path / "z.png"), span=(0.015, 0.035))
    assert _is_png((tmp_path / "z.png").read_bytes())


def test_plot_time_span_leaves_out_rto_markers_beyond_it(tmp_path, monkeypatch):
    """RTO markers are drawn unclipped (whole on the axis): one after the --time span would stand beside
    the axes, and the layout would shrink them to make room for it."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    write_pcap(tmp_path / "t.pcap", lossy_transfer())
    fired = {"ev": "timer", "local": "10.7.0.2:80", "remote": "10.7.0.1:40000", "action": "fired", "name": "retransmit"}
    _trace_file(tmp_path / "t.jsonl", [_cc(0.002, 10_000), {**fired, "t": T0 + 0.02}, {**fired, "t": T0 + 0.045}])
    saved = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, out: saved.append(fig))
    plot(str(tmp_path / "t.pcap"), str(tmp_path / "z.png"), trace=str(tmp_path / "t.jsonl"), span=(0.015, 0.035))
    (figure,) = saved
    figure.draw_without_rendering()  # the constrained layout is computed when drawn
    sequence_axes, window_axes = figure.axes[:2]
    markers = [line for line in window_axes.get_lines() if line.get_label() == "RTO fired"]
    assert [list(line.get_xdata()) for line in markers] == [[pytest.approx(0.02, abs=1e-3)]]
    assert window_axes.get_position().width > 0.75 and sequence_axes.get_position().width > 0.75


def test_plot_trace_with_a_malformed_event_is_a_clear_error(tmp_path):
    pytest.importorskip("matplotlib")
    write_pcap(tmp_path / "t.pcap", lossy_transfer())
    broken = _cc(0.01, 99)
    del broken["cwnd"]
    _trace_file(tmp_path / "t.jsonl", [broken])
    with pytest.raises(PlotError, match="lacks a field"):
        plot(str(tmp_path / "t.pcap"), str(tmp_path / "t.png"), trace=str(tmp_path / "t.jsonl"))


def test_plot_trace_without_the_connection_is_an_error(tmp_path):
    pytest.importorskip("matplotlib")
    write_pcap(tmp_path / "t.pcap", lossy_transfer())
    _trace_file(tmp_path / "t.jsonl", [{**_cc(0.01, 99), "remote": "10.7.0.9:1"}])
    with pytest.raises(PlotError, match="no congestion events for 10.7.0.2:80 - 10.7.0.1:40000"):
        plot(str(tmp_path / "t.pcap"), str(tmp_path / "t.png"), trace=str(tmp_path / "t.jsonl"))


def tcpstack(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stack.cli", *args], capture_output=True, text=True, timeout=120)


def test_plot_cli_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    write_pcap(tmp_path / "t.pcap", lossy_transfer())
    result = tcpstack("plot", str(tmp_path / "t.pcap"), "-o", str(tmp_path / "t.png"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote ") and _is_png((tmp_path / "t.png").read_bytes())


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.pcap", "-o", "x.png"], "tcpstack: plot: missing.pcap: No such file or directory"),
        (["t.pcap", "-o", "x.jpg"], "tcpstack: plot: x.jpg: the output must end in .png or .svg"),
    ],
)
def test_plot_cli_bad_input_gives_one_line_and_exit_1(tmp_path, args, message):
    write_pcap(tmp_path / "t.pcap", lossy_transfer())
    result = subprocess.run(
        [sys.executable, "-m", "stack.cli", "plot", *args], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip() == message


@pytest.mark.parametrize("span", ["2:1", "1", "a:b", "-1:2", "1:inf", "nan:1"])
def test_plot_cli_bad_time_span_gives_one_line_and_exit_2(span):
    result = tcpstack("plot", "t.pcap", f"--time={span}", "-o", "x.png")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "START:END" in result.stderr
