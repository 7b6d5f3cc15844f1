"""recvmsg(MSG_ERRQUEUE) of a transmit timestamp, checked against what the script expects.

Linux hands each report (stack/tcp/tx_timestamps.py) as up to two control messages: SCM_TIMESTAMPING
(SOL_SOCKET) with the software time when SOFTWARE was asked for, then the `struct sock_extended_err`
of IP_RECVERR (SOL_IP; SOL_IPV6/IPV6_RECVERR on an IPv6 socket) with ee_errno ENOMSG, ee_origin
SO_EE_ORIGIN_TIMESTAMPING, ee_info the SCM_TSTAMP_* kind and ee_data the key (Linux ip_recv_error,
__skb_complete_tx_timestamp). packetdrill writes the level and type as CMSG_LEVEL_IP/CMSG_TYPE_RECVERR,
and scm_sec/scm_nsec as the time since the script started.
"""

from __future__ import annotations

import errno

from stack.script.ast import AnyValue, Arg, Name, Struct
from stack.script.msghdr import ControlMessage
from stack.tcp.tx_timestamps import KINDS, TxTimestamp

SO_EE_ORIGIN_TIMESTAMPING = 4  # Linux errqueue.h
_RECVERR_LEVELS = {
    False: ("CMSG_LEVEL_IP", "SOL_IP", "IPPROTO_IP"),
    True: ("CMSG_LEVEL_IP", "SOL_IPV6", "IPPROTO_IPV6"),
}
_RECVERR_TYPES = {False: ("CMSG_TYPE_RECVERR", "IP_RECVERR"), True: ("CMSG_TYPE_RECVERR", "IPV6_RECVERR")}
_NAMES = {"ENOMSG": errno.ENOMSG, "SO_EE_ORIGIN_TIMESTAMPING": SO_EE_ORIGIN_TIMESTAMPING, **KINDS}


class Unmodelled(ValueError):
    """A field or message the fake kernel does not produce: the script SKIPs."""


def out_flags(report: TxTimestamp, size: int) -> frozenset[str]:
    """msg_flags of the read: MSG_ERRQUEUE, and MSG_TRUNC when the packet copy does not fit."""
    return frozenset({"MSG_ERRQUEUE", "MSG_TRUNC"} if report.packet and not size else {"MSG_ERRQUEUE"})


def mismatch(report: TxTimestamp, expected: list[ControlMessage], v6: bool, tolerance: float) -> str | None:
    """How the report's control messages differ from the expected ones (None: they match)."""
    actual = (["SCM_TIMESTAMPING"] if report.software else []) + ["RECVERR"]
    if len(expected) != len(actual):
        return f"{len(actual)} control messages ({', '.join(actual)}), not {len(expected)}"
    for want, kind in zip(expected, actual, strict=True):
        if kind == "SCM_TIMESTAMPING":
            if (want.level, want.type) != ("SOL_SOCKET", "SCM_TIMESTAMPING"):
                return f"SOL_SOCKET/SCM_TIMESTAMPING first, not {want.level}/{want.type}"
            problem = _time_mismatch(want.data, report.time, tolerance)
        else:
            if want.level not in _RECVERR_LEVELS[v6] or want.type not in _RECVERR_TYPES[v6]:
                return f"{_RECVERR_LEVELS[v6][1]}/{_RECVERR_TYPES[v6][1]}, not {want.level}/{want.type}"
            problem = _error_mismatch(want.data, report)
        if problem:
            return problem
    return None


def _fields(data: Arg, known: tuple[str, ...]) -> dict[str, Arg]:
    if isinstance(data, AnyValue):
        return {}
    if not isinstance(data, Struct):
        raise Unmodelled(f"cmsg_data {data} is not a struct")
    fields = {name: value for name, value in data.fields if name is not None}
    unknown = set(fields) - set(known)
    if unknown:
        raise Unmodelled(f"cmsg_data fields {', '.join(sorted(unknown))} are not modelled")
    return fields


def _time_mismatch(data: Arg, time: float, tolerance: float) -> str | None:
    fields = _fields(data, ("scm_sec", "scm_nsec"))
    sec, nsec = fields.get("scm_sec", 0), fields.get("scm_nsec", 0)
    if isinstance(sec, AnyValue) or isinstance(nsec, AnyValue):
        return None
    if not isinstance(sec, int) or not isinstance(nsec, int):
        raise Unmodelled(f"scm_sec/scm_nsec {sec}/{nsec} are not numbers")
    if abs(sec + nsec / 1e9 - time) > tolerance + 1e-9:
        return f"timestamp {time:.6f} s, not {sec + nsec / 1e9:.6f} s"
    return None


def _error_mismatch(data: Arg, report: TxTimestamp) -> str | None:
    fields = _fields(data, ("ee_errno", "ee_origin", "ee_type", "ee_code", "ee_pad", "ee_info", "ee_data"))
    actual = {
        "ee_errno": errno.ENOMSG,
        "ee_origin": SO_EE_ORIGIN_TIMESTAMPING,
        "ee_type": 0,
        "ee_code": 0,
        "ee_pad": 0,
        "ee_info": report.kind,
        "ee_data": report.key,
    }
    for name, want in fields.items():
        if isinstance(want, AnyValue):
            continue
        value = _NAMES.get(want.name) if isinstance(want, Name) else want
        if not isinstance(value, int):
            raise Unmodelled(f"{name}={want} is not a number or a known constant")
        if value != actual[name]:
            return f"{name}={actual[name]}, not {want}"
    return None
