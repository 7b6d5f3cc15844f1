"""Loss on the wire: independent (Bernoulli) or bursty (the Gilbert-Elliott two-state model)."""

from __future__ import annotations

from random import Random


class Bernoulli:
    """Each packet is lost with probability `p`, independently of the others."""

    def __init__(self, p: float, rng: Random) -> None:
        self.p = p
        self._rng = rng

    def lost(self) -> bool:
        return self._rng.random() < self.p


class GilbertElliott:
    """A good and a bad state: from good the chain moves to bad with probability `p`, from bad back
    to good with `r`, once per packet; a packet is lost with `loss_bad` in the bad state and
    `loss_good` in the good one. With the defaults (all lost in bad, none in good: Gilbert's model)
    the mean loss rate is p / (p + r) and bursts last 1 / r packets on average."""

    def __init__(self, p: float, r: float, rng: Random, loss_bad: float = 1.0, loss_good: float = 0.0) -> None:
        self.p = p
        self.r = r
        self.loss_bad = loss_bad
        self.loss_good = loss_good
        self.bad = False
        self._rng = rng

    def lost(self) -> bool:
        rng = self._rng
        if self.bad:
            if rng.random() < self.r:
                self.bad = False
        elif rng.random() < self.p:
            self.bad = True
        return rng.random() < (self.loss_bad if self.bad else self.loss_good)

    @property
    def mean_loss(self) -> float:
        share_bad = self.p / (self.p + self.r) if self.p + self.r else 0.0
        return share_bad * self.loss_bad + (1 - share_bad) * self.loss_good
