"""What an ICMP error quoting one of our segments does to its connection, after Linux's tcp_v4_err.

stack/ip.py parses the ICMP message, stack/demux.py finds the connection by the quoted 4-tuple, and
`icmp_error` decides. An error is believed only if the quoted SEG.SEQ lies in SND.UNA..SND.MAX, data we
have sent and not yet seen acknowledged (RFC 5927 §4.1; Linux checks snd_una..snd_nxt, and Linux's
snd_nxt is our snd_max, since ours falls back after a retransmission timeout).

- An error about our SYN or SYN,ACK ends an opening of ours (SYN-SENT, a simultaneous open, a fast open
  connection in SYN-RECEIVED) with its errno, whatever the error, as Linux's tcp_v4_err and tcp_v6_err
  (tcp_done_with_error); RFC 1122 §4.2.3.9 would abort only on a hard one (protocol or port unreachable).
- After the handshake an error never aborts (RFC 1122 §4.2.3.9 for soft errors; Linux treats hard ones
  the same way): the errno is kept in `conn.soft_error` (Linux sk_err_soft, what SO_ERROR returns) for
  when retransmissions give up.
- A net or host unreachable about SND.UNA while the retransmission timer backs off undoes one doubling
  (RFC 6069, Linux tcp_ld_RTO_revert; timeouts.revert_backoff).
- A passive open still in SYN-RECEIVED is dropped silently on network/host unreachable, time exceeded
  or parameter problem, as Linux's tcp_req_err does: no application is waiting for it yet.
- Fragmentation needed (RFC 1191) lowers the MSS to the reported MTU - 40 (the MTU at least 552, as
  Linux's min_pmtu) and resends what is in flight at the new size right away (Linux
  tcp_simple_retransmit): not a congestion signal, so cwnd and ssthresh stay as they are. Under
  IP_MTU_DISCOVER DONT, INTERFACE or OMIT later segments still fit the new MTU, but what is in flight
  waits for the retransmission timer (Linux tcp_v4_mtu_reduced).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Final

from stack.tcp import timeouts
from stack.tcp.config import PMTUDISC_RESENDS
from stack.tcp.state import OPENING, Event, State
from stack.wire.seq import seq_le

if TYPE_CHECKING:
    from stack.tcp.connection import Connection

DEST_UNREACHABLE: Final = 3
SOURCE_QUENCH: Final = 4
TIME_EXCEEDED: Final = 11
PARAMETER_PROBLEM: Final = 12
CODE_NET_UNREACHABLE: Final = 0
CODE_HOST_UNREACHABLE: Final = 1
CODE_FRAG_NEEDED: Final = 4

# the least path MTU a report sets (Linux ip_rt_min_pmtu, 512 + 20 + 20: MSS 512); RFC 5927 §7.3: forged
# tiny MTUs go no lower
MIN_PATH_MTU: Final = 552

# Destination unreachable codes -> errno, as Linux's icmp_err_convert
_UNREACHABLE: Final[dict[int, int]] = {
    0: errno.ENETUNREACH,  # network unreachable
    1: errno.EHOSTUNREACH,  # host unreachable
    2: errno.ENOPROTOOPT,  # protocol unreachable
    3: errno.ECONNREFUSED,  # port unreachable
    5: errno.EOPNOTSUPP,  # source route failed
    6: errno.ENETUNREACH,  # network unknown
    7: errno.EHOSTDOWN,  # host unknown
    8: errno.ENONET,  # source host isolated
    9: errno.ENETUNREACH,  # network prohibited
    10: errno.EHOSTUNREACH,  # host prohibited
    11: errno.ENETUNREACH,  # network unreachable for TOS
    12: errno.EHOSTUNREACH,  # host unreachable for TOS
    13: errno.EHOSTUNREACH,  # communication prohibited
    14: errno.EHOSTUNREACH,  # host precedence violation
    15: errno.EHOSTUNREACH,  # precedence cutoff
}


@dataclass(frozen=True, slots=True)
class IcmpError:
    """An ICMP error message quoting one of our TCP segments, as the IP layer parsed it."""

    icmp_type: int
    code: int
    seq: int  # SEG.SEQ of the quoted segment
    mtu: int = 0  # next-hop MTU of a fragmentation-needed message (RFC 1191 §4); 0 if not given


class Outcome(Enum):
    """What became of an ICMP error; the value is the counter `tcpstack stats` shows."""

    OUT_OF_WINDOW = "OutOfWindowIcmps"  # quoted sequence number outside SND.UNA..SND.MAX (Linux's name)
    IGNORED = "TCPIcmpIgnored"  # believable but nothing to do (TIME-WAIT, an MTU that is no smaller, ...)
    SOFT_ERROR = "TCPIcmpSoftErrors"  # recorded in conn.soft_error
    ABORTED = "TCPIcmpAborts"  # the connection attempt ended
    PMTU_REDUCED = "TCPPmtuReductions"  # the MSS was lowered and the flight resent


def icmp_error(conn: Connection, error: IcmpError, now: float) -> Outcome:
    """Apply one ICMP error to the connection whose segment it quotes."""
    state = conn.state
    if state in (State.CLOSED, State.LISTEN, State.TIME_WAIT):
        return Outcome.IGNORED  # nothing in flight that could have caused it (Linux ignores TIME-WAIT too)
    tcb = conn.tcb
    # a fast open child's SND.UNA is past its SYN,ACK, which its window starts at (Linux: the request's ISN)
    left = tcb.iss if conn.sends_early else tcb.snd_una
    if not (seq_le(left, error.seq) and seq_le(error.seq, tcb.snd_max)):
        return Outcome.OUT_OF_WINDOW
    if error.icmp_type == DEST_UNREACHABLE and error.code == CODE_FRAG_NEEDED:
        return _path_mtu_reduced(conn, error)
    err = _meaning(error)
    if err is None:
        return Outcome.IGNORED
    if state is State.SYN_RECEIVED and conn.passive:
        if _drops_embryonic(error):
            conn.enter(Event.ICMP, now)
            return Outcome.ABORTED
        return Outcome.IGNORED
    if state in OPENING:  # SYN_SENT, a simultaneous open or a fast open child
        # Linux (tcp_v4_err, tcp_v6_err) ends the opening on any error about our SYN or SYN,ACK, soft or
        # hard (RFC 1122 §4.2.3.9 would only record a soft one)
        conn.unreachable(err, now)
        return Outcome.ABORTED
    conn.soft_error = err
    if _reverts_backoff(conn, error):
        timeouts.revert_backoff(conn, now)
    return Outcome.SOFT_ERROR


def _reverts_backoff(conn: Connection, error: IcmpError) -> bool:
    """RFC 6069 §4 as Linux (tcp_v4_err, tcp_v6_err): a net or host unreachable (IPv6: no route, which
    stack/ip6.py hands over as net unreachable) about SND.UNA, after retransmission timeouts that backed
    the timer off, in a synchronized state."""
    if error.icmp_type != DEST_UNREACHABLE or not conn.state.synchronized:
        return False
    ipv6 = conn.remote[0] > 0xFFFFFFFF  # (stack/wire/addr.py)
    if error.code != CODE_NET_UNREACHABLE and (ipv6 or error.code != CODE_HOST_UNREACHABLE):
        return False
    return error.seq == conn.tcb.snd_una and conn.retransmits > 0 and conn.rto.backoff > 0


def _meaning(error: IcmpError) -> int | None:
    if error.icmp_type == DEST_UNREACHABLE:
        return _UNREACHABLE.get(error.code)
    if error.icmp_type == TIME_EXCEEDED:
        return errno.EHOSTUNREACH  # time exceeded
    if error.icmp_type == PARAMETER_PROBLEM:
        return errno.EPROTO  # parameter problem
    return None  # source quench (RFC 6633) and anything else: no effect on TCP


def _drops_embryonic(error: IcmpError) -> bool:
    """Linux tcp_req_err: the errors that end a half-open passive connection."""
    if error.icmp_type in (TIME_EXCEEDED, PARAMETER_PROBLEM):
        return True
    return error.icmp_type == DEST_UNREACHABLE and error.code in (CODE_NET_UNREACHABLE, CODE_HOST_UNREACHABLE)


def path_mtu(error: IcmpError) -> int:
    """The path MTU a fragmentation-needed message sets, as Linux takes it (__ip_rt_update_pmtu): its
    next-hop MTU, at least MIN_PATH_MTU, which a message without one (a router older than RFC 1191
    sends 0) sets too. Linux searches no plateau table (RFC 1191 §5) and believes an MTU larger than
    the datagram it quotes; a report that would not lower the path changes nothing (_path_mtu_reduced)."""
    return max(error.mtu, MIN_PATH_MTU)


def _path_mtu_reduced(conn: Connection, error: IcmpError) -> Outcome:
    """RFC 1191 §6.3-6.5: lower the MSS, and resend what is in flight in pieces of the new size."""
    if not conn.state.synchronized:
        return Outcome.IGNORED  # a SYN is small; the MSS is settled by the handshake
    mtu = path_mtu(error)
    tcb = conn.tcb
    mss = mtu - conn.header_bytes()  # (IPv6: RFC 8201 §5.4, MTU - 60)
    if mss >= tcb.snd_mss:
        return Outcome.IGNORED  # never raised by an ICMP message; an older or duplicate report
    tcb.snd_mss = mss
    conn.cc.mss = mss
    conn.path_mtu = mtu
    if tcb.snd_una != tcb.snd_max and conn.config.pmtu_discovery not in PMTUDISC_RESENDS:
        # "let the usual retransmit timer handle it" (Linux): it resends them cut to the new size, as
        # tcp_retransmit_skb cuts a segment longer than the MSS
        conn.recovery.board.resegment(mss, lost=False)
    elif tcb.snd_una != tcb.snd_max:
        # every segment in flight larger than the new size was dropped at that hop: resend it in pieces
        # of the new size, without the congestion response (Linux tcp_simple_retransmit)
        conn.recovery.mtu_reduced(mss)
    return Outcome.PMTU_REDUCED
