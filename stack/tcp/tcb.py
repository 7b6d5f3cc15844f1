"""The transmission control block (RFC 9293 §3.3.1): the connection's sequence-space variables."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Tcb:
    iss: int = 0  # initial send sequence number
    irs: int = 0  # initial receive sequence number
    snd_una: int = 0  # oldest unacknowledged sequence number
    snd_nxt: int = 0  # next sequence number to send
    snd_max: int = 0  # highest sequence number sent (snd_nxt falls back below it after an RTO)
    snd_wnd: int = 0  # peer's receive window, scaled
    snd_wl1: int = 0  # segment sequence number used for the last window update
    snd_wl2: int = 0  # segment acknowledgment number used for the last window update
    snd_wscale: int = 0  # shift applied to windows the peer advertises (RFC 7323 §2.2)
    max_snd_wnd: int = 0  # largest window the peer ever offered (sender SWS avoidance, §3.8.6.2.1)
    rcv_nxt: int = 0  # next sequence number expected
    rcv_wnd: int = 0  # window we advertised (right edge minus rcv_nxt at the time)
    rcv_adv: int = 0  # right edge of the window we advertised: never moved left (§3.8.6)
    rcv_wscale: int = 0  # shift we apply to windows we advertise
    snd_mss: int = 536  # largest segment we send: min(peer's MSS option, ours); 536 if absent (§3.7.1)
    sack_ok: bool = False  # both SYNs carried SACK-permitted (RFC 2018 §2)
    ts_ok: bool = False  # both SYNs carried timestamps (RFC 7323 §3.2)
