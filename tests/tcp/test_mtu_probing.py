"""Packetization-layer path MTU discovery (RFC 4821, Linux tcp_mtu_probing): the search on its own."""

from stack.tcp.mtu_probing import MtuProber, cwnd_after_probe

HEADERS = 40  # IPv4 and TCP, no options


def prober(mode: int = 2, base_mss: int = 512, threshold: int = 8, interval: float = 600.0) -> MtuProber:
    p = MtuProber(mode, base_mss, threshold, interval)
    p.start(1460, HEADERS, 0.0)
    return p


def test_established_mode_2_probes_halfway_between_base_and_peer_mss():
    """RFC 4821 §7.3: a binary search; Linux starts it between tcp_base_mss and the peer's MSS."""
    p = prober()
    assert p.enabled and (p.search_low, p.search_high) == (552, 1500)
    assert p.size(1.0, 600, 11, 0, 10000, 60000, 3) == 986
    assert p.clamp(1460) == 512  # no segment larger than the search has proved


def test_established_mode_1_waits_for_a_black_hole():
    p = prober(mode=1)
    assert not p.enabled and p.size(1.0, 600, 20, 0, 100000, 100000, 3) == 0
    assert p.clamp(1460) == 1460
    p.black_hole(5.0)
    assert p.enabled and p.size(5.0, 600, 20, 0, 100000, 100000, 3) == 986


def test_established_probe_needs_window_and_data_behind_it():
    """A probe goes only with 11 segments of window, room for two more in flight, and reordering + 1
    segments of data behind it so that its loss shows by duplicate ACKs (Linux tcp_mtu_probe)."""
    p = prober()
    assert p.size(1.0, 600, 10, 0, 10000, 60000, 3) == 0  # window below 11 segments
    assert p.size(1.0, 600, 11, 10, 10000, 60000, 3) == 0  # no room for two more
    assert p.size(1.0, 600, 11, 0, 986 + 4 * 600 - 1, 60000, 3) == 0  # too little data
    assert p.size(1.0, 600, 11, 0, 10000, 3000, 3) == 0  # the peer's window too small
    assert p.size(1.0, 600, 11, 0, 986 + 4 * 600, 60000, 3) == 986


def test_established_probe_acked_raises_the_floor():
    p = prober()
    p.sent(1 + 986, 986)
    assert p.acked(500) == 0 and p.probe_mtu == 1026  # not yet covered
    assert p.acked(987) == 1026
    assert p.search_low == 1026 and p.probe_mtu == 0
    assert p.clamp(1460) == 986


def test_established_probe_lost_lowers_the_ceiling():
    p = prober()
    p.sent(987, 986)
    p.lost()
    assert p.search_high == 1025 and p.probe_mtu == 0
    assert p.size(1.0, 600, 11, 0, 10000, 60000, 3) == (552 + 1025) // 2 - HEADERS


def test_established_narrow_range_stops_then_restarts_after_the_interval():
    """Closer than tcp_probe_threshold: no probe; after tcp_probe_interval the search starts over from
    the current MSS up to the peer's (tcp_mtu_check_reprobe)."""
    p = prober(interval=600.0)
    p.search_low, p.search_high = 1494, 1500
    assert p.size(10.0, 1454, 11, 0, 100000, 100000, 3) == 0
    assert (p.search_low, p.search_high) == (1494, 1500)
    assert p.size(600.0, 1200, 11, 0, 100000, 100000, 3) == 0  # the restart itself sends nothing
    assert (p.search_low, p.search_high) == (1240, 1500)


def test_established_black_hole_with_probing_on_halves_the_floor():
    """RFC 4821 §7.7 and Linux tcp_mtu_probing: with probing on, repeated timeouts halve the floor
    (at most tcp_base_mss, at least 48 bytes)."""
    p = prober(base_mss=1024)
    p.search_low = 1500
    p.black_hole(1.0)
    assert p.search_low == 730 + HEADERS
    for _ in range(10):
        p.black_hole(1.0)
    assert p.search_low == 48 + HEADERS


def test_probe_success_keeps_the_bytes_the_window_held():
    assert cwnd_after_probe(10, 600, 40, 1026) == 6
    assert cwnd_after_probe(1, 600, 40, 1500) == 1
