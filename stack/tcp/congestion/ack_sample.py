"""What one ACK tells a congestion controller: the value its `on_ack` hook takes (stack/tcp/congestion/base.py
describes the hooks). Compiled with the core, which builds one per ACK."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


# A dataclass for its equality, hash and repr, with the constructor written out (init=False): compiled, a
# dataclass's generated __init__ runs as Python, a written one natively. The Final fields make it
# immutable: mypy refuses an assignment, and the compiled build raises AttributeError.
@dataclass(init=False, unsafe_hash=True, slots=True)
class AckSample:
    """What one ACK that advanced SND.UNA tells a controller.

    The rate fields come from the delivery-rate estimator (stack/tcp/delivery_rate.py,
    draft-cheng-iccrg-delivery-rate-estimation); they are None when this ACK delivered no segment
    the estimator could time (for example the ACK of a SYN).
    """

    bytes_acked: Final[int]  # bytes newly acknowledged cumulatively by this ACK
    bytes_in_flight: Final[int]  # SND.MAX - SND.UNA before this ACK
    rtt: Final[float | None]  # seconds, from the newest never-retransmitted segment this ACK delivered (Karn)
    min_rtt: Final[float | None]  # the smallest RTT seen in the last 5 minutes (as Linux's tcp_min_rtt_wlen)
    delivered: Final[int]  # bytes delivered (ACKed or SACKed) since the connection started
    delivery_rate: Final[float | None]  # bytes per second over the sample's interval
    app_limited: Final[bool]  # the sample was taken while the application, not the network, limited sending
    now: Final[float]
    prior_delivered: Final[int | None]  # `delivered` when the newest segment in the sample was sent
    # the window limited sending lately, so it may grow (Linux tcp_is_cwnd_limited: full in the last
    # window of data, or in slow start less than twice the most in flight there)
    cwnd_limited: Final[bool]
    # segments this ACK delivered (acknowledged or newly SACKed), as Linux counts them for its window in
    # packets: a segment shorter than the MSS counts one. None in a sample built without that count:
    # `segments_delivered` then counts bytes_acked in MSS-sized segments
    packets_delivered: Final[int | None]

    def __init__(
        self,
        bytes_acked: int,
        bytes_in_flight: int,
        rtt: float | None,
        min_rtt: float | None,
        delivered: int,
        delivery_rate: float | None,
        app_limited: bool,
        now: float,
        prior_delivered: int | None = None,
        cwnd_limited: bool = True,
        packets_delivered: int | None = None,
    ) -> None:
        self.bytes_acked = bytes_acked
        self.bytes_in_flight = bytes_in_flight
        self.rtt = rtt
        self.min_rtt = min_rtt
        self.delivered = delivered
        self.delivery_rate = delivery_rate
        self.app_limited = app_limited
        self.now = now
        self.prior_delivered = prior_delivered
        self.cwnd_limited = cwnd_limited
        self.packets_delivered = packets_delivered

    def segments_delivered(self, mss: int) -> int:
        """`packets_delivered`, or bytes_acked in segments of `mss` bytes when the sample has no count."""
        packets = self.packets_delivered
        return packets if packets is not None else -(-self.bytes_acked // mss)
