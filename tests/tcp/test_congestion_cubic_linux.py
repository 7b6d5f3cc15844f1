"""CUBIC in Linux's integer arithmetic (stack/tcp/congestion/cubic_linux.py), in segments and jiffies."""

from stack.tcp.congestion.cubic_linux import LinuxCubic


def test_avoidance_before_any_loss_grows_one_segment_per_20_acked():
    """tcp_cubic: with no W_max yet the curve is flat at first, and the window grows at least 5% per RTT."""
    c = LinuxCubic()
    cwnd = 48
    for i in range(10):  # two segments per ACK, 100 ms apart, minimum RTT 100 ms
        cwnd = c.grow(cwnd, 2, 1000 + 100 * i, 0.1)
    assert cwnd == 49
    assert c.cnt == 20


def test_avoidance_grows_at_most_one_segment_per_two_acked():
    """However far the curve is ahead, cwnd grows 1.5 times per RTT at most (cnt >= 2)."""
    c = LinuxCubic()
    c.last_max_cwnd = 1000  # far above: the curve is steep
    cwnd = c.grow(100, 1, 1000, 0.1)
    for i in range(1, 41):
        cwnd = c.grow(cwnd, 1, 1000 + 40 * i, 0.1)
    assert c.cnt == 2
    assert cwnd <= 100 + 21


def test_unchanged_window_within_1_32_s_keeps_its_increment_rate():
    c = LinuxCubic()
    c.grow(48, 2, 1000, 0.1)
    cnt, last = c.cnt, c.last_time
    c.grow(48, 2, 1020, 0.1)
    assert (c.cnt, c.last_time) == (cnt, last)


def test_loss_sets_ssthresh_to_717_of_1024_with_fast_convergence():
    c = LinuxCubic()
    assert c.ssthresh(100) == 70 and c.last_max_cwnd == 100
    assert c.ssthresh(80) == 56 and c.last_max_cwnd == 80 * 1741 // 2048  # below W_max: release some
    assert c.epoch_start == 0


def test_after_loss_the_curve_starts_below_w_max_and_plateaus_there():
    """K = cbrt(W_max - cwnd) / C seconds: the window returns to W_max after about K."""
    c = LinuxCubic()
    c.ssthresh(100)
    cwnd, now = 70, 1000
    while now < 1000 + 4000 and cwnd < 100:
        cwnd = c.grow(cwnd, 10, now, 0.1)
        now += 100
    assert 99 <= cwnd <= 100
    assert 1000 + 2800 <= now <= 1000 + 4000  # K = cbrt(30 / 0.4) = 4.2 s less the RTT ahead


def test_idle_time_moves_the_epoch_but_not_past_now():
    c = LinuxCubic()
    c.grow(48, 2, 1000, 0.1)
    c.idle(500, 1600)
    assert c.epoch_start == 1500
    c.idle(5000, 1700)
    assert c.epoch_start == 1700
