"""Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation-02), in virtual time."""

import heapq

import pytest

from stack import core_build
from stack.tcp.delivery_rate import MIN_RTT_WINDOW, DeliveryRateEstimator

MSS = 1000


def test_delivery_rate_full_pipe_on_fixed_rate_link_measures_link_rate():
    """Draft §3.3: with more than a BDP in flight, every sample once the ACK clock runs is the
    bottleneck rate (1 MB/s here, 50 ms propagation), whatever the window."""
    rate, rtt, window = 1e6, 0.05, 80  # BDP = 50 segments
    est = DeliveryRateEstimator()
    acks: list[tuple[float, int]] = []
    link_free = 0.0
    snd_nxt = snd_una = 0
    now = 0.0
    samples = []
    while now < 1.0:
        while snd_nxt - snd_una < window * MSS:
            est.on_sent(snd_nxt, MSS, snd_nxt - snd_una, now)
            link_free = max(link_free, now) + MSS / rate
            heapq.heappush(acks, (link_free + rtt, snd_nxt + MSS))
            snd_nxt += MSS
        now, snd_una = heapq.heappop(acks)
        est.on_cumulative_ack(snd_una, now)
        samples.append((now, est.take_sample(now)))
    # the first window leaves in one burst at t=0, which makes the next window's send intervals
    # start at 0 too (samples up to ~10% low, the draft's conservative side); from the third
    # window on (sent from t=0.131 s, 80 ms of queue and propagation later) the ACK clock rules
    later = [s.delivery_rate for t, s in samples if t > 0.25]
    assert later and all(r == pytest.approx(rate, rel=0.01) for r in later)
    assert est.min_rtt == pytest.approx(rtt + MSS / rate)


def test_delivery_rate_ack_compression_interval_is_the_send_interval():
    """Draft §3.3: interval = max(send_elapsed, ack_elapsed), so ACKs arriving in a burst do not
    inflate the rate beyond what was sent over the same time."""
    est = DeliveryRateEstimator()
    est.on_sent(0, MSS, 0, 0.0)  # S0: the pipe was empty, the first interval starts now
    est.on_sent(1000, MSS, 1000, 0.09)  # S1
    est.on_cumulative_ack(1000, 0.1)
    first = est.take_sample(0.1)
    assert first.delivery_rate == pytest.approx(1000 / 0.1)
    est.on_sent(2000, MSS, 1000, 0.1)  # S2, sent after S0 was delivered
    est.on_cumulative_ack(3000, 0.11)  # S1 and S2 together, 10 ms later
    s = est.take_sample(0.11)
    assert s.interval == pytest.approx(0.1)  # S2 sent 100 ms after S0, the newest delivered before it
    assert s.delivered == 2000
    assert s.delivery_rate == pytest.approx(2000 / 0.1)


def test_delivery_rate_sacked_segment_is_delivered_once():
    """Draft §3.3: a segment SACKed and later covered by the cumulative ACK counts once."""
    est = DeliveryRateEstimator()
    for i in range(3):
        est.on_sent(i * MSS, MSS, i * MSS, 0.0)
    est.on_sack(((2000, 3000),), 0.1)
    assert est.delivered == 1000
    est.on_cumulative_ack(3000, 0.2)
    assert est.delivered == 3000
    assert est.take_sample(0.2).newly_delivered == 3000


def test_delivery_rate_sack_of_part_of_a_segment_delivers_nothing():
    """Only whole segments are delivered by SACK; the rest waits for the cumulative ACK."""
    est = DeliveryRateEstimator()
    est.on_sent(0, MSS, 0, 0.0)
    est.on_sack(((0, 500),), 0.1)
    assert est.delivered == 0 and est.take_sample(0.1) is None


def test_delivery_rate_retransmitted_segment_gives_no_rtt_sample():
    """Karn's rule (RFC 6298 §3): an ACK for a retransmitted segment is ambiguous, so no RTT; the
    delivery still counts."""
    est = DeliveryRateEstimator()
    est.on_sent(0, MSS, 0, 0.0)
    est.on_sent(0, MSS, MSS, 0.5)  # the same segment again
    est.on_cumulative_ack(1000, 0.6)
    s = est.take_sample(0.6)
    assert s.rtt is None and est.delivered == 1000 and est.min_rtt is None


def test_delivery_rate_rtt_from_newest_segment_acknowledged():
    """One ACK for two segments times the later one, as Linux's tcp_clean_rtx_queue does."""
    est = DeliveryRateEstimator()
    est.on_sent(0, MSS, 0, 0.0)
    est.on_sent(1000, MSS, MSS, 0.01)
    est.on_cumulative_ack(2000, 0.1)
    assert est.take_sample(0.1).rtt == pytest.approx(0.09)


def test_delivery_rate_resend_of_sacked_data_is_not_counted_twice():
    """After an RTO everything is resent from SND.UNA (RFC 5681 §3.1), SACKed data too: it was
    delivered already and must not be counted again."""
    est = DeliveryRateEstimator()
    est.on_sent(0, MSS, 0, 0.0)
    est.on_sent(1000, MSS, MSS, 0.0)
    est.on_sack(((1000, 2000),), 0.1)
    est.on_sent(0, MSS, 2 * MSS, 1.0)  # go-back-N
    est.on_sent(1000, MSS, 2 * MSS, 1.0)
    est.on_cumulative_ack(2000, 1.1)
    assert est.delivered == 2000


def test_delivery_rate_resend_with_other_boundaries_keeps_the_rest():
    """A resend that covers only part of an earlier segment replaces that part; the remainder is
    delivered later with its own bytes, and nothing is counted twice."""
    est = DeliveryRateEstimator()
    est.on_sent(0, 2 * MSS, 0, 0.0)  # one 2000-byte segment
    est.on_sent(0, MSS, 2 * MSS, 0.5)  # the first half resent
    est.on_cumulative_ack(1000, 0.6)
    assert est.delivered == 1000
    est.on_cumulative_ack(2000, 0.7)
    assert est.delivered == 2000


def test_delivery_rate_app_limited_marks_samples_until_the_phase_is_delivered():
    """Draft §3.4: with less than a segment to send and the window not full, samples taken until
    everything then in flight is delivered are app-limited."""
    est = DeliveryRateEstimator()
    est.on_sent(0, MSS, 0, 0.0)
    est.check_app_limited(unsent=0, bytes_in_flight=MSS, cwnd=10 * MSS, mss=MSS, retransmitting=False)
    assert est.app_limited_until == MSS
    est.on_sent(1000, MSS, MSS, 0.01)  # S1, sent during the app-limited phase
    est.on_cumulative_ack(1000, 0.1)
    assert est.take_sample(0.1).app_limited is False  # S0 left before the phase began
    est.on_cumulative_ack(2000, 0.11)
    s = est.take_sample(0.11)
    assert s.app_limited is True and est.app_limited_until == 0  # delivered passed the mark: it ends
    est.on_sent(2000, MSS, 0, 0.11)  # S2, after the phase
    est.on_cumulative_ack(3000, 0.2)
    assert est.take_sample(0.2).app_limited is False


def test_delivery_rate_full_window_is_not_app_limited():
    """Draft §3.4: a sender stopped by cwnd (or with data waiting) is not app-limited."""
    est = DeliveryRateEstimator()
    est.check_app_limited(unsent=0, bytes_in_flight=10 * MSS, cwnd=10 * MSS, mss=MSS, retransmitting=False)
    est.check_app_limited(unsent=5 * MSS, bytes_in_flight=MSS, cwnd=10 * MSS, mss=MSS, retransmitting=False)
    est.check_app_limited(unsent=0, bytes_in_flight=MSS, cwnd=10 * MSS, mss=MSS, retransmitting=True)
    assert est.app_limited_until == 0


def test_delivery_rate_interval_shorter_than_min_rtt_gives_no_rate():
    """Draft §3.3: an interval below the minimum RTT (a spurious retransmission acknowledged by the
    original's ACK) cannot be right, so the sample has no rate."""
    est = DeliveryRateEstimator()
    est.on_sent(0, MSS, 0, 0.0)
    est.on_cumulative_ack(1000, 0.1)
    est.take_sample(0.1)  # min_rtt = 100 ms
    est.on_sent(1000, MSS, 0, 0.1)
    est.on_sent(1000, MSS, MSS, 0.12)  # resent after 20 ms
    est.on_cumulative_ack(2000, 0.14)
    s = est.take_sample(0.14)
    assert s.interval == pytest.approx(0.04) and s.delivery_rate is None


def test_delivery_rate_min_rtt_expires_after_five_minutes():
    """The minimum RTT is a windowed minimum (Linux's tcp_min_rtt_wlen, 300 s): an old minimum
    gives way to a larger current sample."""
    est = DeliveryRateEstimator()
    est.on_sent(0, MSS, 0, 0.0)
    est.on_cumulative_ack(1000, 0.05)
    est.take_sample(0.05)
    t = 0.05 + MIN_RTT_WINDOW + 1
    est.on_sent(1000, MSS, 0, t)
    est.on_cumulative_ack(2000, t + 0.08)
    est.take_sample(t + 0.08)
    assert est.min_rtt == pytest.approx(0.08)


def test_delivery_rate_ack_below_every_segment_makes_no_sample():
    """An ACK that delivers no whole segment (the ACK of a SYN) gives no sample."""
    est = DeliveryRateEstimator()
    est.on_cumulative_ack(1, 0.1)
    assert est.take_sample(0.1) is None


def test_delivery_rate_sequence_numbers_wrap():
    """Sequence numbers are compared modulo 2**32 (RFC 9293 §3.4)."""
    est = DeliveryRateEstimator()
    start = (1 << 32) - 1500
    est.on_sent(start, MSS, 0, 0.0)
    est.on_sent((start + MSS) % (1 << 32), MSS, MSS, 0.0)
    est.on_sack((((start + MSS) % (1 << 32), (start + 2 * MSS) % (1 << 32)),), 0.1)
    est.on_cumulative_ack((start + 2 * MSS) % (1 << 32), 0.2)
    assert est.delivered == 2000 and est.in_flight_records == 0


def test_delivery_rate_run_delivers_only_its_whole_segments():
    """Draft §3.3 for a run of segments sent together: a SACK block or a cumulative ACK that ends inside
    one of its segments delivers the segments wholly covered, and the rest later, each once."""
    est = DeliveryRateEstimator()
    est.on_sent(0, 5 * MSS, 0, 0.0, MSS)
    est.on_sack(((1500, 4000),), 0.1)  # holds [2000, 4000) whole
    assert est.delivered == 2000
    est.on_cumulative_ack(1500, 0.2)  # [0, 1000) whole
    assert est.delivered == 3000
    est.on_cumulative_ack(5000, 0.3)
    assert est.delivered == 5000 and est.in_flight_records == 0


def test_delivery_rate_sample_is_a_value_nobody_can_change():
    """Built with its written constructor, it is the dataclass it says it is: fields in order, equal and
    hashed by value; compiled, an assignment raises."""
    from dataclasses import astuple

    from stack.tcp.rate_sample import RateSample

    args = (10 * MSS, 0.01, 1e6, 40 * MSS, True, 0.009, 2 * MSS)
    built = RateSample(*args)
    assert astuple(built) == args and built == RateSample(*args) and hash(built) == hash(RateSample(*args))
    assert built != RateSample(*args[:6], 3 * MSS)
    if core_build.BUILD == "compiled":
        with pytest.raises(AttributeError):
            built.rtt = None
