"""The transmission control block (RFC 9293 §3.3.1): the connection's sequence-space variables."""

from __future__ import annotations


class Tcb:
    """A plain class, not a dataclass: compiled, one is made natively (a compiled dataclass is built
    through the Python __init__ that dataclasses generates, several times slower, once per connection)."""

    __slots__ = (
        "iss",
        "irs",
        "snd_una",
        "snd_nxt",
        "snd_max",
        "snd_wnd",
        "snd_wl1",
        "snd_wl2",
        "snd_wscale",
        "max_snd_wnd",
        "rcv_nxt",
        "rcv_wnd",
        "rcv_adv",
        "rcv_wscale",
        "snd_mss",
        "sack_ok",
        "ts_ok",
    )

    def __init__(self) -> None:
        self.iss = 0  # initial send sequence number
        self.irs = 0  # initial receive sequence number
        self.snd_una = 0  # oldest unacknowledged sequence number
        self.snd_nxt = 0  # next sequence number to send
        self.snd_max = 0  # highest sequence number sent (snd_nxt falls back below it after an RTO)
        self.snd_wnd = 0  # peer's receive window, scaled
        self.snd_wl1 = 0  # segment sequence number used for the last window update
        self.snd_wl2 = 0  # segment acknowledgment number used for the last window update
        self.snd_wscale = 0  # shift applied to windows the peer advertises (RFC 7323 §2.2)
        self.max_snd_wnd = 0  # largest window the peer ever offered (sender SWS avoidance, §3.8.6.2.1)
        self.rcv_nxt = 0  # next sequence number expected
        self.rcv_wnd = 0  # window we advertised (right edge minus rcv_nxt at the time)
        self.rcv_adv = 0  # right edge of the window we advertised: never moved left (§3.8.6)
        self.rcv_wscale = 0  # shift we apply to windows we advertise
        self.snd_mss = 536  # largest segment we send: min(peer's MSS option, ours); 536 if absent (§3.7.1)
        self.sack_ok = False  # both SYNs carried SACK-permitted (RFC 2018 §2)
        self.ts_ok = False  # both SYNs carried timestamps (RFC 7323 §3.2)
