"""epoll(7) for the scripts: interest lists over the script's sockets, level- or edge-triggered, as
Linux's eventpoll.

An interest becomes ready when its descriptor is woken with a key that matches its events (Linux
ep_poll_callback: new data wakes the readers' events, send space the writers', a change of state or an
error every event), and when it is added or modified while its descriptor has events (ep_insert,
ep_modify). epoll_wait takes the ready ones in the order they became ready and reports each with the
events its descriptor has now (ep_send_events polls it again): one with none is dropped, a
level-triggered one stays ready, an edge-triggered one waits for the next wakeup, and a one-shot one is
disabled until EPOLL_CTL_MOD arms it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# the epoll events that are poll's (tcp_poll computes both), by name
AS_POLL = {
    "EPOLLIN": "POLLIN",
    "EPOLLOUT": "POLLOUT",
    "EPOLLRDHUP": "POLLRDHUP",
    "EPOLLPRI": "POLLPRI",
    "EPOLLERR": "POLLERR",
    "EPOLLHUP": "POLLHUP",
    "EPOLLRDNORM": "POLLRDNORM",
    "EPOLLWRNORM": "POLLWRNORM",
}
ALWAYS = frozenset({"EPOLLERR", "EPOLLHUP"})  # reported whether asked for or not (epoll_ctl(2))
MODES = frozenset({"EPOLLET", "EPOLLONESHOT", "EPOLLEXCLUSIVE", "EPOLLWAKEUP"})
KNOWN = frozenset(AS_POLL) | MODES
# wakeup keys: what sk_data_ready (sock_def_readable) and sk_write_space (sk_stream_write_space) pass;
# None, as sock_def_wakeup (a change of state) and a socket's error, wakes every interest
READABLE = frozenset({"EPOLLIN", "EPOLLRDNORM", "EPOLLPRI"})
WRITABLE = frozenset({"EPOLLOUT", "EPOLLWRNORM"})
EVERYTHING = None


@dataclass(frozen=True)
class Data:
    """epoll_event.data as the script gave it: which member (fd, ptr, u32, u64) and its value."""

    member: str
    value: int

    def matches(self, expected: Data) -> bool:
        """Whether the union, read as the member the script expects, holds its value (fd and u32 are the
        low 32 bits, ptr and u64 all 64)."""
        narrow = {self.member, expected.member} & {"fd", "u32"}
        width = 0xFFFFFFFF if narrow else (1 << 64) - 1
        return self.value & width == expected.value & width


@dataclass
class Interest:
    events: frozenset[str]  # the epoll events asked for (no mode flags)
    edge: bool  # EPOLLET
    oneshot: bool  # EPOLLONESHOT
    data: Data
    disabled: bool = False  # a one-shot interest that fired: nothing until EPOLL_CTL_MOD


class Epoll:
    """One epoll instance: its interests by descriptor, and which are ready, in the order they became so."""

    def __init__(self) -> None:
        self.interests: dict[int, Interest] = {}
        self.ready: dict[int, None] = {}  # an ordered set: Linux's ready list

    def arm(self, fd: int, interest: Interest, now_events: frozenset[str]) -> None:
        """EPOLL_CTL_ADD or EPOLL_CTL_MOD: ready at once if the descriptor has events asked for (ep_insert,
        ep_modify)."""
        self.interests[fd] = interest
        if now_events & (interest.events | ALWAYS):
            self.ready.setdefault(fd)

    def remove(self, fd: int) -> None:
        self.interests.pop(fd, None)
        self.ready.pop(fd, None)

    def wake(self, fd: int, key: frozenset[str] | None) -> None:
        """A wakeup of `fd` (ep_poll_callback): a disabled interest, or one whose events the key does not
        name, stays as it is."""
        interest = self.interests.get(fd)
        if interest is None or interest.disabled:
            return
        if key is not None and not key & (interest.events | ALWAYS):
            return
        self.ready.setdefault(fd)

    def take(self, most: int, events_of: Callable[[int], frozenset[str]]) -> list[tuple[frozenset[str], Data]]:
        """epoll_wait's events: at most `most`, each the events its descriptor has now among those asked."""
        taken: list[tuple[frozenset[str], Data]] = []
        again = []
        for fd in list(self.ready):
            if len(taken) == most:
                break
            del self.ready[fd]
            interest = self.interests[fd]
            events = events_of(fd) & (interest.events | ALWAYS)
            if not events:
                continue
            taken.append((events, interest.data))
            if interest.oneshot:
                interest.disabled = True
            elif not interest.edge:
                again.append(fd)  # level-triggered: ready again, behind the others
        for fd in again:
            self.ready.setdefault(fd)
        return taken


def epoll_names(poll_names: frozenset[str]) -> frozenset[str]:
    """A descriptor's poll events as epoll names."""
    return frozenset(name for name, poll in AS_POLL.items() if poll in poll_names)
