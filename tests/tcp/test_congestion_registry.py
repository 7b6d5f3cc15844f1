"""The congestion-control registry, loading a user's controller by "module:Class", and containment of
a controller that fails (the connection falls back to Reno, never crashes)."""

import logging
import math
import re
from pathlib import Path

import pytest

import stack.tcp.congestion.contained as contained_module
from stack import core_build
from stack.tcp.congestion import REGISTRY, AckSample, attach, create, load
from stack.tcp.congestion.bbr import Bbr
from stack.tcp.congestion.cubic import Cubic
from stack.tcp.congestion.reno import Reno
from stack.tcp.state import State
from tests.tcp.conftest import IRS, ISS, seg, sent

MSS = 1000
HERE = "tests.tcp.test_congestion_registry"
DOC = Path(__file__).resolve().parents[2] / "docs" / "congestion.md"


@pytest.fixture(autouse=True)
def fresh_failure_log(monkeypatch):
    """Failures are logged with a traceback once per controller name and process: start clean."""
    monkeypatch.setattr(contained_module, "_logged", set())


# ---------------------------------------------------------------- controllers for the tests


class FailsOnAck(Reno):
    """A controller with a bug in on_ack that shows once data is acknowledged."""

    def on_ack(self, sample: AckSample) -> None:
        super().on_ack(sample)
        if sample.delivered > 0:
            raise ZeroDivisionError("deliberate")


class NanWindow(Reno):
    """A controller that computes a window that is not a number."""

    def on_sent(self, bytes_sent: int, bytes_in_flight: int, now: float) -> None:
        self.cwnd = math.nan


class FailsInRecovery(Reno):
    def on_ack(self, sample: AckSample) -> None:
        if self.in_recovery:
            raise RuntimeError("deliberate")


class BadConstructor(Reno):
    def __init__(self, mss: int, initial_window_segments: int) -> None:
        raise RuntimeError("cannot build")


class FailsOnEstablished(Reno):
    def on_established(self, srtt: float | None) -> None:
        raise RuntimeError("deliberate")


class FourSegmentPackets(Reno):
    def min_tso_segs(self) -> int:
        return 4


class WordySegmentCount(Reno):
    def min_tso_segs(self) -> str:
        return "two"


class LacksHooks:
    def __init__(self, mss: int, initial_window_segments: int) -> None:
        self.cwnd = self.ssthresh = 10 * mss

    def on_ack(self, sample: AckSample) -> None:
        pass


NOT_A_CLASS = 42


def ack(bytes_acked: int, in_flight: int) -> AckSample:
    return AckSample(bytes_acked, in_flight, None, None, 0, None, False, 0.0)


# ---------------------------------------------------------------- the registry


def test_registry_names_reno_cubic_bbr():
    """The explicit registry (issue 4): three controllers, one file each."""
    assert REGISTRY == {"reno": Reno, "cubic": Cubic, "bbr": Bbr}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_create_by_name_builds_controller_with_initial_window(name):
    """RFC 6928: every controller starts with ten segments."""
    c = create(name, MSS, 10)
    assert isinstance(c, REGISTRY[name]) and c.cwnd == 10 * MSS


def test_registry_unknown_name_value_error_lists_known():
    with pytest.raises(ValueError, match="unknown congestion control 'vegas'; known: bbr, cubic, reno"):
        create("vegas", MSS, 10)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (":Reno", "expected package.module:Class"),
        ("stack.tcp.congestion.reno:", "expected package.module:Class"),
        ("a b:C", "expected package.module:Class"),
        ("stack..reno:Reno", "expected package.module:Class"),
        ("no_such_module_here:Thing", "cannot import no_such_module_here"),
        (f"{HERE}:Missing", "has no class Missing"),
        (f"{HERE}:NOT_A_CLASS", "has no class NOT_A_CLASS"),
        (f"{HERE}:LacksHooks", "lacks on_sent, on_congestion_event, on_recovery_exit"),
        (f"{HERE}:BadConstructor", re.escape("BadConstructor(1000, 10) failed: cannot build")),
    ],
)
def test_registry_bad_module_spec_value_error(spec, message):
    """A controller that cannot be used is refused with the reason, before any connection uses it."""
    with pytest.raises(ValueError, match=message):
        create(spec, MSS, 10)


def test_registry_module_spec_loads_user_class():
    assert load(f"{HERE}:FailsOnAck") is FailsOnAck
    assert isinstance(create("stack.tcp.congestion.cubic:Cubic", MSS, 10), Cubic)


def test_docs_example_controller_loads_and_runs(tmp_path, monkeypatch, conn_in):
    """docs/congestion.md's example, saved as a module of its own and chosen as "scalable:Scalable",
    drives a connection: slow start adds what was acknowledged (RFC 5681 §3.1), congestion
    avoidance 1% of it, a loss takes an eighth of the window (Kelly 2003)."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    (tmp_path / "scalable.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    c = conn_in(State.ESTABLISHED, congestion="scalable:Scalable")
    assert type(c.cc.controller).__name__ == "Scalable"
    c.send(b"x" * 4 * 1460, 0.0)
    assert len(sent(c, 0.0)) == 4
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 2 * 1460), 0.05)
    assert c.cc.cwnd == 12 * 1460 + 1  # ten segments, the SYN's byte, two segments acknowledged
    scalable = c.cc.controller
    scalable.ssthresh = scalable.cwnd
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 4 * 1460), 0.1)
    assert c.cc.cwnd == 12 * 1460 + 1 + 2 * 1460 // 100
    scalable.on_congestion_event(c.cc.cwnd, 0.2)
    assert scalable.cwnd == c.cc.cwnd - c.cc.cwnd // 8
    assert c.cc.failure is None


# ---------------------------------------------------------------- containment


def test_contained_hook_raises_falls_back_to_reno_with_its_window(conn_in, caplog):
    """A controller that raises never crashes the connection: it is logged once, a fresh Reno takes
    over with the last good cwnd and ssthresh, and data keeps flowing."""
    c = conn_in(State.ESTABLISHED, congestion=f"{HERE}:FailsOnAck")
    assert type(c.cc.controller) is FailsOnAck
    c.send(b"x" * 3 * 1460, 0.0)
    sent(c, 0.0)
    before = (c.cc.cwnd, c.cc.ssthresh)
    with caplog.at_level(logging.DEBUG, logger="stack.tcp.congestion"):
        c.receive_segment(seg(".", IRS + 1, ISS + 1 + 1460), 0.05)
    assert type(c.cc.controller) is Reno
    assert (c.cc.controller.cwnd, c.cc.controller.ssthresh) == before  # not the failed hook's growth
    assert "FailsOnAck" not in c.cc.name and "on_ack failed: ZeroDivisionError: deliberate" in c.cc.failure
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    c.send(b"y" * 1460, 0.05)
    assert len(sent(c, 0.05)) == 1  # still sending
    c.send(b"z" * 10 * 1460, 0.05)  # enough to fill the window, which may then grow (cwnd validation)
    sent(c, 0.05)
    c.receive_segment(seg(".", IRS + 1, ISS + 1 + 4 * 1460), 0.1)
    assert c.state is State.ESTABLISHED and c.cc.cwnd > before[0]  # Reno grows it


def test_contained_same_failure_on_second_connection_not_logged_again(conn_in, caplog):
    """Logged once: a second connection with the same broken controller falls back quietly."""
    with caplog.at_level(logging.ERROR, logger="stack.tcp.congestion"):
        for _ in range(2):
            c = conn_in(State.ESTABLISHED, congestion=f"{HERE}:FailsOnAck")
            c.send(b"x" * 1460, 0.0)
            sent(c, 0.0)
            c.receive_segment(seg(".", IRS + 1, ISS + 1 + 1460), 0.05)
            assert type(c.cc.controller) is Reno
    assert len(caplog.records) == 1


def test_contained_nan_window_falls_back():
    """A window that is not a positive finite number counts as a failure too."""
    cc = attach(f"{HERE}:NanWindow", MSS, 10)
    cc.data_sent(0, MSS, 0, 0.0)
    assert type(cc.controller) is Reno and cc.cwnd == 10 * MSS
    assert "cwnd must be a positive finite number" in cc.failure


def test_contained_failure_during_recovery_reno_continues_recovery():
    """A failure inside fast recovery hands Reno a window that is in recovery: the full ACK then
    sets cwnd = ssthresh (RFC 6582 §3.2 step 3)."""
    cc = attach(f"{HERE}:FailsInRecovery", MSS, 10)
    cc.on_congestion_event(20 * MSS, 0.0)
    cc.ack_received(MSS, MSS, 1, 20 * MSS, 0.01)
    reno = cc.controller
    assert type(reno) is Reno and reno.in_recovery and cc.ssthresh == 10 * MSS
    cc.on_recovery_exit()
    assert cc.cwnd == 10 * MSS


def test_contained_window_below_one_mss_is_raised_to_one_mss():
    """A controller's cwnd below one segment would stall the connection; one MSS is the floor
    (RFC 5681 §3.1's loss window)."""
    cc = attach("reno", MSS, 10)
    cc.controller.cwnd = 10
    cc.data_sent(0, MSS, 0, 0.0)  # any hook reads the values back
    assert cc.cwnd == MSS and cc.failure is None


def test_contained_on_established_raises_falls_back_to_reno(conn_in):
    """The optional on_established hook (Linux starts a controller when the connection is established)
    is contained like the others: it raising hands the connection to Reno."""
    c = conn_in(State.ESTABLISHED, congestion=f"{HERE}:FailsOnEstablished")
    assert type(c.cc.controller) is Reno and "on_established failed: RuntimeError" in c.cc.failure


def test_contained_min_tso_segs_is_the_controllers_when_it_has_one():
    """Linux ca_ops->min_tso_segs: a controller may ask for larger GSO packets than tcp_min_tso_segs."""
    assert attach(f"{HERE}:FourSegmentPackets", MSS, 10).min_tso_segs(2) == 4
    assert attach("reno", MSS, 10).min_tso_segs(2) == 2


def test_contained_min_tso_segs_not_a_number_falls_back_to_the_sysctl():
    cc = attach(f"{HERE}:WordySegmentCount", MSS, 10)
    assert cc.min_tso_segs(2) == 2
    assert type(cc.controller) is Reno and "min_tso_segs failed: ValueError" in cc.failure


def test_contained_smaller_mss_reaches_the_controller():
    """RFC 1191 §6.5: after a path MTU reduction (icmp_input sets conn.cc.mss) the controller counts
    in the new segment size, and the window floor follows it."""
    cc = attach("cubic", MSS, 10)
    cc.mss = 500
    assert cc.controller.mss == 500
    cc.controller.cwnd = 10
    cc.data_sent(0, 500, 0, 0.0)
    assert cc.cwnd == 500


def test_established_set_congestion_control_switches_and_keeps_the_window(conn_in):
    """TCP_CONGESTION on an open connection (as Linux allows): the new controller starts at the old cwnd."""
    from stack.tcp.state import State

    c = conn_in(State.ESTABLISHED, congestion="cubic")
    cwnd = c.cc.cwnd
    c.set_congestion_control("bbr")
    assert type(c.cc.controller).__name__ == "Bbr" and c.config.congestion == "bbr"
    assert c.cc.cwnd == cwnd
    with pytest.raises(ValueError):
        c.set_congestion_control("vegas")
    assert c.config.congestion == "bbr"


def test_registry_rng_reaches_a_controller_that_takes_one():
    """A seeded config's rng is handed to controllers whose constructor takes `rng` (BBR's random
    ProbeBW phase), and not to those that do not."""
    from random import Random

    rng = Random(1)
    assert create("bbr", MSS, 10, rng)._rng is rng
    assert isinstance(create("reno", MSS, 10, rng), Reno)


def test_contained_recovery_window_is_the_controllers_only_when_it_says_true():
    """A controller that sets its own window in loss recovery says so with owns_recovery_window = True
    (BBR); one without the attribute (Reno, CUBIC, a user's) or with any other value gets PRR's window."""

    class Truthy(Reno):
        owns_recovery_window = 1  # not True: PRR still paces its recovery

    assert attach("bbr", MSS, 10).owns_recovery_window is True
    assert attach("cubic", MSS, 10).owns_recovery_window is False
    assert contained_module.Contained(Truthy(MSS, 10), "truthy", MSS, 10).owns_recovery_window is False


def test_ack_sample_is_a_value_a_controller_cannot_change():
    """Built with its written constructor, it is the dataclass it says it is: fields in order, equal and
    hashed by value, copied with dataclasses.replace; compiled, an assignment raises."""
    from dataclasses import astuple, replace

    args = (2 * MSS, 10 * MSS, 0.02, 0.015, 50 * MSS, 1e6, False, 3.5, 40 * MSS, True, 2)
    built = AckSample(*args)
    assert astuple(built) == args and built == AckSample(*args) and hash(built) == hash(AckSample(*args))
    assert replace(built, rtt=None) == AckSample(*args[:2], None, *args[3:])
    # prior_delivered, cwnd_limited, packets_delivered: defaults
    assert AckSample(*args[:8]) == AckSample(*args[:8], None, True, None)
    assert built.segments_delivered(MSS) == 2 and AckSample(*args[:8]).segments_delivered(MSS) == 2
    if core_build.BUILD == "compiled":
        with pytest.raises(AttributeError):
            built.rtt = 0.0
