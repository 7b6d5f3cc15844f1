"""TUN offloads against the kernel: super-segments both ways, checksums left to the device, and the
switches that turn them off (--offload off, --fault)."""

from __future__ import annotations

import hashlib

from stack.plot import read_pcap
from stack.services.http import pattern_sha256
from stack.wire.codec import IpPacket, Rejected, TcpPacket, decode
from tests.integration.conftest import ADDR, start_serve

SIZE = 5_000_000
ICMPV6 = 58


def _download_and_upload(served) -> None:
    got = served.ns.run(["curl", "-sS", "-m", "60", f"{served.url}/bytes/{SIZE}"], timeout=90)
    assert got.returncode == 0, got.stderr
    assert hashlib.sha256(got.stdout).hexdigest() == pattern_sha256(SIZE)
    sent = served.ns.run(["sh", "-c", f"head -c {SIZE} /dev/zero | nc -N -w 30 {ADDR} 9"], timeout=90)
    assert sent.returncode == 0, sent.stderr


def test_offload_on_download_and_upload_move_as_super_segments(netns, tmp_path):
    """The kernel takes our runs of full segments as one super-segment (TSO, cut to MSS by the kernel)
    and hands over its own coalesced ones (up to 64 KB) with checksums left partial."""
    served = start_serve(netns, tmp_path, "--offload", "on")
    _download_and_upload(served)
    stats = served.stats()
    assert stats["OutMergedSegs"] > SIZE // 1448 // 4  # segments after the first of each run
    assert stats["InSuperSegs"] > 10
    assert stats.get("InCsumErrors", 0) == 0
    assert stats["InSegsConn"] < SIZE // 1448  # the core took the upload in far fewer pieces than MSS-sized ones
    assert stats["InSegs"] >= SIZE // 1448  # on the wire it was MSS-sized segments, and counts as such


def test_offload_on_ipv6_download_and_upload_move_as_super_segments(netns, tmp_path):
    """TSO6 both ways over IPv6 (RFC 8200 pseudo-header checksums left partial): the kernel cuts our IPv6
    runs to MSS and hands over its own coalesced IPv6 segments."""
    addr6 = "fd3d:fa7b:d17d::2"
    served = start_serve(netns, tmp_path, "--offload", "on", "--addr", addr6, "--peer", "fd3d:fa7b:d17d::1/64")
    got = served.ns.run(["curl", "-6", "-sS", "-m", "60", f"http://[{addr6}]/bytes/{SIZE}"], timeout=90)
    assert got.returncode == 0, got.stderr
    assert hashlib.sha256(got.stdout).hexdigest() == pattern_sha256(SIZE)
    sent = served.ns.run(["sh", "-c", f"head -c {SIZE} /dev/zero | nc -6 -N -w 30 {addr6} 9"], timeout=90)
    assert sent.returncode == 0, sent.stderr
    stats = served.stats()
    assert stats["OutMergedSegs"] > SIZE // 1428 // 4  # segments after the first of each run
    assert stats["InSuperSegs"] > 10
    assert stats.get("InCsumErrors", 0) == 0


def test_offload_off_moves_mss_sized_packets_only(netns, tmp_path):
    """Without TUN offloads only wire-sized packets cross the device (the capture holds none larger than
    the MTU, every checksum complete), while the core still sends runs as one: software GSO cuts them, and
    of the pure ACKs of one batch only the last reaches the core (RFC 3449 §5.2.2)."""
    pcap = tmp_path / "off.pcap"
    served = start_serve(netns, tmp_path, "--offload", "off", "--pcap", str(pcap))
    _download_and_upload(served)
    stats = served.stats()
    assert stats["OutMergedSegs"] == 0
    assert stats["InSuperSegs"] == 0
    assert stats["OutGsoSegs"] > SIZE // 1448 // 4  # pieces after the first of each run: a run is 2 or more
    assert stats["InAcksSuperseded"] > 0  # the kernel's ACKs of the download arrive several to a batch
    assert stats["InSegs"] > SIZE // 1460
    assert served.stop() == 0
    captured = read_pcap(str(pcap))
    assert max(len(data) for _, data in captured) <= 1500
    decoded = [decode(data) for _, data in captured]
    assert not any(isinstance(p, Rejected) for p in decoded)


def test_fault_turns_offloads_off_with_a_note(netns, tmp_path):
    """--fault acts on wire-sized packets: the stack says so and moves no super-segment through the TUN;
    the ones its core sends are cut before the fault layer sees them (the capture, taken between the
    fault layer and the TUN, holds none larger than the MTU)."""
    pcap = tmp_path / "fault.pcap"
    served = start_serve(netns, tmp_path, "--offload", "on", "--fault", "delay=1ms", "--pcap", str(pcap))
    _download_and_upload(served)
    stats = served.stats()
    assert stats["OutMergedSegs"] == 0 and stats["InSuperSegs"] == 0
    assert stats["OutGsoSegs"] > 0
    served.stop()
    assert "offloads off: --fault acts on wire-sized packets" in served.log()
    assert max(len(data) for _, data in read_pcap(str(pcap))) <= 1500


def test_pcap_with_offloads_holds_whole_packets_with_valid_checksums(netns, tmp_path):
    """The capture shows packets as they cross the TUN: super-segments stay one record (larger than the
    MTU), and the checksums the kernel or the stack left partial are filled in."""
    pcap = tmp_path / "offload.pcap"
    served = start_serve(netns, tmp_path, "--offload", "on", "--pcap", str(pcap))
    _download_and_upload(served)
    assert served.stop() == 0
    decoded = [decode(data) for _, data in read_pcap(str(pcap))]
    # the kernel's IPv6 link chatter on the device (router solicitations, ICMPv6) may be captured too
    packets = [p for p in decoded if not (isinstance(p, IpPacket) and p.proto == ICMPV6)]
    assert all(type(p) is TcpPacket for p in packets)  # decode verifies both checksums
    assert max(len(p.segment.payload) for p in packets) > 1500
    uploaded = sum(len(p.segment.payload) for p in packets if p.segment.dst_port == 9)
    assert uploaded >= SIZE
