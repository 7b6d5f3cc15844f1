"""Linux's HyStart in CUBIC (stack/tcp/congestion/hystart.py), driven with AckSamples in virtual time."""

from stack.tcp.congestion import AckSample
from stack.tcp.congestion.base import INFINITE_SSTHRESH
from stack.tcp.congestion.cubic import Cubic
from stack.tcp.congestion.hystart import ACK_TRAIN, DELAY, HyStartParams

MSS = 1000


def ack(now: float, rtt: float, delivered: int, prior: int) -> AckSample:
    return AckSample(MSS, 20 * MSS, rtt, rtt, delivered, None, False, now, prior, True)


def grown_to_20(params: HyStartParams, min_rtt: float = 0.05) -> Cubic:
    """A CUBIC whose first round (10 segments, one ACK) took `min_rtt` and left cwnd at 20 segments."""
    c = Cubic(MSS, 10, hystart=params)
    c.on_ack(AckSample(10 * MSS, 10 * MSS, min_rtt, min_rtt, 10 * MSS, None, False, min_rtt, 0, True))
    assert c.cwnd == 20 * MSS
    return c


def second_round(c: Cubic, start: float, gap: float, rtt: float, count: int) -> None:
    """`count` ACKs of one segment each, `gap` apart, of segments sent after the first round."""
    for i in range(count):
        c.on_ack(ack(start + i * gap, rtt + i * gap, (11 + i) * MSS, 10 * MSS))


def test_slow_start_ack_train_longer_than_half_min_rtt_ends_slow_start():
    """tcp_cubic HYSTART_ACK_TRAIN: ACKs at most ack_delta apart for over (min RTT + cushion) / 2 mean
    the window fills the path: ssthresh = cwnd."""
    c = grown_to_20(HyStartParams(detect=ACK_TRAIN))
    second_round(c, 0.1, 0.001, 0.05, 27)  # a train of 26 ms > (50 + 1) / 2 ms
    assert c.ssthresh == 46 * MSS  # at the 27th ACK, after 26 grew cwnd from 20
    assert c.linux_hystart.found


def test_slow_start_ack_train_shorter_than_half_min_rtt_keeps_growing():
    c = grown_to_20(HyStartParams(detect=ACK_TRAIN))
    second_round(c, 0.1, 0.001, 0.05, 20)  # 19 ms
    assert c.ssthresh == INFINITE_SSTHRESH
    assert c.cwnd == 40 * MSS


def test_slow_start_ack_train_paced_flow_waits_for_a_whole_min_rtt():
    """With a pacing qdisc the threshold is the whole min RTT (pacing spreads the round's ACKs)."""
    c = grown_to_20(HyStartParams(detect=ACK_TRAIN, paced=True))
    second_round(c, 0.1, 0.001, 0.05, 40)  # 39 ms < 51 ms
    assert c.ssthresh == INFINITE_SSTHRESH


def test_slow_start_spread_acks_are_no_train():
    """ACKs further apart than ack_delta (2 ms) never make a train."""
    c = grown_to_20(HyStartParams(detect=ACK_TRAIN))
    second_round(c, 0.1, 0.003, 0.05, 20)
    assert c.ssthresh == INFINITE_SSTHRESH


def test_slow_start_round_min_rtt_above_threshold_after_eight_samples_ends_slow_start():
    """HYSTART_DELAY: the ninth sample of a round decides; its minimum 60 ms > 50 + 50/8 ms."""
    c = grown_to_20(HyStartParams(detect=DELAY))
    second_round(c, 0.1, 0.003, 0.06, 8)
    assert c.ssthresh == INFINITE_SSTHRESH
    second_round(c, 0.124, 0.003, 0.06, 1)
    assert c.ssthresh == 28 * MSS


def test_slow_start_round_min_rtt_below_threshold_keeps_growing():
    c = grown_to_20(HyStartParams(detect=DELAY))
    second_round(c, 0.1, 0.003, 0.055, 12)  # 55 ms < 56.25 ms
    assert c.ssthresh == INFINITE_SSTHRESH


def test_slow_start_below_low_window_hystart_does_not_act():
    c = grown_to_20(HyStartParams(detect=DELAY, low_window=64))
    second_round(c, 0.1, 0.003, 0.09, 12)
    assert c.ssthresh == INFINITE_SSTHRESH


def test_slow_start_hystart_disabled_never_acts():
    """The module parameter hystart=0."""
    c = grown_to_20(HyStartParams(enabled=False))
    second_round(c, 0.1, 0.001, 0.09, 30)
    assert c.ssthresh == INFINITE_SSTHRESH


def test_rto_restarts_hystart():
    """After a timeout the next slow start may end early again (tcp_cubic resets HyStart on Loss)."""
    c = grown_to_20(HyStartParams(detect=DELAY))
    second_round(c, 0.1, 0.003, 0.09, 9)
    assert c.linux_hystart.found
    c.on_rto(20 * MSS, 1.0)
    assert not c.linux_hystart.found
    assert c.linux_hystart.delay_min == 0.0
