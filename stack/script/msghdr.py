"""The arguments of the message system calls as a script writes them: flags, `struct msghdr`, `struct iovec`.

`sendmsg(4, {msg_name(...)=..., msg_iov(2)=[{..., 40}, {..., 20}], msg_flags=0}, MSG_MORE)`: the runner
needs the byte counts of the iovecs (the data itself is never written), the flag names, and the control
messages a `recvmsg` expects.
"""

from __future__ import annotations

from dataclasses import dataclass

from stack.script.ast import AnyValue, Arg, Array, BitOr, Name, Struct


class BadArgument(ValueError):
    """An argument a script cannot mean (the message says which): the script is wrong."""


def flag_names(arg: Arg) -> frozenset[str]:
    """`0`, `MSG_MORE`, `MSG_MORE|MSG_EOR` -> the set of names; a non-zero number is not a flag set."""
    terms = arg.terms if isinstance(arg, BitOr) else (arg,)
    names = set()
    for term in terms:
        if term == 0:
            continue
        if not isinstance(term, Name):
            raise BadArgument(f"flags {arg} are not symbolic")
        names.add(term.name)
    return frozenset(names)


def iov_lengths(msg: Arg) -> list[int]:
    """The iov_len of each iovec in `msg_iov` (`{..., 40}` or `{iov_base=..., iov_len=40}`)."""
    if not isinstance(msg, Struct):
        raise BadArgument("the message must be a struct msghdr")
    iov = msg.get("msg_iov")
    if not isinstance(iov, Array):
        raise BadArgument("the message has no msg_iov list")
    lengths = []
    for item in iov.items:
        if not isinstance(item, Struct) or len(item.fields) != 2:
            raise BadArgument(f"iovec {item} is not {{base, len}}")
        length = item.get("iov_len") if item.get("iov_len") is not None else item.fields[1][1]
        if not isinstance(length, int) or length < 0:
            raise BadArgument(f"iovec length {length} is not a byte count")
        lengths.append(length)
    return lengths


@dataclass(frozen=True)
class ControlMessage:
    level: str
    type: str
    data: Arg  # what the script expects in cmsg_data


def control_messages(msg: Arg) -> list[ControlMessage]:
    """The control messages a recvmsg expects in `msg_control` (none when the field is absent or `...`)."""
    control = msg.get("msg_control") if isinstance(msg, Struct) else None
    if control is None or isinstance(control, AnyValue):
        return []
    if not isinstance(control, Array):
        raise BadArgument(f"msg_control {control} is not a list of cmsgs")
    messages = []
    for item in control.items:
        if not isinstance(item, Struct):
            raise BadArgument(f"cmsg {item} is not a struct")
        level, kind, data = item.get("cmsg_level"), item.get("cmsg_type"), item.get("cmsg_data")
        if not isinstance(level, Name) or not isinstance(kind, Name) or data is None:
            raise BadArgument(f"cmsg {item} needs cmsg_level, cmsg_type and cmsg_data")
        messages.append(ControlMessage(level.name, kind.name, data))
    return messages
