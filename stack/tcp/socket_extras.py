"""Socket features few connections use, held in one object made on first use, so that an idle connection
pays one slot for all of them: SO_TIMESTAMPING's reports, the urgent data received, SND.UP, a
receiving side the application shut and a fast open child's marks."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stack.tcp.tx_timestamps import TxTimestamps
    from stack.tcp.urgent import Urgent


class Extras:
    __slots__ = ("tx_stamps", "urgent", "snd_up", "receive_shut", "fast_open")

    def __init__(self) -> None:
        self.tx_stamps: TxTimestamps | None = None  # SO_TIMESTAMPING's transmit timestamps (tx_timestamps.py)
        self.urgent: Urgent | None = None  # the urgent pointer the peer sent last (urgent.py)
        self.snd_up: int | None = None  # SND.UP: the end of our urgent data until it is acknowledged
        self.receive_shut = False  # shutdown(SHUT_RD) (Linux RCV_SHUTDOWN): see Connection.shutdown_receive
        self.fast_open = 0  # fast_open.py's CHILD and SYN_DATA_ACKED bits: see Connection.fast_open
