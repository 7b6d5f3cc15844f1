"""The delivery-rate estimator's sample (stack/tcp/delivery_rate.py): a frozen value, one per ACK."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class RateSample:
    delivered: int  # bytes delivered over the interval
    interval: float  # seconds
    delivery_rate: float | None  # bytes/s; None when the interval is too short to trust
    prior_delivered: int  # C.delivered when the newest delivered segment was sent
    app_limited: bool
    rtt: float | None  # from the newest never-retransmitted segment delivered
    newly_delivered: int  # bytes this sample adds to C.delivered


# One RateSample per ACK, built without the frozen dataclass's __init__ (object.__setattr__ per field).
# This module stays interpreted for it (tools/build-core): a compiled class cannot be built slot by slot.
_new = object.__new__
(
    _set_delivered,
    _set_interval,
    _set_delivery_rate,
    _set_prior_delivered,
    _set_app_limited,
    _set_rtt,
    _set_newly_delivered,
) = (getattr(RateSample, f.name).__set__ for f in fields(RateSample))


def rate_sample(
    delivered: int,
    interval: float,
    delivery_rate: float | None,
    prior_delivered: int,
    app_limited: bool,
    rtt: float | None,
    newly_delivered: int,
) -> RateSample:
    """RateSample(delivered, ..., newly_delivered), every field given."""
    sample = _new(RateSample)
    _set_delivered(sample, delivered)
    _set_interval(sample, interval)
    _set_delivery_rate(sample, delivery_rate)
    _set_prior_delivered(sample, prior_delivered)
    _set_app_limited(sample, app_limited)
    _set_rtt(sample, rtt)
    _set_newly_delivered(sample, newly_delivered)
    return sample
