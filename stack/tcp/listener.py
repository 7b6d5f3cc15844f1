"""A LISTEN socket: spawns a child connection per SYN, bounded SYN and accept queues (like Linux)."""

from __future__ import annotations

from collections import deque

from stack.tcp.config import TcpConfig
from stack.tcp.connection import Address, Connection, Transition, TransitionHook
from stack.tcp.errors import LocalProtocolError
from stack.tcp.state import State, is_legal
from stack.wire.segment import Segment


class Listener:
    def __init__(self, config: TcpConfig, local: Address, backlog: int | None = None, now: float = 0.0) -> None:
        self.config = config
        self.local = local
        self.state = State.CLOSED
        self.history: list[Transition] = []
        self.enter(State.LISTEN, "passive open", now)
        self.backlog = config.backlog if backlog is None else backlog
        self.syn_queue: set[Connection] = set()
        self.accept_queue: deque[Connection] = deque()
        self.overflows = 0  # SYNs dropped because a queue was full (ListenOverflows)

    def enter(self, new: State, reason: str, now: float) -> None:
        """The listener's own LISTEN <-> CLOSED changes, checked against the same table as connections."""
        if not is_legal(self.state, new):
            raise LocalProtocolError(f"illegal transition {self.state.name} -> {new.name} ({reason})")
        self.history.append(Transition(self.state, new, reason, now))
        self.state = new

    def close(self, now: float) -> None:
        """CLOSE in LISTEN (§3.10.4): the listener is deleted; half-open children are reset by the caller."""
        if self.state is State.LISTEN:
            self.enter(State.CLOSED, "close", now)

    def on_syn(
        self, remote: Address, syn: Segment, now: float, on_transition: TransitionHook | None = None
    ) -> Connection | None:
        """RFC 9293 §3.10.7.2 third check. A full queue drops the SYN silently, as Linux does."""
        if len(self.syn_queue) >= self.config.syn_backlog or len(self.accept_queue) >= self.backlog:
            self.overflows += 1
            return None
        child = Connection.from_syn(self.config, self.local, remote, syn, now, on_transition)
        self.syn_queue.add(child)
        return child

    def on_established(self, child: Connection) -> None:
        self.syn_queue.discard(child)
        self.accept_queue.append(child)

    def forget(self, child: Connection) -> None:
        self.syn_queue.discard(child)
        if child in self.accept_queue:
            self.accept_queue.remove(child)

    def accept(self) -> Connection | None:
        return self.accept_queue.popleft() if self.accept_queue else None
