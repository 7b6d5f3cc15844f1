"""pcap output is a classic libpcap file that scapy and tcpdump read."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from scapy.layers.inet import IP, TCP
from scapy.utils import rdpcap

from stack.pcap import PcapWriter


def test_pcap_round_trips_through_scapy(tmp_path):
    path = tmp_path / "t.pcap"
    packets = [bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2, flags="S", seq=i)) for i in range(3)]
    w = PcapWriter(str(path))
    for i, p in enumerate(packets):
        w.write(p, 1000.0 + i * 0.5)
    w.close()
    read = rdpcap(str(path))
    assert [bytes(p) for p in read] == packets
    assert [float(p.time) for p in read] == [1000.0, 1000.5, 1001.0]


def test_pcap_reads_in_tcpdump_without_warnings(tmp_path):
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump not installed")
    path = tmp_path / "t.pcap"
    w = PcapWriter(str(path))
    w.write(bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80, flags="S")))
    w.close()
    result = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True)
    assert result.returncode == 0
    assert "warning" not in result.stderr.lower()
    assert "10.0.0.1.1234 > 10.0.0.2.80: Flags [S]" in result.stdout


def test_capturing_device_flushes_each_batch_so_tcpdump_can_follow_live(tmp_path):
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump not installed")
    from stack.pcap import CapturingDevice

    class Sink:
        name, mtu, vnet = "t", 1500, 0

        def write_batch(self, batch) -> None:
            pass

        def close(self) -> None:
            pass

    path = tmp_path / "live.pcap"
    dev = CapturingDevice(Sink(), PcapWriter(str(path)))
    dev.write_batch([bytes(IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=80, dport=1234, flags="SA"))])
    # the device is still open: a reader of the file sees the packet already
    result = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True)
    assert "10.0.0.2.80 > 10.0.0.1.1234: Flags [S.]" in result.stdout, result.stderr
    dev.close()


def test_pcap_on_a_full_disk_stops_recording_once_and_raises_nothing(caplog):
    """A capture that can no longer be written (ENOSPC: /dev/full) ends the recording with one error
    logged; the writes and flushes the stack goes on making raise nothing, so its packets still flow."""
    writer = PcapWriter("/dev/full")
    for _ in range(3):
        writer.write(bytes(IP(dst="10.7.0.1") / TCP()))
        writer.flush()
    writer.close()
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "/dev/full: No space left on device: recording stopped" in errors[0].getMessage()
