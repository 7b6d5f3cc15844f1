"""`tcpstack netstat` text: net-tools' timer column and the `ss -i` line."""

from __future__ import annotations

from stack.netstat import format_rows, info_line, timer_column

INFO = {
    "cc": "cubic",
    "cwnd": 14480,
    "ssthresh": 1 << 31,
    "pacing_rate": None,
    "srtt": 0.0105,
    "rttvar": 0.00525,
    "rto": 0.2105,
    "backoff": 0,
    "mss": 1448,
    "snd_wscale": 7,
    "rcv_wscale": 5,
    "snd_wnd": 65536,
    "rcv_wnd": 1048576,
    "sack": True,
    "timestamps": True,
    "bytes_acked": 5,
    "bytes_received": 5,
    "segs_out": 4,
    "segs_in": 3,
    "retrans": 1,
    "timeouts": 0,
    "loss_probes": 0,
    "rcv_rtt": 0,
    "rcv_space": 14480,
    "rcv_ssthresh": 64088,
}


def test_timer_column_as_net_tools_prints_it():
    assert timer_column({"timer": "on", "timer_left": 2.894, "retransmits": 2, "probes": 0}) == "on (2.89/2/0)"
    assert timer_column({"timer": "keepalive", "timer_left": 70.0, "retransmits": 0, "probes": 1}) == (
        "keepalive (70.00/0/1)"
    )
    assert timer_column({"timer": "off", "timer_left": None}) == "off (0.00/0/0)"


def test_info_line_reads_like_ss_i():
    line = info_line(INFO)
    assert line.startswith("cubic wscale:7,5 rto:210.5 backoff:0 rtt:10.5/5.25 mss:1448 cwnd:10 bytes_acked:5")
    assert " ssthresh" not in line  # never set: ss leaves it out
    assert line.endswith("sack ts send 11.0Mbps")
    assert "ssthresh:7" in info_line({**INFO, "ssthresh": 10136})


def test_info_line_shows_the_receivers_rtt_once_it_has_one():
    """As ss: rcv_rtt in ms only when measured; rcv_space and rcv_ssthresh always."""
    assert "rcv_rtt" not in info_line(INFO)
    assert "rcv_wnd:1048576 rcv_rtt:150.519 rcv_space:21000 rcv_ssthresh:28416 sack" in info_line(
        {**INFO, "rcv_rtt": 150519, "rcv_space": 21000, "rcv_ssthresh": 28416}
    )


def test_format_rows_with_info_puts_the_ss_line_under_its_row():
    row = {"local": "10.8.0.2:1", "remote": "10.8.0.1:2", "state": "ESTABLISHED", "send_q": 0, "recv_q": 0}
    row |= {"timer": "off", "timer_left": None, "retransmits": 0, "probes": 0, "info": INFO}
    header, conn, info = format_rows([row], info=True).splitlines()
    assert header.split()[:3] == ["Proto", "Recv-Q", "Send-Q"] and conn.endswith("ESTABLISHED off (0.00/0/0)")
    assert info.startswith("\t cubic wscale:7,5")
