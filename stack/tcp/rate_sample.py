"""The delivery-rate estimator's sample (stack/tcp/delivery_rate.py): a value, one per ACK."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


# A dataclass for its equality, hash and repr, with the constructor written out (init=False): compiled, a
# dataclass's generated __init__ runs as Python, a written one natively (about a tenth of the time). The
# Final fields make it immutable: mypy refuses an assignment, and the compiled build raises AttributeError.
@dataclass(init=False, unsafe_hash=True, slots=True)
class RateSample:
    delivered: Final[int]  # bytes delivered over the interval
    interval: Final[float]  # seconds
    delivery_rate: Final[float | None]  # bytes/s; None when the interval is too short to trust
    prior_delivered: Final[int]  # C.delivered when the newest delivered segment was sent
    app_limited: Final[bool]
    rtt: Final[float | None]  # from the newest never-retransmitted segment delivered
    newly_delivered: Final[int]  # bytes this sample adds to C.delivered

    def __init__(
        self,
        delivered: int,
        interval: float,
        delivery_rate: float | None,
        prior_delivered: int,
        app_limited: bool,
        rtt: float | None,
        newly_delivered: int,
    ) -> None:
        self.delivered = delivered
        self.interval = interval
        self.delivery_rate = delivery_rate
        self.prior_delivered = prior_delivered
        self.app_limited = app_limited
        self.rtt = rtt
        self.newly_delivered = newly_delivered
