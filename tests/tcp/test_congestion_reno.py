"""Reno congestion control (RFC 5681), tested without a connection."""

from stack.tcp.congestion import REGISTRY, AckSample, create
from stack.tcp.congestion.reno import Reno

MSS = 1000


def ack(bytes_acked: int, in_flight: int) -> AckSample:
    return AckSample(bytes_acked, in_flight, None, None, 0, None, False, 0.0)


def test_reno_initial_window_is_ten_segments():
    assert Reno(MSS).cwnd == 10 * MSS  # RFC 6928, as Linux


def test_reno_slow_start_grows_by_one_mss_per_ack():
    r = Reno(MSS)
    r.on_ack(ack(MSS, 10 * MSS))
    assert r.cwnd == 11 * MSS


def test_reno_congestion_avoidance_grows_one_mss_per_window():
    r = Reno(MSS)
    r.ssthresh = r.cwnd = 10 * MSS
    for _ in range(9):
        r.on_ack(ack(MSS, 10 * MSS))
    assert r.cwnd == 10 * MSS
    r.on_ack(ack(MSS, 10 * MSS))
    assert r.cwnd == 11 * MSS


def test_reno_fast_retransmit_halves_the_flight():
    """RFC 5681 §3.2 step 2: ssthresh = FlightSize/2; cwnd goes to it (PRR paces the flight down,
    RFC 6937) and stays there until the full ACK."""
    r = Reno(MSS)
    r.on_congestion_event(20 * MSS, 0.0)
    assert (r.ssthresh, r.cwnd) == (10 * MSS, 10 * MSS)
    r.on_recovery_exit()
    assert r.cwnd == 10 * MSS


def test_reno_rto_collapses_to_loss_window():
    r = Reno(MSS)
    r.on_rto(8 * MSS, 0.0)
    assert (r.ssthresh, r.cwnd) == (4 * MSS, MSS)


def test_registry_creates_by_name_and_rejects_unknown():
    assert isinstance(create("reno", MSS, 10), Reno) and "reno" in REGISTRY
    try:
        create("nope", MSS, 10)
    except ValueError as exc:
        assert "reno" in str(exc)
    else:
        raise AssertionError("unknown controller accepted")
