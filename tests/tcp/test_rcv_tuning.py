"""The receive buffer's right-sizing (Linux's DRS, stack/tcp/rcv_tuning.py), in virtual time."""

from stack.tcp.rcv_tuning import RcvTuning


def test_rcv_tuning_window_sample_ends_when_the_offered_window_has_arrived():
    """tcp_rcv_rtt_measure: a sample spans the arrival of the window offered when it began."""
    tuning = RcvTuning(14600, 1, 0.1)
    tuning.data_arrived(0.2, 1001, 30000)  # begins: ends once RCV.NXT reaches 31001
    tuning.data_arrived(0.3, 30001, 30000)
    assert tuning.rtt == 0
    tuning.data_arrived(0.35, 31001, 30000)
    assert tuning.rtt == 150_000


def test_rcv_tuning_window_sample_never_raises_the_estimate():
    """tcp_rcv_rtt_update with win_dep: without timestamps only a lower sample counts."""
    tuning = RcvTuning(14600, 1, 0.0)
    tuning.data_arrived(0.0, 1001, 1000)
    tuning.data_arrived(0.1, 2001, 1000)
    tuning.data_arrived(0.3, 3001, 1000)
    assert tuning.rtt == 100_000


def test_rcv_tuning_read_within_a_round_trip_measures_nothing():
    """tcp_rcv_space_adjust: one measurement per round trip of the estimate."""
    tuning = RcvTuning(14600, 1, 0.0)
    tuning.echo_sample(5, 105, True)  # 100 ms
    assert not tuning.read(0.05, 50001, 50001)
    assert tuning.space == 14600


def test_rcv_tuning_read_after_a_round_trip_grows_the_space_by_what_was_read_less_what_waits():
    """copied - inq against rcvq_space.space; the round restarts either way."""
    tuning = RcvTuning(14600, 1, 0.0)
    tuning.echo_sample(5, 105, True)
    assert tuning.read(0.2, 30001, 40001)  # 30000 read, 10000 waiting: 20000 > 14600
    assert tuning.space == 20000
    assert not tuning.read(0.25, 50001, 50001)  # the next round began at 0.2
